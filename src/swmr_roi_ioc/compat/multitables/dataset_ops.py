"""Requests as multitables builds them (``dataset[...]``), evaluated with h5py.

A request is a small picklable description, built in the caller's process
by indexing a dataset proxy and evaluated by a worker process on its own
file handle. Rows of arrays are read by :class:`swmr_roi_ioc.follow.ChunkReader`
(the fast chunk path where the layout allows). Indexing follows PyTables'
rules: a lone ``...`` and fancy indexing PyTables refuses raise ``IndexError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ColOp",
    "CoordOp",
    "IndexOp",
    "OpBase",
    "ReadOpArray",
    "ReadOpBase",
    "ReadOpTable",
    "ReadScalarOpArray",
    "ReadScalarOpTable",
    "RowsOp",
    "SortOp",
    "WhereOp",
    "apply",
]

#: Reads rows ``indices`` of a dataset (the fast path); given by the worker.
RowReader = Callable[[h5py.Dataset, NDArray[np.int64]], NDArray[Any]]


def _is_simple_slice(key: Any) -> bool:
    return (
        isinstance(key, tuple)
        and len(key) > 0
        and isinstance(key[0], slice)
        and all(k is Ellipsis for k in key[1:])
    )


def _is_coords(key: Any) -> bool:
    return isinstance(key, list) or (
        isinstance(key, np.ndarray) and np.issubdtype(key.dtype, np.integer)
    )


class OpBase:
    """A request on the dataset at ``path``; later ``[...]`` apply to its result."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._index: list[Any] | None = None

    def __getitem__(self, key: Any) -> Any:
        self._index = [key] if self._index is None else [*self._index, key]
        return self

    def _then(self, result: Any) -> Any:
        for key in self._index or []:
            result = result[key]
        return result

    def _evaluate(self, ds: h5py.Dataset, rows: RowReader) -> Any:
        raise NotImplementedError


def _rows(ds: h5py.Dataset, start: Any, stop: Any, step: Any) -> NDArray[np.int64]:
    return np.arange(*slice(start, stop, step).indices(int(ds.shape[0])), dtype=np.int64)


def _field(ds: h5py.Dataset, col: str | None) -> None:
    if col is not None and (ds.dtype.names is None or col not in ds.dtype.names):
        raise NameError(f"Specified column name '{col}' not in dataset.")


class IndexOp(OpBase):
    """numpy-style indexing of the whole dataset (as PyTables allows it)."""

    def __init__(self, path: str, key: Any) -> None:
        super().__init__(path)
        self._key = key

    def _evaluate(self, ds: h5py.Dataset, rows: RowReader) -> Any:
        key = self._key
        parts = key if isinstance(key, tuple) else (key,)
        basic = all(isinstance(k, (int, np.integer, slice)) or k is Ellipsis for k in parts)
        if basic:
            return self._then(ds[key])
        if isinstance(key, np.ndarray) and key.dtype == bool and key.shape == ds.shape:
            return self._then(ds[()][key])
        arrays = [np.asarray(k) for k in parts]
        if (
            len(arrays) == ds.ndim
            and all(a.ndim == 1 and np.issubdtype(a.dtype, np.integer) for a in arrays)
            and len({a.size for a in arrays}) == 1
        ):
            return self._then(ds[()][tuple(arrays)])
        raise IndexError(f"PyTables does not support the index {key!r} on {self._path!r}")


class ColOp(OpBase):
    """A column of a table (``table.col(name)`` / ``table[name]``)."""

    def __init__(self, path: str, col: str) -> None:
        super().__init__(path)
        self._col = col

    def __getitem__(self, key: Any) -> Any:
        if self._index is None:
            if isinstance(key, int):
                return ReadScalarOpTable(self._path, self._col, key)
            if isinstance(key, slice):
                return ReadOpTable(self._path, self._col, key.start, key.stop, key.step)
            if _is_simple_slice(key):
                first = key[0]
                return ReadOpTable(self._path, self._col, first.start, first.stop, first.step)
            if _is_coords(key):
                return CoordOp(self._path, self._col, key)
        return super().__getitem__(key)

    def _evaluate(self, ds: h5py.Dataset, rows: RowReader) -> Any:
        _field(ds, self._col)
        return self._then(ds.fields(self._col)[()])


class ReadOpBase(OpBase):
    """Rows ``start:stop:step`` (of one column ``col`` if set)."""

    def __init__(self, path: str, col: str | None, start: Any, stop: Any, step: Any) -> None:
        super().__init__(path)
        self._col = col
        self._start = start
        self._stop = stop
        self._step = step

    def _read(self, ds: h5py.Dataset, rows: RowReader) -> Any:
        _field(ds, self._col)
        data = rows(ds, _rows(ds, self._start, self._stop, self._step))
        return data if self._col is None else data[self._col]

    def _evaluate(self, ds: h5py.Dataset, rows: RowReader) -> Any:
        return self._then(self._read(ds, rows))


