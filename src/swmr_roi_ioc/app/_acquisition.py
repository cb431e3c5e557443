"""One acquisition: an open file, its follower, its pipeline.

Shared by every source (a fixed path, or the file an NDFileHDF5 plugin
writes). All HDF5 work runs in the one reader thread (``executor``); the
coroutines here only decide what to do next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, TypeVar

import h5py

from swmr_roi_ioc.config import SourceConfig
from swmr_roi_ioc.follow import FrameReader, KeyFollower, open_swmr, shared_dataset
from swmr_roi_ioc.stats import FrameStats, Roi, compute_stats

from ._pipeline import FramePipeline
from ._state import ServiceState

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Frames processed per hop to the reader thread (keeps status responsive).
HOP_FRAMES = 256
#: Errors reading a file that is being written, replaced or broken.
READ_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError)


class Executor1:
    """Runs blocking calls in the reader thread, awaited from the loop."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)


class Acquisition:
    """An open file being followed. Create with :meth:`open`."""

    def __init__(
        self,
        path: Path,
        h5file: h5py.File,
        follower: KeyFollower,
        pipeline: FramePipeline,
        run: Executor1,
    ) -> None:
        self.path = path
        self._h5file = h5file
        self.follower = follower
        self._pipeline = pipeline
        self._run = run
        #: frames processed so far
        self.done = 0
        #: frames complete in the file at the last poll
        self.complete = 0
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
            try:
                try:
                    dset = shared_dataset(h5file, source.dataset)
                except (KeyError, TypeError) as exc:
                    raise KeyError(f"dataset {source.dataset} is not in {path}") from exc
                if dset.ndim < 3:
                    raise ValueError(
                        f"{source.dataset} has shape {dset.shape}, not a stack of 2-D frames"
                    )
                scan_rank = dset.ndim - 2
                follower = KeyFollower(
                    h5file,
                    list(source.keys) if use_keys else [],
                    timeout=source.timeout,
                    finished_dataset=source.finished,
                    dataset_paths=[source.dataset],
                    scan_rank=scan_rank,
                )
                reader = FrameReader(source.dataset, h5file, scan_rank)
                pipeline = FramePipeline(state, reader, h5file)
            except Exception:
                h5file.close()
                raise
            return cls(path, h5file, follower, pipeline, run)

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

    async def poll(self) -> int:
        """Refresh; returns the number of complete frames. Raises READ_ERRORS."""
        self.complete = await self._run(self.follower.poll)
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
        """Process up to HOP_FRAMES complete frames; returns how many."""
        if self.complete <= self.done:
            return 0
        stop = min(self.complete, self.done + HOP_FRAMES)
        first = self.done
        self.done = await self._run(self._pipeline.process, first, stop)
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

        await self._run(blocking)


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
