"""BlockStream: blocks of frames read ahead by background threads (multitables' Streamer).

Worker threads fill a bounded pool of preallocated block buffers through a
:class:`ChunkReader` (HDF5 serialised by h5py's lock, decompression in
parallel) while the consumer works on the blocks already delivered. Each
block reaches the consumer as a :class:`BlockGuard`; ``with guard as
block:`` gives a zero-copy view of the buffer, returned to the pool when
the ``with`` ends. For a file being written the stream waits for complete
frames (a :class:`KeyFollower`'s completeness) and ends when the follower
would.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from types import TracebackType
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from ._chunks import ChunkReader
from ._errors import FollowError
from ._extent import default_scan_rank
from ._follower import KeyFollower
from ._keys import get_dataset
from ._planning import Claim, Planner, Pool, Source

__all__ = ["BlockGuard", "BlockStream"]

_log = logging.getLogger(__name__)

#: Default block: about this many bytes, a whole number of chunks.
DEFAULT_BLOCK_BYTES = 8 * 2**20


class BlockGuard:
    """One delivered block; ``with guard as block:`` gives its frames.

    ``block`` is a zero-copy ``(n, *frame_shape)`` view of a pooled buffer,
    valid until the guard is released (the ``with`` ends, :meth:`release`,
    or the guard is garbage-collected); keep data with :meth:`copy`.
    ``start``/``stop`` are the flat indices of the first frame and one past
    the last (in a cyclic stream a block can wrap: ``indices`` lists them).
    """

    def __init__(
        self, release: Callable[[int], None], slot: int, view: NDArray[Any], claim: Claim
    ) -> None:
        self._release: Callable[[int], None] | None = release
        self._slot = slot
        self._view: NDArray[Any] | None = view
        #: Flat frame indices of the block's frames, in order.
        self.indices: NDArray[np.int64] = claim.indices
        #: Flat index of the first frame.
        self.start: int = claim.start
        #: ``start`` + number of frames.
        self.stop: int = claim.start + len(claim.indices)
        #: Position of the block in the stream (0, 1, ...).
        self.seq: int = claim.seq
        #: What the stream's ``process`` returned for this block (None without).
        self.result: Any = claim.result

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def block(self) -> NDArray[Any]:
        """The frames (a view valid until release)."""
        if self._view is None:
            raise FollowError("block used after its guard was released")
        return self._view

    @property
    def released(self) -> bool:
        return self._view is None

    def copy(self) -> NDArray[Any]:
        """A copy of the frames that stays valid after release."""
        return self.block.copy()

    def release(self) -> None:
        """Give the buffer back to the stream's pool (idempotent)."""
        release, self._release, self._view = self._release, None, None
        if release is not None:
            release(self._slot)

    def __enter__(self) -> NDArray[Any]:
        return self.block

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"BlockGuard(seq={self.seq}, start={self.start}, stop={self.stop})"


