"""The running service: wires source -> follower -> stats -> publishers."""

from ._paths import PathRefused, resolve_under
from ._run import Service, serve
from ._state import ServiceState

__all__ = ["PathRefused", "Service", "ServiceState", "resolve_under", "serve"]
