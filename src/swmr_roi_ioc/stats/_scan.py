"""Where a frame lands in a 2-D scan map: raster or snake order, or any
order given frame by frame (a scan's own path, e.g. from a scanspec Spec)."""

from collections.abc import Sequence
from typing import cast

import numpy as np
import numpy.typing as npt

from swmr_roi_ioc._errors import SwmrRoiError


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise SwmrRoiError(f"scan {name} must be an integer, got {value!r}")
    if value < 1:
        raise SwmrRoiError(f"scan {name} must be positive, got {value}")
    return int(value)


class ScanGeometry:
    """A (rows, cols) map filled row by row; with ``snake`` odd rows run
    backwards (row 1, 3, ... from the last column to the first).

    With ``order``, frame ``i`` lands in row-major cell ``order[i]`` instead
    (-1: nowhere); frames past the end of ``order`` land nowhere. ``snake``
    is then only descriptive."""

    def __init__(
        self, shape: tuple[int, int], snake: bool, order: npt.ArrayLike | None = None
    ) -> None:
        given = cast(object, shape)  # config may hand over a list: check it
        if not isinstance(given, Sequence) or len(given) != 2:
            raise SwmrRoiError(f"scan shape must be (rows, cols), got {shape!r}")
        self._rows = _positive_int(given[0], "rows")
        self._cols = _positive_int(given[1], "cols")
        self._snake = bool(snake)
        self._order: npt.NDArray[np.int64] | None = None
        if order is not None:
            cells = np.asarray(order)
            if cells.ndim != 1 or cells.dtype.kind not in "iu":
                raise SwmrRoiError("scan order must be a 1-D array of integer cells")
            cells = cells.astype(np.int64)
            if cells.size and (cells.min() < -1 or cells.max() >= self.size):
                raise SwmrRoiError(f"scan order has cells outside a {self._rows}x{self._cols} map")
            cells.setflags(write=False)
            self._order = cells

    @property
    def order(self) -> npt.NDArray[np.int64] | None:
        """The cell of every frame when given frame by frame, else None."""
        return self._order

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def cols(self) -> int:
        return self._cols

    @property
    def size(self) -> int:
        return self._rows * self._cols

    @property
    def snake(self) -> bool:
        return self._snake

    def __repr__(self) -> str:
        given = "" if self._order is None else f", order=<{self._order.size} cells>"
        return f"ScanGeometry(({self._rows}, {self._cols}), snake={self._snake}{given})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScanGeometry):
            return NotImplemented
        if (self._rows, self._cols, self._snake) != (other.rows, other.cols, other.snake):
            return False
        if self._order is None or other.order is None:
            return self._order is None and other.order is None
        return bool(np.array_equal(self._order, other.order))

    def __hash__(self) -> int:
        order = None if self._order is None else self._order.tobytes()
        return hash((self._rows, self._cols, self._snake, order))

    def position(self, index: int) -> tuple[int, int]:
        """(row, col) of the frame with flat acquisition index ``index``."""
        if not 0 <= index < self.size:
            raise SwmrRoiError(f"scan index {index} outside a {self._rows}x{self._cols} scan")
        if self._order is not None:
            cell = int(self._order[index]) if index < self._order.size else -1
            if cell < 0:
                raise SwmrRoiError(f"frame {index} has no place in the scan's map")
            row, col = divmod(cell, self._cols)
            return int(row), int(col)
        row, col = divmod(int(index), self._cols)
        if self._snake and row % 2 == 1:
            col = self._cols - 1 - col
        return row, col

    def cells(self, indices: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Row-major cell (row * cols + col) of each acquisition index; -1 where
        the index is negative or >= size. Same shape as ``indices``."""
        array = np.asarray(indices)
        if array.dtype.kind not in "iu":
            raise SwmrRoiError(f"scan indices must be integers, got {array.dtype}")
        index = array.astype(np.int64)
        if self._order is not None:
            inside = (index >= 0) & (index < self._order.size)
            if not self._order.size:
                return np.full(index.shape, -1, dtype=np.int64)
            return np.where(inside, self._order[np.where(inside, index, 0)], -1).astype(np.int64)
        inside = (index >= 0) & (index < self.size)
        row, col = np.divmod(index, self._cols)
        if self._snake:
            col = np.where(row % 2 == 1, self._cols - 1 - col, col)
        return np.where(inside, row * self._cols + col, -1).astype(np.int64)
