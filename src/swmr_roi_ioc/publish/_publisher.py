"""From snapshots to PV updates: what changed, with which alarm and timestamp.

The :class:`Publisher` reads every PV of the table from a :class:`Snapshot`
(and the live views), compares with what it last posted and posts only the
changes to its sinks (the CA records and the PVA server). Arrays are posted
when their generation changed. Status changes are logged once, as the PVs
tell them. Rate limiting is the caller's (the service's publish loop).
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
            self._last[spec.suffix] = (value, *alarm)
        for sink in self._sinks:
            sink.post(spec, value, alarm[0], alarm[1], stamp)

    def publish(self, snap: Snapshot, views: LiveViews | None = None) -> None:
        """Bring every PV up to ``snap`` and ``views``; cheap when little changed.
        Statistics are stamped with the time they were computed."""
        now = time.time()
        data_time = snap.stats_time if snap.stats_time is not None else now
        for spec in (*self._by_source[Source.SNAPSHOT], *self._by_source[Source.CLOCK]):
            assert spec.read is not None
            alarm = spec.alarm(snap) if spec.alarm is not None else _NO_ALARM
            self._post(spec, spec.read(snap), alarm, data_time if spec.data_time else now)
        if snap.arrays_generation != self._arrays:
            self._arrays = snap.arrays_generation
            for spec in self._by_source[Source.ARRAYS]:
                assert spec.read is not None
                value = spec.read(snap)
                if value is not None:
                    self._post(spec, value, _NO_ALARM, data_time, compare=False)
        if views is not None and views.generation != self._views:
            self._views = views.generation
            for spec in self._by_source[Source.VIEWS]:
                assert spec.read is not None
                value = spec.read(views)
                self._post(spec, value, _NO_ALARM, now, compare=spec.length == 1)
        self._log_status(snap)

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
