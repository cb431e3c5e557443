"""Frames -> statistics, in the reader thread (never on the event loop)."""

from __future__ import annotations

import logging

import h5py
import numpy as np

from swmr_roi_ioc.follow import ChunkReader, FrameReader, refresh, shared_dataset
from swmr_roi_ioc.stats import FrameStats, compute_stats

from ._state import ServiceState

log = logging.getLogger(__name__)

#: Bytes of frames read at once: small enough to stay in cache (DESIGN.md).
BATCH_BYTES = 8 * 2**20
UNIQUE_ID = "/entry/instrument/NDAttributes/NDArrayUniqueId"


class FramePipeline:
    """Reads frames of one file in batches and adds their statistics to state."""

    def __init__(self, state: ServiceState, reader: FrameReader, h5file: h5py.File) -> None:
        self._state = state
        self._reader = reader
        # the fast path: read_direct_chunk, decompression outside the HDF5 lock
        self._chunks = ChunkReader(reader.dataset, reader.scan_rank)
        self.frame_shape = reader.frame_shape
        self.dataset = reader.dataset
        #: the last frame's NDArrayUniqueId was not flushed yet (NDAttributeChunk)
        self.keys_lag = False
        frame_bytes = int(np.prod(reader.frame_shape)) * reader.dtype.itemsize
        self._batch = max(1, min(64, BATCH_BYTES // max(frame_bytes, 1)))
        try:
            uid: h5py.Dataset | None = shared_dataset(h5file, UNIQUE_ID)
        except (KeyError, TypeError):
            uid = None  # the writer keeps no NDArrayUniqueId: index + 1
        self._uid = uid if uid is not None and uid.ndim >= 1 else None

    def process(self, start: int, stop: int) -> int:
        """Frames [start, stop): read, compute, publish into state. Returns stop."""
        for first in range(start, stop, self._batch):
            last = min(stop, first + self._batch)
            frames = self._chunks.read_frames(first, last)
            rois = self._state.rois_for_next_batch()
            used = [r for r in rois if r is not None]
            roi_stats, frame_stats = compute_stats(frames, used)
            it = iter(roi_stats)
            per_roi: list[FrameStats | None] = [next(it) if r is not None else None for r in rois]
            self._state.add_batch(
                first, per_roi, frame_stats, self._unique_id(last - 1), frames[-1].copy()
            )
        return stop

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) again (a retroactive ROI change); reader thread only."""
        return self._chunks.read_frames(start, stop)

    def close(self) -> None:
        """Stop the decompression threads."""
        self._chunks.close()

    def _unique_id(self, index: int) -> int:
        """NDArrayUniqueId of frame ``index``; index+1 while keys lag or are absent."""
        if self._uid is None:
            return index + 1
        try:
            refresh(self._uid)
            flat_len = int(np.prod(self._uid.shape))
            if index < flat_len:
                value = int(self._uid[np.unravel_index(index, self._uid.shape)])
                if value > 0:
                    self.keys_lag = False
                    return value
        except (OSError, KeyError, ValueError) as exc:
            log.debug("NDArrayUniqueId unreadable: %s", exc)
        self.keys_lag = True
        return index + 1
