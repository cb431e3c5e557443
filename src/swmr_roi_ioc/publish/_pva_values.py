"""How one caproto channel looks over PVAccess: its Normative Type and its Values.

Pure translation, no server: :func:`describe` picks the NT for a caproto
``ChannelData`` (NTScalar, NTScalarArray, NTEnum, NTNDArray), :func:`initial_value`
builds the first Value (with display metadata), :func:`update_value` the
value + alarm + timeStamp posted on every change, and :func:`put_value` turns
a client's put back into what ``ChannelData.write`` takes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt
from caproto import AlarmStatus, ChannelChar, ChannelData, ChannelEnum, ChannelType
from p4p import Type, Value
from p4p.nt import NTEnum, NTNDArray, NTScalar


class Kind(Enum):
    """The shape of a PV over PVAccess."""

    SCALAR = "NTScalar"
    ARRAY = "NTScalarArray"
    ENUM = "NTEnum"
    STRING = "NTScalar string"
    NDARRAY = "NTNDArray"


#: caproto numeric type -> p4p type code
_CODES = {
    ChannelType.DOUBLE: "d",
    ChannelType.FLOAT: "f",
    ChannelType.LONG: "i",
    ChannelType.INT: "h",
    ChannelType.CHAR: "B",
}
_DTYPES = {"d": np.float64, "f": np.float32, "i": np.int32, "h": np.int16, "B": np.uint8}

# NTAlarm status codes (pvData AlarmStatus)
_DEVICE, _DRIVER, _RECORD, _DB, _CONF, _CLIENT = 1, 2, 3, 4, 5, 7
#: CA alarm condition -> NTAlarm status, as pvAccessCPP's CA provider maps them
#: (src/ca/caStatus.cpp); the condition's name goes into alarm.message.
_STATUS = {
    AlarmStatus.NO_ALARM: 0,
    AlarmStatus.READ: _DRIVER,
    AlarmStatus.WRITE: _DRIVER,
    AlarmStatus.HIHI: _RECORD,
    AlarmStatus.HIGH: _RECORD,
    AlarmStatus.LOLO: _RECORD,
    AlarmStatus.LOW: _RECORD,
    AlarmStatus.STATE: _RECORD,
    AlarmStatus.COS: _RECORD,
    AlarmStatus.COMM: _DRIVER,
    AlarmStatus.TIMEOUT: _DRIVER,
    AlarmStatus.HWLIMIT: _DEVICE,
    AlarmStatus.CALC: _RECORD,
    AlarmStatus.SCAN: _DB,
    AlarmStatus.LINK: _DB,
    AlarmStatus.SOFT: _DB,
    AlarmStatus.BAD_SUB: _CONF,
    AlarmStatus.UDF: _RECORD,
    AlarmStatus.DISABLE: _RECORD,
    AlarmStatus.SIMM: _RECORD,
    AlarmStatus.READ_ACCESS: _CLIENT,
    AlarmStatus.WRITE_ACCESS: _CLIENT,
}
#: display.form choices of the NT spec (index 0 = Default)
_FORMS = ["Default", "String", "Binary", "Decimal", "Hex", "Exponential", "Engineering"]

#: (rows, cols) of an NTNDArray PV, given the number of elements it holds now
ShapeOf = Callable[[int], tuple[int, int]]


@dataclass(frozen=True)
class PvSpec:
    """One caproto channel and what it is over PVAccess."""

    name: str
    chan: ChannelData
    kind: Kind
    #: p4p type code of the value (or of the elements of an array)
    code: str
    nt_type: Type
    writable: bool
    #: only for Kind.NDARRAY
    shape_of: ShapeOf | None = None


@dataclass(frozen=True)
class ChannelState:
    """What a sync compares: value, alarm and timestamp of a channel."""

    value: Any
    severity: int
    status: int
    message: str
    timestamp: float

    @classmethod
    def of(cls, chan: ChannelData) -> ChannelState:
        alarm = chan.alarm
        if alarm is None:
            return cls(chan.value, 0, 0, "", float(chan.timestamp))
        return cls(
            value=chan.value,
            severity=int(alarm.severity),
            status=int(alarm.status),
            message=str(alarm.alarm_string or ""),
            timestamp=float(chan.timestamp),
        )

    def same_as(self, other: ChannelState) -> bool:
        """True if nothing a PVA client sees differs (NaN equals NaN)."""
        if (self.severity, self.status, self.message, self.timestamp) != (
            other.severity,
            other.status,
            other.message,
            other.timestamp,
        ):
            return False
        a, b = self.value, other.value
        if a is b:
            return True
        if isinstance(a, int | float | str) and isinstance(b, int | float | str):
            return a == b or (_is_nan(a) and _is_nan(b))
        return False  # arrays: a new object means a new write


def _is_nan(x: object) -> bool:
    return isinstance(x, float) and math.isnan(x)


def describe(name: str, chan: ChannelData, shape_of: ShapeOf | None, writable: bool) -> PvSpec:
    """The PVA form of ``chan``; ``shape_of`` makes a numeric array an NTNDArray."""
    if isinstance(chan, ChannelEnum):
        return PvSpec(name, chan, Kind.ENUM, "i", NTEnum.buildType(), writable)
    if isinstance(chan, ChannelChar) or chan.data_type is ChannelType.STRING:
        return PvSpec(name, chan, Kind.STRING, "s", NTScalar.buildType("s", display=True), writable)
    code = _CODES.get(chan.data_type, "d")
    if (chan.max_length or 1) > 1:
        if shape_of is not None:
            nt = NTNDArray.buildType()
            return PvSpec(name, chan, Kind.NDARRAY, "d", nt, writable, shape_of)
        nt = NTScalar.buildType("a" + code, display=True, form=True)
        return PvSpec(name, chan, Kind.ARRAY, code, nt, writable)
    nt = NTScalar.buildType(code, display=True, form=True)
    return PvSpec(name, chan, Kind.SCALAR, code, nt, writable)


def initial_value(spec: PvSpec) -> Value:
    """The Value a SharedPV opens with: current state plus metadata."""
    value = update_value(spec, ChannelState.of(spec.chan), unique_id=0)
    chan = spec.chan
    doc = vars(chan).get("__doc__")  # pvproperty(doc=...) sets it per instance
    if spec.kind is Kind.ENUM:
        assert isinstance(chan, ChannelEnum)
        value["value.choices"] = [str(s) for s in chan.enum_strings]
    elif spec.kind is Kind.STRING:
        value["display.description"] = str(doc or "")
    elif spec.kind in (Kind.SCALAR, Kind.ARRAY):
        value["display.description"] = str(doc or "")
        value["display.units"] = str(getattr(chan, "units", "") or "")
        precision = getattr(chan, "precision", None)
        if precision is not None:
            value["display.precision"] = int(precision)
        value["display.form.choices"] = _FORMS
        for field, attr in (("limitLow", "lower_disp_limit"), ("limitHigh", "upper_disp_limit")):
            limit = getattr(chan, attr, None)
            if limit is not None:
                value[f"display.{field}"] = limit
    return value


def update_value(spec: PvSpec, state: ChannelState, unique_id: int) -> Value:
    """value + alarm + timeStamp of ``state`` (only these fields marked changed)."""
    sec, frac = divmod(state.timestamp, 1.0)
    stamp = {"secondsPastEpoch": int(sec), "nanoseconds": min(int(frac * 1e9), 999_999_999)}
    alarm = {
        "severity": state.severity,
        "status": _STATUS.get(AlarmStatus(state.status), _RECORD) if state.status else 0,
        "message": state.message or (AlarmStatus(state.status).name if state.status else ""),
    }
    if spec.kind is Kind.NDARRAY:
        assert spec.shape_of is not None
        flat = np.asarray(state.value, dtype=np.float64).ravel()
        rows, cols = spec.shape_of(flat.size)
        value = NTNDArray().wrap(flat[: rows * cols].reshape(rows, cols))
        value["uniqueId"] = unique_id
        value["dataTimeStamp"] = stamp
    else:
        value = Value(spec.nt_type, {"value": _plain(spec, state.value)})
    value["alarm"] = alarm
    value["timeStamp"] = stamp
    return value


def _plain(spec: PvSpec, raw: Any) -> Any:
    """The caproto value as the PVA value field wants it."""
    if spec.kind is Kind.ENUM:
        assert isinstance(spec.chan, ChannelEnum)
        strings = list(spec.chan.enum_strings)
        return {"index": strings.index(raw) if raw in strings else _int(raw)}
    if spec.kind is Kind.STRING:
        return _text(raw)
    if spec.kind is Kind.ARRAY:
        return _array(raw, spec.code)
    scalar = raw
    if isinstance(raw, list | tuple | np.ndarray):
        scalar = np.asarray(raw).ravel()[0] if len(raw) else 0
    return float(scalar) if spec.code in ("d", "f") else _int(scalar)


def _int(raw: Any) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return 0


def _text(raw: Any) -> str:
    """A char waveform or string value as text (up to the first NUL)."""
    if isinstance(raw, np.ndarray):
        raw = raw.astype(np.uint8).tobytes()
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    return str(raw).split("\0", 1)[0]


def _array(raw: Any, code: str) -> npt.NDArray[Any]:
    return np.asarray(raw, dtype=_DTYPES[code]).ravel()


def put_value(spec: PvSpec, value: Value) -> Any:
    """What a client's put asks ``ChannelData.write`` to write; ValueError if nothing."""
    field = "value.index" if spec.kind is Kind.ENUM else "value"
    if not value.changed(field):
        raise ValueError(f"{spec.name}: the put carries no {field}")
    new = value[field]
    if spec.kind is Kind.ARRAY:
        return np.asarray(new).tolist()
    return new
