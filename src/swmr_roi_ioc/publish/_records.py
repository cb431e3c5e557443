"""Channel Access: the PV table as pythonSoftIOC records, served by EPICS base RSRV.

:func:`start_ca` makes one record per table entry, writes the access-security
file, registers the write trap and runs ``iocInit`` with the service's own
asyncio loop as softioc's dispatcher. One IOC per process: it can run once.

Readbacks are input records with ``SCAN=I/O Intr`` and ``TSE=-2`` (the
timestamp comes from the data); :class:`CaRecords` is the publisher's sink
that ``set()``s them. Setpoints are output records whose ``validate`` hands
the put to the :class:`PutHandler` (check, apply, PutError_RBV, log); a
refused put keeps the old value and fails at the client.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._access import SETPOINT_ASG, WriteAccess
from ._ca_trap import Judge, PutTrap
from ._model import AlarmStatus, Severity
from ._puts_rules import COMMAND_STATES, PutRefusedError
from ._pvtable import Kind, PvSpec

log = logging.getLogger(__name__)

#: EPICS callback queue entries (default 2000): a publish sets ~100-1000 records
#: at once, each an I/O Intr scan request on this queue.
CALLBACK_QUEUE = 20_000
#: DESC holds 40 characters
_DESC = 40

#: (suffix, value, host, user) -> None or PutRefusedError; the put path of CA
CaPut = Callable[[str, Any, str, str], None]


def _text(value: str, limit: int) -> str:
    """``value`` cut to ``limit - 1`` bytes of UTF-8 (room for the NUL)."""
    data = value.encode(errors="replace")
    if len(data) < limit:
        return value
    return data[: limit - 1].decode(errors="ignore")


class CaRecords:
    """The records of one IOC, and the publisher's sink that sets them."""

    def __init__(self, prefix: str, specs: Sequence[PvSpec]) -> None:
        self.prefix = prefix
        self._specs = {spec.suffix: spec for spec in specs}
        self.specs = list(specs)
        self._records: dict[str, Any] = {}

    # -- building (before iocInit) ----------------------------------------------

    def judge(self, put: CaPut) -> Judge:
        """The write trap's decision on a put with its raw value (see PutTrap)."""

        def judge(record: str, raw: Any, host: str, user: str) -> bool | None:
            spec = self._specs.get(record[len(self.prefix) :])
            if raw is None or spec is None or not record.startswith(self.prefix):
                return None
            try:
                put(spec.suffix, raw, host, user)
            except PutRefusedError:
                return False
            except Exception:  # an error must refuse the put, not reach the IOC
                log.exception("put to %s failed", record)
                return False
            return True

        return judge

    def build(self, put: CaPut, trap: PutTrap) -> None:
        from softioc import builder

        for spec in self._specs.values():
            name = self.prefix + spec.suffix
            fields: dict[str, Any] = {"DESC": spec.doc[:_DESC]}
            if spec.writable:
                fields["ASG"] = SETPOINT_ASG
                fields["validate"] = self._validator(spec, put, trap)
                fields["on_update"] = self._after_put(spec)
                fields["always_update"] = spec.choices == COMMAND_STATES
            else:
                fields["TSE"] = -2
            self._records[spec.suffix] = _make(builder, spec, name, fields)

    def _validator(self, spec: PvSpec, put: CaPut, trap: PutTrap) -> Callable[[Any, Any], bool]:
        name = self.prefix + spec.suffix

        def validate(record: Any, value: Any) -> bool:
            judged = trap.accepted(name)
            if judged is not None:  # checked and applied by the write trap
                return judged
            try:  # a put the trap did not judge: the value as the record took it
                put(spec.suffix, value, "", "")
            except PutRefusedError:
                return False
            except Exception:  # an error must refuse the put, not reach the IOC
                log.exception("put to %s failed", name)
                return False
            return True

        return validate

    def _after_put(self, spec: PvSpec) -> Callable[[Any], None]:
        """A setpoint that shows something else than was written (Reset -> 0)."""
        assert spec.put is not None
        shows = spec.put.shows

        def on_update(value: Any) -> None:
            shown = shows(value)
            if shown != value:
                self._records[spec.suffix].set(shown, process=False)

        return on_update

    # -- the publisher's sink ---------------------------------------------------

    def post(
        self, spec: PvSpec, value: Any, severity: Severity, status: AlarmStatus, stamp: float
    ) -> None:
        record = self._records.get(spec.suffix)
        if record is None:
            return
        if spec.kind.text:
            value = _text(str(value), spec.length if spec.kind is Kind.LONG_STRING else 40)
        elif spec.kind is Kind.WAVEFORM:
            value = np.asarray(value, dtype=np.float64).ravel()[: spec.length]
        if spec.writable:  # a setpoint changed by another front end
            record.set(value, process=False)
        else:
            record.set(value, severity=int(severity), alarm=int(status), timestamp=stamp)


