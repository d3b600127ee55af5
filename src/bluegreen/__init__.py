"""bluegreen-mcp: blue/green releases behind HAProxy over SSH."""

__version__ = "0.1.0"
