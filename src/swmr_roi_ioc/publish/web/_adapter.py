"""A put path over today's CA validation, for the page's edits.

This adapter stands in for the IOC's own put path (one object whose
``put(suffix, value, host=, user=)`` is what every CA and PVA put goes
through); once the IOC offers that object, the page takes it instead and this
module goes. It repeats the CA putters' rules: whole numbers in range for the
geometry, ``access`` by host and user, then the controller's ``set_roi`` /
``reset`` (the same retroactive recompute as a CA put).
"""

from __future__ import annotations

import re

from swmr_roi_ioc.config import IocConfig
from swmr_roi_ioc.publish import Controller, PutRefusedError
from swmr_roi_ioc.publish._access import WriteAccess
from swmr_roi_ioc.publish._ca import GEOMETRY_PVS, _as_int

_ROI_SUFFIX = re.compile(r"^(\d+):(\w+)$")


class ControllerPutPath:
    """``put(suffix, value, host=, user=)`` as the CA putters validate and apply it."""

    def __init__(self, config: IocConfig, controller: Controller) -> None:
        self._prefix = config.prefix
        self._controller = controller
        self._access = WriteAccess(config.access.write_hosts, config.access.write_users)
        self._rois = len(config.rois)

    def put(self, suffix: str, value: object, *, host: str, user: str) -> None:
        name = f"{self._prefix}{suffix}"
        if not self._access.allows(host, user):
            raise PutRefusedError(f"{name}: {self._access.why_not(host, user)}")
        if suffix == "Reset":
            if _as_int(value, name, 0, 1) == 1:
                self._controller.reset()
            return
        match = _ROI_SUFFIX.match(suffix)
        if match is None or not 1 <= int(match[1]) <= self._rois:
            raise PutRefusedError(f"{name}: no such writable PV")
        index, field = int(match[1]) - 1, match[2]
        if field == "Use":
            self._controller.set_roi(index, use=bool(_as_int(value, name, 0, 1)))
            return
        if field not in GEOMETRY_PVS:
            raise PutRefusedError(f"{name}: no such writable PV")
        attr, low = GEOMETRY_PVS[field]
        self._controller.set_roi(index, **{attr: _as_int(value, name, low)})
