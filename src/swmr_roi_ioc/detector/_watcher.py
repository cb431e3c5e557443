"""Watch an areaDetector NDFileHDF5 plugin over Channel Access (aioca).

Monitors the plugin's file, capture and SWMR PVs, keeps their latest values,
and wakes whoever waits when something changed (a flush, a new file, a
disconnect). It opens no file itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aioca import DBR_CHAR_STR, Subscription, camonitor

log = logging.getLogger(__name__)

#: Plugin PV suffix -> (PluginState field, aioca datatype or None for native)
PLUGIN_PVS: dict[str, tuple[str, Any]] = {
    "FullFileName_RBV": ("full_file_name", DBR_CHAR_STR),
    "Capture_RBV": ("capture", None),
    "NumCaptured_RBV": ("num_captured", None),
    "SWMRMode_RBV": ("swmr_mode", None),
    "SWMRActive_RBV": ("swmr_active", None),
    "SWMRCbCounter_RBV": ("swmr_cb_counter", None),
    "WriteStatus": ("write_status", None),
    "WriteMessage": ("write_message", DBR_CHAR_STR),
    "ArrayCounter_RBV": ("array_counter", None),
}

#: Optional PVs (not every NDFileHDF5 version has them; not needed to follow)
OPTIONAL_PVS: dict[str, tuple[str, Any]] = {
    "NumExtraDims_RBV": ("num_extra_dims", None),
    "ExtraDimSizeN_RBV": ("extra_dim_n", None),
    "ExtraDimSizeX_RBV": ("extra_dim_x", None),
}


@dataclass(frozen=True)
class PluginState:
    """Latest values of the plugin's PVs."""

    full_file_name: str = ""
    capture: int = 0
    num_captured: int = 0
    swmr_mode: int = 0
    swmr_active: int = 0
    swmr_cb_counter: int = 0
    write_status: int = 0
    write_message: str = ""
    array_counter: int = 0
    num_extra_dims: int = 0
    extra_dim_n: int = 0
    extra_dim_x: int = 0
    #: PVs connected now (a subset of PLUGIN_PVS)
    connected: frozenset[str] = field(default_factory=frozenset)
    #: increments on every rising edge of SWMRActive_RBV, and when
    #: FullFileName_RBV changes from one file to another: a new file
    file_generation: int = 0

    @property
    def all_connected(self) -> bool:
        return all(pv in self.connected for pv in PLUGIN_PVS)

    @property
    def scan_shape(self) -> tuple[int, int] | None:
        """(rows, cols) of the scan from NumExtraDims/ExtraDimSize*, if set."""
        if self.num_extra_dims >= 2 and self.extra_dim_n > 0 and self.extra_dim_x > 0:
            return (self.extra_dim_x, self.extra_dim_n)
        if self.num_extra_dims == 1 and self.extra_dim_n > 0:
            return (1, self.extra_dim_n)
        return None

    @property
    def file_open(self) -> bool:
        """The plugin has a SWMR file open that readers may open."""
        return bool(self.swmr_active) and bool(self.full_file_name)


class PluginWatcher:
    """CA monitors on one NDFileHDF5 plugin, e.g. prefix ``BL01C-DI-DCAM-01:HDF5:``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.state = PluginState()
        self._subscriptions: list[Subscription] = []
        self._changed = asyncio.Event()
        #: set on NumCaptured_RBV / SWMRCbCounter_RBV updates: frames flushed
        self.flushed = asyncio.Event()

    def start(self) -> None:
        """Subscribe (call inside the running loop); reconnects are automatic."""
        for suffix, (name, datatype) in {**PLUGIN_PVS, **OPTIONAL_PVS}.items():
            self._subscriptions.append(
                camonitor(
                    self.prefix + suffix,
                    self._callback(suffix, name),
                    datatype=datatype,
                    notify_disconnect=True,
                )
            )

    def close(self) -> None:
        for sub in self._subscriptions:
            sub.close()
        self._subscriptions.clear()

    def _callback(self, suffix: str, name: str) -> Callable[[Any], None]:
        def update(value: Any) -> None:
            state = self.state
            if not getattr(value, "ok", True):  # disconnected (ca_nothing)
                self.state = replace(state, connected=state.connected - {suffix})
                log.warning("%s%s disconnected", self.prefix, suffix)
            else:
                plain: Any = str(value) if isinstance(value, str) else int(value)
                changes: dict[str, Any] = {
                    name: plain,
                    "connected": state.connected | {suffix},
                }
                new_file = (name == "swmr_active" and plain and not state.swmr_active) or (
                    # e.g. a whole acquisition happened while we were disconnected
                    name == "full_file_name" and state.full_file_name not in ("", plain)
                )
                if new_file:
                    changes["file_generation"] = state.file_generation + 1
                    log.info("%s: file %d (%s=%r)", self.prefix, state.file_generation + 1,
                             suffix, plain)  # fmt: skip
                if suffix not in state.connected:
                    log.info("%s%s connected: %r", self.prefix, suffix, plain)
                self.state = replace(state, **changes)
                if name in ("num_captured", "swmr_cb_counter", "array_counter"):
                    self.flushed.set()
            self._changed.set()

        return update

    async def changed(self, timeout: float) -> bool:
        """Wait until any PV changed (True) or ``timeout`` passed (False)."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            return False
        self._changed.clear()
        return True

    async def wait_flushed(self, timeout: float) -> bool:
        """Wait for a flush (or any frame-count update) or ``timeout``."""
        try:
            await asyncio.wait_for(self.flushed.wait(), timeout)
        except TimeoutError:
            return False
        self.flushed.clear()
        return True
