"""BlockStream's planning: the buffer pool, completeness source and block claims."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._follower import KeyFollower

__all__ = ["Claim", "Planner", "Pool", "Source"]

# Idle polls back off from the follower's poll_interval up to this (as KeyFollower).
_MAX_IDLE_SLEEP = 0.05
_BACKOFF_FACTOR = 1.5


@dataclass(frozen=True)
class Claim:
    """A block a worker reads: its sequence number and flat frame indices."""

    seq: int
    indices: NDArray[np.int64]
    start: int
    error: BaseException | None = None
    result: Any = None


class Pool:
    """A bounded set of buffer slots; ``acquire`` blocks while all are out."""

    def __init__(self, count: int) -> None:
        self._free = list(range(count))
        self._cond = threading.Condition()
        self._closed = False
        self.count = count

    def acquire(self) -> int | None:
        with self._cond:
            while not self._free and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            return self._free.pop()

    def release(self, slot: int) -> None:
        with self._cond:
            self._free.append(slot)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def free(self) -> int:
        with self._cond:
            return len(self._free)


class Source:
    """How many frames are complete, waiting for more the way KeyFollower does."""

    def __init__(self, follower: KeyFollower, live: bool, wake: threading.Event) -> None:
        self.follower = follower
        self.live = live
        self._wake = wake
        self.closed = False
        self.ended = False

    def available(self, index: int) -> int | None:
        """The complete-frame count once it exceeds ``index``; None at the end.

        A live source polls (backing off from ``poll_interval`` to 50 ms) until
        a frame past ``index`` is complete, the follower's ``timeout`` passes
        without one, or its scan is finished (after one last poll).
        """
        follower = self.follower
        if follower.complete > index:
            return follower.complete
        if self.ended:
            return None
        first = follower.poll_interval
        interval = first
        deadline = time.monotonic() + follower.timeout
        last_poll_done = False
        while not self.closed:
            follower.poll()
            if follower.complete > index:
                return follower.complete
            if not self.live:
                break
            if follower.finished:
                if last_poll_done:
                    break
                last_poll_done = True
                delay = first
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                delay = min(interval, remaining)
                interval = min(interval * _BACKOFF_FACTOR, max(first, _MAX_IDLE_SLEEP))
            self._wake.wait(delay)
            self._wake.clear()
        self.ended = True
        return None


class Planner:
    """Hands out blocks in index order (thread-safe); wraps when cyclic."""

    def __init__(
        self, source: Source, start: int, block_size: int, cyclic: bool, stop: int | None
    ) -> None:
        self._source = source
        self._next = start
        self._stop = stop
        self._block = block_size
        self._cyclic = cyclic
        self._total: int | None = None
        self._seq = 0
        self._done = False
        self._lock = threading.Lock()

    def claim(self) -> Claim | None:
        with self._lock:
            if self._done:
                return None
            try:
                claim = self._claim()
            except BaseException as exc:  # delivered in order, then raised to the consumer
                self._done = True
                claim = Claim(self._seq, np.empty(0, np.int64), self._next, error=exc)
            if claim is not None:
                self._seq += 1
            return claim

    def _claim(self) -> Claim | None:
        start = self._next
        if self._total is None and self._cyclic and not self._source.live:
            # a finished file: the remainder wraps into a block with the first frames
            self._source.available(start)
            self._total = self._source.follower.complete
        if self._total is None:
            if self._stop is not None and start >= self._stop:
                self._done = True
                return None
            available = self._source.available(start)
            if available is not None:
                if self._stop is not None:
                    available = min(available, self._stop)
                n = min(self._block, available - start)
                self._next = start + n
                return Claim(self._seq, np.arange(start, start + n, dtype=np.int64), start)
            if not self._cyclic:
                self._done = True
                return None
            self._total = self._source.follower.complete
        total = self._total
        if total <= 0:
            self._done = True
            return None
        start %= total
        self._next = (start + self._block) % total
        indices = (start + np.arange(self._block, dtype=np.int64)) % total
        return Claim(self._seq, indices, start)
