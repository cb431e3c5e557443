"""Stages: shared-memory buffers the worker processes write request results into."""

from __future__ import annotations

import queue
import threading
from multiprocessing import shared_memory
from typing import Any

__all__ = ["SharedMemoryError", "Stage", "StagePool"]


class SharedMemoryError(Exception):
    """A request's result does not fit its stage."""


class Stage:
    """A shared-memory buffer of ``nbytes``; one request at a time uses it."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = max(1, int(nbytes))
        self._shm: shared_memory.SharedMemory | None = shared_memory.SharedMemory(
            create=True, size=self.nbytes
        )
        self.name = self._shm.name
        self._free = threading.Semaphore(1)
        self._pool: StagePool | None = None

    @property
    def buf(self) -> memoryview:
        buf = None if self._shm is None else self._shm.buf
        if buf is None:
            raise SharedMemoryError("the stage is closed")
        return buf

    def acquire(self) -> Stage:
        self._free.acquire()
        return self

    def release(self) -> None:
        self._free.release()
        if self._pool is not None:
            self._pool.put_back(self)

    def close(self) -> None:
        """Free the shared memory (no request may still use it)."""
        shm, self._shm = self._shm, None
        if shm is not None:
            try:
                shm.close()
            except BufferError:  # a view is still alive: freed with it
                pass
            shm.unlink()

    def __del__(self) -> None:
        if getattr(self, "_shm", None) is not None:
            self.close()


class StagePool:
    """``num_stages`` stages of one size; a request takes whichever is free."""

    def __init__(self, nbytes: int, num_stages: int) -> None:
        self.stages = [Stage(nbytes) for _ in range(num_stages)]
        self._free: queue.Queue[Stage] = queue.Queue()
        for stage in self.stages:
            stage._pool = self  # noqa: SLF001 - the pool owns its stages
            self._free.put(stage)

    def acquire(self, timeout: float | None = None) -> Stage:
        """A free stage (blocks until one is; ``queue.Empty`` after ``timeout``)."""
        return self._free.get(timeout=timeout).acquire()

    def put_back(self, stage: Stage) -> None:
        self._free.put(stage)

    def close(self) -> None:
        for stage in self.stages:
            stage.close()


def stage_of(target: Any) -> Stage:
    """The stage a request will use: ``target`` itself or one from a pool."""
    if isinstance(target, StagePool):
        return target.acquire()
    if isinstance(target, Stage):
        return target.acquire()
    raise TypeError(f"expected a stage or stage pool, got {type(target).__name__}")
