"""nmail: a self-hosted, multi-domain mail system."""

__version__ = "0.1.0"
