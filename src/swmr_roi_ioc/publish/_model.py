"""What the publishers show: a plain snapshot of the service's state.

The app builds a :class:`Snapshot` at the publish rate; every publisher (CA and
PVA, the web page) turns it into values. Publishers never see frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class Status(IntEnum):
    """P:Status_RBV (mbbi)."""

    IDLE = 0
    WAITING = 1
    FOLLOWING = 2
    FINISHED = 3
    ERROR = 4

    @property
    def label(self) -> str:
        return self.name.capitalize()


#: Labels of P:Status_RBV, in value order.
STATUS_LABELS = [s.label for s in Status]


class Severity(IntEnum):
    """EPICS alarm severity, as the publishers should raise it."""

    NO_ALARM = 0
    MINOR = 1
    MAJOR = 2
    INVALID = 3


class AlarmStatus(IntEnum):
    """EPICS alarm status (menuAlarmStat), the ones the IOC raises."""

    NO_ALARM = 0
    STATE = 7
    LINK = 14
    UDF = 17


@dataclass(frozen=True)
class Geometry:
    """A ROI as configured (setpoints) and as used (readbacks, clamped)."""

    x: int
    y: int
    width: int
    height: int
    background_width: int
    use: bool


@dataclass(frozen=True)
class StatValues:
    """Latest statistics of one region (ROI n or the whole frame)."""

    total: float = 0.0
    net: float = 0.0
    min: float = 0.0
    max: float = 0.0
    mean: float = 0.0


@dataclass(frozen=True)
class RegionSnapshot:
    """Everything published for one region."""

    name: str
    stats: StatValues
    #: time series, acquisition order: total, net, min, max, mean
    series: dict[str, np.ndarray]
    #: rows x cols map, flattened row-major, NaN where nothing has landed
    map: np.ndarray
    #: readback geometry (clamped to the frame); None for the whole frame
    readback: Geometry | None = None
    #: frame size the readbacks were clamped to, (H, W)
    frame_shape: tuple[int, int] = (0, 0)
    #: the statistics are stale (error); publish them with an INVALID alarm
    stale: bool = False
    #: changes whenever ``series`` or ``map`` changed (equal: the same arrays,
    #: which a publisher may skip). The arrays are read-only and never
    #: written after they are handed over.
    generation: int = 0
    #: the ROI lies outside the frame: clamped to one pixel at its edge (as
    #: NDPluginROIStat does); its statistics carry a MINOR alarm
    outside: bool = False

    @property
    def stats_severity(self) -> Severity:
        """The alarm severity of this region's statistics PVs."""
        if self.stale:
            return Severity.INVALID
        return Severity.MINOR if self.outside else Severity.NO_ALARM


@dataclass(frozen=True)
class Snapshot:
    """One coherent view of the service for the publishers."""

    status: Status
    message: str
    severity: Severity
    file_path: str
    array_counter: int
    frames_written: int
    unique_id: int
    array_rate: float
    map_shape: tuple[int, int]
    rois: list[RegionSnapshot] = field(default_factory=list)
    frame: RegionSnapshot | None = None
    #: per-frame maxima of the whole frame placed by scan position (rows x cols, flat)
    max_map: np.ndarray | None = None
    #: 0-100 while a ROI change is applied to past frames; 100 when done
    recompute_progress: float = 100.0
    #: increments whenever any array (series, maps) changed
    arrays_generation: int = 0
    #: the alarm is about a lost link (the camera IOC), not the state
    link_alarm: bool = False
    #: seconds since the service started
    uptime: float = 0.0
    #: POSIX time the newest statistics were computed: the timestamp of the
    #: statistics PVs (EPICS: the data's time); None = the time of publishing
    stats_time: float | None = None
    #: bluesky source: the run followed (its start document's uid and plan_name)
    run_uid: str = ""
    plan_name: str = ""
    #: bluesky source: frames declared by StreamDatum / frames the run expects, %
    run_progress: float = 0.0