class ReadOpTable(ReadOpBase):
    """Rows of a table."""

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str) and self._col is None and self._index is None:
            return ReadOpTable(self._path, key, self._start, self._stop, self._step)
        return super().__getitem__(key)


class ReadOpArray(ReadOpBase):
    """Rows of an array."""


class ReadScalarOpTable(ReadOpTable):
    """One row of a table (one record, or one cell of column ``col``)."""

    def __init__(self, path: str, col: str | None, idx: int) -> None:
        super().__init__(path, col, idx, idx + 1, None)
        self._idx = idx

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str) and self._col is None and self._index is None:
            return ReadScalarOpTable(self._path, key, self._idx)
        return OpBase.__getitem__(self, key)

    def _evaluate(self, ds: h5py.Dataset, rows: RowReader) -> Any:
        return self._then(self._read(ds, rows)[0])


class ReadScalarOpArray(ReadOpArray):
    """One row of an array."""

    def __init__(self, path: str, col: str | None, idx: int) -> None:
        super().__init__(path, col, idx, idx + 1, None)

    def _evaluate(self, ds: h5py.Dataset, rows: RowReader) -> Any:
        return self._then(self._read(ds, rows)[0])


class RowsOp(OpBase):
    """``count`` rows from ``start`` on, wrapping at the end (the streamer's blocks)."""

    def __init__(self, path: str, start: int, count: int, field: str | None = None) -> None:
        super().__init__(path)
        self._start = start
        self._count = count
        self._col = field

    def indices(self, length: int) -> NDArray[np.int64]:
        return (self._start + np.arange(self._count, dtype=np.int64)) % length

    def _evaluate(self, ds: h5py.Dataset, rows: RowReader) -> Any:
        data = rows(ds, self.indices(int(ds.shape[0])))
        return data if self._col is None else data[self._col]


class CoordOp(OpBase):
    """Rows at the coordinates ``coords`` (any order)."""

    def __init__(self, path: str, col: str | None, coords: Any) -> None:
        super().__init__(path)
        self._col = col
        self._coords = coords

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str) and self._col is None and self._index is None:
            return CoordOp(self._path, key, self._coords)
        return super().__getitem__(key)

    def _evaluate(self, ds: h5py.Dataset, rows: RowReader) -> Any:
        _field(ds, self._col)
        data = rows(ds, np.asarray(self._coords, dtype=np.int64).reshape(-1))
        return self._then(data if self._col is None else data[self._col])


class SortOp(OpBase):
    """Rows sorted by column ``sortby`` (stable), then ``start:stop:step``."""

    def __init__(
        self,
        path: str,
        sortby: str,
        checkCSI: bool,  # noqa: N803 - PyTables' name
        col: str | None,
        start: Any,
        stop: Any,
        step: Any,
    ) -> None:
        super().__init__(path)
        self._sortby = sortby
        self._checkCSI = checkCSI
        self._col = col
        self._start = start
        self._stop = stop
        self._step = step

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str) and self._col is None and self._index is None:
            return SortOp(
                self._path, self._sortby, self._checkCSI, key, self._start, self._stop, self._step
            )
        return super().__getitem__(key)

    def _evaluate(self, ds: h5py.Dataset, rows: RowReader) -> Any:
        _field(ds, self._sortby)
        _field(ds, self._col)
        table = ds[()]
        ordered = table[np.argsort(table[self._sortby], kind="stable")]
        ordered = ordered[self._start : self._stop : self._step]
        return self._then(ordered if self._col is None else ordered[self._col])


class WhereOp(OpBase):
    """Rows of ``start:stop:step`` where ``condition`` (a numexpr expression) holds."""

    def __init__(
        self,
        path: str,
        condition: str,
        condvars: dict[str, Any],
        start: Any,
        stop: Any,
        step: Any,
    ) -> None:
        super().__init__(path)
        self._condition = condition
        self._condvars = condvars
        self._start = start
        self._stop = stop
        self._step = step

    def _evaluate(self, ds: h5py.Dataset, rows: RowReader) -> Any:
        try:
            import numexpr  # pyright: ignore[reportMissingImports]
        except ImportError as exc:  # pragma: no cover - numexpr comes with PyTables
            raise RuntimeError("where() needs the numexpr package") from exc
        table = ds[self._start : self._stop : self._step]
        names = table.dtype.names or ()
        variables = {name: table[name] for name in names}
        variables.update(self._condvars)
        mask = numexpr.evaluate(self._condition, local_dict=variables)
        return self._then(table[np.asarray(mask, dtype=bool)])


def apply(op: OpBase, ds: h5py.Dataset, rows: RowReader) -> NDArray[Any]:
    """Evaluate ``op`` on ``ds`` (``rows`` reads rows by index); an array."""
    return np.asarray(op._evaluate(ds, rows))  # noqa: SLF001 - the ops' evaluator
