"""swmr_tools' ``chunk_utils``: write chunks of a point stack onto a scan grid.

Chunks of ``n`` consecutive scan points (as :class:`ChunkSource` yields
them) are written into an output of shape ``(*scan_shape, *frame)`` whose
fastest scan dimension is split into blocks aligned to ``n`` (or into whole
rows when a row is shorter than a chunk), so every write covers whole
output chunks. A block is written once all its points are in the current
chunk or the one before it; :func:`get_slice_structure` plans the writes of
one chunk, :func:`write_data` performs them. Snake scans run every other
row backwards; the output is always written with step 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import utils

__all__ = [
    "ChunkSliceCollection",
    "SliceInOut",
    "SliceSize",
    "get_slice_structure",
    "write_data",
]


class SliceInOut:
    """A slice of the input chunk and where it goes in the output."""

    def __init__(self, input: slice, output: slice) -> None:  # noqa: A002 - upstream's names
        self.input = input
        self.output = output


class SliceSize:
    """An intermediate block: its slice of the output row and its length."""

    def __init__(self, slice: slice, size: int) -> None:  # noqa: A002 - upstream's names
        self.slice = slice
        self.size = size


class ChunkSliceCollection:
    """One output block to write.

    ``type`` is ``"current"`` (all its points in the current chunk),
    ``"last"`` (all in the previous chunk) or ``"combined"`` (both: the two
    parts are assembled in an intermediate block of ``intermediate.size``
    written to ``intermediate.slice``). ``position`` is the scan position of
    the block's row (its last entry is replaced by the output slice).
    """

    types = ("current", "last", "combined")

    def __init__(self, type: str, position: Sequence[int]) -> None:  # noqa: A002
        if type not in ChunkSliceCollection.types:
            raise RuntimeError(f"{type} not in {ChunkSliceCollection.types}")
        self.type = type
        self.position = tuple(position)
        self.current: SliceInOut | None = None
        self.last: SliceInOut | None = None
        self.intermediate: SliceSize | None = None

    def __repr__(self) -> str:
        parts = [f"Type {self.type}, position {self.position}"]
        for name in ("last", "current"):
            part = getattr(self, name)
            if part is not None:
                parts.append(f"{name}: {part.input} -> {part.output}")
        if self.intermediate is not None:
            parts.append(f"intermediate: {self.intermediate.slice} ({self.intermediate.size})")
        return " ".join(parts)


def _run(offsets: list[int]) -> slice:
    """A slice picking ``offsets`` (consecutive, step +1 or -1) from an array."""
    first, last = offsets[0], offsets[-1]
    if len(offsets) == 1 or last > first:
        return slice(first, last + 1)
    return slice(first, last - 1 if last > 0 else None, -1)


def _block_columns(width: int, n: int) -> list[tuple[int, int]]:
    """Output blocks ``[start, stop)`` of one row: aligned to ``n``, or the whole row."""
    if n >= width:
        return [(0, width)]
    return [(start, min(start + n, width)) for start in range(0, width, n)]


def get_slice_structure(
    index: int, n_points_chunk: int, scan_shape: Sequence[int], snake: bool
) -> list[ChunkSliceCollection]:
    """Plan the writes of the chunk of points ``[index, index + n_points_chunk)``.

    Every output block (see the module docs) whose points all lie in this
    chunk or the previous one is written; a block spanning both is
    assembled from the two. Blocks lying wholly in the previous chunk were
    written with it too: writing them again with this chunk lets a snake
    scan's short end-of-row block follow the points after it.
    """
    shape = [int(s) for s in scan_shape]
    total = math.prod(shape)
    width = shape[-1]
    n = int(n_points_chunk)
    lo = max(0, index - n)
    hi = min(total, index + n)
    out: list[ChunkSliceCollection] = []
    for row in range(lo // width, (hi - 1) // width + 1):
        first_index = row * width
        row_position = utils.get_position(first_index, shape, len(shape))
        backwards = False
        if snake:
            row_position, backwards = utils.get_position_snake_row(first_index, shape, len(shape))
            if not backwards and len(shape) > 1:
                row_position = (*row_position[:-1], 0)
        for start, stop in _block_columns(width, n):
            # flat index of each output column of the block
            cols = range(start, stop)
            flat = [first_index + (width - 1 - c if backwards else c) for c in cols]
            if min(flat) < lo or max(flat) >= hi:
                continue
            out.append(_collection(row_position, flat, start, stop, index, n))
    return out


def _collection(
    position: Sequence[int], flat: list[int], start: int, stop: int, index: int, n: int
) -> ChunkSliceCollection:
    in_current = [f >= index for f in flat]
    if all(in_current):
        cc = ChunkSliceCollection("current", position)
        cc.current = SliceInOut(_run([f - index for f in flat]), slice(start, stop))
        return cc
    previous = index - n
    if not any(in_current):
        cc = ChunkSliceCollection("last", position)
        cc.last = SliceInOut(_run([f - previous for f in flat]), slice(start, stop))
        return cc
    cc = ChunkSliceCollection("combined", position)
    cols = list(range(stop - start))
    last_cols = [c for c, cur in zip(cols, in_current, strict=True) if not cur]
    cur_cols = [c for c, cur in zip(cols, in_current, strict=True) if cur]
    cc.last = SliceInOut(_run([flat[c] - previous for c in last_cols]), _run(last_cols))
    cc.current = SliceInOut(_run([flat[c] - index for c in cur_cols]), _run(cur_cols))
    cc.intermediate = SliceSize(slice(start, stop, 1), stop - start)
    return cc


def _take(data: NDArray[Any], part: slice) -> NDArray[Any]:
    return data[(part, *([slice(None)] * (data.ndim - 1)))]


def write_data(
    slice_structure: Sequence[ChunkSliceCollection],
    data: NDArray[Any],
    last_data: NDArray[Any] | None,
    output: Any,
) -> None:
    """Write the planned blocks of ``data`` (and ``last_data``) into ``output``.

    ``data`` and ``last_data`` hold one point per entry along their first
    axis; ``output`` is ``(*scan_shape, *point_shape)`` (a numpy array or
    an h5py dataset).
    """
    rank = data.ndim
    for s in slice_structure:
        if s.type == "current":
            assert s.current is not None
            block = _take(data, s.current.input)
            target = s.current.output
        elif s.type == "last":
            assert s.last is not None and last_data is not None
            block = _take(last_data, s.last.input)
            target = s.last.output
        else:
            assert s.current is not None and s.last is not None and s.intermediate is not None
            assert last_data is not None
            block = np.zeros((s.intermediate.size, *data.shape[1:]), dtype=data.dtype)
            block[s.last.output] = _take(last_data, s.last.input)
            block[s.current.output] = _take(data, s.current.input)
            target = s.intermediate.slice
        where: list[slice] = [slice(p, p + 1) for p in s.position]
        where += [slice(0, None)] * (len(output.shape) - len(where))
        where[-rank] = target
        output[tuple(where)] = block
