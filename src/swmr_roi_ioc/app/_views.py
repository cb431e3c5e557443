"""What one region shows, kept up to date frame by frame: its scan map and its
time series of the latest frames.

Both are updated for the frames a write touches only (new frames, or the
frames a retroactive ROI change recomputed), so handing them to the
publishers costs the same at frame 10 and at frame 1,000,000. An array
handed out is never written again while anything references it: a publisher
may hold it while the next frames arrive.
"""

from __future__ import annotations

import sys

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
    NaN where no frame has landed (frames past the grid are not shown).

    Double-buffered: the first write after the map was handed out goes to
    the array handed out the time before, once nothing references it any
    more, brought up to date with the frames written since (a few cells per
    publish when live), so a live map costs no copy of the whole grid per
    publish; while the publishers still hold that array, a copy is made."""

    def __init__(self, scan: ScanGeometry, origin: int) -> None:
        self.scan = scan
        self._origin = origin
        self._grid = np.full(scan.size, np.nan)
        self._shared = False
        #: the array the current one replaced, and the frame ranges written
        #: since (None: too many to replay, copy instead)
        self._spare: np.ndarray | None = None
        self._behind: list[tuple[int, int]] | None = []

    def _unshare(self) -> None:
        old = self._grid
        spare, behind = self._spare, self._behind
        # references to the spare: the attribute, the local name, the
        # argument; any more is a publisher's (a view of it counts too)
        if spare is not None and behind is not None and sys.getrefcount(spare) <= 3:
            for first, stop in behind:
                cells = _cells(self.scan, first, stop)
                spare[cells] = old[cells]
            self._grid = spare
        else:
            self._grid = old.copy()
        self._spare, self._behind = old, []
        self._shared = False

    def write(self, start: int, values: np.ndarray) -> None:
        """The statistic of frames [start, start + len(values))."""
        first = max(start, self._origin)
        stop = min(start + len(values), self.scan.size)
        if stop <= first:
            return
        if self._shared:  # the publishers hold the current array
            self._unshare()
        self._grid[_cells(self.scan, first, stop)] = values[first - start : stop - start]
        behind = self._behind
        if behind is not None:
            if behind and behind[-1][1] == first:
                behind[-1] = (behind[-1][0], stop)  # live frames: one range
            else:
                behind.append((first, stop))
            if len(behind) > 64 or sum(b - a for a, b in behind) > self.scan.size // 2:
                self._behind = None  # a copy is cheaper

    def array(self) -> np.ndarray:
        """The map, flat row-major, read-only; never written again while
        anything references it."""
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
            out = np.empty((len(SERIES_KEYS), self.length))
            first = self.first
            n = max(self._count - first, 0)
            head = first % self.length
            split = min(n, self.length - head)
            out[:, :split] = self._ring[:, head : head + split]
            out[:, split:n] = self._ring[:, : n - split]
            out[:, n:] = np.nan
            out.flags.writeable = False
            self._shown = {key: out[i] for i, key in enumerate(SERIES_KEYS)}
        return self._shown
