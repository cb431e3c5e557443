"""The one table of every PV the IOC serves: name, record kind, type, length,
description, display, where the value comes from and how a put is checked.

Everything else is made from it: the softioc records (CA), the p4p PVs (PVA),
the access-security file, ``check``'s PV list; tests hold the screens, the
ophyd-async device and the README against it. The table is built per config
(the number of ROIs and the array lengths are only known at startup).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from swmr_roi_ioc.config import IocConfig
from swmr_roi_ioc.config._models import MAX_PIXELS
from swmr_roi_ioc.stats import LiveViews

from ._model import STATUS_LABELS, AlarmStatus, RegionSnapshot, Severity, Snapshot
from ._puts_rules import (
    COMMAND_STATES,
    PUT_ERROR,
    Controller,
    PutRule,
    as_choice,
    as_name,
    as_number,
    as_reset,
    as_whole,
)

#: The rate-limit group of Status_RBV and its message (see PvSpec.group).
STATUS_GROUP = "status"
#: The liveness heartbeat (the chart's probe reads it).
UPTIME = "Uptime_RBV"

#: Length of the char waveforms that carry paths and messages.
LONG_STRING = 1024
NO_YES = ("No", "Yes")


class Kind(Enum):
    """The record kind of a PV (its EPICS record type and its PVA form)."""

    AI = "ai"
    LONGIN = "longin"
    MBBI = "mbbi"
    BI = "bi"
    STRINGIN = "stringin"
    LONG_STRING = "lsi"
    WAVEFORM = "waveform"
    AO = "ao"
    LONGOUT = "longout"
    BO = "bo"
    STRINGOUT = "stringout"

    @property
    def writable(self) -> bool:
        return self in _OUT

    @property
    def enum(self) -> bool:
        return self in (Kind.MBBI, Kind.BI, Kind.BO)

    @property
    def text(self) -> bool:
        return self in (Kind.STRINGIN, Kind.STRINGOUT, Kind.LONG_STRING)

    @property
    def integer(self) -> bool:
        return self in (Kind.LONGIN, Kind.LONGOUT)


_OUT = frozenset({Kind.AO, Kind.LONGOUT, Kind.BO, Kind.STRINGOUT})


class Source(Enum):
    """Where a PV's value comes from."""

    SNAPSHOT = "snapshot"  # the state's Snapshot, at the publish rate
    ARRAYS = "arrays"  # the Snapshot too, but only when its arrays changed
    VIEWS = "views"  # histogram and live image (LiveViews)
    CLOCK = "clock"  # Uptime/ArrayRate: change with time alone
    SETPOINT = "setpoint"  # client puts (through PutHandler)
    PUTS = "puts"  # written by PutHandler itself (PutError_RBV)


class NdArray(Enum):
    """A waveform served over PVA as an NTNDArray, by the PVs of its (rows, cols)."""

    MAP = ("MapSizeY_RBV", "MapSizeX_RBV")
    IMAGE = ("ImageSizeY_RBV", "ImageSizeX_RBV")

    @property
    def rows(self) -> str:
        return self.value[0]

    @property
    def cols(self) -> str:
        return self.value[1]


#: (severity, status) of a PV given the snapshot
AlarmOf = Callable[[Snapshot], tuple[Severity, AlarmStatus]]


@dataclass(frozen=True)
class PvSpec:
    """One PV. ``read`` takes a Snapshot (SNAPSHOT, ARRAYS, CLOCK) or LiveViews (VIEWS)."""

    suffix: str
    kind: Kind
    doc: str
    source: Source
    read: Callable[[Any], Any] | None = None
    initial: Any = 0
    length: int = 1
    units: str = ""
    precision: int | None = None
    choices: tuple[str, ...] = ()
    #: stamped with the time the statistics were computed (else: time of publishing)
    data_time: bool = False
    alarm: AlarmOf | None = None
    ndarray: NdArray | None = None
    put: PutRule | None = None
    #: PVs of one group share their rate limit: posted together or not at all
    #: (None: the publisher decides, see ``_publisher._group``)
    group: str | None = None

    @property
    def writable(self) -> bool:
        return self.put is not None


def _ai(suffix: str, doc: str, read: Callable[[Any], Any], **kw: Any) -> PvSpec:
    kw.setdefault("precision", 3)
    source, initial = kw.pop("source", Source.SNAPSHOT), kw.pop("initial", 0.0)
    return PvSpec(suffix, Kind.AI, doc, source, read, initial, **kw)


