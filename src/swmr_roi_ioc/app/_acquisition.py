"""One acquisition: an open file, its follower, its pipeline.

Shared by every source (a fixed path, or the file an NDFileHDF5 plugin
writes). All HDF5 work runs in the one reader thread (``executor``); the
coroutines here only decide what to do next.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, TypeVar

import h5py
import numpy as np

from swmr_roi_ioc.config import SourceConfig
from swmr_roi_ioc.follow import FrameReader, KeyFollower, open_swmr, shared_dataset
from swmr_roi_ioc.stats import FrameStats, Roi, compute_stats

from ._keys_lag import KeysLag, keys_lag_mode, unique_id_lag
from ._pipeline import FramePipeline
from ._state import ServiceState

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Frames processed per hop to the reader thread (keeps status responsive).
HOP_FRAMES = 256
#: The hole check looks at the whole file this often, and at the last
#: HOLE_TAIL bytes (where a truncation cuts) on every poll in between.
FULL_HOLE_SCAN_S = 5.0
HOLE_TAIL = 16 * 2**20
#: Errors reading a file that is being written, replaced or broken.
READ_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError)
#: ... and at most this many bytes of frames (a hop must stay far below STALL_S).
HOP_BYTES = 2**30
#: A reader-thread call running longer than this is reported (watchdog).
STALL_S = 30.0


class TruncatedError(OSError):
    """The followed file (same inode) is shorter than it was: truncated.

    Raised before reading (nothing is read from a shrunk file) and after
    reading a batch whose frames may have been read past the new end (HDF5
    returns zeros there, no error): those frames are read again on resume.
    """

    def __init__(self, path: Path, size: int, before: int) -> None:
        super().__init__(f"{path} was truncated to {size} bytes ({before} before)")
        self.size = size
        self.before = before


class DataLostError(OSError):
    """The file grew back after a truncation but with a hole where the cut-off
    bytes were (its writer went on writing): those frames are gone."""


class RewrittenError(OSError):
    """The file grew back after a truncation with another first frame: a new
    file written over the old one in place (same inode, ``O_TRUNC``)."""


class Executor1:
    """Runs blocking calls in the reader thread, awaited from the loop.

    A watchdog: while a call has not returned after ``stall_s`` seconds,
    ``on_stall(seconds)`` is called every ``stall_s`` seconds; the call goes
    on (a thread cannot be interrupted). It sees calls blocked outside HDF5
    (opening or reading a path that does not answer: those release the
    GIL). A call blocked inside HDF5 holds the GIL (h5py does not release
    it), which stops the whole process, watchdog included; hence open_swmr
    lowers HDF5's metadata read attempts, the one such block seen here.
    """

    def __init__(
        self,
        executor: Executor,
        on_stall: Callable[[float], None] | None = None,
        stall_s: float = STALL_S,
    ) -> None:
        self._executor = executor
        self._on_stall = on_stall
        self._stall_s = stall_s

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, fn, *args)
        if self._on_stall is None:
            return await future
        start = time.monotonic()
        while True:
            try:
                return await asyncio.wait_for(asyncio.shield(future), self._stall_s)
            except TimeoutError:
                self._on_stall(time.monotonic() - start)
            except asyncio.CancelledError:
                future.cancel()
                raise


class Acquisition:
    """An open file being followed. Create with :meth:`open`."""

    def __init__(
        self,
        path: Path,
        h5file: h5py.File,
        follower: KeyFollower,
        pipeline: FramePipeline,
        run: Executor1,
        fd: int,
    ) -> None:
        self.path = path
        self._h5file = h5file
        self.follower = follower
        self._pipeline = pipeline
        self._run = run
        #: our own descriptor of the file: its size, whatever the path names now
        self._fd = fd
        #: the largest size seen, and the smallest since it (a truncation)
        self._size = os.fstat(fd).st_size
        self._low: int | None = None
        #: bytes [0, _solid) held data (no hole) at the last look
        self._solid = _first_hole(fd, self._size)
        self._full_scan = time.monotonic()
        self._scanned_size = self._size
        #: digest of frame 0, to tell bytes restored in place from a new file
        self._first_frame: bytes | None = None
        #: frames processed so far
        self.done = 0
        #: frames complete in the file at the last poll
        self.complete = 0
        #: configured keys, watched for lagging the data
        self.keys_watch: KeysLag | None = None
        self.last_new = time.monotonic()

    @classmethod
    async def open(
        cls,
        path: Path,
        source: SourceConfig,
        state: ServiceState,
        run: Executor1,
        *,
        use_keys: bool = True,
    ) -> Acquisition:
        """Open ``path`` and prepare to follow it; raises READ_ERRORS."""

        def blocking() -> Acquisition:
            h5file = open_swmr(path)
            fd = -1
            try:
                fd = os.open(path, os.O_RDONLY)
                try:
                    dset = shared_dataset(h5file, source.dataset)
                except (KeyError, TypeError) as exc:
                    raise KeyError(f"dataset {source.dataset} is not in {path}") from exc
                if dset.ndim < 3:
                    raise ValueError(
                        f"{source.dataset} has shape {dset.shape}, not a stack of 2-D frames"
                    )
                scan_rank = dset.ndim - 2
                keys = list(source.keys) if use_keys else []
                mode = keys_lag_mode(source.keys_lag, h5file)
                follower = KeyFollower(
                    h5file,
                    keys,
                    timeout=source.timeout,
                    finished_dataset=source.finished,
                    dataset_paths=[source.dataset],
                    scan_rank=scan_rank,
                    keys_decide=mode == "wait",
                )
                reader = FrameReader(source.dataset, h5file, scan_rank)
                pipeline = FramePipeline(state, reader, h5file, follower)
                acquisition = cls(path, h5file, follower, pipeline, run, fd)
                acquisition.keys_watch = KeysLag(keys, mode) if keys else None
                return acquisition
            except Exception:
                if fd >= 0:
                    os.close(fd)
                h5file.close()
                raise

        acquisition = await run(blocking)
        shape = acquisition.frame_shape
        state.start_acquisition(str(path), shape)
        return acquisition

    @property
    def frame_shape(self) -> tuple[int, int]:
        shape = self._pipeline.frame_shape
        return (int(shape[-2]), int(shape[-1]))

    @property
    def keys_lag(self) -> bool:
        """NDArrayUniqueId was not yet flushed for the last frame processed."""
        return self._pipeline.keys_lag

    def lag_remark(self) -> str:
        """StatusMessage's remark on keys lagging the data ('' if they do not)."""
        if self.keys_watch is not None:
            f = self.follower
            return self.keys_watch.describe(f.keys_complete, f.extent_complete)
        return unique_id_lag() if self.keys_lag else ""

    def _check_size(self) -> None:
        """Reader thread: raise TruncatedError while the file is shorter than
        it was; DataLostError if bytes it held became a hole (truncated, then
        its writer went on writing past the cut); RewrittenError if it grew
        back with another first frame. Bytes restored in place pass."""
        size = os.fstat(self._fd).st_size
        if size < self._size:
            self._low = size if self._low is None else min(self._low, size)
            raise TruncatedError(self.path, size, self._size)
        # the whole file at most every FULL_HOLE_SCAN_S (SEEK_HOLE walks every
        # page on tmpfs: 9 ms per 1.4 GB), else only its last HOLE_TAIL bytes
        # (a file whose size did not change since the last full scan gets none)
        now = time.monotonic()
        start = max(0, self._solid - HOLE_TAIL)
        if now - self._full_scan >= FULL_HOLE_SCAN_S and size != self._scanned_size:
            start, self._full_scan, self._scanned_size = 0, now, size
        hole = _first_hole(self._fd, size, start)
        if hole < self._solid:
            raise DataLostError(
                f"{self.path} was truncated and written on past a hole at byte {hole}: "
                "the frames stored there are lost"
            )
        if self._low is not None:
            if self._first_frame is not None and self._first_frame != self._digest0():
                raise RewrittenError(f"{self.path} was written again in place")
            self._low = None
        self._solid = hole
        self._size = size

    def _digest0(self) -> bytes:
        return hashlib.blake2b(self._pipeline.read(0, 1).tobytes(), digest_size=16).digest()

    async def poll(self) -> int:
        """Refresh; returns the number of complete frames. Raises READ_ERRORS."""

        def blocking() -> int:
            self._check_size()
            return self.follower.poll()

        extent = self.follower.extent_complete
        self.complete = await self._run(blocking)
        if (self.follower.extent_complete or 0) > (extent or 0):
            self.last_new = time.monotonic()  # frames arrive, keys or not: no timeout
        return self.complete

    @property
    def scan_extent(self) -> tuple[int, int] | None:
        """(rows, cols) of a dataset with areaDetector extra dimensions: the
        fixed max shape, else the extent so far (cols is final once a second
        row started). None for a plain stack of frames."""
        dset = self._pipeline.dataset
        if dset.ndim != 4:
            return None
        fixed = (dset.maxshape or dset.shape)[:2]
        if all(n is not None for n in fixed):
            return (int(fixed[0] or 1), int(fixed[1] or 1))
        return (int(dset.shape[0]), int(dset.shape[1]))

    async def process(self) -> int:
        """Process up to HOP_FRAMES (HOP_BYTES) complete frames; returns how many."""
        if self.complete <= self.done:
            return 0
        dset = self._pipeline.dataset
        frame_bytes = max(1, int(np.prod(self.frame_shape)) * dset.dtype.itemsize)
        stop = min(self.complete, self.done + max(1, min(HOP_FRAMES, HOP_BYTES // frame_bytes)))
        first = self.done

        def blocking() -> int:
            self._check_size()
            done = self._pipeline.process(first, stop)
            # truncated meanwhile: frames read past the new end are zeros, so
            # self.done stays at ``first`` and they are read again on resume
            self._check_size()
            if self._first_frame is None:
                self._first_frame = self._digest0()
            return done

        self.done = await self._run(blocking)
        self.last_new = time.monotonic()
        return self.done - first

    async def drain(self) -> None:
        """One last poll, then every complete frame (the writer has finished)."""
        await self.poll()
        while await self.process():
            pass

    async def roi_stats(self, start: int, stop: int, roi: Roi) -> FrameStats:
        """One ROI's statistics of frames [start, stop), read again from the file."""

        def blocking() -> FrameStats:
            frames = self._pipeline.read(start, stop)
            return compute_stats(frames, [roi])[0][0]

        return await self._run(blocking)

    async def close(self) -> None:
        def blocking() -> None:
            try:
                self._pipeline.close()
                self._h5file.close()
            except Exception as exc:  # noqa: BLE001 - closing a broken file must not raise
                log.debug("closing %s: %s", self.path, exc)
            finally:
                os.close(self._fd)

        await self._run(blocking)


def _first_hole(fd: int, size: int, start: int = 0) -> int:
    """Offset of the first hole at or after ``start`` (``size`` if none, or
    no SEEK_HOLE support)."""
    if start >= size:
        return size
    try:
        return os.lseek(fd, start, os.SEEK_HOLE)
    except OSError:
        return size


class CurrentAcquisition:
    """The acquisition shown now; it stays open after it finished (so a ROI
    change can still be applied to it) until the next one replaces it."""

    def __init__(self) -> None:
        self.acquisition: Acquisition | None = None
        #: True once the writer finished (no live frames will come)
        self.finished = False

    async def replace(self, acquisition: Acquisition | None) -> None:
        old, self.acquisition, self.finished = self.acquisition, acquisition, False
        if old is not None and old is not acquisition:
            await old.close()
