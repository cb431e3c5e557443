"""The IOC's put path for the page when no IOC runs (tests, a page on its own).

In the service the page takes the IOC's own :class:`PutHandler` (``Service.puts``),
which also shows every accepted setpoint and ``PutError_RBV`` over CA and PVA.
:class:`ControllerPutPath` is the same checks, access and controller calls,
built from the PV table, without an IOC to show them on.
"""

from __future__ import annotations

from typing import Any

from swmr_roi_ioc.config import IocConfig
from swmr_roi_ioc.publish import Controller, PutHandler, PvSpec, WriteAccess, pv_table


class _NoIoc:
    """Nothing to show the put on."""

    def show(self, spec: PvSpec, value: Any, *, skip_ca: bool = False) -> None:
        return None


class ControllerPutPath:
    """``put(suffix, value, host=, user=)``: the IOC's rules, applied to ``controller``."""

    def __init__(self, config: IocConfig, controller: Controller) -> None:
        access = WriteAccess(config.access.write_hosts, config.access.write_users)
        self._puts = PutHandler(config.prefix, pv_table(config), controller, access, _NoIoc())

    def put(self, suffix: str, value: object, *, host: str, user: str) -> None:
        self._puts.put(suffix, value, host=host, user=user)
