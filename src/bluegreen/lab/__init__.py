"""The Docker lab: an HAProxy host, BLUE and GREEN app hosts and a git origin, for tests and demos."""
