"""multitables' Streamer: a dataset in blocks, read ahead by worker processes."""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._stage import StagePool
from ._workers import WorkerPool, dataset_at, open_file
from .dataset_ops import RowsOp
from .request import Request

__all__ = ["QueueClosed", "Streamer", "StreamQueue"]

#: Default block: about this many bytes (a whole number of chunks where chunked).
_DEFAULT_BLOCK_BYTES = 128 * 1024


class QueueClosed:
    """Returned by ``queue.get()`` (the class itself) once the stream has ended."""


class _Guard:
    """One block; ``with guard as block:`` gives the stage's array, freed at the end."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self._context: Any = None

    def __enter__(self) -> NDArray[Any]:
        self._context = self._request.get_unsafe()
        return self._context.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        context, self._context = self._context, None
        if context is not None:
            context.__exit__(exc_type, exc, tb)


class StreamQueue:
    """Blocks of ``block_size`` rows read ahead into ``read_ahead`` stages.

    ``get()`` returns the next block's guard, or :class:`QueueClosed` at
    the end; ``iter()`` yields the guards. Without ``cyclic`` the rows past
    the last whole block are left out (``Streamer.get_remainder``) unless
    ``remainder``; with it blocks wrap around the end, forever.
    """

    def __init__(
        self,
        filename: str,
        path: str,
        *,
        length: int,
        row_nbytes: int,
        n_procs: int,
        read_ahead: int,
        cyclic: bool,
        block_size: int,
        ordered: bool,
        field: str | None,
        remainder: bool,
    ) -> None:
        self.block_size = block_size
        self._path = path
        self._length = length
        self._cyclic = cyclic
        self._ordered = ordered
        self._field = field
        self._remainder = remainder
        self._workers = WorkerPool(filename, n_procs)
        self._stages = StagePool(row_nbytes * block_size, read_ahead)
        self._requests: collections.deque[Request] = collections.deque()
        self._cond = threading.Condition()
        self._spooled = False
        self._closed = False
        self._spooler = threading.Thread(target=self._spool, name="multitables-spool", daemon=True)
        self._spooler.start()

    @property
    def pids(self) -> list[int]:
        """Process ids of the worker processes."""
        return self._workers.pids

    def _starts(self) -> Iterator[tuple[int, int]]:
        size, length = self.block_size, self._length
        if self._cyclic:
            start = 0
            while True:
                yield start, size
                start = (start + size) % length
        whole = length - length % size
        for start in range(0, whole, size):
            yield start, size
        if self._remainder and whole < length:
            yield whole, length - whole

    def _spool(self) -> None:
        try:
            for start, count in self._starts():
                stage = None
                while stage is None:
                    if self._closed:
                        return
                    try:
                        stage = self._stages.acquire(timeout=0.1)
                    except queue.Empty:
                        continue
                op = RowsOp(self._path, start, count, self._field)
                try:
                    request = self._workers.submit(op, stage)
                except RuntimeError:
                    return
                with self._cond:
                    self._requests.append(request)
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._spooled = True
                self._cond.notify_all()

    def _pick(self) -> Request | None:
        if not self._requests:
            return None
        if self._ordered:
            return self._requests.popleft()
        for request in self._requests:
            if request.done():
                self._requests.remove(request)
                return request
        return None

    def get(self) -> _Guard | type[QueueClosed]:
        """The next block's guard (blocks until ready), or :class:`QueueClosed`."""
        with self._cond:
            while True:
                if self._closed:
                    return QueueClosed
                request = self._pick()
                if request is not None:
                    break
                if self._spooled and not self._requests:
                    return QueueClosed
                self._cond.wait(0.01 if self._requests else None)
        return _Guard(request)

    def iter(self) -> Iterator[_Guard]:
        """The guards until the end."""
        while True:
            guard = self.get()
            if not isinstance(guard, _Guard):
                return
            yield guard

    def close(self) -> None:
        """Stop the spooler and the worker processes."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._workers.close(wait=False)
        self._spooler.join()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()


class Streamer:
    """Stream the datasets of ``filename`` (multitables' ``Streamer``).

    ``kw_args`` (PyTables' ``open_file`` options in multitables) are accepted
    and ignored: files are opened with h5py.
    """

    def __init__(self, filename: str, **kw_args: Any) -> None:
        self._filename = str(filename)

    def _describe(self, path: str, field: str | None) -> tuple[int, int, int | None]:
        with open_file(self._filename) as h5file:
            ds = dataset_at(h5file, path)
            if ds.ndim == 0 or ds.shape[0] == 0:
                raise RuntimeError("Cannot read from empty dataset.")
            row = ds.dtype.itemsize * int(np.prod(ds.shape[1:], dtype=np.int64))
            if field is not None:
                sub = ds.dtype[field]
                row = sub.itemsize * int(np.prod(ds.shape[1:], dtype=np.int64))
            chunk = None if ds.chunks is None else int(ds.chunks[0])
            return int(ds.shape[0]), max(1, row), chunk

    def _block_size(self, length: int, row: int, chunk: int | None, block_size: int | None) -> int:
        if block_size is None:
            if chunk is not None:
                block_size = chunk * max(1, _DEFAULT_BLOCK_BYTES // (row * chunk))
            else:
                block_size = max(1, _DEFAULT_BLOCK_BYTES // row)
            block_size = min(block_size, length)
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        return block_size

    def get_queue(
        self,
        path: str,
        n_procs: int | None = None,
        read_ahead: int | None = None,
        cyclic: bool = False,
        block_size: int | None = None,
        ordered: bool = False,
        field: str | None = None,
        remainder: bool = False,
    ) -> StreamQueue:
        """A queue of blocks of ``path`` read by ``n_procs`` (4) processes."""
        length, row, chunk = self._describe(path, field)
        procs = 4 if n_procs is None else n_procs
        return StreamQueue(
            self._filename,
            path,
            length=length,
            row_nbytes=row,
            n_procs=procs,
            read_ahead=2 * procs + 1 if read_ahead is None else read_ahead,
            cyclic=cyclic,
            block_size=self._block_size(length, row, chunk, block_size),
            ordered=ordered,
            field=field,
            remainder=remainder,
        )

    def get_generator(
        self,
        path: str,
        n_procs: int | None = None,
        read_ahead: int | None = None,
        cyclic: bool = False,
        block_size: int | None = None,
        ordered: bool = False,
        field: str | None = None,
        remainder: bool = True,
    ) -> Iterator[Any]:
        """Rows one at a time (copies), the remainder included; closes its queue."""
        q = self.get_queue(path, n_procs, read_ahead, cyclic, block_size, ordered, field, remainder)
        try:
            for guard in q.iter():
                with guard as block:
                    rows = block.copy()
                yield from rows
        finally:
            q.close()

    def get_remainder(self, path: str, block_size: int) -> NDArray[Any]:
        """The rows past the last whole block of ``block_size``."""
        with open_file(self._filename) as h5file:
            ds = dataset_at(h5file, path)
            length = int(ds.shape[0])
            return np.asarray(ds[length - length % block_size : length])
