"""The service's live state: counters, per-frame statistics, and what they show.

Every frame's statistics are kept for the whole acquisition (five numbers per
region per frame); time series and maps are views of them, built at the
publish rate. A retroactive ROI change therefore only rewrites that ROI's
numbers. Written by the reader thread (a batch at a time) and by PV puts on
the event loop; read by the publisher. One lock; short critical sections.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from swmr_roi_ioc.config import IocConfig
from swmr_roi_ioc.publish import (
    Geometry,
    LiveViews,
    RegionSnapshot,
    Severity,
    Snapshot,
    Status,
    StatValues,
    map_capacity,
    map_shape,
)
from swmr_roi_ioc.stats import FrameStats, Roi, ScanGeometry, bin_image, clamp_roi, histogram

SERIES_KEYS = ("total", "net", "min", "max", "mean")
#: Seconds of history ArrayRate_RBV averages over.
RATE_WINDOW = 1.0


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


class _Region:
    """Per-frame statistics of one region (ROI n, or the whole frame).

    Kept in chunks of CHUNK_FRAMES frames: the chunk being written holds
    float64 arrays; a chunk behind the newest frame is sealed into the
    narrowest exact coding (min/max in the frame's own dtype, integral totals
    as integers, net = total or mean = total / pixel count when that gives
    every value back bit for bit). A later write (a recomputed ROI) opens a
    sealed chunk again. Memory grows by whole chunks, never by doubling.
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

    def clear(self, origin: int) -> None:
        self.origin = origin
        self.latest = StatValues()

    def restart(self) -> None:
        self._chunks = []
        self._open.clear()
        self.count = 0
        self.origin = 0
        self.latest = StatValues()

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
        """Acquisition order since origin; the latest ``length`` when longer."""
        first = max(self.origin, self.count - length)
        out: dict[str, np.ndarray] = {}
        for key in SERIES_KEYS:
            shown = np.full(length, np.nan)
            part = self.read(key, first, self.count)
            shown[: len(part)] = part
            out[key] = shown
        return out

    def placed(self, key: str, scan: ScanGeometry) -> np.ndarray:
        """``key`` of every frame since origin placed on the scan grid (NaN elsewhere)."""
        grid = np.full(scan.size, np.nan)
        stop = min(self.count, scan.size)  # later frames lie outside the grid
        if stop <= self.origin:
            return grid
        indices = np.arange(self.origin, stop, dtype=np.int64)
        cells = scan.cells(indices)
        inside = cells >= 0
        grid[cells[inside]] = self.read(key, self.origin, stop)[inside]
        return grid

    def full(self) -> dict[str, np.ndarray]:
        """Every frame's statistics (copies), for the NeXus file."""
        return {key: self.read(key, 0, self.count) for key in SERIES_KEYS}


@dataclass(frozen=True)
class RegionRecord:
    """One region's statistics of a whole acquisition (for the NeXus file)."""

    name: str
    series: dict[str, np.ndarray]
    geometry: Geometry | None


@dataclass(frozen=True)
class RecomputeRequest:
    """Recompute ROI ``index`` for every frame already processed."""

    index: int
    roi: Roi
    generation: int
    #: the acquisition it belongs to (a new file makes it void)
    acquisition: int


