"""The volunteer side: the `worker` daemon and CLI, its coordinator client, agents and harness."""

__version__ = "0.1.0"
