"""Many ROIs in one pass: per-band column sums, minima and maxima.

Every distinct top or bottom edge of a region (and of its background bands)
cuts the frame into horizontal bands. Every distinct left or right edge cuts
the columns into segments. One pass over the frame computes, for each band,
the sum, minimum and maximum of every column, reduced to each segment. A
prefix sum over bands and segments of those sums (a summed-area table at
band x segment resolution) gives any region's total in four lookups, and a
region's minimum and maximum are reductions of its bands' segment extremes:
a few dozen values. So 64 ROIs cost about what the whole frame costs alone.

Integer frames only: their sums are exact in any order, so the results are
bit-identical to the direct method. Float sums depend on the order of the
additions, and float frames keep the direct method.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from swmr_roi_ioc.stats import _sums


def background_rects(
    x: int, y: int, width: int, height: int, background_width: int
) -> list[tuple[int, int, int, int]]:
    """NDPluginROIStat's background bands of a clamped ROI as (r0, r1, c0, c1):
    top and bottom (full width), then left and right between them. They
    overlap, and count twice, when the border is wider than half the ROI."""
    if background_width <= 0:
        return []
    bgd_x = min(background_width, width)
    bgd_y = min(background_width, height)
    x0, x1, y0, y1 = x, x + width, y, y + height
    rects = [(y0, y0 + bgd_y, x0, x1), (y1 - bgd_y, y1, x0, x1)]
    if y1 - bgd_y > y0 + bgd_y:
        rects.append((y0 + bgd_y, y1 - bgd_y, x0, x0 + bgd_x))
        rects.append((y0 + bgd_y, y1 - bgd_y, x1 - bgd_x, x1))
    return rects


def _bands(edges: set[int], height: int, max_rows: int) -> list[int]:
    """Sorted band edges from 0 to ``height``, no band taller than ``max_rows``."""
    cuts = sorted(e for e in edges | {0, height} if 0 <= e <= height)
    out = [cuts[0]]
    for edge in cuts[1:]:
        while edge - out[-1] > max_rows:
            out.append(out[-1] + max_rows)
        out.append(edge)
    return out


class BandTables:
    """Per-band column tables of an integer (n, H, W) block, for region queries.

    Every region queried must have its top and bottom among ``row_edges`` and
    its left and right among ``col_edges`` (a background band's edges too).
    """

    def __init__(self, frames: npt.NDArray[Any], row_edges: set[int], col_edges: set[int]) -> None:
        n, height, width = frames.shape
        kind = frames.dtype.kind
        if kind not in "iu":
            raise TypeError(f"band tables need integer frames, got {frames.dtype}")
        partial, max_rows = _sums.ROW_BLOCKS.get(frames.dtype, (None, height))
        acc = np.int64 if kind == "i" else np.uint64
        rows = _bands(row_edges, height, max_rows)
        self._row = {edge: i for i, edge in enumerate(rows)}
        # column segments between consecutive edges: minima and maxima per segment
        cols = sorted(e for e in col_edges | {0, width} if 0 <= e <= width)
        self._col = {edge: i for i, edge in enumerate(cols)}
        starts = np.array(cols[:-1], dtype=np.intp)
        bands = len(rows) - 1
        segments = len(starts)
        # sat[j, f, k]: sum of rows [0, rows[j]) and segments [0, k) of frame f
        sat = np.zeros((bands + 1, n, segments + 1), dtype=acc)
        self._min = np.empty((bands, n, segments), dtype=frames.dtype)
        self._max = np.empty((bands, n, segments), dtype=frames.dtype)
        # per band: a reduction over its rows, then over each column segment
        # (np.add.reduceat over the rows axis is ~15x slower than this loop)
        for b in range(bands):
            block = frames[:, rows[b] : rows[b + 1], :]
            columns = block.sum(axis=1, dtype=partial or acc)
            np.add.reduceat(columns, starts, axis=1, dtype=acc, out=sat[b + 1, :, 1:])
            low = np.minimum.reduce(block, axis=1)
            np.minimum.reduceat(low, starts, axis=1, out=self._min[b])
            high = np.maximum.reduce(block, axis=1)
            np.maximum.reduceat(high, starts, axis=1, out=self._max[b])
        np.cumsum(sat, axis=0, out=sat)
        np.cumsum(sat, axis=2, out=sat)
        self._sat = sat

    def totals(self, rects: npt.NDArray[np.intp]) -> npt.NDArray[Any]:
        """Exact sums of (r0, r1, c0, c1) rectangles: shape (len(rects), n).
        Modular arithmetic: exact while a true sum fits the accumulator."""
        j0 = np.array([self._row[int(r)] for r in rects[:, 0]], dtype=np.intp)
        j1 = np.array([self._row[int(r)] for r in rects[:, 1]], dtype=np.intp)
        k0 = np.array([self._col[int(c)] for c in rects[:, 2]], dtype=np.intp)
        k1 = np.array([self._col[int(c)] for c in rects[:, 3]], dtype=np.intp)
        sat = self._sat
        return sat[j1, :, k1] - sat[j0, :, k1] - sat[j1, :, k0] + sat[j0, :, k0]

    def extremes(
        self, r0: int, r1: int, c0: int, c1: int
    ) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """(min, max) of rows [r0, r1), columns [c0, c1) of each frame."""
        j0, j1 = self._row[r0], self._row[r1]
        k0, k1 = self._col[c0], self._col[c1]
        low = self._min[j0:j1, :, k0:k1].min(axis=(0, 2))
        high = self._max[j0:j1, :, k0:k1].max(axis=(0, 2))
        return low, high


def region_edges(
    regions: Sequence[tuple[int, int, int, int, int]],
) -> tuple[set[int], set[int]]:
    """Row and column edges of (x, y, width, height, background_width) regions
    and of their background bands."""
    rows: set[int] = set()
    cols: set[int] = set()
    for x, y, width, height, background_width in regions:
        rows.update((y, y + height))
        cols.update((x, x + width))
        for r0, r1, c0, c1 in background_rects(x, y, width, height, background_width):
            rows.update((r0, r1))
            cols.update((c0, c1))
    return rows, cols
