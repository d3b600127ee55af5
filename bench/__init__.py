"""Benchmarks against the project's own Docker lab (`python -m bench.status`, ...)."""
