"""multitables' Reader: random access by worker processes, results in stages."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._stage import Stage, StagePool, stage_of
from ._workers import WorkerPool, dataset_at, open_file
from .dataset_ops import (
    ColOp,
    CoordOp,
    IndexOp,
    OpBase,
    ReadOpArray,
    ReadOpTable,
    ReadScalarOpArray,
    ReadScalarOpTable,
    SortOp,
    WhereOp,
    _is_coords,
    _is_simple_slice,
)
from .request import Request

__all__ = ["ArrayDataset", "Dataset", "Reader", "TableDataset"]


class Dataset:
    """A dataset of the reader's file: index it to build a request."""

    def __init__(self, reader: Reader, path: str, dtype: np.dtype[Any], shape: tuple[int, ...]):
        self._reader = reader
        self._path = path
        self.dtype = dtype
        self.shape = shape

    def _fill_shape(self, shape: int | Sequence[int | None]) -> list[int]:
        dims: list[int | None] = [shape] if isinstance(shape, int) else list(shape)
        dims += [None] * (len(self.shape) - len(dims))
        return [self.shape[i] if d is None or d == -1 else int(d) for i, d in enumerate(dims)]

    def _nbytes(self, shape: int | Sequence[int | None]) -> int:
        return self.dtype.itemsize * math.prod(self._fill_shape(shape))

    def create_stage(self, shape: int | Sequence[int | None]) -> Stage:
        """A stage for results up to ``shape`` (missing dims: the dataset's)."""
        return self._reader._own(Stage(self._nbytes(shape)))  # noqa: SLF001

    def create_stage_pool(self, shape: int | Sequence[int | None], num_stages: int) -> StagePool:
        """``num_stages`` stages of ``shape``; a request takes a free one."""
        return self._reader._own(StagePool(self._nbytes(shape), num_stages))  # noqa: SLF001


class ArrayDataset(Dataset):
    """An array: ``[int]``, ``[slice]`` read rows; other keys index as PyTables does."""

    def read(self, start: Any = None, stop: Any = None, step: Any = None) -> ReadOpArray:
        return ReadOpArray(self._path, None, start, stop, step)

    def __getitem__(self, key: Any) -> OpBase:
        if key is Ellipsis:
            raise IndexError("Pytables does not support a single ellipsis index.")
        if isinstance(key, int):
            return ReadScalarOpArray(self._path, None, key)
        if isinstance(key, slice):
            return ReadOpArray(self._path, None, key.start, key.stop, key.step)
        if _is_simple_slice(key):
            return ReadOpArray(self._path, None, key[0].start, key[0].stop, key[0].step)
        return IndexOp(self._path, key)


class TableDataset(Dataset):
    """A table (compound dataset): rows, columns, ``where``, ``read_sorted``."""

    def col(self, name: str) -> ColOp:
        return ColOp(self._path, name)

    def read(
        self, start: Any = None, stop: Any = None, step: Any = None, field: str | None = None
    ) -> ReadOpTable:
        return ReadOpTable(self._path, field, start, stop, step)

    def read_coordinates(self, coords: Any, field: str | None = None) -> CoordOp:
        return CoordOp(self._path, field, coords)

    def read_sorted(
        self,
        sortby: str,
        checkCSI: bool = False,  # noqa: N803 - PyTables' name
        field: str | None = None,
        start: Any = None,
        stop: Any = None,
        step: Any = None,
    ) -> SortOp:
        return SortOp(self._path, sortby, checkCSI, field, start, stop, step)

    def where(
        self,
        condition: str,
        condvars: dict[str, Any] | None = None,
        start: Any = None,
        stop: Any = None,
        step: Any = None,
    ) -> WhereOp:
        return WhereOp(self._path, condition, condvars or {}, start, stop, step)

    def __getitem__(self, key: Any) -> OpBase:
        if key is Ellipsis:
            raise IndexError("Pytables does not support a single ellipsis index.")
        if isinstance(key, str):
            return self.col(key)
        if isinstance(key, int):
            return ReadScalarOpTable(self._path, None, key)
        if isinstance(key, slice):
            return ReadOpTable(self._path, None, key.start, key.stop, key.step)
        if _is_simple_slice(key):
            return ReadOpTable(self._path, None, key[0].start, key[0].stop, key[0].step)
        if _is_coords(key):
            return CoordOp(self._path, None, key)
        return IndexOp(self._path, key)


class Reader:
    """Random access to ``filename`` by ``n_procs`` worker processes.

    ``reader.get_dataset(path)`` gives a dataset; index it to build a
    request, ``reader.request(op, stage)`` schedules it and returns a
    :class:`~.request.Request`. Close with :meth:`close`.
    """

    def __init__(self, filename: str, n_procs: int = 4, **kw_args: Any) -> None:
        self._filename = str(filename)
        self._pool = WorkerPool(self._filename, n_procs)
        self._owned: list[Stage | StagePool] = []

    def _own(self, stage: Any) -> Any:
        self._owned.append(stage)
        return stage

    @property
    def pids(self) -> list[int]:
        """Process ids of the worker processes."""
        return self._pool.pids

    def get_dataset(self, path: str) -> Dataset:
        """The dataset at ``path`` (an :class:`ArrayDataset` or :class:`TableDataset`)."""
        with open_file(self._filename) as h5file:
            ds = dataset_at(h5file, path)
            dtype, shape = ds.dtype, tuple(int(n) for n in ds.shape)
        cls = TableDataset if dtype.names is not None else ArrayDataset
        return cls(self, path, dtype, shape)

    def request(self, key: OpBase, stage: Stage | StagePool) -> Request:
        """Schedule ``key`` (built by indexing a dataset); waits for a free stage."""
        return self._pool.submit(key, stage_of(stage))

    def close(self, wait: bool = False) -> None:
        """Stop the workers; ``wait`` lets queued requests finish first."""
        self._pool.close(wait=wait)

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close(wait=False)
