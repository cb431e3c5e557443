"""Source ``source.file``: wait for the file, follow it, start over when replaced."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from swmr_roi_ioc.engine import WorkerPool
from swmr_roi_ioc.publish import Status

from ._acquisition import CurrentAcquisition
from ._lifecycle import Abandon, Lifecycle, Outcome
from ._paths import PathRefusedError, resolve_under
from ._state import ServiceState

log = logging.getLogger(__name__)

#: How often the path is stat'ed while waiting for a file to appear (or be
#: replaced) ...
STAT_INTERVAL = 0.25
#: ... and while following it, to notice it vanished or was replaced (a stat
#: goes through a thread: a hung file server must not reach the event loop;
#: each costs the loop a few wake-ups, a fifth of an idle IOC's CPU at 4 Hz)
FOLLOW_STAT_INTERVAL = 1.0


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


async def _identity(path: Path) -> FileIdentity | None:
    """``FileIdentity.of`` in a thread: a stat on a hung file server blocks
    that thread, never the event loop (CA and PVA keep answering)."""
    return await asyncio.to_thread(FileIdentity.of, path)


class _FixedFileHooks:
    """The lifecycle's hooks for a configured path: no wake-ups (polled), no
    declared end (the file's own ``finished`` dataset, or source.timeout
    without a new frame); abandoned when the path disappears or names
    another file (seen by a stat every FOLLOW_STAT_INTERVAL in a thread: use as
    ``async with``)."""

    dataset = None  # source.dataset
    use_keys = True
    scan = None  # from the dataset's extra dimensions

    def __init__(self, path: Path, identity: FileIdentity, timeout: float) -> None:
        self.path = path
        #: the identity seen last (its mtime and size move on while written)
        self.identity = identity
        self._seen: FileIdentity | None = identity
        self._timeout = timeout
        self._watch: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _FixedFileHooks:
        self._watch = asyncio.create_task(self._look(), name="stat-source")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch

    async def _look(self) -> None:
        while True:
            self._seen = await _identity(self.path)
            await asyncio.sleep(FOLLOW_STAT_INTERVAL)

    def bound(self) -> int | None:
        return None

    async def wait(self, seconds: float) -> bool:
        await asyncio.sleep(seconds)
        return False

    def ended(self, done: int) -> str | None:
        return None

    def idle_timeout(self) -> float | None:
        return self._timeout

    def describe(self) -> str:
        return ""

    def warning(self) -> str:
        return ""

    def abandoned(self) -> Abandon | None:
        current = self._seen
        if current is None:
            return Abandon("disappeared", error=True)
        if self.identity.replaced_by(current):
            return Abandon("was replaced by another file; starting over")
        self.identity = current
        return None


class FixedFileSource:
    """Follows one configured path, acquisition after acquisition."""

    def __init__(
        self,
        state: ServiceState,
        pool: WorkerPool,
        current: CurrentAcquisition,
        on_finished: Callable[[], Awaitable[None]],
    ) -> None:
        self._state = state
        self._lifecycle = Lifecycle(state, pool, current, on_finished)
        self._cfg = state.config.source
        assert self._cfg.file is not None
        self._configured = self._cfg.file

    async def run(self) -> None:
        """Forever: wait, follow, finish; the caller cancels it."""
        while True:
            try:
                path = await asyncio.to_thread(
                    resolve_under, self._state.config.data_root, self._configured
                )
            except PathRefusedError as exc:
                self._state.set_status(Status.ERROR, str(exc))
                await asyncio.sleep(5.0)
                continue
            hooks = _FixedFileHooks(path, await self._wait_for(path), self._cfg.timeout)
            async with hooks:
                outcome = await self._lifecycle.run_file(hooks)
            if outcome in (Outcome.REWRITTEN, Outcome.NOT_OPENED):
                continue  # another file at the path now (or not yet readable)
            if outcome is Outcome.ABANDONED and hooks.abandoned() is not None:
                continue  # replaced (or gone: waited for at the top)
            # the writer may have closed the file since the last look
            identity = hooks.identity
            current = await _identity(path)
            if current is not None and not identity.replaced_by(current):
                identity = current
            await self._wait_for_replacement(path, identity, whole=outcome is Outcome.LOST)

    async def _wait_for(self, path: Path) -> FileIdentity:
        announced = False
        while True:
            identity = await _identity(path)
            if identity is not None:
                return identity
            if not announced:
                if self._state.status is not Status.ERROR:
                    self._state.set_status(Status.WAITING, f"Waiting for {path} to appear")
                announced = True
            await asyncio.sleep(STAT_INTERVAL)

    async def _wait_for_replacement(
        self, path: Path, identity: FileIdentity, *, whole: bool = False
    ) -> None:
        """After an acquisition: return when a new file is at the path. With
        ``whole``, a file modified in place counts only once it has no hole
        (one with a hole is the truncated one its writer goes on writing)."""
        while True:
            current = await _identity(path)
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
