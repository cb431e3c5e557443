"""The caproto soft IOC: every PV of DESIGN.md, in the NDPluginROIStat layout.

The PV groups are built per config (the number of ROIs and the waveform
lengths are only known at startup). Values come from :class:`Snapshot` objects
at the publish rate; writes go to a :class:`Controller`, which validates and
applies them. A put that cannot be applied raises, and caproto refuses it.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from caproto import AlarmSeverity, AlarmStatus, ChannelType
from caproto.server import PVGroup, PvpropertyInteger, SubGroup, pvproperty

from swmr_roi_ioc.config import IocConfig, RoiConfig
from swmr_roi_ioc.config._models import MAX_PIXELS

from ._access import WriteAccess
from ._model import STATUS_LABELS, LiveViews, RegionSnapshot, Severity, Snapshot

log = logging.getLogger(__name__)

_FLOAT_TYPES = (ChannelType.DOUBLE, ChannelType.FLOAT, ChannelType.TIME_DOUBLE,
                ChannelType.TIME_FLOAT, ChannelType.CTRL_DOUBLE, ChannelType.CTRL_FLOAT,
                ChannelType.STS_DOUBLE, ChannelType.STS_FLOAT)  # fmt: skip
#: Updates of one array kept per slow subscriber (caproto's default is about
#: 1000, cut to ~57 for large arrays): for a live map or image only the newest
#: matters, and 10 slow clients of 10,000-point maps held ~75 MB each.
ARRAY_BACKLOG = 4
#: Updates of any other PV kept per subscription (caproto keeps the last 1000,
#: sent or not, per subscription): 5 s at 10 Hz. With caproto's 1000, ten
#: monitoring clients grew the IOC by ~18 MB in its first minutes (soak, issue 7).
SCALAR_BACKLOG = 50
#: Length of the char waveforms that carry paths and messages.
LONG_STRING = 1024
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
NO_YES = ["No", "Yes"]

_SEVERITY = {
    Severity.NO_ALARM: AlarmSeverity.NO_ALARM,
    Severity.MINOR: AlarmSeverity.MINOR_ALARM,
    Severity.MAJOR: AlarmSeverity.MAJOR_ALARM,
    Severity.INVALID: AlarmSeverity.INVALID_ALARM,
}


_alarm_groups = itertools.count()


def _pv(**kwargs: Any) -> Any:
    """pvproperty(...) with an alarm of its own.

    caproto gives every PV of a PVGroup one shared alarm unless told otherwise,
    so a MAJOR alarm on Status_RBV would be cleared by the next write to any
    other PV. (Also: caproto's annotations reject the ChannelType dtypes it
    accepts.)"""
    kwargs.setdefault("alarm_group", f"pv{next(_alarm_groups)}")
    kwargs.setdefault("max_subscription_backlog", SCALAR_BACKLOG)
    return pvproperty(**kwargs)


class PutRefusedError(ValueError):
    """A client wrote a value the IOC will not take; the message says why."""


class StrictInteger(PvpropertyInteger):  # type: ignore[misc]
    """An integer setpoint that refuses a fractional or non-finite value
    instead of truncating it (caproto, like a longout record, would convert
    2.5 to 2 before any putter sees it)."""

    async def write_from_dbr(
        self, data: Any, data_type: Any, metadata: Any, *, flags: int = 0
    ) -> None:
        if data_type in _FLOAT_TYPES:
            values = np.asarray(data, dtype=np.float64).ravel()
            bad = values[~np.isfinite(values) | (values != np.round(values))]
            if bad.size:
                raise PutRefusedError(f"{self.pvname}: {bad[0]!r} is not a whole number")
        await super().write_from_dbr(data, data_type, metadata, flags=flags)


class Controller(Protocol):
    """What the IOC calls when a client writes a setpoint."""

    def set_roi(self, index: int, **fields: int | bool) -> None:
        """Change ROI ``index`` (0-based); applies from the next frame."""

    def reset(self) -> None:
        """Clear statistics, maps and time series."""

    def set_histogram(
        self, size: int | None = None, low: float | None = None, high: float | None = None
    ) -> None:
        """HistSize / HistMin / HistMax; raises ValueError for an empty range."""


def _range(values: np.ndarray) -> tuple[float, float]:
    """(min, max) ignoring NaN; (NaN, NaN) when nothing landed yet."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (math.nan, math.nan)
    return (float(finite.min()), float(finite.max()))


