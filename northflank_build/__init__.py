"""Start a Northflank build from CI, wait for it, and report its outcome."""

__version__ = "0.1.0"
