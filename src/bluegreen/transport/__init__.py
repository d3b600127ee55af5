"""How the engine reaches hosts: the Runner protocol and its implementations."""
