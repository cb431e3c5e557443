"""Integer frames' ROI statistics in one compiled pass (numba, no GIL held).

The row edges of every region (and of its background bands) cut the frame
into horizontal bands; its column edges cut the columns into segments. For
each frame the kernel reads every row once into per-column accumulators
(sum, minimum, maximum), reduces them to per-band segment tables at each
band's end, and answers every region from those tables. So 64 ROIs cost
about what the whole frame costs alone, and all of it runs without the GIL:
the reader and other threads keep going meanwhile.

Column sums of ``uint8`` frames accumulate in ``uint16`` for at most 257 rows
(``uint16`` frames: ``uint32``, 65537 rows), the bands are cut to that height,
and the segment tables add in ``uint64`` (signed frames: ``int64``). Every sum
is exact integer arithmetic, so the results are bit-identical to
NDPluginROIStat's (and to :mod:`._roi`'s numpy path) in any order.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from swmr_roi_ioc.stats import _numba_cache
from swmr_roi_ioc.stats._bands import background_rects

_numba_cache.configure()

import numba  # noqa: E402  (NUMBA_CACHE_DIR must be set before numba reads it)
from numba.core import config as _numba_config  # noqa: E402

if os.environ.get("NUMBA_CACHE_DIR") and not getattr(_numba_config, "CACHE_DIR", ""):
    # numba was imported before us and read the variable unset
    setattr(_numba_config, "CACHE_DIR", os.environ["NUMBA_CACHE_DIR"])  # noqa: B010

# frame dtype -> (column accumulator dtype, most rows per band without overflow)
_NARROW: dict[np.dtype[Any], tuple[type[np.integer[Any]], int]] = {
    np.dtype(np.uint8): (np.uint16, 257),
    np.dtype(np.uint16): (np.uint32, 65537),
}


def supported(dtype: np.dtype[Any]) -> bool:
    """The kernel handles this frame dtype (native-order integers)."""
    return dtype.kind in "iu" and dtype.isnative and dtype.itemsize <= 8


@numba.njit(nogil=True, cache=True)
def _kernel(  # pragma: no cover - compiled; tested through compute_stats
    frames: Any,
    row_edges: Any,
    col_edges: Any,
    regions: Any,
    backgrounds: Any,
    colsum: Any,
    acc: Any,
    out: Any,
) -> None:
    """Fill ``out[r, :, f]`` (total, net, min, max, mean) of region r, frame f.

    regions: (R, 7) int64 rows: first band, end band, first segment, end
    segment, pixel count, background pixel count, background rectangles
    end index into ``backgrounds`` (which hold first band, end band, first
    segment, end segment, from the previous region's end index).
    colsum: (W,) column accumulator; acc: (1,) of the table accumulator dtype.
    """
    n_frames, _, width = frames.shape
    n_bands = len(row_edges) - 1
    n_segs = len(col_edges) - 1
    n_regions = regions.shape[0]
    segsum = np.zeros((n_bands, n_segs), acc.dtype)
    segmin = np.empty((n_bands, n_segs), frames.dtype)
    segmax = np.empty((n_bands, n_segs), frames.dtype)
    colmin = np.empty(width, frames.dtype)
    colmax = np.empty(width, frames.dtype)
    total = np.zeros(1, acc.dtype)
    bgd = np.zeros(1, acc.dtype)
    for f in range(n_frames):
        frame = frames[f]
        for b in range(n_bands):
            first = frame[row_edges[b]]
            for c in range(width):
                value = first[c]
                colsum[c] = value
                colmin[c] = value
                colmax[c] = value
            for r in range(row_edges[b] + 1, row_edges[b + 1]):
                row = frame[r]
                for c in range(width):
                    value = row[c]
                    colsum[c] += value
                    colmin[c] = min(colmin[c], value)
                    colmax[c] = max(colmax[c], value)
            for s in range(n_segs):
                c0 = col_edges[s]
                segsum[b, s] = colsum[c0]
                low = colmin[c0]
                high = colmax[c0]
                for c in range(c0 + 1, col_edges[s + 1]):
                    segsum[b, s] += colsum[c]
                    low = min(low, colmin[c])
                    high = max(high, colmax[c])
                segmin[b, s] = low
                segmax[b, s] = high
        bg_first = 0
        for k in range(n_regions):
            j0, j1, k0, k1 = regions[k, 0], regions[k, 1], regions[k, 2], regions[k, 3]
            low = segmin[j0, k0]
            high = segmax[j0, k0]
            total[0] = 0
            for j in range(j0, j1):
                for s in range(k0, k1):
                    total[0] += segsum[j, s]
                    low = min(low, segmin[j, s])
                    high = max(high, segmax[j, s])
            value = float(total[0])
            out[k, 0, f] = value
            out[k, 2, f] = float(low)
            out[k, 3, f] = float(high)
            out[k, 4, f] = value / float(regions[k, 4])
            bg_end = regions[k, 6]
            if bg_end > bg_first:
                bgd[0] = 0
                for i in range(bg_first, bg_end):
                    for j in range(backgrounds[i, 0], backgrounds[i, 1]):
                        for s in range(backgrounds[i, 2], backgrounds[i, 3]):
                            bgd[0] += segsum[j, s]
                estimate = float(bgd[0]) / regions[k, 5] * regions[k, 4]
                out[k, 1, f] = value - estimate
            else:
                out[k, 1, f] = value
            bg_first = bg_end


def _cuts(edges: set[int], end: int, max_step: int) -> list[int]:
    """Sorted edges from 0 to ``end``, no step longer than ``max_step``."""
    cuts = sorted(e for e in edges | {0, end} if 0 <= e <= end)
    out = [cuts[0]]
    for edge in cuts[1:]:
        while edge - out[-1] > max_step:
            out.append(out[-1] + max_step)
        out.append(edge)
    return out


Region = tuple[int, int, int, int, int]  # x, y, width, height, background_width (clamped)


@functools.lru_cache(maxsize=64)
def _plan(
    regions: tuple[Region, ...], height: int, width: int, max_rows: int
) -> tuple[npt.NDArray[np.int64], ...]:
    """The kernel's tables for clamped regions on an H x W frame (cached: the
    same ROIs come back frame after frame)."""
    row_set: set[int] = set()
    col_set: set[int] = set()
    rects: list[tuple[tuple[int, int, int, int], list[tuple[int, int, int, int]]]] = []
    for x, y, w, h, bgd in regions:
        background = background_rects(x, y, w, h, bgd)
        rects.append(((y, y + h, x, x + w), background))
        for r0, r1, c0, c1 in [rects[-1][0], *background]:
            row_set.update((r0, r1))
            col_set.update((c0, c1))
    rows = _cuts(row_set, height, max_rows)
    cols = _cuts(col_set, width, width)
    row_index = {edge: i for i, edge in enumerate(rows)}
    col_index = {edge: i for i, edge in enumerate(cols)}

    def indices(rect: tuple[int, int, int, int]) -> list[int]:
        r0, r1, c0, c1 = rect
        return [row_index[r0], row_index[r1], col_index[c0], col_index[c1]]

    table: list[list[int]] = []
    bg_table: list[list[int]] = []
    for (r0, r1, c0, c1), background in rects:
        n_bgd = sum((b1 - b0) * (d1 - d0) for b0, b1, d0, d1 in background)
        bg_table += [indices(rect) for rect in background]
        table.append([*indices((r0, r1, c0, c1)), (r1 - r0) * (c1 - c0), n_bgd, len(bg_table)])
    arrays = (
        np.array(rows, dtype=np.int64),
        np.array(cols, dtype=np.int64),
        np.array(table, dtype=np.int64).reshape(-1, 7),
        np.array(bg_table, dtype=np.int64).reshape(-1, 4),
    )
    for array in arrays:
        array.flags.writeable = False
    return arrays


def kernel_stats(frames: npt.NDArray[Any], regions: Sequence[Region]) -> npt.NDArray[np.float64]:
    """(len(regions), 5, n) float64: total, net, min, max, mean of every
    clamped region (x, y, width, height, background_width) of each frame."""
    n, height, width = frames.shape
    out = np.empty((len(regions), 5, n), dtype=np.float64)
    if n == 0 or not regions:
        return out
    partial, max_rows = _NARROW.get(frames.dtype, (None, height))
    acc_dtype = np.int64 if frames.dtype.kind == "i" else np.uint64
    rows, cols, table, backgrounds = _plan(tuple(regions), height, width, max_rows)
    colsum = np.empty(width, dtype=partial or acc_dtype)
    _kernel(frames, rows, cols, table, backgrounds, colsum, np.zeros(1, acc_dtype), out)
    return out