class BlockStream:
    """Stream a dataset of frames in blocks, read ahead by background threads.

    Like multitables' ``Streamer.get_queue`` on h5py, for files being written.

    - ``block_size``: frames per block; default a whole number of chunks of
      about 8 MB. The last block of a finished file holds the remainder; while
      following a live file a block holds what is complete (at least 1 frame),
      so frames are delivered as soon as they are complete.
    - ``read_ahead``: buffers in the pool (default ``2 * workers + 1``, or
      ``workers + 1`` with ``process``); at most that many blocks are read
      ahead or held by the consumer.
    - ``workers``: reader threads (HDF5 access is serialised; decompression
      and the consumer's numpy work run in parallel).
    - ``ordered``: deliver blocks in index order (default), or first-ready.
    - ``cyclic``: when the frames end, start again at frame 0, forever
      (blocks wrap across the end); stop with :meth:`close`.
    - ``follower``: a :class:`KeyFollower` on the same file whose completeness
      (``poll``, ``complete``, ``finished``, ``timeout``) decides which frames
      may be read; the stream polls it and ends when it would stop. Its own
      iterator position is not used.
    - ``timeout``: without a follower, None reads the frames complete now and
      ends; a number follows the file (data extent and written chunks) and
      ends after that many seconds without a new frame.
    - ``start``: first flat frame index; ``stop``: one past the last frame
      to deliver (the stream ends there; not with ``cyclic``).
    - ``process``: called in the worker thread with each block (the
      zero-copy view) right after it is read, while it is still in the CPU
      cache; its return value is the guard's ``result``. The consumer's
      numpy work then runs on all workers in parallel (an exception in it
      ends the stream like a read error).
    - ``buffers``: a list the block buffers are kept in. Give the next
      stream the same list (after this one is closed) and it reads into the
      same memory: fresh buffers cost a page fault per 4 kB, about a tenth
      of reading frames from the page cache.

    Iterate (``for guard in stream``, ``async for``) or call :meth:`get`;
    use it as a context manager or call :meth:`close`. ``dataset_path`` is
    read through :func:`shared_dataset` (the one handle per dataset).

    Example::

        with open_swmr(path) as f, BlockStream(f, "/entry/data/data") as stream:
            for guard in stream:
                with guard as block:
                    totals[guard.start : guard.stop] = block.sum(axis=(1, 2))
    """

    def __init__(
        self,
        h5file: h5py.File,
        dataset_path: str,
        *,
        block_size: int | None = None,
        read_ahead: int | None = None,
        workers: int = 2,
        ordered: bool = True,
        cyclic: bool = False,
        follower: KeyFollower | None = None,
        timeout: float | None = None,
        scan_rank: int | None = None,
        start: int = 0,
        stop: int | None = None,
        process: Callable[[NDArray[Any]], Any] | None = None,
        buffers: list[NDArray[Any] | None] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        if stop is not None and (stop < start or cyclic):
            raise ValueError(f"stop must be >= start ({start}) and not cyclic, got {stop}")
        dset = get_dataset(h5file, dataset_path, "dataset")
        if scan_rank is None:
            scan_rank = follower.scan_rank if follower is not None else default_scan_rank(dset)
        self.dataset_path = dataset_path
        self.reader = ChunkReader(dset, scan_rank, threads=1)
        self.block_size = self._default_block(dset, scan_rank) if block_size is None else block_size
        if self.block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {self.block_size}")
        if read_ahead is None:
            # with ``process`` the consumer holds a block only briefly: one spare
            # buffer keeps the workers busy, and fewer buffers stay in the CPU cache
            read_ahead = workers + 1 if process is not None else 2 * workers + 1
        self.read_ahead = read_ahead
        if self.read_ahead < 1:
            raise ValueError(f"read_ahead must be >= 1, got {self.read_ahead}")
        self.workers = workers
        self._process = process
        self.ordered = ordered
        self.cyclic = cyclic
        live = follower is not None or timeout is not None
        if follower is None:
            follower = KeyFollower(
                h5file,
                [],
                timeout=0.0 if timeout is None else timeout,
                dataset_paths=[dataset_path],
                scan_rank=scan_rank,
            )
        self.follower = follower
        self._wake = threading.Event()
        self._source = Source(follower, live, self._wake)
        self._planner = Planner(self._source, start, self.block_size, cyclic, stop)
        self._buffers: list[NDArray[Any] | None] = [] if buffers is None else buffers
        self._buffers.extend([None] * (self.read_ahead - len(self._buffers)))
        self._pool = Pool(self.read_ahead)
        self._cond = threading.Condition()
        self._ready: dict[int, tuple[Claim, int]] = {}
        self._next_seq = 0
        self._running = 0
        self._threads: list[threading.Thread] = []
        self._started = False
        self._closed = False
        #: Frames read into buffers so far.
        self.frames_read = 0
        #: Blocks read into buffers so far.
        self.blocks_read = 0

    @staticmethod
    def _default_block(dset: h5py.Dataset, scan_rank: int) -> int:
        frame_bytes = max(1, math.prod(dset.shape[scan_rank:]) * dset.dtype.itemsize)
        align = 1
        if scan_rank == 1 and dset.chunks is not None:
            align = int(dset.chunks[0])
        chunks = max(1, DEFAULT_BLOCK_BYTES // (frame_bytes * align))
        return chunks * align

    # -- workers --------------------------------------------------------------

    def start(self) -> None:
        """Start the reader threads (iteration and :meth:`get` do it)."""
        with self._cond:
            if self._started or self._closed:
                return
            self._started = True
            self._running = self.workers
        # the threads hold the stream weakly, so a stream dropped without
        # close() is collected, and its __del__ stops them
        ref = weakref.ref(self)
        for k in range(self.workers):
            thread = threading.Thread(
                target=_work,
                args=(ref, self._pool, self._planner, self._cond),
                name=f"block-stream-{k}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def _buffer(self, slot: int) -> NDArray[Any]:
        buf = self._buffers[slot]
        if (
            buf is None
            or buf.shape != (self.block_size, *self.reader.frame_shape)
            or buf.dtype != self.reader.dtype
        ):
            buf = self.reader.empty(self.block_size)
            self._buffers[slot] = buf
        return buf

    def _fill(self, claim: Claim, slot: int) -> bool:
        """Read one claimed block into buffer ``slot``; False on error."""
        if claim.error is None:
            view = self._buffer(slot)[: len(claim.indices)]
            try:
                self.reader.read_indices(claim.indices, view, parallel=False)
                if self._process is not None:
                    result = self._process(view)
                    claim = replace(claim, result=result)
            except BaseException as exc:
                claim = replace(claim, error=exc)
        with self._cond:
            if claim.error is None:
                self.frames_read += len(claim.indices)
                self.blocks_read += 1
            self._ready[claim.seq] = (claim, slot)
            self._cond.notify_all()
        return claim.error is None

    def _worker_done(self) -> None:
        with self._cond:
            self._running -= 1
            self._cond.notify_all()

    # -- consumer -----------------------------------------------------------

    def _pick(self) -> tuple[Claim, int] | None:
        if not self._ready:
            return None
        seq = self._next_seq if self.ordered else min(self._ready)
        item = self._ready.pop(seq, None)
        if item is not None and self.ordered:
            self._next_seq += 1
        return item

    def get(self, timeout: float | None = None) -> BlockGuard | None:
        """The next block's guard; None when the stream has ended or is closed.

        Blocks until a block is ready (at most ``timeout`` s, then raises
        ``TimeoutError``). A read error is raised here, in stream order, as a
        :class:`FollowError` (chained), and ends the stream.
        """
        self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._closed:
                    return None
                item = self._pick()
                if item is not None:
                    break
                if self._running == 0:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError("no block ready")
                self._cond.wait(remaining)
        claim, slot = item
        if claim.error is not None:
            self._pool.release(slot)
            self.close(wait=False)
            if isinstance(claim.error, FollowError):
                raise claim.error
            raise FollowError(
                f"reading {self.dataset_path!r} from frame {claim.start} failed: {claim.error}"
            ) from claim.error
        view = self._buffer(slot)[: len(claim.indices)]
        return BlockGuard(self._pool.release, slot, view, claim)

    def __iter__(self) -> Iterator[BlockGuard]:
        while (guard := self.get()) is not None:
            yield guard

    async def __aiter__(self) -> AsyncIterator[BlockGuard]:
        while (guard := await asyncio.to_thread(self.get)) is not None:
            yield guard

    def frames(self) -> Iterator[tuple[int, NDArray[Any]]]:
        """``(index, frame)`` one frame at a time, each frame a copy.

        Leaving the loop early (``break``, an exception, dropping the
        generator) closes the stream: its worker threads stop.
        """
        try:
            for guard in self:
                with guard as block:
                    for index, frame in zip(guard.indices.tolist(), block, strict=True):
                        yield index, frame.copy()
        finally:
            self.close(wait=False)

    def wake(self) -> None:
        """Poll now instead of at the end of the current idle wait."""
        self._wake.set()

    # -- lifecycle ----------------------------------------------------------

    def close(self, wait: bool = True) -> None:
        """Stop the workers; with ``wait`` join them. Idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._source.closed = True
        self._wake.set()
        self._pool.close()
        if wait:
            current = threading.current_thread()
            for thread in self._threads:
                if thread is not current:
                    thread.join()

    def __del__(self) -> None:
        # a stream dropped without close(): stop its worker threads
        if getattr(self, "_started", False) and not self._closed:
            self.close(wait=False)

    def __enter__(self) -> BlockStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _work(
    ref: weakref.ReferenceType[BlockStream],
    pool: Pool,
    planner: Planner,
    cond: threading.Condition,
) -> None:
    """A reader thread: claim a block, read it, hand it over; until the end.

    It holds the stream only while reading a block, never while it waits
    for a free buffer or for new frames.
    """
    try:
        while True:
            slot = pool.acquire()
            if slot is None:
                return
            claim = planner.claim()
            stream = ref()
            if claim is None or stream is None:
                pool.release(slot)
                return
            ok = stream._fill(claim, slot)  # noqa: SLF001 - BlockStream's own worker
            del stream
            if not ok:
                return
    finally:
        stream = ref()
        if stream is not None:
            stream._worker_done()  # noqa: SLF001 - BlockStream's own worker
        else:
            with cond:
                cond.notify_all()
