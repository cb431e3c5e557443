"""KeyFollower: yield each complete frame index of a file being written."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import h5py
import numpy as np

from ._errors import FollowError
from ._extent import ExtentTracker
from ._keys import KeyTracker, get_dataset, resolve_keys
from ._swmr import call_with_retries, refresh

__all__ = ["KeyFollower"]

_log = logging.getLogger(__name__)

# Idle polls back off from poll_interval up to this many seconds.
_MAX_IDLE_SLEEP = 0.05
_BACKOFF_FACTOR = 1.5


class _Wait:
    """When to poll again, or stop, while no new frame is complete."""

    def __init__(self, timeout: float, interval: float) -> None:
        self._deadline = time.monotonic() + timeout
        self._first = interval
        self._interval = interval
        self._max = max(interval, _MAX_IDLE_SLEEP)
        self._last_poll_done = False

    def delay(self, *, exhausted: bool, finished: bool) -> float | None:
        """Seconds to sleep before the next poll, or None to stop."""
        if exhausted:
            return None
        if finished:
            if self._last_poll_done:
                return None
            self._last_poll_done = True
            return self._first
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            return None
        delay = min(self._interval, remaining)
        self._interval = min(self._interval * _BACKOFF_FACTOR, self._max)
        return delay


class KeyFollower:
    """Iterator over the flat indices of complete frames, in order, from 0.

    A frame is complete when every key dataset is non-zero at its flat index
    (C order over the key dataset's shape) and, for ``dataset_paths``, when
    the data dataset's extent covers it and its chunk is written. With both,
    the smaller count wins; with no keys, the data datasets alone decide.

    ``key_paths`` entries may be datasets or groups (every dataset in a group
    is a key). Iteration (``for``, ``next()``, ``async for``) waits for new
    frames, polling every ``poll_interval`` s (backing off to 50 ms while
    idle), and stops when no new frame came for ``timeout`` s, when
    ``finished_dataset`` reads non-zero (after one last poll, so the final
    keys are not missed), or at once when every index of datasets that
    cannot grow (max shape fixed) is complete.

    With ``keys_decide=False`` (and ``dataset_paths``) the data datasets alone
    decide and the keys only confirm: areaDetector flushes its attribute
    datasets every NDAttributeChunk frames, so they can lag the data by
    thousands of frames. :attr:`keys_complete` and :attr:`extent_complete`
    say how far each has come.

    Example::

        with h5py.File("scan.h5", "r", swmr=True) as f:
            for index in KeyFollower(f, ["/entry/keys"], timeout=5):
                ...
    """

    def __init__(
        self,
        h5file: h5py.File,
        key_paths: Sequence[str],
        timeout: float = 10.0,
        finished_dataset: str | None = None,
        *,
        dataset_paths: Sequence[str] = (),
        scan_rank: int | None = None,
        poll_interval: float = 0.005,
        keys_decide: bool = True,
    ) -> None:
        if isinstance(key_paths, str):
            key_paths = [key_paths]
        if isinstance(dataset_paths, str):
            dataset_paths = [dataset_paths]
        self.h5file: h5py.File | None = h5file
        self.timeout = float(timeout)
        self.poll_interval = float(poll_interval)
        self.finished_dataset = finished_dataset
        self._keys = [KeyTracker(p, d) for p, d in resolve_keys(h5file, key_paths)]
        self._data = [
            ExtentTracker(p, get_dataset(h5file, p, "dataset"), scan_rank) for p in dataset_paths
        ]
        if not self._keys and not self._data:
            raise FollowError("nothing to follow: give key_paths or dataset_paths")
        self._finished_dset = (
            None
            if finished_dataset is None
            else get_dataset(h5file, finished_dataset, "finished dataset")
        )
        self._setup(keys_decide)

    @classmethod
    def of_datasets(
        cls,
        key_datasets: Sequence[h5py.Dataset],
        timeout: float = 10.0,
        finished_dataset: h5py.Dataset | None = None,
        *,
        data_datasets: Sequence[h5py.Dataset] = (),
        scan_rank: int | None = None,
        poll_interval: float = 0.005,
        keys_decide: bool = True,
    ) -> KeyFollower:
        """A follower of dataset objects already open (no file, no paths).

        For callers holding their own handles (swmr_tools' 0.8+ interface):
        the datasets are used as given, never opened again. Any object with
        h5py's dataset interface (``shape``, ``maxshape``, slicing,
        ``refresh()``) will do.
        """
        self = cls.__new__(cls)
        self.h5file = None
        self.timeout = float(timeout)
        self.poll_interval = float(poll_interval)
        self.finished_dataset = None if finished_dataset is None else _name(finished_dataset)
        self._keys = [KeyTracker(_name(d), d) for d in key_datasets]
        self._data = [ExtentTracker(_name(d), d, scan_rank) for d in data_datasets]
        if not self._keys and not self._data:
            raise FollowError("nothing to follow: give key datasets or data datasets")
        self._finished_dset = finished_dataset
        self._setup(keys_decide)
        return self

    def _setup(self, keys_decide: bool) -> None:
        totals = [t.total for t in (*self._keys, *self._data) if t.total is not None]
        self._total: int | None = min(totals) if totals else None
        first = self._data[0] if self._data else self._keys[0]
        #: Number of scan dimensions (data datasets first, else the keys).
        self.scan_rank: int = first.scan_rank
        #: Max shape of the scan dimensions (None where unlimited).
        self.maxshape: tuple[int | None, ...] = first.maxshape[: self.scan_rank]
        #: Complete frames at the last :meth:`poll`.
        self.complete = 0
        #: The keys decide completeness (else the data's extent, keys confirm).
        self.keys_decide = keys_decide or not self._data
        #: Frames every key marks complete, and frames the data's extent covers
        #: (written chunks), at the last poll; None without keys / data datasets.
        self.keys_complete: int | None = None
        self.extent_complete: int | None = None
        #: True once ``finished_dataset`` read non-zero or a fixed-size scan is done.
        self.finished = False
        #: True once ``finished_dataset`` read non-zero (a finished scan stays
        #: finished, also across :meth:`reset`).
        self.finished_flag = False
        self._warned_finished_size = False
        self._next = 0

    # -- polling ----------------------------------------------------------

    def poll(self) -> int:
        """Refresh every followed dataset; return the number of complete frames.

        Non-blocking and cheap: only key values past the last complete index
        are read. Transient HDF5 errors are retried briefly; a vanished
        dataset raises :class:`FollowError`.
        """
        finished = self.check_finished()
        counts = [
            call_with_retries(t.update, f"polling {t.path!r}", missing=self._missing(t.path))
            for t in (*self._keys, *self._data)
        ]
        keys, data = counts[: len(self._keys)], counts[len(self._keys) :]
        self.keys_complete = min(keys) if keys else None
        self.extent_complete = min(data) if data else None
        deciding = counts if self.keys_decide else data
        complete = max(self.complete, min(deciding))
        if complete != self.complete:
            _log.debug("complete frames: %d -> %d", self.complete, complete)
        self.complete = complete
        if finished or self._exhausted():
            self.finished = True
        return complete

    def _missing(self, path: str) -> _MissingCheck | None:
        return None if self.h5file is None else _MissingCheck(self.h5file, path)

    def check_finished(self) -> bool:
        """Read ``finished_dataset`` now; True once it has read non-zero.

        The flag is sticky: a scan once finished stays finished. A finished
        dataset must hold exactly one value: one of any other size is
        ignored, with a warning in the log (as swmr_tools does).
        """
        dset = self._finished_dset
        if dset is None or self.finished_flag:
            return self.finished_flag

        def read() -> bool:
            refresh(dset)
            if dset.size != 1:
                if not self._warned_finished_size:
                    self._warned_finished_size = True
                    _log.warning(
                        "finished dataset %r holds %d values, not 1: ignored",
                        self.finished_dataset,
                        dset.size,
                    )
                return False
            return bool(np.asarray(dset[()]).reshape(-1)[0] != 0)

        assert self.finished_dataset is not None
        self.finished_flag = call_with_retries(
            read,
            f"reading finished dataset {self.finished_dataset!r}",
            missing=self._missing(self.finished_dataset),
        )
        return self.finished_flag

    def _exhausted(self) -> bool:
        return self._total is not None and self.complete >= self._total

    # -- iteration ---------------------------------------------------------

    def reset(self) -> None:
        """Start iterating again from index 0, as a new follower would.

        The keys (and data extents) are read again from the start at the next
        poll, so keys set back to 0 count as incomplete; only a finished flag
        already seen is kept (see :meth:`check_finished`).
        """
        self._next = 0
        self.complete = 0
        for tracker in (*self._keys, *self._data):
            tracker.done = 0
        self.finished = self.finished_flag

    def _take(self) -> int | None:
        if self._next < self.complete:
            index = self._next
            self._next += 1
            return index
        return None

    def __iter__(self) -> KeyFollower:
        return self

    def __next__(self) -> int:
        index = self._take()
        if index is not None:
            return index
        wait = _Wait(self.timeout, self.poll_interval)
        while True:
            self.poll()
            index = self._take()
            if index is not None:
                return index
            delay = wait.delay(exhausted=self._exhausted(), finished=self.finished)
            if delay is None:
                raise StopIteration
            time.sleep(delay)

    def __aiter__(self) -> KeyFollower:
        return self

    async def __anext__(self) -> int:
        index = self._take()
        if index is not None:
            return index
        wait = _Wait(self.timeout, self.poll_interval)
        while True:
            await asyncio.to_thread(self.poll)
            index = self._take()
            if index is not None:
                return index
            delay = wait.delay(exhausted=self._exhausted(), finished=self.finished)
            if delay is None:
                raise StopAsyncIteration
            await asyncio.sleep(delay)


def _name(dset: h5py.Dataset) -> str:
    name = getattr(dset, "name", None)
    return name if isinstance(name, str) else repr(dset)


class _MissingCheck:
    """Callable telling whether ``path`` vanished from the file (for errors)."""

    def __init__(self, h5file: h5py.File, path: str) -> None:
        self._h5file = h5file
        self._path = path

    def __call__(self) -> str | None:
        try:
            if self._path in self._h5file:
                return None
            name = self._h5file.filename
        except Exception:
            return None
        return f"{self._path!r} vanished from {name!r}"