def _long_string(text: str) -> str:
    """A char-waveform value: cut to fit, and never zero elements long (caproto
    serves "" as an empty array, whose CA monitors never deliver a value)."""
    return text[: LONG_STRING - 1] or "\0"


def _as_int(value: Any, name: str, low: int, high: int = MAX_PIXELS) -> int:
    """Validate a numeric put; raise PutRefusedError with the reason."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise PutRefusedError(f"{name}: {value!r} is not a number") from exc
    if not math.isfinite(number) or number != int(number):
        raise PutRefusedError(f"{name}: {value!r} is not a whole number")
    if not low <= number <= high:
        raise PutRefusedError(f"{name}: {int(number)} is outside {low}..{high}")
    return int(number)


def _region_group(
    *, index: int | None, ts_len: int, map_len: int, name: str, roi: RoiConfig | None = None
) -> type[PVGroup]:
    """A PVGroup class for ROI ``index`` (0-based), or the whole frame if None.

    Setpoints and readbacks start at the configured geometry ``roi``."""
    body: dict[str, Any] = {}

    def stat(doc: str) -> Any:
        return _pv(value=0.0, read_only=True, record="ai", precision=3, doc=doc)

    def wave(doc: str, length: int) -> Any:
        return _pv(
            value=np.full(length, np.nan).tolist(),
            dtype=ChannelType.DOUBLE,
            max_length=length,
            read_only=True,
            doc=doc,
            max_subscription_backlog=ARRAY_BACKLOG,
        )

    for suffix, attr in STAT_PVS.items():
        body[suffix] = stat(f"{attr} of the latest frame")
    for suffix, key in SERIES_PVS.items():
        body[suffix] = wave(f"{key} per frame, acquisition order", ts_len)
    body["Map"] = wave("Total placed by scan position, row-major, NaN = not yet", map_len)
    body["MapMin_RBV"] = stat("smallest value in Map (colour scale)")
    body["MapMax_RBV"] = stat("largest value in Map (colour scale)")
    body["MaxSizeX_RBV"] = _pv(value=0, read_only=True, doc="frame width")
    body["MaxSizeY_RBV"] = _pv(value=0, read_only=True, doc="frame height")

    if index is None:
        body["Name"] = _pv(value=name, dtype=ChannelType.STRING, read_only=True)
        body["MaxMap"] = wave("per-frame maximum placed by scan position", map_len)
        body["MaxMapMin_RBV"] = stat("smallest value in MaxMap")
        body["MaxMapMax_RBV"] = stat("largest value in MaxMap")
        return type("FrameGroup", (PVGroup,), body)

    assert roi is not None
    use = "Yes" if roi.use else "No"
    body["Name"] = _pv(value=name, dtype=ChannelType.STRING, doc="ROI label")
    body["Use"] = _pv(value=use, dtype=ChannelType.ENUM, enum_strings=NO_YES, record="bo")
    body["Use_RBV"] = _pv(value=use, dtype=ChannelType.ENUM, enum_strings=NO_YES, read_only=True)
    for suffix, (field, _low) in GEOMETRY_PVS.items():
        start = int(getattr(roi, field))
        body[suffix] = _pv(
            value=start, dtype=StrictInteger, record="longout", doc=f"{suffix} setpoint"
        )
        body[f"{suffix}_RBV"] = _pv(value=start, read_only=True, record="longin")

    cls = type(f"Roi{index + 1}Group", (PVGroup,), body)
    _attach_putters(cls, index)
    return cls


def _controller(group: PVGroup) -> Controller:
    parent = group.parent
    assert isinstance(parent, RoiIoc)
    return parent.controller


def _attach_putters(cls: type[PVGroup], index: int) -> None:
    """Setpoint putters: validate, hand to the controller, echo the value."""

    def geometry_putter(suffix: str, field: str, low: int) -> Callable[..., Any]:
        async def put(group: PVGroup, instance: Any, value: Any) -> int:
            number = _as_int(value, f"{group.prefix}{suffix}", low)
            _controller(group).set_roi(index, **{field: number})
            return number

        return put

    for suffix, (field, low) in GEOMETRY_PVS.items():
        prop: Any = getattr(cls, suffix)
        prop.putter(geometry_putter(suffix, field, low))

    async def put_use(group: PVGroup, instance: Any, value: Any) -> Any:
        text = value if isinstance(value, str) else NO_YES[_as_int(value, "Use", 0, 1)]
        if text not in NO_YES:
            raise PutRefusedError(f"{group.prefix}Use: {value!r} is not one of {NO_YES}")
        _controller(group).set_roi(index, use=text == "Yes")
        return text

    async def put_name(group: PVGroup, instance: Any, value: Any) -> str:
        text = str(value).strip()
        if not text or len(text) > 39:
            raise PutRefusedError(f"{group.prefix}Name: must be 1..39 characters")
        return text

    cls.Use.putter(put_use)  # type: ignore[attr-defined]
    cls.Name.putter(put_name)  # type: ignore[attr-defined]


class RoiIoc(PVGroup):
    """The whole-IOC PVs; ROI and Frame subgroups are added per config."""

    Status_RBV = _pv(
        value=STATUS_LABELS[0],
        dtype=ChannelType.ENUM,
        enum_strings=STATUS_LABELS,
        read_only=True,
        record="mbbi",
        doc="Idle, Waiting, Following, Finished, Error",
    )
    StatusMessage_RBV = _pv(
        value="\0", dtype=ChannelType.CHAR, max_length=LONG_STRING, read_only=True
    )
    FilePath_RBV = _pv(value="\0", dtype=ChannelType.CHAR, max_length=LONG_STRING, read_only=True)
    ArrayCounter_RBV = _pv(value=0, read_only=True, record="longin")
    RunUid_RBV = _pv(value="\0", dtype=ChannelType.CHAR, max_length=LONG_STRING, read_only=True)
    PlanName_RBV = _pv(value="\0", dtype=ChannelType.CHAR, max_length=LONG_STRING, read_only=True)
    RunProgress_RBV = _pv(
        value=0.0, read_only=True, record="ai", units="%", precision=1,
        doc="bluesky source: frames declared by the run / frames it expects",
    )  # fmt: skip
    FramesWritten_RBV = _pv(value=0, read_only=True, record="longin")
    UniqueId_RBV = _pv(value=0, read_only=True, record="longin")
    ArrayRate_RBV = _pv(value=0.0, read_only=True, record="ai", units="Hz", precision=1)
    MapSizeX_RBV = _pv(value=0, read_only=True, record="longin")
    MapSizeY_RBV = _pv(value=0, read_only=True, record="longin")
    NumROIs_RBV = _pv(value=0, read_only=True, record="longin")
    Uptime_RBV = _pv(
        value=0.0, read_only=True, record="ai", units="s", precision=0,
        doc="seconds since the IOC started (liveness heartbeat)",
    )  # fmt: skip
    Reset = _pv(
        value="Done",
        dtype=ChannelType.ENUM,
        enum_strings=["Done", "Reset"],
        record="bo",
        doc="write 1: clear statistics, maps and time series",
    )

    @Reset.putter  # pyright: ignore[reportGeneralTypeIssues]
    async def Reset(self, instance: Any, value: Any) -> str:  # noqa: N802
        if value in ("Reset", 1):
            self.controller.reset()
        elif value not in ("Done", 0):
            raise PutRefusedError(f"{self.prefix}Reset: write 1 (Reset), not {value!r}")
        return "Done"

    def __init__(
        self, *args: Any, controller: Controller, hist_capacity: int = 4096, **kwargs: Any
    ) -> None:
        self.controller = controller
        self.hist_capacity = hist_capacity
        #: who may write (set per config by build_ioc)
        self.access = WriteAccess()
        self._last: dict[str, Any] = {}
        self._arrays_generation = -1
        self._views_generation = -1
        super().__init__(*args, **kwargs)

    # -- publishing -----------------------------------------------------------

    async def _put(
        self,
        prop: Any,
        value: Any,
        severity: Severity = Severity.NO_ALARM,
        status: AlarmStatus | None = None,
        timestamp: float | None = None,
    ) -> None:
        """Write if value or alarm changed (monitors only on change); stamped
        with ``timestamp`` (the data's time), else the time of the write."""
        key = prop.pvname
        if self._last.get(key) == (value, severity, status):
            return
        self._last[key] = (value, severity, status)
        if status is None:
            status = AlarmStatus.NO_ALARM
            if severity is Severity.INVALID:
                status = AlarmStatus.UDF
            elif severity is not Severity.NO_ALARM:
                status = AlarmStatus.STATE
        await _write(prop, value, timestamp, severity=_SEVERITY[severity], status=status)

    @property
    def clock_pvs(self) -> list[str]:
        """The PVs :meth:`publish_clock` writes."""
        return [self.Uptime_RBV.pvname, self.ArrayRate_RBV.pvname]

    async def publish_clock(self, uptime: float, array_rate: float) -> None:
        """Only what changes with time alone, when nothing else changed."""
        await self._put(self.ArrayRate_RBV, round(array_rate, 3))
        await self._put(self.Uptime_RBV, float(int(uptime)))

    async def publish(self, snap: Snapshot, views: LiveViews | None = None) -> None:
        """Bring every PV up to ``snap`` (and the live views); cheap when little changed.

        The statistics (counter, unique id, per-region values, series, maps) are
        stamped with the time they were computed, ``snap.stats_time``."""
        link = AlarmStatus.LINK if snap.link_alarm else None
        stamp = snap.stats_time
        await self._put(self.Status_RBV, snap.status.label, snap.severity, link)
        await self._put(self.StatusMessage_RBV, _long_string(snap.message))
        await self._put(self.FilePath_RBV, _long_string(snap.file_path))
        await self._put(self.ArrayCounter_RBV, snap.array_counter, timestamp=stamp)
        await self._put(self.RunUid_RBV, _long_string(snap.run_uid))
        await self._put(self.PlanName_RBV, _long_string(snap.plan_name))
        await self._put(self.RunProgress_RBV, round(snap.run_progress, 1))
        await self._put(self.FramesWritten_RBV, snap.frames_written)
        await self._put(self.UniqueId_RBV, snap.unique_id, timestamp=stamp)
        await self._put(self.ArrayRate_RBV, round(snap.array_rate, 3))
        await self._put(self.MapSizeY_RBV, snap.map_shape[0])
        await self._put(self.MapSizeX_RBV, snap.map_shape[1])
        await self._put(self.NumROIs_RBV, len(snap.rois))
        await self._put(self.Uptime_RBV, float(int(snap.uptime)))
        ioc: Any = self  # the PVs below are added per config
        await self._put(ioc.RecomputeProgress_RBV, round(snap.recompute_progress, 1))
        if views is not None and views.generation != self._views_generation:
            self._views_generation = views.generation
            await self._publish_views(views)
        arrays = snap.arrays_generation != self._arrays_generation
        self._arrays_generation = snap.arrays_generation
        groups = [getattr(self, f"roi{n + 1}") for n in range(len(snap.rois))]
        for group, region in zip(groups, snap.rois, strict=True):
            await self._publish_region(group, region, arrays, stamp)
        if snap.frame is not None:
            frame: Any = getattr(self, "frame")  # noqa: B009 - the subgroup is added per config
            await self._publish_region(frame, snap.frame, arrays, stamp)
            if snap.max_map is not None:
                low, high = _range(snap.max_map)
                await self._put(frame.MaxMapMin_RBV, low, timestamp=stamp)
                await self._put(frame.MaxMapMax_RBV, high, timestamp=stamp)
                if arrays:
                    await _write(frame.MaxMap, snap.max_map, stamp)

    async def _publish_views(self, views: LiveViews) -> None:
        ioc: Any = self
        await self._put(ioc.HistSize_RBV, views.hist_size)
        await self._put(ioc.HistMin_RBV, views.hist_min)
        await self._put(ioc.HistMax_RBV, views.hist_max)
        await self._put(ioc.HistBelow_RBV, views.below)
        await self._put(ioc.HistAbove_RBV, views.above)
        await ioc.Histogram_RBV.write(views.histogram)
        await ioc.HistogramX_RBV.write(views.histogram_x)
        rows, cols = views.image.shape
        await self._put(ioc.ImageSizeY_RBV, rows)
        await self._put(ioc.ImageSizeX_RBV, cols)
        await ioc.Image.write(views.image.ravel())

    async def _publish_region(
        self, group: Any, region: RegionSnapshot, arrays: bool, stamp: float | None
    ) -> None:
        severity = Severity.INVALID if region.stale else Severity.NO_ALARM
        for suffix, attr in STAT_PVS.items():
            value = float(getattr(region.stats, attr))
            await self._put(getattr(group, suffix), value, severity, timestamp=stamp)
        await self._put(group.MaxSizeY_RBV, region.frame_shape[0])
        await self._put(group.MaxSizeX_RBV, region.frame_shape[1])
        if region.readback is not None:
            rb = region.readback
            await self._put(group.Use_RBV, "Yes" if rb.use else "No")
            for suffix, (field, _low) in GEOMETRY_PVS.items():
                await self._put(getattr(group, f"{suffix}_RBV"), int(getattr(rb, field)))
        low, high = _range(region.map)
        await self._put(group.MapMin_RBV, low, timestamp=stamp)
        await self._put(group.MapMax_RBV, high, timestamp=stamp)
        if arrays:
            for suffix, key in SERIES_PVS.items():
                await _write(getattr(group, suffix), region.series[key], stamp)
            await _write(group.Map, region.map, stamp)


async def _write(prop: Any, value: Any, timestamp: float | None, **metadata: Any) -> None:
    """``prop.write(value)`` stamped with ``timestamp`` if given (caproto's default
    stamp is the time of the write)."""
    if timestamp is not None:
        metadata["timestamp"] = timestamp
    await prop.write(value, **metadata)


def build_ioc(config: IocConfig, controller: Controller) -> RoiIoc:
    """The IOC for ``config``: RoiIoc plus one SubGroup per ROI and Frame."""
    ts_len = config.publish.time_series_length
    cells = map_capacity(config)
    body: dict[str, Any] = {}
    for n, roi in enumerate(config.rois):
        group = _region_group(index=n, ts_len=ts_len, map_len=cells, name=roi.name, roi=roi)
        body[f"roi{n + 1}"] = SubGroup(group, prefix=f"{n + 1}:")
    frame = _region_group(index=None, ts_len=ts_len, map_len=cells, name="Frame")
    body["frame"] = SubGroup(frame, prefix="Frame:")
    body.update(_views_pvs(config))
    cls = type("ConfiguredRoiIoc", (RoiIoc,), body)
    _attach_view_putters(cls)
    ioc = cls(prefix=config.prefix, controller=controller, hist_capacity=hist_capacity(config))
    ioc.access = WriteAccess(config.access.write_hosts, config.access.write_users)
    ioc.access.guard_ca(ioc.pvdb)
    return ioc


def hist_capacity(config: IocConfig) -> int:
    """Length of the histogram waveforms: the largest HistSize a put may ask."""
    return max(config.publish.histogram.bins, 4096)


def _views_pvs(config: IocConfig) -> dict[str, Any]:
    """Histogram (NDPluginStats names), live image, recompute progress."""
    hist = config.publish.histogram
    cap = hist_capacity(config)
    side = config.publish.image_max_size

    def wave(length: int, doc: str) -> Any:
        return _pv(value=[0.0], dtype=ChannelType.DOUBLE, max_length=length, read_only=True,
                   doc=doc, max_subscription_backlog=ARRAY_BACKLOG)  # fmt: skip

    def readback(value: Any, doc: str) -> Any:
        return _pv(value=value, read_only=True, doc=doc)

    return {
        "Histogram_RBV": wave(cap, "counts per bin of the latest frame"),
        "HistogramX_RBV": wave(cap, "bin centres"),
        "HistSize": _pv(
            value=hist.bins, dtype=StrictInteger, record="longout", doc="number of bins"
        ),
        "HistSize_RBV": readback(hist.bins, "number of bins"),
        "HistMin": _pv(value=float(hist.min), record="ao", doc="lower edge"),
        "HistMin_RBV": readback(float(hist.min), "lower edge"),
        "HistMax": _pv(value=float(hist.max), record="ao", doc="upper edge"),
        "HistMax_RBV": readback(float(hist.max), "upper edge"),
        "HistBelow_RBV": readback(0, "pixels below HistMin"),
        "HistAbove_RBV": readback(0, "pixels at or above HistMax"),
        "Image": wave(side * side, "latest frame binned, row-major"),
        "ImageSizeX_RBV": readback(0, "columns of Image"),
        "ImageSizeY_RBV": readback(0, "rows of Image"),
        "RecomputeProgress_RBV": _pv(
            value=100.0,
            read_only=True,
            record="ai",
            units="%",
            precision=1,
            doc="a ROI change applied to past frames: 0..100",
        ),  # fmt: skip
    }


def _attach_view_putters(cls: type[PVGroup]) -> None:
    async def put_size(group: Any, instance: Any, value: Any) -> int:
        size = _as_int(value, f"{group.prefix}HistSize", 1, group.hist_capacity)
        group.controller.set_histogram(size=size)
        return size

    def edge(name: str) -> Callable[..., Any]:
        async def put(group: Any, instance: Any, value: Any) -> float:
            try:
                number = float(value)
            except (TypeError, ValueError) as exc:
                raise PutRefusedError(f"{group.prefix}{name}: {value!r} is not a number") from exc
            if not math.isfinite(number):
                raise PutRefusedError(f"{group.prefix}{name}: {value!r} is not finite")
            try:
                if name == "HistMin":
                    group.controller.set_histogram(low=number)
                else:
                    group.controller.set_histogram(high=number)
            except ValueError as exc:
                raise PutRefusedError(f"{group.prefix}{name}: {exc}") from exc
            return number

        return put

    attrs: Any = cls
    attrs.HistSize.putter(put_size)
    attrs.HistMin.putter(edge("HistMin"))
    attrs.HistMax.putter(edge("HistMax"))


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


def pv_names(config: IocConfig) -> list[str]:
    """Every PV the IOC serves for ``config``, sorted."""

    class _Nothing:
        def set_roi(self, index: int, **fields: int | bool) -> None: ...
        def reset(self) -> None: ...
        def set_histogram(
            self, size: int | None = None, low: float | None = None, high: float | None = None
        ) -> None: ...

    return sorted(build_ioc(config, _Nothing()).pvdb)
