"""How one PV of the table looks over PVAccess: its Normative Type and its Values.

Pure translation, no server: :func:`nt_type` picks the NT (NTScalar,
NTScalarArray, NTEnum, NTNDArray), :func:`initial_value` builds the first Value
(with display metadata), :func:`update_value` the value + alarm + timeStamp
posted on every change, and :func:`put_value` takes a client's put apart.

NTNDArrays are made as areaDetector's NDPluginPva makes them: the value union
(``doubleValue``), ``dimension`` with x (columns) first, ``uniqueId``,
``dataTimeStamp`` and ``timeStamp``, ``codec`` none, sizes in bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from p4p import Type, Value
from p4p.nt import NTEnum, NTNDArray, NTScalar

from ._model import AlarmStatus, Severity
from ._pvtable import Kind, PvSpec

# NTAlarm status codes (pvData AlarmStatus)
_DEVICE, _DRIVER, _RECORD, _DB, _CONF, _UNDEFINED, _CLIENT = 1, 2, 3, 4, 5, 6, 7
#: CA alarm condition -> NTAlarm status, as pvAccessCPP's CA provider maps them
#: (the condition's name goes into alarm.message)
_STATUS = {
    AlarmStatus.NO_ALARM: 0,
    AlarmStatus.STATE: _RECORD,
    AlarmStatus.LINK: _DB,
    AlarmStatus.UDF: _UNDEFINED,
}
#: display.form choices of the NT spec (index 0 = Default)
_FORMS = ["Default", "String", "Binary", "Decimal", "Hex", "Exponential", "Engineering"]


def code(spec: PvSpec) -> str:
    """p4p type code of the value (or of the elements of an array)."""
    if spec.kind.text:
        return "s"
    if spec.kind.integer or spec.kind.enum:
        return "i"
    return "d"


def nt_type(spec: PvSpec) -> Type:
    """The NT of ``spec`` over PVAccess."""
    if spec.kind.enum:
        return NTEnum.buildType()
    if spec.kind.text:
        return NTScalar.buildType("s", display=True)
    if spec.ndarray is not None:
        return NTNDArray.buildType()
    if spec.kind is Kind.WAVEFORM:
        return NTScalar.buildType("ad", display=True, form=True)
    return NTScalar.buildType(code(spec), display=True, form=True)


def initial_value(spec: PvSpec, nt: Type, value: Any, stamp: float) -> Value:
    """The Value a SharedPV of type ``nt`` opens with: ``value`` plus display metadata."""
    out = update_value(spec, nt, value, Severity.NO_ALARM, AlarmStatus.NO_ALARM, stamp)
    if spec.kind.enum:
        out["value.choices"] = list(spec.choices)
    elif spec.kind.text:
        out["display.description"] = spec.doc
    elif spec.ndarray is None:
        out["display.description"] = spec.doc
        out["display.units"] = spec.units
        if spec.precision is not None:
            out["display.precision"] = spec.precision
        out["display.form.choices"] = _FORMS
    return out


def _stamp(stamp: float) -> dict[str, int]:
    sec, frac = divmod(stamp, 1.0)
    return {"secondsPastEpoch": int(sec), "nanoseconds": min(int(frac * 1e9), 999_999_999)}


def update_value(
    spec: PvSpec,
    nt: Type,
    value: Any,
    severity: Severity,
    status: AlarmStatus,
    stamp: float,
    *,
    shape: tuple[int, int] | None = None,
    unique_id: int = 0,
) -> Value:
    """value + alarm + timeStamp (only these fields marked changed), of type
    ``nt`` (the PV's own: p4p posts only Values of the type it opened with).
    ``shape``: (rows, cols) of an NTNDArray."""
    when = _stamp(stamp)
    alarm = {
        "severity": int(severity),
        "status": _STATUS.get(status, _RECORD) if status else 0,
        "message": status.name if status else "",
    }
    if spec.ndarray is not None:
        flat = np.asarray(value, dtype=np.float64).ravel()
        rows, cols = shape if shape is not None else (1, flat.size)
        if rows * cols > flat.size or rows * cols == 0:
            rows, cols = (1, flat.size)
        out = _ndarray(nt, flat[: rows * cols], rows, cols, unique_id, when)
    else:
        out = Value(nt, {"value": _plain(spec, value)})
    out["alarm"] = alarm
    out["timeStamp"] = when
    return out


def _ndarray(
    nt: Type, flat: np.ndarray, rows: int, cols: int, unique_id: int, when: dict[str, int]
) -> Value:
    """A 2-D float64 NTNDArray as ``NTNDArray().wrap`` makes it (x first in
    ``dimension``, ColorMode 0), built without copying the array twice."""
    size = flat.nbytes
    return Value(nt, {
        "value": ("doubleValue", flat),
        "compressedSize": size,
        "uncompressedSize": size,
        "uniqueId": unique_id,
        "dataTimeStamp": when,
        "attribute": [{"name": "ColorMode", "value": 0}],
        "dimension": [
            {"size": n, "offset": 0, "fullSize": n, "binning": 1, "reverse": False}
            for n in (cols, rows)
        ],
    })  # fmt: skip


def _plain(spec: PvSpec, raw: Any) -> Any:
    """The value as the PVA value field wants it."""
    if spec.kind.enum:
        return {"index": int(raw)}
    if spec.kind.text:
        return str(raw)
    if spec.kind is Kind.WAVEFORM:
        return np.asarray(raw, dtype=np.float64).ravel()
    if spec.kind.integer:
        return int(raw)
    return float(raw)


def put_value(spec: PvSpec, value: Value) -> Any:
    """What a client's put carries for ``spec`` (an enum: its index); ValueError if nothing."""
    field = "value.index" if spec.kind.enum else "value"
    if not value.changed(field):
        raise ValueError(f"the put carries no {field}")
    return value[field]
