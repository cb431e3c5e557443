"""Flat frame indices <-> positions over the scan dimensions (C order)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ._errors import FrameIndexError

__all__ = ["covered_prefix", "fixed_total", "scan_grid", "unravel"]


def scan_grid(shape: Sequence[int], maxshape: Sequence[int | None]) -> tuple[int, ...]:
    """Sizes that flat indices run over: the max shape where fixed, else the extent.

    areaDetector grows extra dimensions innermost first ((1, 1) -> (1, 2) ...
    -> (1, C) -> (2, C)), so C order over the current extent of unlimited
    dimensions gives every frame the same flat index at every moment.
    """
    return tuple(s if m is None else int(m) for s, m in zip(shape, maxshape, strict=True))


def unravel(index: int, grid: Sequence[int]) -> tuple[int, ...]:
    """Position of flat ``index`` in C order over ``grid`` (first dim unbounded)."""
    if index < 0:
        raise FrameIndexError(f"frame index {index} is negative")
    if not grid:
        if index != 0:
            raise FrameIndexError(f"frame index {index} out of range for one frame")
        return ()
    position: list[int] = []
    rest = index
    for size in reversed(grid[1:]):
        if size <= 0:
            raise FrameIndexError(f"frame index {index}: empty scan dimension")
        rest, here = divmod(rest, size)
        position.append(here)
    position.append(rest)
    position.reverse()
    return tuple(position)


def covered_prefix(shape: Sequence[int], grid: Sequence[int]) -> int:
    """How many flat indices from 0 on lie inside the extent ``shape``.

    ``shape`` (2, 2) over ``grid`` (2, 4) covers only indices 0 and 1: index
    2 is position (0, 2), outside the extent.
    """
    if any(s <= 0 for s in shape):
        return 0
    count = 1
    for dim in range(len(shape) - 1, -1, -1):
        count *= shape[dim]
        if dim > 0 and shape[dim] < grid[dim]:
            return count
    return count


def fixed_total(maxshape: Sequence[int | None]) -> int | None:
    """Number of frames if every scan dimension has a fixed size, else None."""
    if any(m is None for m in maxshape):
        return None
    return math.prod(int(m) for m in maxshape if m is not None)
