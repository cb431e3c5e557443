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
from concurrent.futures import Executor
from pathlib import Path

from swmr_roi_ioc.detector import PLUGIN_PVS, PluginState, PluginWatcher
from swmr_roi_ioc.publish import Status

from ._acquisition import READ_ERRORS, Acquisition, CurrentAcquisition, Executor1
from ._paths import PathRefusedError, resolve_under
from ._state import ServiceState

log = logging.getLogger(__name__)

POLL_MIN = 0.002
#: Fallback poll while the plugin is connected (flushes wake us earlier).
POLL_CONNECTED = 0.25
#: Poll while the camera IOC is away (no wake-ups come).
POLL_DISCONNECTED = 0.05
#: How long to keep trying to open a file the plugin says is open.
OPEN_GRACE_S = 10.0


class PluginSource:
    """Follows the files one NDFileHDF5 plugin writes, acquisition after acquisition."""

    def __init__(
        self,
        state: ServiceState,
        executor: Executor,
        prefix: str,
        current: CurrentAcquisition,
        on_finished: Callable[[], Awaitable[None]],
    ) -> None:
        self._state = state
        self._run = Executor1(executor)
        self._current = current
        self._on_finished = on_finished
        self._cfg = state.config.source
        self._watcher = PluginWatcher(prefix)
        self.prefix = prefix

    async def run(self) -> None:
        self._watcher.start()
        try:
            await self._loop()
        finally:
            self._watcher.close()

    # -- link ----------------------------------------------------------------

    def _check_link(self, ps: PluginState) -> None:
        if ps.all_connected:
            self._state.set_link(None)
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
            ps = self._watcher.state
            self._check_link(ps)
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
            await self._watcher.changed(POLL_CONNECTED)

    # -- following one file --------------------------------------------------

    async def _open(self, path: Path, generation: int) -> Acquisition | None:
        start = time.monotonic()
        delay = 0.02
        while True:
            try:
                return await Acquisition.open(
                    path, self._cfg, self._state, self._run, use_keys=False
                )
            except READ_ERRORS as exc:
                if time.monotonic() - start > OPEN_GRACE_S:
                    self._state.set_status(Status.ERROR, f"Cannot open {path}: {exc}")
                    return None
                self._state.set_status(Status.WAITING, f"Waiting to open {path}: {exc}")
            ps = self._watcher.state
            if ps.file_generation != generation:
                return None  # the plugin moved on
            await self._watcher.changed(delay)
            delay = min(delay * 2, 0.5)

    async def _follow(self, name: str, generation: int, *, live: bool) -> None:
        try:
            path = resolve_under(self._state.config.data_root, name)
        except PathRefusedError as exc:
            self._state.set_status(Status.ERROR, f"Refusing the plugin's file: {exc}")
            return
        await self._current.replace(None)
        acq = await self._open(path, generation)
        if acq is None:
            return
        await self._current.replace(acq)
        if await self._follow_open(acq, name, generation, live=live):
            # stays open: a ROI change can still be applied to its frames
            self._current.finished = True
            await self._on_finished()
        else:
            await self._current.replace(None)

    def _following(self, acq: Acquisition) -> str:
        lag = acq.lag_remark()
        return f"Following {acq.path}: {acq.done} frames" + (f"; {lag}" if lag else "")

    async def _follow_open(
        self, acq: Acquisition, name: str, generation: int, *, live: bool
    ) -> bool:
        """Follow to the end; True if it finished with its frames read."""
        self._state.set_status(Status.FOLLOWING, f"Following {acq.path}")
        planned = self._watcher.state.scan_shape
        if planned is not None:  # NumExtraDims / ExtraDimSize*: the whole geometry
            self._state.set_scan_shape(*planned)
        poll = POLL_MIN
        try:
            while live:
                self._state.set_frames_written(await acq.poll())
                if planned is None and (extent := acq.scan_extent) is not None:
                    self._state.set_scan_shape(*extent)
                if await acq.process():
                    poll = POLL_MIN
                    self._state.set_status(Status.FOLLOWING, self._following(acq))
                    continue
                ps = self._watcher.state
                self._check_link(ps)
                moved_on = ps.file_generation != generation or (ps.full_file_name not in ("", name))
                if moved_on or (ps.all_connected and not ps.swmr_active):
                    break  # capture ended (or a new file started): read the rest
                if not ps.all_connected and time.monotonic() - acq.last_new > self._cfg.timeout:
                    self._state.set_status(
                        Status.FINISHED,
                        f"Finished {acq.path}: {acq.done} frames (camera IOC gone, "
                        f"no new frame for {self._cfg.timeout:g} s)",
                    )
                    return True
                woke = await self._watcher.changed(
                    poll if ps.all_connected else min(poll, POLL_DISCONNECTED)
                )
                poll = POLL_MIN if woke else min(poll * 2, POLL_CONNECTED)
            await acq.drain()
            self._state.set_frames_written(acq.complete)
            if planned is None and (extent := acq.scan_extent) is not None:
                self._state.set_scan_shape(*extent)
        except READ_ERRORS as exc:
            self._state.set_status(
                Status.ERROR, f"Reading {acq.path} failed after {acq.done} frames: {exc}"
            )
            log.warning("reading %s failed: %s", acq.path, exc)
            return False
        self._state.set_status(Status.FINISHED, f"Finished {acq.path}: {acq.done} frames")
        return True
