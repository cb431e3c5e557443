"""What one region shows, kept up to date frame by frame: its scan map and its
time series of the latest frames.

Both are updated for the frames a write touches only (new frames, or the
frames a retroactive ROI change recomputed), so handing them to the
publishers costs the same at frame 10 and at frame 1,000,000. An array once
handed out is never written again (copy on write): a publisher may hold it
while the next frames arrive.
"""

from __future__ import annotations

import numpy as np

from swmr_roi_ioc.stats import ScanGeometry

SERIES_KEYS = ("total", "net", "min", "max", "mean")

#: The last range of cells computed: every region of a batch asks for the same.
_last_cells: tuple[ScanGeometry, int, int, np.ndarray] | None = None


def _cells(scan: ScanGeometry, first: int, stop: int) -> np.ndarray:
    """Cells of frames [first, stop), all inside the scan (stop <= scan.size)."""
    global _last_cells
    last = _last_cells
    if last is not None and last[1] == first and last[2] == stop and last[0] == scan:
        return last[3]
    cells = scan.cells(np.arange(first, stop, dtype=np.int64))
    _last_cells = (scan, first, stop, cells)
    return cells


def _frozen(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


class MapView:
    """One statistic of frames [origin, scan.size) placed on the scan grid,
    NaN where no frame has landed (frames past the grid are not shown)."""

    def __init__(self, scan: ScanGeometry, origin: int) -> None:
        self.scan = scan
        self._origin = origin
        self._grid = np.full(scan.size, np.nan)
        self._shared = False

    def write(self, start: int, values: np.ndarray) -> None:
        """The statistic of frames [start, start + len(values))."""
        first = max(start, self._origin)
        stop = min(start + len(values), self.scan.size)
        if stop <= first:
            return
        if self._shared:  # the publishers hold the current array
            self._grid = self._grid.copy()
            self._shared = False
        self._grid[_cells(self.scan, first, stop)] = values[first - start : stop - start]

    def array(self) -> np.ndarray:
        """The map, flat row-major, read-only; never written again."""
        self._shared = True
        return _frozen(self._grid)


class SeriesWindow:
    """The statistics of the latest ``length`` frames since ``origin``, oldest
    first, padded with NaN: frames [max(origin, count - length), count).

    Frame f lives in slot f % length of a ring; a write touches only its
    frames' slots (and clears the slots of frames that enter the window
    without a value, e.g. while the ROI was not in use)."""

    def __init__(self, length: int, origin: int, count: int) -> None:
        self.length = length
        self._origin = origin
        self._count = count
        self._ring = np.full((len(SERIES_KEYS), length), np.nan)
        self._shown: dict[str, np.ndarray] | None = None

    @property
    def first(self) -> int:
        return max(self._origin, self._count - self.length)

    def _assign(self, first: int, values: np.ndarray | float) -> None:
        """Slots of frames [first, first + n), n <= length (n from values, or
        up to count when ``values`` is a scalar)."""
        n = values.shape[1] if isinstance(values, np.ndarray) else self._count - first
        head = first % self.length
        split = min(n, self.length - head)
        if isinstance(values, np.ndarray):
            self._ring[:, head : head + split] = values[:, :split]
            self._ring[:, : n - split] = values[:, split:]
        else:
            self._ring[:, head : head + split] = values
            self._ring[:, : n - split] = values

    def write(self, start: int, values: np.ndarray) -> None:
        """``values`` (len(SERIES_KEYS), n): the statistics of frames [start, start + n)."""
        stop = start + values.shape[1]
        if stop > self._count:
            entering = max(self._count, stop - self.length)
            self._count = stop
            if entering < stop:
                self._assign(entering, np.nan)  # up to count: the new frames
        first = max(start, self.first)
        if first < stop:
            self._assign(first, values[:, first - start :])
        self._shown = None

    def shown(self) -> dict[str, np.ndarray]:
        """The series as published: SERIES_KEYS -> read-only float64 (length,)."""
        if self._shown is None:
            out = np.full((len(SERIES_KEYS), self.length), np.nan)
            first = self.first
            n = self._count - first
            if n > 0:
                head = first % self.length
                split = min(n, self.length - head)
                out[:, :split] = self._ring[:, head : head + split]
                out[:, split:n] = self._ring[:, : n - split]
            out.flags.writeable = False
            self._shown = {key: out[i] for i, key in enumerate(SERIES_KEYS)}
        return self._shown
