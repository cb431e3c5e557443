"""The service's live state: counters, latest statistics, time series, maps.

Written by the reader thread (one batch of frames at a time) and by PV puts on
the event loop; read by the publisher as :class:`Snapshot` objects. One lock
guards it all; every critical section is short (no I/O, small copies).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from swmr_roi_ioc.config import IocConfig
from swmr_roi_ioc.publish import (
    Geometry,
    RegionSnapshot,
    Severity,
    Snapshot,
    Status,
    StatValues,
    map_shape,
)
from swmr_roi_ioc.stats import FrameStats, Roi, ScanGeometry, clamp_roi

SERIES_KEYS = ("total", "net", "min", "max", "mean")
#: Seconds of history ArrayRate_RBV averages over.
RATE_WINDOW = 1.0


class _Region:
    """Accumulated values of one region (ROI n, or the whole frame)."""

    def __init__(self, name: str, ts_len: int, cells: int) -> None:
        self.name = name
        self.ts_len = ts_len
        self.ring = {key: np.full(ts_len, np.nan) for key in SERIES_KEYS}
        self.map = np.full(cells, np.nan)
        self.latest = StatValues()
        #: frame index the time series starts at (moves on Reset)
        self.ts_origin = 0
        self.ts_count = 0

    def clear(self, next_index: int) -> None:
        for ring in self.ring.values():
            ring.fill(np.nan)
        self.map.fill(np.nan)
        self.latest = StatValues()
        self.ts_origin = next_index
        self.ts_count = 0

    def add(self, start: int, stats: FrameStats, cells: np.ndarray) -> None:
        n = len(stats.total)
        for key in SERIES_KEYS:
            values = getattr(stats, key)
            slots = (np.arange(start, start + n) - self.ts_origin) % self.ts_len
            keep = np.arange(start, start + n) >= self.ts_origin
            self.ring[key][slots[keep]] = values[keep]
        self.ts_count = max(self.ts_count, start + n - self.ts_origin)
        placed = cells >= 0
        self.map[cells[placed]] = stats.total[placed]
        self.latest = StatValues(
            total=float(stats.total[-1]),
            net=float(stats.net[-1]),
            min=float(stats.min[-1]),
            max=float(stats.max[-1]),
            mean=float(stats.mean[-1]),
        )

    def series(self) -> dict[str, np.ndarray]:
        """Time series in acquisition order; the latest ts_len when it wrapped."""
        if self.ts_count <= self.ts_len:
            return {key: ring.copy() for key, ring in self.ring.items()}
        cut = self.ts_count % self.ts_len
        return {key: np.concatenate((r[cut:], r[:cut])) for key, r in self.ring.items()}


class ServiceState:
    """Everything the publishers show, and the ROI geometry the pipeline uses."""

    def __init__(self, config: IocConfig) -> None:
        self._lock = threading.Lock()
        self.config = config
        rows, cols = map_shape(config)
        self.scan = ScanGeometry((rows, cols), config.scan.snake)
        ts_len = config.publish.time_series_length
        self._rois = [
            Geometry(r.x, r.y, r.width, r.height, r.background_width, r.use) for r in config.rois
        ]
        self._regions = [_Region(r.name, ts_len, rows * cols) for r in config.rois]
        self._frame = _Region("Frame", ts_len, rows * cols)
        self._status = Status.IDLE
        self._message = "Starting"
        self._severity = Severity.NO_ALARM
        self._stale = False
        self._link: str | None = None
        self._file = ""
        self._frame_shape = (0, 0)
        self._counter = 0
        self._written = 0
        self._unique_id = 0
        self._rates: deque[tuple[float, int]] = deque()
        self._generation = 0
        self._cache: tuple[int, list[dict[str, np.ndarray]], list[np.ndarray]] | None = None

    # -- written by the source and the pipeline ------------------------------

    def set_status(self, status: Status, message: str, severity: Severity | None = None) -> None:
        with self._lock:
            self._status = status
            self._message = message
            if severity is None:
                severity = Severity.MAJOR if status is Status.ERROR else Severity.NO_ALARM
            self._severity = severity
            if status is Status.ERROR:
                self._stale = True

    def set_link(self, problem: str | None) -> None:
        """The upstream IOC is unreachable (``problem``) or fine again (None).
        Status keeps its value; its alarm becomes LINK/MAJOR meanwhile."""
        with self._lock:
            self._link = problem

    @property
    def status(self) -> Status:
        return self._status

    def start_acquisition(self, path: str, frame_shape: tuple[int, int]) -> None:
        """A new file: counters, statistics, series and maps start again."""
        with self._lock:
            self._file = path
            self._frame_shape = frame_shape
            self._counter = 0
            self._written = 0
            self._unique_id = 0
            self._stale = False
            self._rates.clear()
            for region in [*self._regions, self._frame]:
                region.clear(0)
            self._generation += 1

    def set_frames_written(self, count: int) -> None:
        with self._lock:
            self._written = count

    @property
    def array_counter(self) -> int:
        return self._counter

    def rois_for_next_batch(self) -> list[Roi | None]:
        """The geometry to use now, clamped later by the stats; None = not in use."""
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
        """Results of frames [start, start + n) computed by the pipeline."""
        n = len(frame.total)
        cells = self.scan.cells(np.arange(start, start + n, dtype=np.int64))
        with self._lock:
            for region, stats in zip(self._regions, rois, strict=True):
                if stats is not None:
                    region.add(start, stats, cells)
            self._frame.add(start, frame, cells)
            self._counter = start + n
            self._written = max(self._written, self._counter)
            self._unique_id = unique_id
            self._generation += 1
            now = time.monotonic()
            self._rates.append((now, self._counter))

    # -- written by PV puts (Controller protocol) ----------------------------

    def set_roi(self, index: int, **fields: int | bool) -> None:
        with self._lock:
            self._rois[index] = replace(self._rois[index], **fields)

    def reset(self) -> None:
        with self._lock:
            for region in [*self._regions, self._frame]:
                region.clear(self._counter)
            self._generation += 1

    # -- read by the publisher -----------------------------------------------

    def _rate(self, now: float) -> float:
        while self._rates and now - self._rates[0][0] > RATE_WINDOW:
            first = self._rates.popleft()
            if not self._rates:
                self._rates.append(first)
                break
        if len(self._rates) < 2 or now - self._rates[-1][0] > RATE_WINDOW:
            return 0.0
        (t0, c0), (t1, c1) = self._rates[0], self._rates[-1]
        return (c1 - c0) / max(t1 - t0, 1e-3) if t1 > t0 else 0.0

    def snapshot(self) -> Snapshot:
        with self._lock:
            regions = [*self._regions, self._frame]
            if self._cache is None or self._cache[0] != self._generation:
                self._cache = (
                    self._generation,
                    [r.series() for r in regions],
                    [r.map.copy() for r in regions],
                )
            _, series, maps = self._cache
            shape = self._frame_shape
            snaps: list[RegionSnapshot] = []
            for i, region in enumerate(regions):
                readback = None
                if i < len(self._rois):
                    g = self._rois[i]
                    readback = g
                    if shape[0] > 0:
                        c = clamp_roi(Roi(g.x, g.y, g.width, g.height, g.background_width), shape)
                        readback = Geometry(c.x, c.y, c.width, c.height, c.background_width, g.use)
                snaps.append(
                    RegionSnapshot(
                        name=region.name,
                        stats=region.latest,
                        series=series[i],
                        map=maps[i],
                        readback=readback,
                        frame_shape=shape,
                        stale=self._stale,
                    )
                )
            message, severity = self._message, self._severity
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
                arrays_generation=self._generation,
            )
