"""uprof: a self-hosted server that speaks the Anthropic User Profiles API."""

__version__ = "0.1.0"