def _li(suffix: str, doc: str, read: Callable[[Any], Any], **kw: Any) -> PvSpec:
    source, initial = kw.pop("source", Source.SNAPSHOT), kw.pop("initial", 0)
    return PvSpec(suffix, Kind.LONGIN, doc, source, read, initial, **kw)


def _lsi(suffix: str, doc: str, read: Callable[[Any], Any] | None, **kw: Any) -> PvSpec:
    source = kw.pop("source", Source.SNAPSHOT)
    return PvSpec(suffix, Kind.LONG_STRING, doc, source, read, "", LONG_STRING, **kw)


def _wave(suffix: str, doc: str, length: int, read: Callable[[Any], Any], **kw: Any) -> PvSpec:
    initial = kw.pop("initial", np.full(length, np.nan))
    source = kw.pop("source", Source.ARRAYS)
    return PvSpec(suffix, Kind.WAVEFORM, doc, source, read, initial, length, **kw)


def _status_alarm(snap: Snapshot) -> tuple[Severity, AlarmStatus]:
    if snap.link_alarm:
        return (snap.severity, AlarmStatus.LINK)
    if snap.severity is Severity.NO_ALARM:
        return (Severity.NO_ALARM, AlarmStatus.NO_ALARM)
    return (snap.severity, AlarmStatus.STATE)


#: Statistic PV suffix -> attribute of StatValues
STAT_PVS = {
    "Total_RBV": "total",
    "Net_RBV": "net",
    "MinValue_RBV": "min",
    "MaxValue_RBV": "max",
    "MeanValue_RBV": "mean",
}
#: Time-series PV suffix -> key of RegionSnapshot.series
SERIES_PVS = {
    "TSTotal": "total",
    "TSNet": "net",
    "TSMinValue": "min",
    "TSMaxValue": "max",
    "TSMeanValue": "mean",
}
#: Geometry setpoint suffix -> (field of Geometry, lowest allowed value)
GEOMETRY_PVS = {
    "MinX": ("x", 0),
    "MinY": ("y", 0),
    "SizeX": ("width", 1),
    "SizeY": ("height", 1),
    "BgdWidth": ("background_width", 0),
}


def _region(index: int | None, config: IocConfig) -> Iterator[PvSpec]:
    """PVs of ROI ``index`` (0-based) under ``n:``, or of the whole frame under ``Frame:``."""
    p = "Frame:" if index is None else f"{index + 1}:"
    label = p + "Name"
    ts_len = config.publish.time_series_length
    cells = map_capacity(config)

    def region(snap: Snapshot) -> RegionSnapshot:
        if index is None:
            assert snap.frame is not None
            return snap.frame
        return snap.rois[index]

    def stale(snap: Snapshot) -> tuple[Severity, AlarmStatus]:
        # INVALID when stale; MINOR (STATE) for a ROI clamped to nothing
        severity = region(snap).stats_severity
        status = {
            Severity.NO_ALARM: AlarmStatus.NO_ALARM,
            Severity.INVALID: AlarmStatus.UDF,
        }.get(severity, AlarmStatus.STATE)
        return (severity, status)

    for suffix, attr in STAT_PVS.items():
        yield _ai(
            p + suffix, f"{attr} of the latest frame",
            lambda s, a=attr: float(getattr(region(s).stats, a)), data_time=True, alarm=stale,
        )  # fmt: skip
    for suffix, key in SERIES_PVS.items():
        yield _wave(
            p + suffix, f"{key} per frame, acquisition order", ts_len,
            lambda s, k=key: region(s).series[k], data_time=True,
        )  # fmt: skip
    yield _wave(
        p + "Map", "Total placed by scan position, row-major, NaN = not yet", cells,
        lambda s: region(s).map, data_time=True, ndarray=NdArray.MAP,
    )  # fmt: skip
    yield _ai(p + "MapMin_RBV", "smallest value in Map", lambda s: region(s).map_range[0],
              data_time=True)  # fmt: skip
    yield _ai(p + "MapMax_RBV", "largest value in Map", lambda s: region(s).map_range[1],
              data_time=True)  # fmt: skip
    yield _li(p + "MaxSizeX_RBV", "frame width", lambda s: region(s).frame_shape[1])
    yield _li(p + "MaxSizeY_RBV", "frame height", lambda s: region(s).frame_shape[0])

    if index is None:
        yield PvSpec(label, Kind.STRINGIN, "region label", Source.SNAPSHOT,
                     lambda s: "Frame", "Frame")  # fmt: skip
        yield _wave(
            p + "MaxMap", "per-frame maximum placed by scan position", cells,
            lambda s: s.max_map, data_time=True, ndarray=NdArray.MAP,
        )  # fmt: skip

        yield _ai(p + "MaxMapMin_RBV", "smallest value in MaxMap",
                  lambda s: s.max_map_range[0], data_time=True)  # fmt: skip
        yield _ai(p + "MaxMapMax_RBV", "largest value in MaxMap",
                  lambda s: s.max_map_range[1], data_time=True)  # fmt: skip
        return

    roi = config.rois[index]

    def readback(s: Snapshot) -> Any:
        rb = region(s).readback
        assert rb is not None
        return rb

    yield PvSpec(
        label, Kind.STRINGOUT, "ROI label", Source.SETPOINT, initial=roi.name,
        put=PutRule(as_name, lambda c, v: None),
    )  # fmt: skip
    yield PvSpec(
        p + "Use", Kind.BO, "use this ROI", Source.SETPOINT, initial=int(roi.use),
        choices=NO_YES, put=PutRule(as_choice(NO_YES), lambda c, v: c.set_roi(index, use=v == 1)),
    )  # fmt: skip
    yield PvSpec(p + "Use_RBV", Kind.BI, "ROI in use", Source.SNAPSHOT,
                 lambda s: int(readback(s).use), int(roi.use), choices=NO_YES)  # fmt: skip
    for suffix, (field, low) in GEOMETRY_PVS.items():
        start = int(getattr(roi, field))

        def apply(c: Controller, v: Any, f: str = field) -> None:
            c.set_roi(index, **{f: int(v)})

        yield PvSpec(
            p + suffix, Kind.LONGOUT, f"{suffix} setpoint", Source.SETPOINT, initial=start,
            put=PutRule(as_whole(low, MAX_PIXELS), apply),
        )  # fmt: skip
        yield PvSpec(p + f"{suffix}_RBV", Kind.LONGIN, f"{suffix} in use (clamped)",
                     Source.SNAPSHOT, lambda s, f=field: int(getattr(readback(s), f)),
                     start)  # fmt: skip


