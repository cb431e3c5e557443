"""The running service: wires source -> follower -> stats -> publishers."""

from ._paths import PathRefusedError, resolve_under
from ._run import Service, serve
from ._state import ServiceState

__all__ = ["PathRefusedError", "Service", "ServiceState", "resolve_under", "serve"]
