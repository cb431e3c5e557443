"""Source ``source.file``: wait for the file, follow it, start over when replaced.

All HDF5 work runs in the one reader thread (``executor``); this coroutine only
decides what to do next and sleeps between polls.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import h5py

from swmr_roi_ioc.follow import FrameReader, KeyFollower, open_swmr, shared_dataset
from swmr_roi_ioc.publish import Severity, Status

from ._paths import PathRefusedError, resolve_under
from ._pipeline import FramePipeline
from ._state import ServiceState

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Poll interval bounds while following: fast after a frame, slower when idle.
POLL_MIN = 0.002
POLL_MAX = 0.05
#: How often the path is stat'ed to notice a replaced file.
STAT_INTERVAL = 0.25
#: Frames processed per hop to the reader thread (keeps status responsive).
HOP_FRAMES = 256


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


class _Opened:
    """One open file and the follower objects that read it (reader thread only)."""

    def __init__(self, h5file: h5py.File, follower: KeyFollower, reader: FrameReader) -> None:
        self.h5file = h5file
        self.follower = follower
        self.reader = reader

    def close(self) -> None:
        try:
            self.h5file.close()
        except Exception as exc:  # noqa: BLE001 - closing a broken file must not raise
            log.debug("closing: %s", exc)


class FixedFileSource:
    """Follows one configured path, acquisition after acquisition."""

    def __init__(self, state: ServiceState, executor: Executor) -> None:
        self._state = state
        self._executor = executor
        cfg = state.config.source
        self._cfg = cfg
        assert cfg.file is not None
        self._configured = cfg.file

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    async def run(self) -> None:
        """Forever: wait, follow, finish; the caller cancels it."""
        while True:
            try:
                path = resolve_under(self._state.config.data_root, self._configured)
            except PathRefusedError as exc:
                self._state.set_status(Status.ERROR, str(exc))
                await asyncio.sleep(5.0)
                continue
            identity = await self._wait_for(path)
            opened = await self._open(path, identity)
            if opened is None:
                continue
            try:
                identity = await self._follow(path, identity, opened)
            finally:
                await self._run(opened.close)
            # the writer may have closed the file since the last look
            current = FileIdentity.of(path)
            if current is not None and not identity.replaced_by(current):
                identity = current
            await self._wait_for_replacement(path, identity)

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

    def _open_blocking(self, path: Path) -> _Opened:
        h5file = open_swmr(path)
        try:
            try:
                dset = shared_dataset(h5file, self._cfg.dataset)
            except (KeyError, TypeError) as exc:
                raise KeyError(f"dataset {self._cfg.dataset} not in the file") from exc
            if dset.ndim < 3:
                raise ValueError(f"{self._cfg.dataset} is not a stack of 2-D frames")
            scan_rank = dset.ndim - 2
            follower = KeyFollower(
                h5file,
                list(self._cfg.keys),
                timeout=self._cfg.timeout,
                finished_dataset=self._cfg.finished,
                dataset_paths=[self._cfg.dataset],
                scan_rank=scan_rank,
            )
            reader = FrameReader(self._cfg.dataset, h5file, scan_rank)
        except Exception:
            h5file.close()
            raise
        return _Opened(h5file, follower, reader)

    async def _open(self, path: Path, identity: FileIdentity) -> _Opened | None:
        """Open with backoff; None if the file went away or was replaced meanwhile."""
        delay = 0.05
        first_failure: float | None = None
        while True:
            try:
                return await self._run(self._open_blocking, path)
            except (OSError, KeyError, ValueError, RuntimeError) as exc:
                now = time.monotonic()
                first_failure = first_failure or now
                # a file under construction fails for a while; one that keeps
                # failing is broken, and that is an Error with an alarm
                if now - first_failure > 5.0:
                    self._state.set_status(Status.ERROR, f"Cannot open {path}: {exc}")
                else:
                    self._state.set_status(Status.WAITING, f"Waiting to open {path}: {exc}")
                log.debug("open %s: %s", path, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            now_identity = FileIdentity.of(path)
            if now_identity is None or identity.replaced_by(now_identity):
                return None

    async def _follow(self, path: Path, identity: FileIdentity, opened: _Opened) -> FileIdentity:
        """Follow until finished, timed out, or replaced. Returns the identity seen last."""
        shape = opened.reader.frame_shape
        frame_shape = (int(shape[-2]), int(shape[-1]))
        self._state.start_acquisition(str(path), frame_shape)
        pipeline = await self._run(FramePipeline, self._state, opened.reader, opened.h5file)
        follower = opened.follower
        done = 0
        last_new = time.monotonic()
        last_stat = last_new
        poll = POLL_MIN
        self._state.set_status(Status.FOLLOWING, f"Following {path}")
        while True:
            try:
                complete = await self._run(follower.poll)
            except Exception as exc:  # noqa: BLE001 - any read failure is reported, not raised
                self._state.set_status(Status.ERROR, f"Reading {path} failed: {exc}")
                log.warning("poll of %s failed: %s", path, exc)
                return identity
            self._state.set_frames_written(complete)
            now = time.monotonic()
            if complete > done:
                stop = min(complete, done + HOP_FRAMES)
                try:
                    done = await self._run(pipeline.process, done, stop)
                except Exception as exc:  # noqa: BLE001
                    self._state.set_status(
                        Status.ERROR, f"Reading frame {done} of {path} failed: {exc}"
                    )
                    log.warning("reading %s failed: %s", path, exc)
                    return identity
                last_new = time.monotonic()
                poll = POLL_MIN
                self._state.set_status(Status.FOLLOWING, f"Following {path}: {done} frames")
                continue
            if follower.finished:
                self._state.set_status(
                    Status.FINISHED, f"Finished {path}: {done} frames (writer finished)"
                )
                return identity
            if now - last_new > self._cfg.timeout:
                self._state.set_status(
                    Status.FINISHED,
                    f"Finished {path}: {done} frames (no new frame for {self._cfg.timeout:g} s)",
                )
                return identity
            if now - last_stat > STAT_INTERVAL:
                last_stat = now
                current = FileIdentity.of(path)
                if current is None:
                    self._state.set_status(
                        Status.ERROR,
                        f"{path} disappeared after {done} frames",
                        Severity.MAJOR,
                    )
                    return identity
                if identity.replaced_by(current):
                    log.info("%s was replaced; starting over", path)
                    return identity
                identity = current
            await asyncio.sleep(poll)
            poll = min(poll * 1.5, POLL_MAX)

    async def _wait_for_replacement(self, path: Path, identity: FileIdentity) -> None:
        """After an acquisition: return when a new file is at the path."""
        while True:
            current = FileIdentity.of(path)
            if current is not None and (
                identity.replaced_by(current) or current.mtime > identity.mtime
            ):
                return
            await asyncio.sleep(STAT_INTERVAL)
