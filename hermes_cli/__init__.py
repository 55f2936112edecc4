"""hermes: a terminal chat agent for any OpenAI-compatible provider."""

__version__ = "0.1.0"
