"""Frames -> statistics, in a worker process (never in the IOC process).

A few frames (following a live writer) are read and computed right here; a
longer range (catching up on a file, or after a pause) goes through a
:class:`~swmr_roi_ioc.follow.BlockStream` whose threads (``threads``: one
when the worker processes fill the cores) read, decompress and compute the
statistics of a block each while the block is still in the CPU cache; frames
read again for a moved ROI go a block at a time through one kept buffer.
Either way the results reach the state in frame order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import h5py
import numpy as np

from swmr_roi_ioc.follow import (
    BlockStream,
    ChunkReader,
    FollowError,
    FrameReader,
    KeyFollower,
    refresh,
    shared_dataset,
)
from swmr_roi_ioc.stats import FrameStats, Roi, compute_stats

log = logging.getLogger(__name__)

#: Bytes of frames read at once: small enough that the block buffers of
#: both workers stay in the CPU cache while a frame is copied in and its
#: statistics computed (measured, catch-up of 1216 x 1936 uint8 with two
#: workers of one thread: 4 MB blocks ~3,600 frames/s, 8 MB ~2,900, 16 MB
#: ~2,700; a 16-frame batch overflows a 33 MiB L3 by itself).
BATCH_BYTES = 4 * 2**20
UNIQUE_ID = "/entry/instrument/NDAttributes/NDArrayUniqueId"
#: NDArrayUniqueId values read at once (one value per frame)
UID_READ_AHEAD = 4096
#: Threads of the catch-up stream in a process that has the machine to
#: itself. With one worker process per core, one thread each is faster (the
#: reads of one process are serialised by h5py's lock anyway; measured: 2
#: processes x 1 thread catch up ~15 % faster than 2 x 2, on 2 cores).
STREAM_WORKERS = 2

_Computed = tuple[list[Roi | None], list[FrameStats], FrameStats]


class BatchSink(Protocol):
    """Where the pipeline takes the ROIs from and puts the results (the
    service's state, or what a worker sends back to the IOC process)."""

    def rois_for_next_batch(self) -> list[Roi | None]: ...

    def add_batch(
        self,
        start: int,
        rois: Sequence[FrameStats | None],
        frame: FrameStats,
        unique_id: int,
        last_frame: np.ndarray | None = None,
    ) -> None: ...


def _plain(exc: FollowError) -> Exception:
    """The reader's own error (OSError, KeyError, ...) as the direct path raises
    it, so the sources handle both paths alike; else an OSError saying what failed."""
    cause = exc.__cause__
    if isinstance(cause, Exception) and not isinstance(cause, FollowError):
        return cause
    return OSError(str(exc))


class FramePipeline:
    """Reads frames of one file in batches and adds their statistics to state."""

    def __init__(
        self,
        state: BatchSink,
        reader: FrameReader,
        h5file: h5py.File,
        follower: KeyFollower | None = None,
        *,
        threads: int = STREAM_WORKERS,
    ) -> None:
        self._state = state
        self._threads = max(1, threads)
        #: the acquisition's follower: the stream takes the frames it already
        #: knows complete without looking again (h5py's chunk look-up,
        #: get_chunk_info_by_coord, walks every chunk: 25 ms at 150,000 frames)
        self._follower = follower
        self._reader = reader
        self._h5file = h5file
        # the fast path: read_direct_chunk, decompression outside the HDF5 lock
        self._chunks = ChunkReader(reader.dataset, reader.scan_rank)
        #: the block buffer of frames read again (a retroactive ROI change)
        self._reread: np.ndarray | None = None
        self.frame_shape = reader.frame_shape
        self.dataset = reader.dataset
        #: the streams' block buffers, kept from one request to the next
        self._buffers: list[np.ndarray | None] = []
        #: the last frame's NDArrayUniqueId was not flushed yet (NDAttributeChunk)
        self.keys_lag = False
        frame_bytes = int(np.prod(reader.frame_shape)) * reader.dtype.itemsize
        self._batch = max(1, min(64, BATCH_BYTES // max(frame_bytes, 1)))
        try:
            uid: h5py.Dataset | None = shared_dataset(h5file, UNIQUE_ID)
        except (KeyError, TypeError):
            uid = None  # the writer keeps no NDArrayUniqueId: index + 1
        self._uid = uid if uid is not None and uid.ndim >= 1 else None
        #: (first index, values) of the keys read last (one value per frame)
        self._uid_cache: tuple[int, np.ndarray] = (0, np.zeros(0, dtype=np.int64))

    def process(self, start: int, stop: int) -> int:
        """Frames [start, stop): read, compute, publish into state. Returns stop."""
        if stop - start > 2 * self._batch:
            # the stream's own completeness check may stop short: the rest directly
            start = self._process_stream(start, stop)
        for first in range(start, stop, self._batch):
            last = min(stop, first + self._batch)
            frames = self._chunks.read_frames(first, last)
            rois, roi_stats, frame_stats = self._compute(frames)
            latest = frames[-1].copy() if last == stop else None
            self._add(first, last, rois, roi_stats, frame_stats, latest)
        return stop

    def _process_stream(self, start: int, stop: int) -> int:
        """A long range: read and compute in the stream's workers, add in order.
        Returns one past the last frame added."""
        reached = start
        stream = BlockStream(
            self._h5file, self._reader.dataset_path, block_size=self._batch,
            workers=self._threads, scan_rank=self._reader.scan_rank,
            follower=self._follower, start=start, stop=stop, process=self._compute,
            buffers=self._buffers,
        )  # fmt: skip
        try:
            with stream:
                for guard in stream:
                    with guard as block:
                        latest = block[-1].copy() if guard.stop == stop else None
                    rois, roi_stats, frame_stats = guard.result
                    self._add(guard.start, guard.stop, rois, roi_stats, frame_stats, latest)
                    reached = guard.stop
        except FollowError as exc:
            raise _plain(exc) from exc
        return reached

    def _compute(self, frames: np.ndarray) -> _Computed:
        """Statistics of a block with the geometry in use now (any thread)."""
        rois = self._state.rois_for_next_batch()
        roi_stats, frame_stats = compute_stats(frames, [r for r in rois if r is not None])
        return rois, roi_stats, frame_stats

    def _add(
        self,
        first: int,
        last: int,
        rois: list[Roi | None],
        roi_stats: list[FrameStats],
        frame_stats: FrameStats,
        latest: np.ndarray | None,
    ) -> None:
        it = iter(roi_stats)
        per_roi: list[FrameStats | None] = [next(it) if r is not None else None for r in rois]
        self._state.add_batch(first, per_roi, frame_stats, self._unique_id(last - 1), latest)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) again, into a new array."""
        try:
            return self._chunks.read_frames(start, stop)
        except FollowError as exc:
            raise _plain(exc) from exc

    def roi_stats(self, start: int, stop: int, roi: Roi) -> FrameStats:
        """One ROI's statistics of frames [start, stop), read again (a
        retroactive ROI change) a block at a time into one buffer kept for
        it, in the CPU cache while the block's statistics are computed (a
        new array of the whole range cost more in page faults than its
        statistics)."""
        if self._reread is None:
            self._reread = self._chunks.empty(self._batch)
        parts = [np.empty((5, 0))]
        try:
            for first in range(start, stop, self._batch):
                last = min(stop, first + self._batch)
                frames = self._chunks.read_frames(first, last, out=self._reread[: last - first])
                parts.append(compute_stats(frames, [roi])[0][0].values)
        except FollowError as exc:
            raise _plain(exc) from exc
        return FrameStats.of(np.concatenate(parts, axis=1))

    def close(self) -> None:
        """Stop the decompression threads."""
        self._chunks.close()

    def _unique_id(self, index: int) -> int:
        """NDArrayUniqueId of frame ``index``; index+1 while keys lag or are absent.

        Keys of one value per frame are read ahead (UID_READ_AHEAD values per read, one
        refresh) and kept: a value once written never changes, so only a
        frame past what was read, or still 0 then (keys lagging), reads
        again. Per block, a refresh and an h5py read cost more than the
        block's statistics."""
        if self._uid is None:
            return index + 1
        start, values = self._uid_cache
        if start <= index < start + len(values) and values[index - start] > 0:
            self.keys_lag = False
            return int(values[index - start])
        try:
            refresh(self._uid)
            shape = self._uid.shape
            flat_len = int(np.prod(shape))
            if index < flat_len:
                if int(np.prod(shape[1:])) == 1:  # (n,) or areaDetector's (n, 1, 1)
                    values = np.asarray(self._uid[index : index + UID_READ_AHEAD]).ravel()
                    self._uid_cache = (index, values)
                    value = int(values[0])
                else:
                    value = int(self._uid[np.unravel_index(index, shape)])
                if value > 0:
                    self.keys_lag = False
                    return value
        except (OSError, KeyError, ValueError) as exc:
            log.debug("NDArrayUniqueId unreadable: %s", exc)
        self.keys_lag = True
        return index + 1