def _views(config: IocConfig) -> Iterator[PvSpec]:
    """Histogram (NDPluginStats names) and the live image."""
    hist = config.publish.histogram
    cap = hist_capacity(config)
    side = config.publish.image_max_size
    views = Source.VIEWS

    def wave(suffix: str, doc: str, length: int, read: Callable[[LiveViews], Any],
             **kw: Any) -> PvSpec:  # fmt: skip
        return _wave(suffix, doc, length, read, source=views, initial=np.zeros(1), **kw)

    yield wave("Histogram_RBV", "counts per bin of the latest frame", cap, lambda v: v.histogram)
    yield wave("HistogramX_RBV", "bin centres", cap, lambda v: v.histogram_x)
    setpoint = Source.SETPOINT
    size = PutRule(as_whole(1, cap), lambda c, v: c.set_histogram(size=int(v)))
    low = PutRule(as_number, lambda c, v: c.set_histogram(low=v))
    high = PutRule(as_number, lambda c, v: c.set_histogram(high=v))
    yield PvSpec("HistSize", Kind.LONGOUT, "number of bins", setpoint, initial=hist.bins, put=size)
    yield _li("HistSize_RBV", "number of bins", lambda v: v.hist_size, source=views,
              initial=hist.bins)  # fmt: skip
    yield PvSpec("HistMin", Kind.AO, "lower edge", setpoint, initial=float(hist.min),
                 precision=3, put=low)  # fmt: skip
    yield _ai("HistMin_RBV", "lower edge", lambda v: v.hist_min, source=views,
              initial=float(hist.min))  # fmt: skip
    yield PvSpec("HistMax", Kind.AO, "upper edge", setpoint, initial=float(hist.max),
                 precision=3, put=high)  # fmt: skip
    yield _ai("HistMax_RBV", "upper edge", lambda v: v.hist_max, source=views,
              initial=float(hist.max))  # fmt: skip
    yield _li("HistBelow_RBV", "pixels below HistMin", lambda v: v.below, source=views)
    yield _li("HistAbove_RBV", "pixels at or above HistMax", lambda v: v.above, source=views)
    # the sizes before the image: a PVA client gets the image in its new shape
    image = NdArray.IMAGE
    yield _li(image.cols, "columns of Image", lambda v: v.image.shape[1], source=views)
    yield _li(image.rows, "rows of Image", lambda v: v.image.shape[0], source=views)
    yield wave("Image", "latest frame binned, row-major", side * side,
               lambda v: v.image.ravel(), ndarray=NdArray.IMAGE)  # fmt: skip


