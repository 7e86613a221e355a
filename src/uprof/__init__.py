"""uprof: a self-hosted server that speaks the Anthropic User Profiles API."""

__version__ = "0.1.0"

# Before any module of the request path is imported: a native build of these exact sources
# serves them if there is one (``uprof.native``).
from uprof import native as _native

_native.activate()
