"""What one region shows, kept up to date frame by frame: its scan map and its
time series of the latest frames.

Both are updated for the frames a write touches only (new frames, or the
frames a retroactive ROI change recomputed), so handing them to the
publishers costs the same at frame 10 and at frame 1,000,000. An array
handed out is never written again while anything references it: a publisher
may hold it while the next frames arrive.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import numpy as np

from swmr_roi_ioc.stats import ScanGeometry

SERIES_KEYS = ("total", "net", "min", "max", "mean")

#: The latest ranges of cells computed: every region of a batch asks for the
#: same ones (the new frames, and those its spare map misses).
_recent_cells: dict[tuple[ScanGeometry, int, int], np.ndarray] = {}


def _cells(scan: ScanGeometry, first: int, stop: int) -> np.ndarray:
    """Cells of frames [first, stop), all inside the scan (stop <= scan.size)."""
    key = (scan, first, stop)
    cells = _recent_cells.get(key)
    if cells is None:
        if len(_recent_cells) >= 8:
            _recent_cells.clear()
        cells = _recent_cells[key] = scan.cells(np.arange(first, stop, dtype=np.int64))
    return cells


def _widened(known: tuple[float, float], values: np.ndarray) -> tuple[float, float]:
    """``known`` (min, max; NaN: none yet) widened by the finite ``values``."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return known
    low, high = float(finite.min()), float(finite.max())
    if not math.isnan(known[0]):
        low, high = min(low, known[0]), max(high, known[1])
    return (low, high)


