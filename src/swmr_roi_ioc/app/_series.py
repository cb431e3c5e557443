"""One region's per-frame statistics for a whole acquisition, stored exactly
and compactly: chunks of CHUNK_FRAMES frames, float64 while written, sealed
into the narrowest coding that gives every value back bit for bit; and its
published views (maps, time series), updated for the frames written only."""

from __future__ import annotations

import math

import numpy as np

from swmr_roi_ioc.publish import StatValues
from swmr_roi_ioc.stats import FrameStats, ScanGeometry

from ._views import SERIES_KEYS, MapView, SeriesWindow

#: Frames per chunk of a region's per-frame statistics.
CHUNK_FRAMES = 4096

#: Narrower dtypes tried, smallest first, for a sealed chunk's series: the
#: first that gives every value back bit for bit is kept.
_NARROW = (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a.view(np.uint64), b.view(np.uint64)))


def _narrowest(values: np.ndarray) -> np.ndarray:
    """``values`` (float64) in the narrowest dtype that holds them bit for bit
    (integer dtypes for integral values, float32, else float64 itself)."""
    finite = np.isfinite(values)
    if finite.all():
        low, high = float(values.min()), float(values.max())
        for dtype in _NARROW:
            info = np.iinfo(dtype)
            if info.min <= low and high <= info.max:
                narrow = values.astype(dtype)
                if _same_bits(narrow.astype(np.float64), values):
                    return narrow
                break  # not integral (or -0.0): no integer dtype will do
    with np.errstate(over="ignore"):
        single = values.astype(np.float32)
    if _same_bits(single.astype(np.float64), values):
        return single
    return values.copy()


class _Coded:
    """One series of a sealed chunk: an array in a narrow dtype, one value
    repeated, the chunk's total, or the chunk's total divided by a constant."""

    __slots__ = ("array", "divisor", "fill", "kind")

    def __init__(
        self, kind: str, array: np.ndarray | None = None, fill: float = 0.0, divisor: float = 1.0
    ) -> None:
        self.kind = kind
        self.array = array
        self.fill = fill
        self.divisor = divisor

    @property
    def nbytes(self) -> int:
        return 0 if self.array is None else self.array.nbytes


def _encode(key: str, values: np.ndarray, total: np.ndarray) -> _Coded:
    """The smallest exact coding of a chunk's ``values`` (float64, CHUNK_FRAMES)."""
    bits = values.view(np.uint64)
    if bool((bits == bits[0]).all()):
        return _Coded("fill", fill=float(values[0]))
    if key == "total":
        return _Coded("array", _narrowest(values))
    if _same_bits(total, values):
        return _Coded("total")
    if key == "mean":
        # NDPluginROIStat's mean is total / pixel count: find the count and check it
        usable = np.flatnonzero(np.isfinite(total) & np.isfinite(values) & (values != 0))
        if len(usable):
            ratio = float(total[usable[0]]) / float(values[usable[0]])
            divisor = float(round(ratio)) if math.isfinite(ratio) else 0.0
            if divisor >= 1 and _same_bits(total / divisor, values):
                return _Coded("divided", divisor=divisor)
    return _Coded("array", _narrowest(values))


class _Chunk:
    """CHUNK_FRAMES frames of one region: five float64 arrays while written
    ("open"), a compact exact coding once sealed."""

    __slots__ = ("coded", "raw")

    def __init__(self) -> None:
        self.raw: dict[str, np.ndarray] | None = {
            key: np.full(CHUNK_FRAMES, np.nan) for key in SERIES_KEYS
        }
        self.coded: dict[str, _Coded] | None = None

    def open(self) -> dict[str, np.ndarray]:
        if self.raw is None:
            self.raw = {key: self.read(key, 0, CHUNK_FRAMES) for key in SERIES_KEYS}
            self.coded = None
        return self.raw

    def seal(self) -> None:
        if self.raw is not None:
            total = self.raw["total"]
            self.coded = {key: _encode(key, self.raw[key], total) for key in SERIES_KEYS}
            self.raw = None

    def read(self, key: str, first: int, stop: int) -> np.ndarray:
        """Values of frames [first, stop) of the chunk, float64."""
        if self.raw is not None:
            return self.raw[key][first:stop]
        assert self.coded is not None
        coded = self.coded[key]
        if coded.kind == "fill":
            return np.full(stop - first, coded.fill)
        if coded.kind == "array":
            assert coded.array is not None
            return coded.array[first:stop].astype(np.float64)
        total = self.read("total", first, stop)
        return total if coded.kind == "total" else total / coded.divisor

    @property
    def nbytes(self) -> int:
        if self.raw is not None:
            return sum(v.nbytes for v in self.raw.values())
        assert self.coded is not None
        return sum(c.nbytes for c in self.coded.values())


