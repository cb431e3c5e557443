"""swmr_tools' KeyFollower and RowKeyFollower on :class:`swmr_roi_ioc.follow.KeyFollower`."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from ...follow import FollowError
from ...follow import KeyFollower as _Follower
from ._forms import bind, is_legacy, key_datasets_of

__all__ = ["KeyFollower", "RowKeyFollower"]

_log = logging.getLogger(__name__)


def _trimmed_rank(maxshape: Sequence[int | None]) -> int:
    """Rank without trailing dimensions of max size 1 (swmr_tools' scan rank)."""
    rank = len(maxshape)
    while rank > 0 and maxshape[rank - 1] == 1:
        rank -= 1
    return rank


def _v09(key_datasets: Any, timeout: float = 10, finished_dataset: Any = None) -> None:
    """swmr_tools 0.8+: key datasets."""


def _v07(h5file: Any, keypaths: Any, timeout: float = 10, finished_dataset: Any = None) -> None:
    """swmr_tools 0.7: an open file and key paths."""


class KeyFollower:
    """Iterator over the flat (0-based) index of every complete frame.

    swmr_tools 0.9's interface: ``KeyFollower(key_datasets, timeout=10,
    finished_dataset=None)`` with h5py datasets (or any object with their
    interface); the 0.7 form ``KeyFollower(h5file, key_paths, timeout,
    finished_dataset_path)`` is accepted too. A frame is complete where every
    key is non-zero. Iteration stops ``timeout`` s after the last new frame,
    after the finished dataset reads non-zero, or at once when every frame of
    fixed-size keys is complete (swmr_tools waits for the timeout there).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if is_legacy(args, kwargs):
            a = bind(_v07, args, kwargs)
            keys = key_datasets_of(a["h5file"], a["keypaths"])
            finished_dataset = a["finished_dataset"]
            if isinstance(finished_dataset, str):
                finished_dataset = a["h5file"][finished_dataset]
        else:
            a = bind(_v09, args, kwargs)
            keys = list(a["key_datasets"])
            finished_dataset = a["finished_dataset"]
        timeout = a["timeout"]
        self.key_datasets = keys
        self.timeout = timeout
        self.finished_dataset = finished_dataset
        self.current_key = -1
        self.current_max = -1
        self.timed_out = False
        self.finished_set = False
        self.scan_rank = -1
        self.maxshape: Any = None
        self._checked = False
        self._follower = _Follower.of_datasets(
            keys, timeout=float(timeout), finished_dataset=finished_dataset
        )

    @property
    def follower(self) -> _Follower:
        """The :class:`swmr_roi_ioc.follow.KeyFollower` doing the work."""
        return self._follower

    def check_datasets(self) -> None:
        """Check the keys share one scan rank; set ``scan_rank`` and ``maxshape``."""
        if self._checked:
            return
        rank = -1
        for key in self.key_datasets:
            maxshape: Any = key.maxshape
            r = _trimmed_rank(maxshape)
            if rank == -1:
                rank = r
            elif r != rank:
                raise RuntimeError("Key datasets must have the same rank!")
            if self.maxshape is None:
                self.maxshape = maxshape[:rank]
            elif list(self.maxshape) != list(maxshape[:rank]):
                _log.warning("Max shape not consistent in keys")
        self.scan_rank = rank
        self._checked = True

    def __iter__(self) -> KeyFollower:
        return self

    def __next__(self) -> int:
        try:
            index = next(self._follower)
        except StopIteration:
            self._stopped()
            raise
        except FollowError as exc:
            raise RuntimeError(str(exc)) from exc
        self.current_key = index
        self.current_max = max(self.current_max, self._follower.complete - 1)
        return index

    def _stopped(self) -> None:
        self.current_max = self._follower.complete - 1
        self.finished_set = self._follower.finished_flag
        # ended without the finished flag: by the timeout, or because every
        # frame of a fixed-size scan is complete (swmr_tools times out there)
        self.timed_out = not self.finished_set

    def reset(self) -> None:
        """Start again from index 0, reading the keys again."""
        self._follower.reset()
        self.current_key = -1
        self.current_max = -1
        self.timed_out = False

    def is_finished(self) -> bool:
        """True once iteration has caught up and the scan ended (timeout or flag).

        As swmr_tools: the first call that sees the finished flag sets
        ``finished_set`` and still returns False.
        """
        if self.current_key != self.current_max:
            return False
        if self.timed_out:
            return True
        if not self.finished_set:
            self.finished_set = self._follower.check_finished()
            return False
        return True

    def get_current_max(self) -> int:
        """The highest complete index seen (-1 before any)."""
        return self.current_max

    def refresh(self) -> bool:
        """Poll the keys now; True if the highest complete index changed."""
        old = self.current_max
        self.current_max = self._follower.poll() - 1
        return self.current_max != old

    def are_keys_complete(self) -> bool:
        """True when every index of the keys' max shape is complete."""
        self.check_datasets()
        if self.maxshape is None or any(m is None for m in self.maxshape):
            return False
        return self.current_max == math.prod(self.maxshape) - 1


class RowKeyFollower:
    """Iterator over the last index of every complete row (``row_size`` frames)."""

    def __init__(
        self,
        key_datasets: Any,
        timeout: float = 10,
        finished_dataset: Any = None,
        row_size: int | None = None,
    ) -> None:
        self.inner_key_follower = KeyFollower(key_datasets, timeout, finished_dataset)
        self.row_size = row_size
        self.scan_rank = -1
        self.maxshape: Any = None

    def check_datasets(self) -> None:
        """As :meth:`KeyFollower.check_datasets`; the row size defaults to the fast axis."""
        inner = self.inner_key_follower
        inner.check_datasets()
        self.scan_rank = inner.scan_rank
        self.maxshape = inner.maxshape
        if self.row_size is None:
            size = inner.maxshape[-1]
            if size is None:
                raise RuntimeError("Row size must be defined if fastest max shape dimension is -1")
            self.row_size = int(size)

    def __iter__(self) -> RowKeyFollower:
        return self

    def __next__(self) -> int:
        if self.row_size is None:
            self.check_datasets()
        assert self.row_size is not None
        index = -1
        for _ in range(self.row_size):
            index = next(self.inner_key_follower)
        return index

    def reset(self) -> None:
        """Start again from index 0."""
        self.inner_key_follower.reset()
