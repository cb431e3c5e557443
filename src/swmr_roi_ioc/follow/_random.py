"""RandomReader: frames at arbitrary flat indices, read in the background (multitables' Reader)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

import h5py
import numpy as np
from numpy.typing import NDArray

from ._chunks import ChunkReader
from ._errors import FollowError, FrameIndexError
from ._extent import default_scan_rank
from ._keys import get_dataset

__all__ = ["RandomReader"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: A request: one index, a slice, or a sequence / 1-D array of indices.
Indices = int | slice | range | Sequence[int] | NDArray[np.integer[Any]]

# A request is split into pieces of about this many bytes, read in parallel.
_PIECE_BYTES = 8 * 2**20


class _Gather:
    """Completes one future once every piece of a request is read."""

    def __init__(
        self, future: Future[NDArray[Any]], out: NDArray[Any], pieces: int, owner: set[_Gather]
    ) -> None:
        self.future = future
        self.out = out
        self._left = pieces
        self._owner = owner
        self._lock = threading.Lock()
        self._finished = False

    def done(self, error: BaseException | None) -> None:
        """One piece read (``error`` None) or failed; the first failure wins."""
        with self._lock:
            if self._finished:
                return
            if error is None:
                self._left -= 1
                if self._left:
                    return
            self._finished = True
            self._owner.discard(self)
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(self.out)


class RandomReader:
    """Read any set of frames of a dataset in worker threads; results are futures.

    ``request(indices)`` returns a ``concurrent.futures.Future`` of a new
    array: ``(n, *frame)`` for a list, range, slice or 1-D array of flat
    indices (any order, repeats allowed), ``frame`` alone for one integer.
    Negative indices and slices count from the frames in the extent at the
    time of the request. Large requests are split and read in parallel by
    ``workers`` threads through a :class:`ChunkReader` (the fast chunk path
    where the layout allows, HDF5's own read otherwise). A frame outside the
    extent fails the future with :class:`FrameIndexError`; only request
    frames a follower reported complete while the file is being written.

    Example::

        with open_swmr(path) as f, RandomReader(f, "/entry/data/data") as reader:
            first, last = reader.request([0, -1]).result()
    """

    def __init__(
        self,
        h5file: h5py.File,
        dataset_path: str,
        workers: int = 2,
        *,
        scan_rank: int | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        dset = get_dataset(h5file, dataset_path, "dataset")
        rank = default_scan_rank(dset) if scan_rank is None else scan_rank
        self.dataset_path = dataset_path
        self.reader = ChunkReader(dset, rank, threads=1)
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="random-reader")
        self._closed = False
        self._pending: set[_Gather] = set()
        nbytes = max(1, self.reader.frame_nbytes)
        self._piece = max(1, _PIECE_BYTES // nbytes)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return self.reader.frame_shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.reader.dtype

    def __len__(self) -> int:
        """Frames inside the dataset's extent now (after a refresh)."""
        return self.reader.frame_count()

    def _resolve(self, indices: Indices) -> tuple[list[int], bool]:
        """Flat indices of a request, and whether it was a single integer."""
        if isinstance(indices, slice):
            return list(range(*indices.indices(len(self)))), False
        if isinstance(indices, (int, np.integer)):
            index = int(indices)
            if index < 0:
                index += len(self)
            return [index], True
        wanted = [int(i) for i in np.asarray(indices, dtype=np.int64).reshape(-1)]
        if any(i < 0 for i in wanted):
            count = len(self)
            wanted = [i + count if i < 0 else i for i in wanted]
        return wanted, False

    def request(self, indices: Indices) -> Future[NDArray[Any]]:
        """A future of the frames at ``indices`` (see the class docs)."""
        if self._closed:
            raise FollowError("RandomReader is closed")
        future: Future[NDArray[Any]] = Future()
        try:
            wanted, single = self._resolve(indices)
            if any(index < 0 for index in wanted):
                raise FrameIndexError(f"negative frame index past the start in {indices!r}")
        except (FollowError, ValueError, TypeError) as exc:
            future.set_exception(exc)
            return future
        out = self.reader.empty(len(wanted))
        result = out[0] if single else out
        if not wanted:
            future.set_result(out)
            return future
        future.set_running_or_notify_cancel()
        starts = range(0, len(wanted), self._piece)
        gather = _Gather(future, result, len(starts), self._pending)
        self._pending.add(gather)
        for first in starts:
            piece = wanted[first : first + self._piece]
            self._pool.submit(self._read_piece, gather, piece, out[first : first + len(piece)])
        return future

    def _read_piece(self, gather: _Gather, indices: list[int], out: NDArray[Any]) -> None:
        try:
            self.reader.read_indices(indices, out, parallel=False)
        except BaseException as exc:
            gather.done(exc)
            return
        gather.done(None)

    def read(self, indices: Indices) -> NDArray[Any]:
        """``request(indices).result()``."""
        return self.request(indices).result()

    def get_direct(self, indices: Indices, fn: Callable[[NDArray[Any]], _T]) -> _T:
        """Read ``indices`` and return ``fn(frames)`` (multitables' ``get_direct``)."""
        return fn(self.request(indices).result())

    def close(self, wait: bool = True) -> None:
        """Stop accepting requests; with ``wait`` finish those pending first."""
        self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
        for gather in list(self._pending):
            gather.done(FollowError("RandomReader closed before the request was read"))

    def __enter__(self) -> RandomReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
