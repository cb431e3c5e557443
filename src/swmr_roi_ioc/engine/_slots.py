"""The newest frames, shared between a worker and the IOC process.

A file in a shared-memory directory, mapped by both: ``count`` slots of one
frame each, written in turn by the worker; a batch names the slot its last
frame is in, and the IOC process computes the live views (histogram, binned
image) from that slot at the publish rate. A frame costs the worker one copy
and the pipe nothing; with three slots, the one being viewed is not
overwritten before two more frames were sent.
"""

from __future__ import annotations

import mmap
import os

import numpy as np

from ._protocol import SlotsInfo

SLOTS = 3


class FrameSlots:
    """One acquisition's slots; the worker's side creates, the IOC's views."""

    def __init__(self, info: SlotsInfo, buffer: mmap.mmap) -> None:
        self.info = info
        self._buffer = buffer
        self._frames = np.frombuffer(buffer, dtype=np.dtype(info.dtype)).reshape(
            info.count, *info.shape
        )
        self._next = 0

    @classmethod
    def create(cls, path: str, shape: tuple[int, int], dtype: np.dtype) -> FrameSlots:
        """Worker: the file at ``path`` sized for SLOTS frames (the same file
        again after a worker was replaced, so the IOC's mapping stays valid)."""
        info = SlotsInfo(path, shape, np.dtype(dtype).str, SLOTS)
        size = SLOTS * shape[0] * shape[1] * np.dtype(dtype).itemsize
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size != size:
                os.ftruncate(fd, size)
            buffer = mmap.mmap(fd, max(size, 1))
        finally:
            os.close(fd)
        return cls(info, buffer)

    @classmethod
    def attach(cls, info: SlotsInfo) -> FrameSlots:
        """IOC process: map the worker's file read-only."""
        fd = os.open(info.path, os.O_RDONLY)
        try:
            buffer = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        return cls(info, buffer)

    def describe(self) -> SlotsInfo:
        return self.info

    def put(self, frame: np.ndarray) -> int:
        """Worker: copy ``frame`` into the next slot; returns its number."""
        slot = self._next
        self._frames[slot] = frame.reshape(self.info.shape)
        self._next = (slot + 1) % self.info.count
        return slot

    def view(self, slot: int) -> np.ndarray:
        """IOC process: the frame in ``slot`` (a view, no copy)."""
        return self._frames[slot]

    def close(self) -> None:
        """Worker: unmap (the IOC process removes the file)."""
        del self._frames
        self._buffer.close()
