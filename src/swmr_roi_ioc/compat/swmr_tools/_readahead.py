"""Read the next complete frames in a background thread while the caller works.

A DataSource loop reads a frame, then processes it; nothing reads while it
processes. Frames the keys already report complete cannot change any more,
so they are read (and decompressed, outside the GIL) ahead, in one
background thread, into fresh arrays. Only indices up to the highest
complete index are ever read ahead, a bounded number at a time; a read
ahead that failed is simply read again in the caller's thread, with the
caller's semantics (refresh, errors).
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

__all__ = ["ReadAhead"]

_T = TypeVar("_T")

# Frames read ahead at most (each a fresh array held until taken).
DEFAULT_DEPTH = 4


def _run(read: Callable[[], Callable[[int], _T] | None], index: int) -> _T | None:
    """``read()(index)``, or None if the reader is gone or the read failed.

    A failed read is read again by the caller, with its own error handling;
    no exception (and no traceback holding the reader) is kept here.
    """
    fn = read()
    if fn is None:
        return None
    try:
        return fn(index)
    except Exception:
        return None


class ReadAhead(Generic[_T]):
    """Results of ``read(index)`` computed ahead, in order, in one thread.

    :meth:`take` returns the result read ahead for ``index``, or None (read
    it yourself); :meth:`schedule` queues indices up to ``last`` (at most
    ``depth`` ahead of the one just taken). :meth:`clear` waits for and drops
    every result (before anything that changes what a read would return,
    such as a reset).
    """

    def __init__(self, read: Callable[[int], _T], depth: int = DEFAULT_DEPTH) -> None:
        # a bound method is held weakly: its owner (a DataSource) may be
        # dropped mid-scan, which stops the thread
        self._read: Callable[[], Callable[[int], _T] | None] = (
            weakref.WeakMethod(read) if inspect.ismethod(read) else lambda: read
        )
        self.depth = max(1, depth)
        self._pending: dict[int, Future[_T | None]] = {}
        self._next = 0  # first index not scheduled yet
        #: Results taken from the read-ahead (not read again by the caller).
        self.hits = 0
        self._pool: ThreadPoolExecutor | None = None
        self._finalizer: weakref.finalize | None = None

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="swmr-tools-read-ahead")
            # a DataSource dropped mid-scan lets its thread go
            self._finalizer = weakref.finalize(self, self._pool.shutdown, wait=False)
        return self._pool

    def take(self, index: int) -> _T | None:
        """The result read ahead for ``index`` (None if there is none or it failed)."""
        future = self._pending.pop(index, None)
        if future is None:
            return None
        result = future.result()
        if result is not None:
            self.hits += 1
        return result

    def schedule(self, index: int, last: int) -> None:
        """Queue reads of ``index + 1`` .. ``min(index + depth, last)``."""
        for stale in [k for k in self._pending if k <= index]:
            self._pending.pop(stale).cancel()
        start = max(self._next, index + 1)
        stop = min(index + self.depth, last)
        if start > stop:
            return
        pool = self._executor()
        for k in range(start, stop + 1):
            self._pending[k] = pool.submit(_run, self._read, k)
        self._next = stop + 1

    def clear(self) -> None:
        """Wait for the reads in flight and forget every result."""
        pending, self._pending = self._pending, {}
        for future in pending.values():
            future.cancel()
        for future in pending.values():
            if not future.cancelled():
                future.result()
        self._next = 0

    def close(self) -> None:
        """Drop everything and stop the thread."""
        self.clear()
        if self._finalizer is not None:
            self._finalizer()
        self._pool = None