class RegionSeries:
    """Per-frame statistics of one region (ROI n, or the whole frame).

    Kept in chunks of CHUNK_FRAMES frames: the chunk being written holds
    float64 arrays; a chunk behind the newest frame is sealed into the
    narrowest exact coding (min/max in the frame's own dtype, integral totals
    as integers, net = total or mean = total / pixel count when that gives
    every value back bit for bit). A later write (a recomputed ROI) opens a
    sealed chunk again. Memory grows by whole chunks, never by doubling.

    The maps (:meth:`placed`) and the time series (:meth:`series`) asked for
    are kept up to date by every write, for the written frames only; they are
    rebuilt from the store only when first asked for, after a Reset, or when
    the scan geometry or the series length changes.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        #: None: a chunk never written (all NaN)
        self._chunks: list[_Chunk | None] = []
        #: chunks holding float64 arrays (being written)
        self._open: set[int] = set()
        self.count = 0
        #: first frame shown in series and map (moves on Reset)
        self.origin = 0
        self.latest = StatValues()
        #: statistic -> its map; the time series window
        self._maps: dict[str, MapView] = {}
        self._window: SeriesWindow | None = None
        #: changes whenever a map or the time series may have changed
        self.generation = 0

    def clear(self, origin: int) -> None:
        self.origin = origin
        self.latest = StatValues()
        self._rebuild_views()

    def restart(self) -> None:
        self._chunks = []
        self._open.clear()
        self.count = 0
        self.origin = 0
        self.latest = StatValues()
        self._rebuild_views()

    def _rebuild_views(self) -> None:
        self.generation += 1
        self._maps = {key: self._map_from_store(key, view.scan) for key, view in self._maps.items()}
        if self._window is not None:
            self._window = self._window_from_store(self._window.length)

    def _map_from_store(self, key: str, scan: ScanGeometry) -> MapView:
        view = MapView(scan, self.origin)
        stop = min(self.count, scan.size)
        if stop > self.origin:
            view.write(self.origin, self.read(key, self.origin, stop))
        return view

    def _window_from_store(self, length: int) -> SeriesWindow:
        window = SeriesWindow(length, self.origin, self.count)
        first = window.first
        if first < self.count:
            window.write(first, np.stack([self.read(k, first, self.count) for k in SERIES_KEYS]))
        return window

    @property
    def nbytes(self) -> int:
        """Bytes held by the per-frame statistics."""
        return sum(c.nbytes for c in self._chunks if c is not None)

    def put(self, start: int, stats: FrameStats, *, live: bool) -> None:
        """Statistics of frames [start, start + n); ``live`` ones also update Latest."""
        n = len(stats.total)
        stop = start + n
        first_chunk, last_chunk = start // CHUNK_FRAMES, (stop - 1) // CHUNK_FRAMES
        if n and len(self._chunks) <= last_chunk:
            self._chunks.extend([None] * (last_chunk + 1 - len(self._chunks)))
        self.count = max(self.count, stop)
        for k in range(first_chunk, last_chunk + 1) if n else ():
            chunk = self._chunks[k]
            if chunk is None:
                chunk = self._chunks[k] = _Chunk()
            raw = chunk.open()
            self._open.add(k)
            base = k * CHUNK_FRAMES
            a, b = max(start, base), min(stop, base + CHUNK_FRAMES)
            for key in SERIES_KEYS:
                raw[key][a - base : b - base] = getattr(stats, key)[a - start : b - start]
        for k in [k for k in self._open if (k + 1) * CHUNK_FRAMES <= self.count]:
            chunk = self._chunks[k]
            assert chunk is not None
            chunk.seal()
            self._open.discard(k)
        if n and (self._maps or self._window is not None):
            self.generation += 1
            values = np.stack([getattr(stats, key) for key in SERIES_KEYS])
            for key, view in self._maps.items():
                view.write(start, values[SERIES_KEYS.index(key)])
            if self._window is not None:
                self._window.write(start, values)
        if live and n:
            self.latest = StatValues(
                total=float(stats.total[-1]),
                net=float(stats.net[-1]),
                min=float(stats.min[-1]),
                max=float(stats.max[-1]),
                mean=float(stats.mean[-1]),
            )

    def read(self, key: str, first: int, stop: int) -> np.ndarray:
        """``key`` of frames [first, stop) (a new float64 array; NaN where never written)."""
        out = np.full(max(stop - first, 0), np.nan)
        for k in range(first // CHUNK_FRAMES, min(len(self._chunks), -(-stop // CHUNK_FRAMES))):
            chunk = self._chunks[k]
            if chunk is None:
                continue
            base = k * CHUNK_FRAMES
            a, b = max(first, base), min(stop, base + CHUNK_FRAMES)
            out[a - first : b - first] = chunk.read(key, a - base, b - base)
        return out

    def series(self, length: int) -> dict[str, np.ndarray]:
        """Acquisition order since origin; the latest ``length`` when longer.
        Read-only arrays, never written again (the same ones while nothing changed)."""
        if self._window is None or self._window.length != length:
            self.generation += 1
            self._window = self._window_from_store(length)
        return self._window.shown()

    def placed(self, key: str, scan: ScanGeometry) -> np.ndarray:
        """``key`` of every frame since origin placed on the scan grid (NaN
        elsewhere; later frames lie outside it). Read-only, never written again."""
        view = self._maps.get(key)
        if view is None or view.scan != scan:
            self.generation += 1
            view = self._maps[key] = self._map_from_store(key, scan)
        return view.array()

    def placed_range(self, key: str, scan: ScanGeometry) -> tuple[float, float]:
        """(min, max) of :meth:`placed`'s finite values; (NaN, NaN) when none."""
        self.placed(key, scan)
        return self._maps[key].value_range()

    def full(self) -> dict[str, np.ndarray]:
        """Every frame's statistics (copies), for the NeXus file."""
        return {key: self.read(key, 0, self.count) for key in SERIES_KEYS}
