"""Source ``source.plugin_prefix``: follow whatever an NDFileHDF5 plugin writes.

The plugin's PVs say when a SWMR file is open (``SWMRActive_RBV``), which one
(``FullFileName_RBV``), when frames were flushed (``NumCaptured_RBV``,
``SWMRCbCounter_RBV`` wake the follower; a slow poll stays as a fallback) and
when capture ended. Frames are followed by extent: NDFileHDF5 flushes the
attribute datasets (the keys) only every NDAttributeChunk frames.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from swmr_roi_ioc.detector import PLUGIN_PVS, PluginState, PluginWatcher
from swmr_roi_ioc.engine import WorkerPool
from swmr_roi_ioc.publish import Status
from swmr_roi_ioc.stats import ScanGeometry

from ._acquisition import CurrentAcquisition
from ._lifecycle import Abandon, Lifecycle
from ._paths import PathRefusedError, resolve_under
from ._state import ServiceState

log = logging.getLogger(__name__)

#: Fallback poll while the plugin is connected (flushes wake us earlier).
POLL_CONNECTED = 0.25
#: At start, the plugin's PVs get this long to connect before LINK/MAJOR is
#: raised (a disconnect later raises it at once).
CONNECT_GRACE_S = 3.0
#: Poll while the camera IOC is away (no wake-ups come).
POLL_DISCONNECTED = 0.05


class PluginSource:
    """Follows the files one NDFileHDF5 plugin writes, acquisition after acquisition."""

    def __init__(
        self,
        state: ServiceState,
        pool: WorkerPool,
        prefix: str,
        current: CurrentAcquisition,
        on_finished: Callable[[], Awaitable[None]],
    ) -> None:
        self._state = state
        self._lifecycle = Lifecycle(state, pool, current, on_finished)
        self.timeout = state.config.source.timeout
        self.watcher = PluginWatcher(prefix)
        self.prefix = prefix
        self._born = time.monotonic()
        self._ever_connected = False

    async def run(self) -> None:
        self.watcher.start()
        try:
            await self._loop()
        finally:
            self.watcher.close()

    # -- link ----------------------------------------------------------------

    def check_link(self, ps: PluginState) -> None:
        if ps.all_connected:
            self._ever_connected = True
            self._state.set_link(None)
        elif not self._ever_connected and time.monotonic() - self._born < CONNECT_GRACE_S:
            return  # starting: the monitors are still connecting, no alarm yet
        elif ps.connected:
            missing = sorted(set(self._watcher_pvs()) - ps.connected)
            self._state.set_link(f"Plugin {self.prefix} PVs not connected: {', '.join(missing)}")
        else:
            self._state.set_link(f"Camera IOC not reachable: no connection to {self.prefix}")

    @staticmethod
    def _watcher_pvs() -> list[str]:
        return list(PLUGIN_PVS)

    # -- waiting for a file --------------------------------------------------

    def _waiting_message(self, ps: PluginState) -> str:
        if not ps.connected:
            return f"Waiting for the camera IOC ({self.prefix})"
        if not ps.swmr_mode:
            return (
                f"SWMR mode is off on {self.prefix} (SWMRMode_RBV=0): a file can only be "
                "read once the plugin closes it"
            )
        if ps.write_status:
            return f"Plugin reports a write error: {ps.write_message}"
        return f"Waiting for {self.prefix} to start a SWMR file (Capture)"

    async def _loop(self) -> None:
        followed = 0
        capturing = False
        waiting_message = ""
        while True:
            ps = self.watcher.state
            self.check_link(ps)
            capture_ended = capturing and not ps.capture
            capturing = bool(ps.capture)
            if ps.file_generation != followed and ps.full_file_name:
                if ps.file_open:  # a SWMR file is being written: follow it live
                    followed = ps.file_generation
                    await self._follow(ps.full_file_name, ps.file_generation, live=True)
                    waiting_message = ""
                    continue
                if not ps.capture and ps.all_connected:
                    # a new file that is already closed (written while we were
                    # disconnected, or with SWMR mode off): read it whole
                    followed = ps.file_generation
                    await self._follow(ps.full_file_name, ps.file_generation, live=False)
                    waiting_message = ""
                    continue
            # SWMR off and the same file name again: readable once capture ends
            if capture_ended and not ps.swmr_mode and ps.full_file_name:
                await self._follow(ps.full_file_name, ps.file_generation, live=False)
                waiting_message = ""
                continue
            message = self._waiting_message(ps)
            if message != waiting_message and self._state.status is not Status.FOLLOWING:
                if self._state.status is not Status.FINISHED or not ps.connected:
                    self._state.set_status(Status.WAITING, message)
                waiting_message = message
            await self.watcher.changed(POLL_CONNECTED)

    # -- following one file --------------------------------------------------

    async def _follow(self, name: str, generation: int, *, live: bool) -> None:
        try:
            path = resolve_under(self._state.config.data_root, name)
        except PathRefusedError as exc:
            self._state.set_status(Status.ERROR, f"Refusing the plugin's file: {exc}")
            return
        planned = self.watcher.state.scan_shape
        scan = None
        if planned is not None:  # NumExtraDims / ExtraDimSize*: the whole geometry
            scan = ScanGeometry(planned, self._state.config.scan.snake)
        hooks = _PluginHooks(self, path, name, generation, live=live, scan=scan)
        await self._lifecycle.run_file(hooks)


class _PluginHooks:
    """The lifecycle's hooks for a file of the plugin: woken by its flushes
    (NumCaptured_RBV, SWMRCbCounter_RBV), ended when capture ends (SWMRActive_RBV
    back to 0) or a new file starts, finished after source.timeout without a
    frame only while the camera IOC is unreachable."""

    dataset = None  # source.dataset
    use_keys = False  # NDAttributeChunk: the keys lag the data; follow by extent

    def __init__(
        self, source: PluginSource, path: Path, name: str, generation: int, *,
        live: bool, scan: ScanGeometry | None,
    ) -> None:  # fmt: skip
        self._source = source
        self.watcher = source.watcher
        self.path = path
        self._name = name
        self._generation = generation
        self._live = live
        self.scan = scan

    def bound(self) -> int | None:
        return None

    async def wait(self, seconds: float) -> bool:
        ps = self.watcher.state
        self._source.check_link(ps)
        return await self.watcher.changed(
            seconds if ps.all_connected else min(seconds, POLL_DISCONNECTED)
        )

    def ended(self, done: int) -> str | None:
        if not self._live:
            return "closed by the plugin"
        ps = self.watcher.state
        if ps.file_generation != self._generation or ps.full_file_name not in ("", self._name):
            return "the plugin started another file"
        if ps.all_connected and not ps.swmr_active:
            return "capture ended"
        return None

    def abandoned(self) -> Abandon | None:
        return None

    def describe(self) -> str:
        return ""

    def warning(self) -> str:
        return ""

    def idle_timeout(self) -> float | None:
        if self.watcher.state.all_connected:
            return None  # the plugin says when it ends
        return self._source.timeout
