"""The service's live state: counters, per-frame statistics, and what they show.

Every frame's statistics are kept for the whole acquisition (five numbers per
region per frame); time series and maps are views of them, updated for the
new frames only, so a snapshot costs the same at any frame count. A
retroactive ROI change therefore only rewrites that ROI's numbers (and the
cells of its views those frames touch). Written by the reader thread (a
batch at a time) and by PV puts on the event loop; read by the publisher.
One lock; short critical sections.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from swmr_roi_ioc.config import IocConfig
from swmr_roi_ioc.engine import ViewParams
from swmr_roi_ioc.publish import (
    Geometry,
    LiveViews,
    RegionSnapshot,
    Severity,
    Snapshot,
    Status,
    map_capacity,
    map_shape,
)
from swmr_roi_ioc.stats import FrameStats, Roi, ScanGeometry, clamp_roi

from ._clamped import outside, outside_remark
from ._series import RegionSeries

#: Seconds of history ArrayRate_RBV averages over.
RATE_WINDOW = 1.0


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


@functools.lru_cache(maxsize=1024)
def _clamped(g: Geometry, shape: tuple[int, int]) -> Geometry:
    """The readback of a ROI: clamped to the frame (cached: asked for at every
    publish, for every ROI)."""
    if shape[0] <= 0:
        return g
    c = clamp_roi(Roi(g.x, g.y, g.width, g.height, g.background_width), shape)
    return Geometry(c.x, c.y, c.width, c.height, c.background_width, g.use)


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
        self._regions = [RegionSeries(r.name) for r in config.rois]
        self._frame = RegionSeries("Frame")
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
        #: how many times the histogram settings changed
        self._hist_generation = 0
        #: the newest live views an engine worker made, and how many came
        self._views: LiveViews | None = None
        self._views_generation = 0
        #: ROI index -> how many times its geometry changed (recompute requests)
        self._roi_generation = [0] * len(config.rois)
        self._recompute_progress = 100.0
        self._wanted: dict[int, RecomputeRequest] = {}
        self._acquisition = 0
        self._born = time.monotonic()
        self.started = ""
        self._run_uid = ""
        self._plan_name = ""
        self._run_progress = 0.0
        #: bumped by every change a publisher could show (see :attr:`version`)
        self._version = 0
        #: called after each such change, in any thread (the publish loop wakes up)
        self.on_change: Callable[[], None] | None = None
        #: called after the histogram settings changed (the views are made again)
        self.on_view_settings: Callable[[], None] | None = None

    def _bump(self, changed: bool = True) -> None:
        """A change a publisher could show (under the lock)."""
        if changed:
            self._version += 1
            if self.on_change is not None:
                self.on_change()

    # -- written by the source and the pipeline ------------------------------

    def set_status(self, status: Status, message: str, severity: Severity | None = None) -> None:
        if severity is None:
            severity = Severity.MAJOR if status is Status.ERROR else Severity.NO_ALARM
        with self._lock:
            if (status, message, severity, "") != (
                self._status, self._message, self._severity, self._note,
            ):  # fmt: skip
                self._bump()
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
            self._bump(problem != self._link)
            self._link = problem

    def note(self, text: str) -> None:
        """A remark after the current StatusMessage (e.g. the NeXus file);
        the next status replaces it."""
        with self._lock:
            self._bump(text != self._note)
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
            self._bump()
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
                self._bump()

    def set_scan_geometry(self, geometry: ScanGeometry) -> None:
        """The map geometry a run describes (only when ioc.yaml sets none);
        a map larger than the waveforms keeps only the rows that fit."""
        if self.config.scan.shape is not None:
            return
        if geometry.size > self._capacity:
            rows = max(1, self._capacity // min(geometry.cols, self._capacity))
            cols = min(geometry.cols, self._capacity)
            order = geometry.order
            if order is not None:
                row, col = np.divmod(order, geometry.cols)
                order = np.where((order >= 0) & (row < rows) & (col < cols), row * cols + col, -1)
            geometry = ScanGeometry((rows, cols), geometry.snake, order)
        if geometry != self.scan:
            with self._lock:
                self.scan = geometry
                self._generation += 1
                self._bump()

    def set_run(self, uid: str, plan_name: str) -> None:
        """The bluesky run followed (RunUid_RBV, PlanName_RBV); progress restarts."""
        with self._lock:
            self._bump()
            self._run_uid, self._plan_name, self._run_progress = uid, plan_name, 0.0

    def set_run_progress(self, percent: float) -> None:
        """RunProgress_RBV: frames declared by the run / frames it expects, in %."""
        with self._lock:
            self._bump(percent != self._run_progress)
            self._run_progress = percent

    def set_frames_written(self, count: int) -> None:
        with self._lock:
            self._bump(count != self._written)
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
    ) -> None:
        """Results of frames [start, start + n) computed by an engine worker."""
        n = len(frame.total)
        with self._lock:
            self._bump()
            for region, stats in zip(self._regions, rois, strict=True):
                if stats is not None:
                    region.put(start, stats, live=True)
            self._frame.put(start, frame, live=True)
            self._counter = start + n
            self._written = max(self._written, self._counter)
            self._unique_id = unique_id
            self._stats_time = time.time()
            self._generation += 1
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
            self._bump()
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
            self._bump()
            self._recompute_progress = percent

    # -- written by PV puts (Controller protocol) ----------------------------

    def set_roi(self, index: int, **fields: int | bool) -> None:
        with self._lock:
            self._bump()
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
            self._bump()
            bins, lo, hi = self._hist
            bins = bins if size is None else size
            lo = lo if low is None else low
            hi = hi if high is None else high
            if not hi > lo:
                raise ValueError(f"HistMax ({hi:g}) must be greater than HistMin ({lo:g})")
            self._hist = (bins, lo, hi)
            self._hist_generation += 1
            if self.on_view_settings is not None:
                self.on_view_settings()

    def reset(self) -> None:
        with self._lock:
            self._bump()
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

    def view_params(self) -> ViewParams:
        """How the engine makes the live views (histogram, binned image)."""
        with self._lock:
            bins, low, high = self._hist
            generation = self._hist_generation
        publish = self.config.publish
        return ViewParams(bins, low, high, publish.image_max_size, 1.0 / publish.rate_hz,
                          generation)  # fmt: skip

    def set_live_views(self, views: LiveViews) -> None:
        """The histogram and binned image of the newest frame, made by the
        engine worker following the file (at most rate_hz)."""
        with self._lock:
            self._views_generation += 1
            self._views = replace(views, generation=self._views_generation)
            if self.on_change is not None:
                self.on_change()

    def live_views(self) -> LiveViews | None:
        """The newest live views (made by the engine; no work here)."""
        return self._views

    @property
    def views_generation(self) -> int:
        """Changes when new live views arrived."""
        return self._views_generation

    def _readback(self, index: int) -> Geometry:
        return _clamped(self._rois[index], self._frame_shape)

    def snapshot(self) -> Snapshot:
        with self._lock:
            regions = [*self._regions, self._frame]
            away = [*outside(self._rois, self._frame_shape), False]
            snaps: list[RegionSnapshot] = []
            max_map = self._frame.placed("max", self.scan)
            max_map_range = self._frame.placed_range("max", self.scan)
            for i, region in enumerate(regions):
                # incremental views: no cost for frames already shown
                grid = region.placed("total", self.scan)
                series = region.series(self._ts_len)
                snaps.append(
                    RegionSnapshot(
                        name=region.name,
                        stats=region.latest,
                        series=series,
                        map=grid,
                        map_range=region.placed_range("total", self.scan),
                        readback=self._readback(i) if i < len(self._rois) else None,
                        frame_shape=self._frame_shape,
                        stale=self._stale,
                        outside=away[i],
                        generation=region.generation,
                    )
                )
            message, severity = self._message, self._severity
            if self._note:
                message = f"{message}; {self._note}"
            names = [r.name for r in self._regions]
            if remark := outside_remark(names, away[:-1], self._frame_shape):
                message = f"{message}; {remark}"
                severity = max(severity, Severity.MINOR)
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
                max_map_range=max_map_range,
                recompute_progress=self._recompute_progress,
                uptime=time.monotonic() - self._born,
                arrays_generation=self._generation,
                stats_time=self._stats_time,
                run_uid=self._run_uid,
                plan_name=self._plan_name,
                run_progress=self._run_progress,
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
