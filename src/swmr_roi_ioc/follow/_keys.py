"""Key datasets: a frame is complete when every key is non-zero there."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import h5py
import numpy as np

from ._errors import FollowError
from ._grid import fixed_total, scan_grid
from ._swmr import call_with_retries, maxshape_of, refresh, shared_dataset

__all__ = ["KeyTracker", "get_dataset", "resolve_keys"]

_log = logging.getLogger(__name__)

# Largest number of key values read at once while catching up.
_READ_BLOCK = 1 << 16


def _describe(h5file: h5py.File) -> str:
    try:
        return repr(h5file.filename)
    except Exception:  # closed file
        return "the file"


def _lookup(h5file: h5py.File, path: str, what: str) -> h5py.Dataset | h5py.Group:
    if path not in h5file:
        raise KeyError(path)
    try:
        return shared_dataset(h5file, path)
    except TypeError:
        pass
    obj = h5file[path]
    if not isinstance(obj, h5py.Group):
        raise FollowError(f"{what} {path!r} is neither a dataset nor a group")
    return obj


def get_object(h5file: h5py.File, path: str, what: str) -> h5py.Dataset | h5py.Group:
    """The dataset (shared, see ``shared_dataset``) or group at ``path``.

    Retried briefly (a file under construction can throw for a moment);
    a missing path raises :class:`FollowError` naming ``what``.
    """

    def missing() -> str:
        return f"{what} {path!r} not found in {_describe(h5file)}"

    return call_with_retries(
        lambda: _lookup(h5file, path, what), f"opening {what} {path!r}", missing=missing
    )


def get_dataset(h5file: h5py.File, path: str, what: str) -> h5py.Dataset:
    """Like :func:`get_object`, but the object must be a dataset."""
    obj = get_object(h5file, path, what)
    if not isinstance(obj, h5py.Dataset):
        raise FollowError(f"{what} {path!r} is a group, not a dataset")
    return obj


def resolve_keys(h5file: h5py.File, key_paths: Sequence[str]) -> list[tuple[str, h5py.Dataset]]:
    """Expand key paths: a dataset is a key, a group contributes every dataset in it."""
    keys: list[tuple[str, h5py.Dataset]] = []
    for path in key_paths:
        obj = get_object(h5file, path, "key path")
        if isinstance(obj, h5py.Dataset):
            keys.append((path, obj))
            continue
        names = [
            f"{path.rstrip('/')}/{name}"
            for name in sorted(obj)
            if obj.get(name, getclass=True) is h5py.Dataset
        ]
        if not names:
            raise FollowError(f"key group {path!r} holds no dataset")
        keys.extend((name, get_dataset(h5file, name, "key dataset")) for name in names)
    return keys


class KeyTracker:
    """The contiguous prefix of flat indices where one key dataset is non-zero.

    Flat indices run in C order over the key dataset's shape (fixed max
    shape where set, else the current extent). Each update reads only the
    key values from the first incomplete index on (from the start of its
    row for multi-dimensional keys), never the whole dataset.
    """

    def __init__(self, path: str, dset: h5py.Dataset) -> None:
        if dset.ndim == 0:
            raise FollowError(f"key dataset {path!r} is scalar; keys need a dimension")
        self.path = path
        self.dset = dset
        self.maxshape: tuple[int | None, ...] = maxshape_of(dset)
        self.total = fixed_total(self.maxshape)
        self.done = 0

    @property
    def scan_rank(self) -> int:
        """Rank without trailing dimensions of max size 1 (as swmr_tools)."""
        rank = len(self.maxshape)
        while rank > 1 and self.maxshape[rank - 1] == 1:
            rank -= 1
        return rank

    def update(self) -> int:
        """Refresh the key dataset and return its complete prefix length."""
        refresh(self.dset)
        shape = tuple(self.dset.shape)
        grid = scan_grid(shape, self.maxshape)
        inner = math.prod(grid[1:])
        if inner == 0:
            return self.done
        while True:
            row = self.done // inner
            if row >= shape[0]:
                return self.done
            rows = max(1, _READ_BLOCK // inner)
            stop = min(shape[0], row + rows)
            values = np.asarray(self.dset[row:stop])
            if values.shape[1:] != grid[1:]:
                padded = np.zeros((stop - row, *grid[1:]), dtype=values.dtype)
                padded[tuple(slice(0, n) for n in values.shape)] = values
                values = padded
            tail = values.reshape(-1)[self.done - row * inner :]
            zeros = np.flatnonzero(tail == 0)
            if zeros.size:
                self.done += int(zeros[0])
                return self.done
            self.done += int(tail.size)
            if stop >= shape[0]:
                return self.done
