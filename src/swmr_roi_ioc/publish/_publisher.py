"""From snapshots to PV updates: what changed, with which alarm and timestamp.

The :class:`Publisher` reads every PV of the table from a :class:`Snapshot`
(and the live views), compares with what it last posted and posts only the
changes to its sinks (the CA records and the PVA server). Arrays are posted
when their generation changed. Status changes are logged once, as the PVs
tell them.

Leading-edge rate limit per PV (``period``): a changed value is posted at
once when that PV is not ahead of its schedule of one post per period, else
it waits; each :meth:`publish` returns when the first waiting PV is due, and
the service's publish loop calls again then. The schedule (the generic cell
rate algorithm) allows a post up to half a period early: a 10 Hz camera's
frames, published at 10 Hz, each go out at once whatever their jitter,
while over any stretch of time no PV is posted more than rate_hz times a
second (plus one). A PV that changed after a quiet period goes out at once
(the statistics are not held back by the post of FramesWritten_RBV a few ms
before them). PVs that belong together share one schedule and go out
together (see ``_group``): a frame's counters, statistics and arrays; the
live views; Status and its message.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any, Protocol

from swmr_roi_ioc.stats import LiveViews

from ._model import AlarmStatus, Severity, Snapshot, Status
from ._pvtable import PvSpec, Source

log = logging.getLogger(__name__)


class Sink(Protocol):
    """A front end that shows PV values (CA records, PVA server)."""

    def post(
        self, spec: PvSpec, value: Any, severity: Severity, status: AlarmStatus, stamp: float
    ) -> None: ...


_NO_ALARM = (Severity.NO_ALARM, AlarmStatus.NO_ALARM)
#: How early (in periods) a post may come before its schedule.
EARLY = 0.5
#: Rate-limit groups: what one frame's results change (counters, statistics,
#: their arrays: stamped with the data's time), the live views.
FRAME, VIEWS = "frame", "views"


def _group(spec: PvSpec) -> str:
    """The rate-limit group of a PV: its PVs are posted together or wait
    together (the table's own group, e.g. Status_RBV with its message)."""
    if spec.group is not None:
        return spec.group
    if spec.source is Source.VIEWS:
        return VIEWS
    if spec.source is Source.ARRAYS or spec.data_time:
        return FRAME
    return spec.suffix


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


class Publisher:
    """Posts the table's PVs to ``sinks``; the CA sink first (``ca``)."""

    def __init__(self, specs: Sequence[PvSpec], sinks: Sequence[Sink], ca: Sink | None) -> None:
        self._sinks = list(sinks)
        self._ca = ca
        self._by_source: dict[Source, list[PvSpec]] = {s: [] for s in Source}
        for spec in specs:
            self._by_source[spec.source].append(spec)
        self._last: dict[str, tuple[Any, Severity, AlarmStatus]] = {}
        self._arrays = -1
        self._views = -1
        self._status: tuple[Any, ...] | None = None
        #: one post per PV (per group: arrays, views) per period (s), on average
        self.period = 0.0
        #: each PV's (group's) next post on its schedule (monotonic time)
        self._scheduled: dict[str, float] = {}
        #: the groups decided in the publish under way
        self._decided: dict[str, bool] = {}
        #: the earliest time a PV that waits may be posted (inf: none waits)
        self._due = math.inf

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def _post(
        self, spec: PvSpec, value: Any, alarm: tuple[Severity, AlarmStatus], stamp: float,
        *, compare: bool = True,
    ) -> None:  # fmt: skip
        if compare:
            last = self._last.get(spec.suffix)
            if last is not None and last[1:] == alarm and _same(last[0], value):
                return
            if not self._may_post(_group(spec)):
                return  # ahead of its schedule: waits (``_last`` unchanged)
            self._last[spec.suffix] = (value, *alarm)
        for sink in self._sinks:
            sink.post(spec, value, alarm[0], alarm[1], stamp)

    def _may_post(self, key: str) -> bool:
        """``key`` (a PV, or a group of them) may be posted now; if so it counts
        as posted. Decided once per :meth:`publish` for a group: its PVs go
        out together (a frame's counter, statistics and arrays; Status and
        its message), or wait together."""
        decided = self._decided.get(key)
        if decided is not None:
            return decided
        self._decided[key] = decided = self._on_schedule(key)
        return decided

    def _on_schedule(self, key: str) -> bool:
        now = time.monotonic()
        scheduled = self._scheduled.get(key, -math.inf)
        earliest = scheduled - self.period * EARLY
        if now < earliest:
            self._due = min(self._due, earliest)
            return False
        self._scheduled[key] = max(now, scheduled) + self.period
        return True

    def publish(self, snap: Snapshot, views: LiveViews | None = None) -> float:
        """Bring every PV up to ``snap`` and ``views``, those posted less than
        a period ago excepted; cheap when little changed. Statistics are
        stamped with the time they were computed. Returns the monotonic time
        at which a PV left waiting may be posted (inf: none waits)."""
        self._due = math.inf
        self._decided: dict[str, bool] = {}
        now = time.time()
        data_time = snap.stats_time if snap.stats_time is not None else now
        for spec in (*self._by_source[Source.SNAPSHOT], *self._by_source[Source.CLOCK]):
            assert spec.read is not None
            alarm = spec.alarm(snap) if spec.alarm is not None else _NO_ALARM
            self._post(spec, spec.read(snap), alarm, data_time if spec.data_time else now)
        if snap.arrays_generation != self._arrays and self._may_post(FRAME):
            self._arrays = snap.arrays_generation
            for spec in self._by_source[Source.ARRAYS]:
                assert spec.read is not None
                value = spec.read(snap)
                if value is not None:
                    self._post(spec, value, _NO_ALARM, data_time, compare=False)
        if views is not None and views.generation != self._views and self._may_post(VIEWS):
            self._views = views.generation
            for spec in self._by_source[Source.VIEWS]:
                assert spec.read is not None
                value = spec.read(views)
                self._post(spec, value, _NO_ALARM, now, compare=spec.length == 1)
        self._decided = {}
        self._log_status(snap)
        return self._due

    def publish_clock(self, uptime: float, array_rate: float) -> None:
        """Only what changes with time alone (Uptime_RBV, ArrayRate_RBV)."""
        clock = _Clock(uptime, array_rate)
        now = time.time()
        for spec in self._by_source[Source.CLOCK]:
            assert spec.read is not None
            self._post(spec, spec.read(clock), _NO_ALARM, now)

    def show(self, spec: PvSpec, value: Any, *, skip_ca: bool = False) -> None:
        """A value that does not come from the state: a setpoint someone put
        (``skip_ca``: the CA record has it already), PutError_RBV."""
        now = time.time()
        for sink in self._sinks:
            if not (skip_ca and sink is self._ca):
                sink.post(spec, value, Severity.NO_ALARM, AlarmStatus.NO_ALARM, now)

    def _log_status(self, snap: Snapshot) -> None:
        """Every change of Status_RBV (its state, alarm or message), once; while
        Following only changes of state or alarm (its message counts frames)."""
        message = "" if snap.status is Status.FOLLOWING else snap.message
        key = (snap.status, snap.severity, snap.link_alarm, message)
        if key == self._status:
            return
        self._status = key
        level = logging.WARNING if snap.severity is not Severity.NO_ALARM else logging.INFO
        alarm = ""
        if snap.severity is not Severity.NO_ALARM:
            kind = "LINK" if snap.link_alarm else "STATE"
            alarm = f" [{kind}/{snap.severity.name}]"
        log.log(level, "Status_RBV %s%s: %s", snap.status.label, alarm, snap.message)


class _Clock:
    """What the clock PVs read between snapshots."""

    def __init__(self, uptime: float, array_rate: float) -> None:
        self.uptime = uptime
        self.array_rate = array_rate