def _make(builder: Any, spec: PvSpec, name: str, fields: dict[str, Any]) -> Any:
    """The softioc builder record of ``spec``."""
    kind = spec.kind
    initial = spec.initial
    if spec.precision is not None and kind in (Kind.AI, Kind.AO):
        fields["PREC"] = spec.precision
    if spec.units:
        fields["EGU"] = spec.units
    if kind is Kind.AI:
        return builder.aIn(name, initial_value=float(initial), **fields)
    if kind is Kind.AO:
        return builder.aOut(name, initial_value=float(initial), **fields)
    if kind is Kind.LONGIN:
        return builder.longIn(name, initial_value=int(initial), **fields)
    if kind is Kind.LONGOUT:
        return builder.longOut(name, initial_value=int(initial), **fields)
    if kind is Kind.MBBI:
        return builder.mbbIn(name, *spec.choices, initial_value=int(initial), **fields)
    if kind is Kind.BI:
        zero, one = spec.choices
        return builder.boolIn(name, zero, one, initial_value=int(initial), **fields)
    if kind is Kind.BO:
        zero, one = spec.choices
        return builder.boolOut(name, zero, one, initial_value=int(initial), **fields)
    if kind is Kind.STRINGIN:
        return builder.stringIn(name, initial_value=str(initial), **fields)
    if kind is Kind.STRINGOUT:
        return builder.stringOut(name, initial_value=str(initial), **fields)
    if kind is Kind.LONG_STRING:
        return builder.longStringIn(name, length=spec.length, initial_value=str(initial), **fields)
    assert kind is Kind.WAVEFORM
    start = np.asarray(initial, dtype=np.float64)
    return builder.WaveformIn(name, start, length=spec.length, **fields)


def _keep_the_gil_in_scan_requests() -> None:
    """``record.set()`` ends in ``scanIoRequest`` (queue the record for
    processing: a few microseconds, no Python), which softioc calls through
    ctypes.CDLL and so releases the GIL around it. A publish sets ~100 records:
    each release let the reader thread take the GIL for up to a switch interval
    (5 ms), and the IOC published at 5 Hz instead of 10 while following 500
    frames/s. Called through ctypes.PyDLL, the same function keeps the GIL."""
    from epicscorelibs.ioc import dbCore
    from softioc import imports

    held = ctypes.PyDLL(dbCore._name).scanIoRequest  # noqa: SLF001 - the library's path
    held.argtypes = (ctypes.c_void_p,)
    held.restype = None
    imports.scanIoRequest = held


def _set_int(library: Any, symbol: str, value: int) -> bool:
    try:
        ctypes.c_int.in_dll(library, symbol).value = value
    except ValueError:
        return False
    return True


def start_ca(
    records: CaRecords, access: WriteAccess, put: CaPut, loop: asyncio.AbstractEventLoop
) -> None:
    """Load the records, the access-security file and start the IOC (CA only:
    PVA is served by the p4p server of the same table). Call once, in ``loop``."""
    from epicscorelibs.ioc import Com, dbCore
    from softioc import asyncio_dispatcher, builder, softioc
    from softioc.imports import get_field_offsets

    disp_offset = int(get_field_offsets("longout")["DISP"][0])  # dbCommon: every record
    trap = PutTrap(records.judge(put), disp_offset)
    records.build(put, trap)
    acf = Path(tempfile.gettempdir()) / f"swmr-roi-ioc-{os.getpid()}.acf"
    acf.write_text(access.acf())
    dbCore.asSetFilename.argtypes = (ctypes.c_char_p,)
    dbCore.asSetFilename(str(acf).encode())
    # match CA clients by their address, not by the host name they claim
    if not (_set_int(Com, "asCheckClientIP", 1) or _set_int(dbCore, "asCheckClientIP", 1)):
        log.warning("asCheckClientIP not found: CA hosts are matched by the name they claim")
    dbCore.callbackSetQueueSize.argtypes = (ctypes.c_int,)
    dbCore.callbackSetQueueSize(CALLBACK_QUEUE)
    builder.LoadDatabase()
    _keep_the_gil_in_scan_requests()
    dispatcher = asyncio_dispatcher.AsyncioDispatcher(loop=loop)
    softioc.iocInit(dispatcher, enable_pva=False)
    acf.unlink(missing_ok=True)  # read by iocInit
    log.info("CA server (EPICS base RSRV) serving %d PVs", len(records.specs))
