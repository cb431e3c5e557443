"""How a client's put is checked and applied: the rules of the PV table.

A rule converts what a client sent into the value the setpoint takes, or
raises :class:`PutRefusedError` with the reason; then applies it to the
:class:`Controller` (the service state). Pure functions, no EPICS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from swmr_roi_ioc._errors import SwmrRoiError

#: The PV that tells why the last put was refused.
PUT_ERROR = "PutError_RBV"


class PutRefusedError(SwmrRoiError, ValueError):
    """A client wrote a value the IOC will not take; the message says why."""


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


#: (value sent, PV name) -> the value to apply, or PutRefusedError
Check = Callable[[Any, str], Any]


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class PutRule:
    """How a writable PV takes a put."""

    check: Check
    #: apply the checked value; a ValueError refuses the put
    apply: Callable[[Controller, Any], Any]
    #: what the setpoint shows afterwards (Reset goes back to 0)
    shows: Callable[[Any], Any] = _same


def _scalar(value: Any) -> Any:
    """A one-element array or list as its element (CA and PVA send arrays too)."""
    if isinstance(value, np.ndarray | list | tuple):
        items = list(np.asarray(value).ravel())
        if len(items) != 1:
            raise PutRefusedError(f"{len(items)} values where one is expected")
        return items[0]
    return value


def _number(value: Any, name: str) -> float:
    value = _scalar(value)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise PutRefusedError(f"{name}: {value!r} is not a number") from exc


def as_whole(low: int, high: int) -> Check:
    """A whole number in low..high (2.5 is refused, not truncated)."""

    def check(value: Any, name: str) -> int:
        number = _number(value, name)
        if not math.isfinite(number) or number != int(number):
            raise PutRefusedError(f"{name}: {value!r} is not a whole number")
        if not low <= number <= high:
            raise PutRefusedError(f"{name}: {int(number)} is outside {low}..{high}")
        return int(number)

    return check


def as_number(value: Any, name: str) -> float:
    """A finite number."""
    number = _number(value, name)
    if not math.isfinite(number):
        raise PutRefusedError(f"{name}: {value!r} is not finite")
    return number


def as_choice(labels: Sequence[str]) -> Check:
    """An enum: the index or the label of a state; gives the index."""

    def check(value: Any, name: str) -> int:
        value = _scalar(value)
        if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
            if value in labels:
                return list(labels).index(value)
            raise PutRefusedError(f"{name}: {value!r} is not one of {list(labels)}")
        index = as_whole(0, len(labels) - 1)(value, name)
        return index

    return check


#: the states of a command PV: write 1 to run it, it shows 0 again when done
COMMAND_STATES = ("Done", "Reset")


def as_reset(value: Any, name: str) -> int:
    """A command: write 1 (its second state); 0 does nothing."""
    try:
        return as_choice(COMMAND_STATES)(value, name)
    except PutRefusedError as exc:
        raise PutRefusedError(f"{name}: write 1 (Reset), not {_scalar(value)!r}") from exc


def as_name(value: Any, name: str) -> str:
    """A ROI label: 1..39 characters."""
    value = _scalar(value)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    text = str(value).strip()
    if not text or len(text) > 39:
        raise PutRefusedError(f"{name}: must be 1..39 characters")
    return text
