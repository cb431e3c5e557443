"""Source ``source.file``: wait for the file, follow it, start over when replaced."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from swmr_roi_ioc.follow import NotSwmrError
from swmr_roi_ioc.publish import Severity, Status

from ._acquisition import (
    READ_ERRORS,
    Acquisition,
    CurrentAcquisition,
    DataLostError,
    Executor1,
    RewrittenError,
    TruncatedError,
)
from ._paths import PathRefusedError, resolve_under
from ._state import ServiceState

log = logging.getLogger(__name__)

#: Poll interval bounds while following: fast after a frame, slower when idle.
POLL_MIN = 0.002
POLL_MAX = 0.05
#: A file that stopped growing for IDLE_AFTER_S is polled every POLL_IDLE s:
#: an idle IOC costs well under 1 % of a core (issue 5), and the first frame
#: after a long pause waits at most that long.
IDLE_AFTER_S = 2.0
#: Within this long of the last new frame the poll stays at POLL_MIN, so a
#: writer at 10-500 Hz is seen within ~2 ms of its flush (issue 5 latency).
LIVE_WINDOW_S = 0.1
POLL_IDLE = 0.25
#: How often the path is stat'ed to notice a replaced file.
STAT_INTERVAL = 0.25
#: A file that keeps failing to open for this long is an Error, not a Wait.
OPEN_GRACE_S = 5.0
#: Read errors on the followed file shorter than this are retried quietly.
QUIET_RETRY_S = 1.0
#: Read errors on the same file are retried (backoff up to RETRY_MAX_S) for
#: max(source.timeout, GIVE_UP_MIN_S) before giving up on the file: long
#: enough to ride out a file server failing over.
GIVE_UP_MIN_S = 60.0
RETRY_MAX_S = 2.0


@dataclass(frozen=True)
class FileIdentity:
    """What tells one file at a path from the next one."""

    inode: int
    device: int
    mtime: float
    size: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return cls(st.st_ino, st.st_dev, st.st_mtime, st.st_size)

    def replaced_by(self, other: FileIdentity | None) -> bool:
        """A different file now: new inode, or mtime going back."""
        if other is None:
            return False
        return (other.inode, other.device) != (self.inode, self.device) or (
            other.mtime < self.mtime
        )


class FixedFileSource:
    """Follows one configured path, acquisition after acquisition."""

    def __init__(
        self,
        state: ServiceState,
        executor: Executor,
        current: CurrentAcquisition,
        on_finished: Callable[[], Awaitable[None]],
    ) -> None:
        self._state = state
        self._run = Executor1(executor, on_stall=self._stalled)
        self._current = current
        self._on_finished = on_finished
        self._cfg = state.config.source
        assert self._cfg.file is not None
        self._configured = self._cfg.file
        self._path: Path | None = None

    def _stalled(self, seconds: float) -> None:
        """Watchdog: a reader-thread call has not returned for ``seconds``."""
        self._state.set_status(
            Status.ERROR,
            f"Reading {self._path} has not returned for {seconds:.0f} s (its file "
            "system does not answer); waiting for it",
        )
        log.warning("reading %s has not returned for %.0f s", self._path, seconds)

    async def run(self) -> None:
        """Forever: wait, follow, finish; the caller cancels it."""
        while True:
            try:
                path = resolve_under(self._state.config.data_root, self._configured)
            except PathRefusedError as exc:
                self._state.set_status(Status.ERROR, str(exc))
                await asyncio.sleep(5.0)
                continue
            self._path = path
            identity = await self._wait_for(path)
            await self._current.replace(None)
            acquisition = await self._open(path, identity)
            if acquisition is None:
                continue
            await self._current.replace(acquisition)
            identity, finished, lost = await self._follow(acquisition, identity)
            if finished:
                # stays open: a ROI change can still be applied to its frames
                self._current.finished = True
                await self._on_finished()
            else:
                await self._current.replace(None)
            # the writer may have closed the file since the last look
            current = FileIdentity.of(path)
            if current is not None and not identity.replaced_by(current):
                identity = current
            await self._wait_for_replacement(path, identity, whole=lost)

    async def _wait_for(self, path: Path) -> FileIdentity:
        announced = False
        while True:
            identity = FileIdentity.of(path)
            if identity is not None:
                return identity
            if not announced:
                self._state.set_status(Status.WAITING, f"Waiting for {path} to appear")
                announced = True
            await asyncio.sleep(STAT_INTERVAL)

    async def _open(self, path: Path, identity: FileIdentity) -> Acquisition | None:
        """Open with backoff; None if the file went away or was replaced meanwhile."""
        delay = 0.05
        first_failure: float | None = None
        while True:
            try:
                return await Acquisition.open(path, self._cfg, self._state, self._run)
            except READ_ERRORS as exc:
                now = time.monotonic()
                first_failure = first_failure or now
                # a file under construction fails for a while; one that keeps
                # failing is broken, and that is an Error with an alarm
                if now - first_failure > OPEN_GRACE_S and isinstance(exc, NotSwmrError):
                    # not followed live: its metadata changes under a reader
                    self._state.set_status(
                        Status.WAITING,
                        f"{path} is being written without SWMR mode: it will be read "
                        "whole when its writer closes it",
                        Severity.MINOR,
                    )
                elif now - first_failure > OPEN_GRACE_S:
                    self._state.set_status(Status.ERROR, f"Cannot open {path}: {exc}")
                else:
                    self._state.set_status(Status.WAITING, f"Waiting to open {path}: {exc}")
                log.debug("open %s: %s", path, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            now_identity = FileIdentity.of(path)
            if now_identity is None or identity.replaced_by(now_identity):
                return None

    def _following(self, acq: Acquisition) -> str:
        lag = acq.lag_remark()
        return f"Following {acq.path}: {acq.done} frames" + (f"; {lag}" if lag else "")

    async def _follow(
        self, acq: Acquisition, identity: FileIdentity
    ) -> tuple[FileIdentity, bool, bool]:
        """Follow until finished, timed out, replaced, or given up. Returns the
        identity seen last, whether the acquisition finished normally, and
        whether its data is lost (a hole where a truncation cut it)."""
        path = acq.path
        last_stat = time.monotonic()
        poll = POLL_MIN
        failing: float | None = None  # when reads started failing
        retry = POLL_MAX
        give_up = max(self._cfg.timeout, GIVE_UP_MIN_S)
        self._state.set_status(Status.FOLLOWING, f"Following {path}")
        while True:
            try:
                complete = await acq.poll()
                self._state.set_frames_written(complete)
                if (extent := acq.scan_extent) is not None:
                    self._state.set_scan_shape(*extent)
                processed = await acq.process()
            except (DataLostError, RewrittenError) as exc:
                lost = isinstance(exc, DataLostError)
                self._state.set_status(
                    Status.ERROR, f"Gave up on {path} after {acq.done} frames: {exc}"
                )
                log.warning("giving up on %s: %s", path, exc)
                return identity, False, lost
            except READ_ERRORS as exc:
                now = time.monotonic()
                if self._still_there(acq, identity) is None:
                    return identity, False, False
                failing = failing or now
                if now - failing > give_up:
                    self._state.set_status(
                        Status.ERROR,
                        f"Gave up on {path} after {acq.done} frames: read errors for "
                        f"{give_up:g} s: {exc}",
                    )
                    log.warning("giving up on %s: %s", path, exc)
                    return identity, False, False
                # a truncated file is an Error at once: a batch read meanwhile may
                # hold zeros. A short hiccup is retried quietly first.
                if isinstance(exc, TruncatedError) or now - failing > QUIET_RETRY_S:
                    self._state.set_status(
                        Status.ERROR,
                        f"Reading {path} failed after {acq.done} frames: {exc}; retrying "
                        f"(for {give_up - (now - failing):.0f} s more)",
                    )
                log.info("reading %s failed, retrying: %s", path, exc)
                await asyncio.sleep(retry)
                retry = min(retry * 2, RETRY_MAX_S)
                continue
            if failing is not None:
                log.info("reading %s works again after %.1f s", path, time.monotonic() - failing)
                failing, retry = None, POLL_MAX
                acq.last_new = time.monotonic()  # the outage is no "no new frame" time
                self._state.set_status(Status.FOLLOWING, self._following(acq))
            if processed:
                poll = POLL_MIN
                self._state.set_status(Status.FOLLOWING, self._following(acq))
                continue
            self._state.set_status(Status.FOLLOWING, self._following(acq))  # a lag, maybe
            now = time.monotonic()
            if acq.follower.finished:
                self._state.set_status(
                    Status.FINISHED, f"Finished {path}: {acq.done} frames (writer finished)"
                )
                return identity, True, False
            if now - acq.last_new > self._cfg.timeout:
                self._state.set_status(
                    Status.FINISHED,
                    f"Finished {path}: {acq.done} frames "
                    f"(no new frame for {self._cfg.timeout:g} s)",
                )
                return identity, True, False
            if now - last_stat > STAT_INTERVAL:
                last_stat = now
                current = self._still_there(acq, identity)
                if current is None:
                    return identity, False, False
                identity = current
            await asyncio.sleep(poll)
            quiet = now - acq.last_new
            if quiet >= LIVE_WINDOW_S:  # frames stopped coming: back off
                poll = min(poll * 1.5, POLL_MAX if quiet < IDLE_AFTER_S else POLL_IDLE)

    def _still_there(self, acq: Acquisition, identity: FileIdentity) -> FileIdentity | None:
        """The file's identity now; None if it disappeared (an Error) or another
        file took its place (followed from the start)."""
        current = FileIdentity.of(acq.path)
        if current is None:
            self._disappeared(acq)
            return None
        if identity.replaced_by(current):
            log.info("%s was replaced; starting over", acq.path)
            return None
        return current

    def _disappeared(self, acq: Acquisition) -> None:
        self._state.set_status(
            Status.ERROR, f"{acq.path} disappeared after {acq.done} frames", Severity.MAJOR
        )

    async def _wait_for_replacement(
        self, path: Path, identity: FileIdentity, *, whole: bool = False
    ) -> None:
        """After an acquisition: return when a new file is at the path. With
        ``whole``, a file modified in place counts only once it has no hole
        (one with a hole is the truncated one its writer goes on writing)."""
        while True:
            current = FileIdentity.of(path)
            if current is not None and identity.replaced_by(current):
                return
            if current is not None and current.mtime > identity.mtime:
                if not whole or not await asyncio.to_thread(_has_hole, path):
                    return
            await asyncio.sleep(STAT_INTERVAL)


def _has_hole(path: Path) -> bool:
    """A hole in the file (SEEK_HOLE before its end); False if unknown."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return os.lseek(fd, 0, os.SEEK_HOLE) < os.fstat(fd).st_size
    except OSError:
        return False
    finally:
        os.close(fd)