def _frozen(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


class _Buffers:
    """The array a view writes, double-buffered against its readers.

    Once handed out, the array is never written again while anything
    references it. The next write goes to the array handed out the time
    before, if nothing references that one any more, brought up to date with
    the frames written since (``sync``: a few per publish when live);
    otherwise to a copy."""

    def __init__(self, array: np.ndarray, limit: int) -> None:
        self.array = array
        self._shared = False
        #: the array the current one replaced, and the frame ranges written
        #: since (None: more than ``limit`` frames, copy instead)
        self._spare: np.ndarray | None = None
        self._behind: list[tuple[int, int]] | None = []
        self._limit = limit

    def writable(self, sync: Callable[[np.ndarray, np.ndarray, int, int], None]) -> np.ndarray:
        """The array to write now; ``sync(dst, src, first, stop)`` copies
        frames [first, stop) from ``src`` to ``dst``."""
        if self._shared:
            old = self.array
            spare, behind = self._spare, self._behind
            # references to the spare: the attribute, the local name, the
            # argument; any more is a reader's (a view of it counts too)
            if spare is not None and behind is not None and sys.getrefcount(spare) <= 3:
                for first, stop in behind:
                    sync(spare, old, first, stop)
                self.array = spare
            else:
                self.array = old.copy()
            self._spare, self._behind = old, []
            self._shared = False
        return self.array

    def wrote(self, first: int, stop: int) -> None:
        """Frames [first, stop) were written (after :meth:`writable`)."""
        behind = self._behind
        if behind is None:
            return
        if behind and behind[-1][1] == first:
            behind[-1] = (behind[-1][0], stop)  # live frames: one range
        else:
            behind.append((first, stop))
        if len(behind) > 64 or sum(b - a for a, b in behind) > self._limit:
            self._behind = None  # a copy is cheaper

    def hand_out(self) -> np.ndarray:
        """The current array, read-only, to a reader."""
        self._shared = True
        return _frozen(self.array)


class MapView:
    """One statistic of frames [origin, scan.size) placed on the scan grid,
    NaN where no frame has landed (frames past the grid are not shown)."""

    def __init__(self, scan: ScanGeometry, origin: int) -> None:
        self.scan = scan
        self._origin = origin
        self._buffers = _Buffers(np.full(scan.size, np.nan), scan.size // 2)
        #: the smallest and largest finite value on the map, kept up to date
        #: by each write of new cells; None: a cell holding a value was
        #: written again (a recompute), look at the whole map when asked
        self._range: tuple[float, float] | None = (math.nan, math.nan)

    def _sync(self, dst: np.ndarray, src: np.ndarray, first: int, stop: int) -> None:
        cells = _cells(self.scan, first, stop)
        dst[cells] = src[cells]

    def write(self, start: int, values: np.ndarray) -> None:
        """The statistic of frames [start, start + len(values))."""
        first = max(start, self._origin)
        stop = min(start + len(values), self.scan.size)
        if stop <= first:
            return
        grid = self._buffers.writable(self._sync)
        cells = _cells(self.scan, first, stop)
        new = values[first - start : stop - start]
        if self._range is not None:
            if np.isfinite(grid[cells]).any():  # values replaced: may shrink the range
                self._range = None
            else:
                self._range = _widened(self._range, new)
        grid[cells] = new
        self._buffers.wrote(first, stop)

    def value_range(self) -> tuple[float, float]:
        """(min, max) of the finite values on the map; (NaN, NaN) when none.
        Costs the new cells only, unless values were replaced since."""
        if self._range is None:
            self._range = _widened((math.nan, math.nan), self._buffers.array)
        return self._range

    def array(self) -> np.ndarray:
        """The map, flat row-major, read-only; never written again while
        anything references it."""
        return self._buffers.hand_out()


class SeriesWindow:
    """The statistics of the latest ``length`` frames since ``origin``, oldest
    first, padded with NaN: frames [max(origin, count - length), count).

    Frame f lives in slots f % length and f % length + length of a doubled
    ring, so the window is one slice of it, handed out without a copy. A
    write touches only its frames' slots (and clears the slots of frames
    that enter the window without a value, e.g. while the ROI was not in
    use). The slots after the newest frame hold NaN: only frames before
    ``origin`` ever had them, and those are never written."""

    def __init__(self, length: int, origin: int, count: int) -> None:
        self.length = length
        self._origin = origin
        self._count = count
        ring = np.full((len(SERIES_KEYS), 2 * length), np.nan)
        self._buffers = _Buffers(ring, length // 2)
        self._shown: dict[str, np.ndarray] | None = None

    @property
    def first(self) -> int:
        return max(self._origin, self._count - self.length)

    def _pieces(self, first: int, n: int) -> list[tuple[int, int, int]]:
        """(slot, slot end, offset in the frames) of frames [first, first + n),
        n <= length, in both halves of the ring."""
        head = first % self.length
        split = min(n, self.length - head)
        pieces = [(head, head + split, 0)]
        if n > split:  # wraps around
            pieces.append((0, n - split, split))
        return pieces + [(a + self.length, b + self.length, o) for a, b, o in pieces]

    def _sync(self, dst: np.ndarray, src: np.ndarray, first: int, stop: int) -> None:
        first = max(first, stop - self.length)
        for a, b, _ in self._pieces(first, stop - first):
            dst[:, a:b] = src[:, a:b]

    def _assign(self, first: int, n: int, values: np.ndarray | float) -> None:
        """Slots of frames [first, first + n), n <= length: ``values``
        (len(SERIES_KEYS), n), or one value for all."""
        ring = self._buffers.writable(self._sync)
        for a, b, offset in self._pieces(first, n):
            if isinstance(values, np.ndarray):
                ring[:, a:b] = values[:, offset : offset + b - a]
            else:
                ring[:, a:b] = values
        self._buffers.wrote(first, first + n)

    def write(self, start: int, values: np.ndarray) -> None:
        """``values`` (len(SERIES_KEYS), n): the statistics of frames [start, start + n)."""
        stop = start + values.shape[1]
        if stop > self._count:
            entering = max(self._count, stop - self.length)
            self._count = stop
            if entering < start:  # frames without a value (a gap) enter: NaN
                self._assign(entering, start - entering, np.nan)
        first = max(start, self.first)
        if first < stop:
            self._assign(first, stop - first, values[:, first - start :])
        self._shown = None

    def shown(self) -> dict[str, np.ndarray]:
        """The series as published: SERIES_KEYS -> read-only float64 (length,),
        never written again while anything references them."""
        if self._shown is None:
            head = self.first % self.length
            ring = self._buffers.hand_out()
            self._shown = {
                key: ring[i, head : head + self.length] for i, key in enumerate(SERIES_KEYS)
            }
        return self._shown