class ServiceState:
    """Everything the publishers show, and the ROI geometry the pipeline uses."""

    def __init__(self, config: IocConfig) -> None:
        self._lock = threading.Lock()
        self.config = config
        rows, cols = map_shape(config)
        self.scan = ScanGeometry((rows, cols), config.scan.snake)
        self._capacity = map_capacity(config)
        self._ts_len = config.publish.time_series_length
        self._rois = [
            Geometry(r.x, r.y, r.width, r.height, r.background_width, r.use) for r in config.rois
        ]
        self._regions = [_Region(r.name) for r in config.rois]
        self._frame = _Region("Frame")
        self._status = Status.IDLE
        self._message = "Starting"
        self._severity = Severity.NO_ALARM
        self._stale = False
        self._link: str | None = None
        self._note = ""
        self._file = ""
        self._frame_shape = (0, 0)
        self._counter = 0
        self._written = 0
        self._unique_id = 0
        self._rates: deque[tuple[float, int]] = deque()
        #: POSIX time the newest statistics were computed (the PVs' timestamp)
        self._stats_time: float | None = None
        self._generation = 0
        hist = config.publish.histogram
        self._hist = (hist.bins, hist.min, hist.max)
        self._latest_frame: np.ndarray | None = None
        self._frame_generation = 0
        #: ROI index -> how many times its geometry changed (recompute requests)
        self._roi_generation = [0] * len(config.rois)
        self._recompute_progress = 100.0
        self._wanted: dict[int, RecomputeRequest] = {}
        self._acquisition = 0
        self._born = time.monotonic()
        self.started = ""
        #: bumped by every change a publisher could show (see :attr:`version`)
        self._version = 0

    # -- written by the source and the pipeline ------------------------------

    def set_status(self, status: Status, message: str, severity: Severity | None = None) -> None:
        if severity is None:
            severity = Severity.MAJOR if status is Status.ERROR else Severity.NO_ALARM
        with self._lock:
            if (status, message, severity, "") != (
                self._status, self._message, self._severity, self._note,
            ):  # fmt: skip
                self._version += 1
            self._status = status
            self._message = message
            self._note = ""
            self._severity = severity
            if status is Status.ERROR:
                self._stale = True
            elif status is Status.FOLLOWING:
                self._stale = False  # reading again (e.g. after a read error cleared)

    def set_link(self, problem: str | None) -> None:
        """The upstream IOC is unreachable (``problem``) or fine again (None).
        Status keeps its value; its alarm becomes LINK/MAJOR meanwhile."""
        with self._lock:
            self._version += problem != self._link
            self._link = problem

    def note(self, text: str) -> None:
        """A remark after the current StatusMessage (e.g. the NeXus file);
        the next status replaces it."""
        with self._lock:
            self._version += text != self._note
            self._note = text

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self._frame_shape

    @property
    def status(self) -> Status:
        return self._status

    @property
    def file_path(self) -> str:
        return self._file

    def start_acquisition(self, path: str, frame_shape: tuple[int, int]) -> None:
        """A new file: counters, statistics, series and maps start again."""
        with self._lock:
            self._version += 1
            self._file = path
            self._frame_shape = frame_shape
            self._counter = 0
            self._written = 0
            self._unique_id = 0
            self._stale = False
            self._rates.clear()
            self._stats_time = None
            for region in [*self._regions, self._frame]:
                region.restart()
            self._latest_frame = None
            self._wanted.clear()
            self._recompute_progress = 100.0
            self._generation += 1
            self._acquisition += 1
            if self.config.scan.shape is None:
                self.scan = ScanGeometry(map_shape(self.config), self.config.scan.snake)
            self.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    def set_scan_shape(self, rows: int, cols: int) -> None:
        """The scan geometry from the plugin or the file (only when ioc.yaml sets
        none); rows are cut so the map fits its waveform."""
        if self.config.scan.shape is not None or rows < 1 or cols < 1:
            return
        cols = min(cols, self._capacity)
        rows = max(1, min(rows, self._capacity // cols))
        if (rows, cols) != (self.scan.rows, self.scan.cols):
            with self._lock:
                self.scan = ScanGeometry((rows, cols), self.config.scan.snake)
                self._generation += 1
                self._version += 1

    def set_frames_written(self, count: int) -> None:
        with self._lock:
            self._version += count != self._written
            self._written = count

    @property
    def array_counter(self) -> int:
        return self._counter

    @property
    def uptime(self) -> float:
        """Seconds since the IOC started."""
        return time.monotonic() - self._born

    @property
    def array_rate(self) -> float:
        """Frames/s processed over the last RATE_WINDOW."""
        with self._lock:
            return self._rate(time.monotonic())

    @property
    def version(self) -> int:
        """Changes whenever anything a publisher shows may have changed, except
        what changes with time alone (ArrayRate_RBV's decay, Uptime_RBV)."""
        return self._version

    def rois_for_next_batch(self) -> list[Roi | None]:
        """The geometry to use now (clamped by the stats); None = not in use."""
        with self._lock:
            return [
                Roi(g.x, g.y, g.width, g.height, g.background_width) if g.use else None
                for g in self._rois
            ]

    def add_batch(
        self,
        start: int,
        rois: Sequence[FrameStats | None],
        frame: FrameStats,
        unique_id: int,
        last_frame: np.ndarray | None = None,
    ) -> None:
        """Results of frames [start, start + n) computed by the pipeline."""
        n = len(frame.total)
        with self._lock:
            self._version += 1
            for region, stats in zip(self._regions, rois, strict=True):
                if stats is not None:
                    region.put(start, stats, live=True)
            self._frame.put(start, frame, live=True)
            self._counter = start + n
            self._written = max(self._written, self._counter)
            self._unique_id = unique_id
            self._stats_time = time.time()
            self._generation += 1
            if last_frame is not None:
                self._latest_frame = last_frame
                self._frame_generation += 1
            self._rates.append((time.monotonic(), self._counter))

    # -- retroactive ROI changes ---------------------------------------------

    def take_recompute(self) -> RecomputeRequest | None:
        """The next ROI whose past frames must be recomputed, if any."""
        with self._lock:
            if not self._wanted:
                return None
            index = min(self._wanted)
            return self._wanted.pop(index)

    def recompute_current(self, request: RecomputeRequest) -> bool:
        """The request is still the latest change of its ROI, in this acquisition."""
        return (
            self._roi_generation[request.index] == request.generation
            and self._acquisition == request.acquisition
        )

    def put_recomputed(self, request: RecomputeRequest, start: int, stats: FrameStats) -> bool:
        """Recomputed statistics of frames [start, ...) of one ROI; False if stale."""
        with self._lock:
            self._version += 1
            if not self.recompute_current(request):
                return False
            region = self._regions[request.index]
            last = start + len(stats.total) >= region.count
            region.put(start, stats, live=last)
            if last:
                self._stats_time = time.time()
            self._generation += 1
            return True

    def set_recompute_progress(self, percent: float) -> None:
        with self._lock:
            self._version += 1
            self._recompute_progress = percent

    # -- written by PV puts (Controller protocol) ----------------------------

    def set_roi(self, index: int, **fields: int | bool) -> None:
        with self._lock:
            self._version += 1
            old = self._rois[index]
            new = replace(old, **fields)
            self._rois[index] = new
            if new != old and new.use and self._counter > 0:
                self._roi_generation[index] += 1
                self._wanted[index] = RecomputeRequest(
                    index,
                    Roi(new.x, new.y, new.width, new.height, new.background_width),
                    self._roi_generation[index],
                    self._acquisition,
                )
                self._recompute_progress = 0.0

    def recompute_wanted(self) -> bool:
        return bool(self._wanted)

    def set_histogram(self, size: int | None = None, low: float | None = None,
                      high: float | None = None) -> None:  # fmt: skip
        """HistSize/HistMin/HistMax puts; raises ValueError unless high > low."""
        with self._lock:
            self._version += 1
            bins, lo, hi = self._hist
            bins = bins if size is None else size
            lo = lo if low is None else low
            hi = hi if high is None else high
            if not hi > lo:
                raise ValueError(f"HistMax ({hi:g}) must be greater than HistMin ({lo:g})")
            self._hist = (bins, lo, hi)
            self._frame_generation += 1

    def reset(self) -> None:
        with self._lock:
            self._version += 1
            for region in [*self._regions, self._frame]:
                region.clear(self._counter)
            self._stats_time = None  # cleared values: stamped when published
            self._generation += 1

    # -- read by the publisher -----------------------------------------------

    def _rate(self, now: float) -> float:
        while len(self._rates) > 1 and now - self._rates[0][0] > RATE_WINDOW:
            self._rates.popleft()
        if len(self._rates) < 2 or now - self._rates[-1][0] > RATE_WINDOW:
            return 0.0
        (t0, c0), (t1, c1) = self._rates[0], self._rates[-1]
        return (c1 - c0) / max(t1 - t0, 1e-3)

    def live_views(self) -> LiveViews | None:
        """Histogram and binned image of the latest frame (numpy work: call it
        off the event loop, at the publish rate)."""
        with self._lock:
            frame = self._latest_frame
            bins, low, high = self._hist
            generation = self._frame_generation
        if frame is None:
            return None
        hist = histogram(frame, bins, low, high)
        image = bin_image(frame, self.config.publish.image_max_size)
        return LiveViews(
            histogram=hist.counts,
            histogram_x=hist.centres,
            below=hist.below,
            above=hist.above,
            hist_size=bins,
            hist_min=low,
            hist_max=high,
            image=image,
            generation=generation,
        )

    @property
    def frame_generation(self) -> int:
        return self._frame_generation

    def _readback(self, index: int) -> Geometry:
        g = self._rois[index]
        shape = self._frame_shape
        if shape[0] <= 0:
            return g
        c = clamp_roi(Roi(g.x, g.y, g.width, g.height, g.background_width), shape)
        return Geometry(c.x, c.y, c.width, c.height, c.background_width, g.use)

    def snapshot(self) -> Snapshot:
        with self._lock:
            regions = [*self._regions, self._frame]
            snaps: list[RegionSnapshot] = []
            for i, region in enumerate(regions):
                grid = region.placed("total", self.scan)
                snaps.append(
                    RegionSnapshot(
                        name=region.name,
                        stats=region.latest,
                        series=region.series(self._ts_len),
                        map=grid,
                        readback=self._readback(i) if i < len(self._rois) else None,
                        frame_shape=self._frame_shape,
                        stale=self._stale,
                    )
                )
            max_map = self._frame.placed("max", self.scan)
            message, severity = self._message, self._severity
            if self._note:
                message = f"{message}; {self._note}"
            if self._link is not None:
                message = f"{self._link}. {message}"
                severity = max(severity, Severity.MAJOR)
            return Snapshot(
                status=self._status,
                message=message,
                severity=severity,
                link_alarm=self._link is not None,
                file_path=self._file,
                array_counter=self._counter,
                frames_written=self._written,
                unique_id=self._unique_id,
                array_rate=self._rate(time.monotonic()),
                map_shape=(self.scan.rows, self.scan.cols),
                rois=snaps[:-1],
                frame=snaps[-1],
                max_map=max_map,
                recompute_progress=self._recompute_progress,
                uptime=time.monotonic() - self._born,
                arrays_generation=self._generation,
                stats_time=self._stats_time,
            )

    def acquisition_record(self) -> tuple[list[RegionRecord], int]:
        """Every region's full per-frame statistics and geometry, and the frame count."""
        with self._lock:
            out = [
                RegionRecord(r.name, r.full(), self._readback(i))
                for i, r in enumerate(self._regions)
            ]
            out.append(RegionRecord(self._frame.name, self._frame.full(), None))
            return out, self._counter