def _ioc(config: IocConfig) -> Iterator[PvSpec]:
    """The whole-IOC PVs."""
    yield PvSpec("Status_RBV", Kind.MBBI, "Idle, Waiting, Following, Finished, Error",
                 Source.SNAPSHOT, lambda s: int(s.status), 0, choices=tuple(STATUS_LABELS),
                 alarm=_status_alarm, group=STATUS_GROUP)  # fmt: skip
    yield _lsi("StatusMessage_RBV", "what the IOC does or waits for", lambda s: s.message,
               group=STATUS_GROUP)  # fmt: skip
    yield _lsi("FilePath_RBV", "the HDF5 file followed now", lambda s: s.file_path)
    yield _li("ArrayCounter_RBV", "frames processed in this acquisition",
              lambda s: s.array_counter, data_time=True)  # fmt: skip
    yield _li("FramesWritten_RBV", "frames complete in the file", lambda s: s.frames_written)
    yield _li("UniqueId_RBV", "NDArrayUniqueId of the last frame processed",
              lambda s: s.unique_id, data_time=True)  # fmt: skip
    yield _ai("ArrayRate_RBV", "frames/s processed", lambda s: round(s.array_rate, 3),
              units="Hz", precision=1, source=Source.CLOCK)  # fmt: skip
    yield _li(NdArray.MAP.cols, "columns of the maps", lambda s: s.map_shape[1])
    yield _li(NdArray.MAP.rows, "rows of the maps", lambda s: s.map_shape[0])
    yield _li("NumROIs_RBV", "number of ROIs", lambda s: len(s.rois))
    yield _ai(UPTIME, "seconds since the IOC started (liveness heartbeat)",
              lambda s: float(int(s.uptime)), units="s", precision=0,
              source=Source.CLOCK)  # fmt: skip
    yield PvSpec("Reset", Kind.BO, "write 1: clear statistics, maps and time series",
                 Source.SETPOINT, initial=0, choices=COMMAND_STATES,
                 put=PutRule(as_reset, lambda c, v: c.reset() if v == 1 else None,
                             shows=lambda v: 0))  # fmt: skip
    yield _ai("RecomputeProgress_RBV", "a ROI change applied to past frames: 0..100",
              lambda s: round(s.recompute_progress, 1), units="%", precision=1,
              initial=100.0)  # fmt: skip
    yield _lsi(PUT_ERROR, "why the last refused put was refused", None, source=Source.PUTS)
    yield _lsi("RunUid_RBV", "uid of the bluesky run followed now", lambda s: s.run_uid)
    yield _lsi("PlanName_RBV", "plan name of the bluesky run followed now",
               lambda s: s.plan_name)  # fmt: skip
    yield _ai("RunProgress_RBV", "bluesky: frames declared / frames the run expects",
              lambda s: round(s.run_progress, 1), units="%", precision=1)  # fmt: skip


def pv_table(config: IocConfig) -> list[PvSpec]:
    """Every PV for ``config``, in a stable order (IOC, views, ROIs 1..N, Frame)."""
    specs = [*_ioc(config), *_views(config)]
    for n in range(len(config.rois)):
        specs.extend(_region(n, config))
    specs.extend(_region(None, config))
    seen: set[str] = set()
    for spec in specs:
        assert spec.suffix not in seen, f"PV {spec.suffix} twice in the table"
        seen.add(spec.suffix)
    return specs


def pv_names(config: IocConfig) -> list[str]:
    """Every PV the IOC serves for ``config`` (prefix included), sorted."""
    return sorted(config.prefix + spec.suffix for spec in pv_table(config))


def hist_capacity(config: IocConfig) -> int:
    """Length of the histogram waveforms: the largest HistSize a put may ask."""
    return max(config.publish.histogram.bins, 4096)


def map_shape(config: IocConfig) -> tuple[int, int]:
    """(rows, cols) of the maps at startup: scan.shape, or one row of
    time_series_length (until the file or the plugin tells the geometry)."""
    if config.scan.shape is not None:
        return config.scan.shape
    return (1, min(config.publish.time_series_length, config.scan.max_points))


def map_capacity(config: IocConfig) -> int:
    """Length of the map waveforms: scan.shape's points, else scan.max_points."""
    if config.scan.shape is not None:
        return config.scan.shape[0] * config.scan.shape[1]
    return max(config.scan.max_points, config.publish.time_series_length)
