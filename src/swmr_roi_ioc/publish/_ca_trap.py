"""CA puts checked before they reach a record: EPICS access security's write trap.

RSRV converts a put to the record's type before the record sees it (2.5 sent
to a longout arrives as 2); a softioc ``validate`` callback gets neither the
sender's host nor user; and a record that refuses a value in its processing
still reports success to a put with callback (``caput -c``, aioca's
``wait=True``). With ``TRAPWRITE`` on the setpoints' write rule (see
``WriteAccess.acf``), RSRV calls the listener registered here just before each
put, with the sender and the raw value: the listener hands them to the put
path, and if the put is refused it disables the record's puts (``DISP``) for
this one put, so RSRV answers it with a failure and nothing changes.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from epicscorelibs.ioc import Com

log = logging.getLogger(__name__)

#: db_access.h DBR code -> ctypes type of one element
_DBR = {
    1: ctypes.c_int16,  # DBR_SHORT
    2: ctypes.c_float,  # DBR_FLOAT
    3: ctypes.c_uint16,  # DBR_ENUM
    4: ctypes.c_uint8,  # DBR_CHAR
    5: ctypes.c_int32,  # DBR_LONG
    6: ctypes.c_double,  # DBR_DOUBLE
}
_DBR_STRING = 0
_MAX_STRING = 40


class _Message(ctypes.Structure):
    _fields_ = (
        ("userid", ctypes.c_char_p),
        ("hostid", ctypes.c_char_p),
        ("serverSpecific", ctypes.c_void_p),
        ("userPvt", ctypes.c_void_p),
        ("dbrType", ctypes.c_int),
        ("no_elements", ctypes.c_int),
        ("data", ctypes.c_void_p),
    )


_LISTENER = ctypes.CFUNCTYPE(None, ctypes.POINTER(_Message), ctypes.c_int)

#: (record name, raw value, host, user) -> accepted (applied) or refused; None:
#: not judged here (no raw value), the record's validate decides
Judge = Callable[[str, Any, str, str], bool | None]


@dataclass
class _Pending:
    record: str
    accepted: bool | None
    disabled: int  # address of DISP set for this put, or 0


def _raw(msg: _Message) -> Any:
    """The first element the client sent, as Python (None if unknown)."""
    if not msg.data or msg.no_elements < 1:
        return None
    if msg.dbrType == _DBR_STRING:
        text = ctypes.string_at(msg.data, _MAX_STRING).split(b"\0", 1)[0]
        return text.decode(errors="replace")
    ctype = _DBR.get(msg.dbrType)
    if ctype is None:
        return None
    return ctype.from_address(msg.data).value


class PutTrap:
    """Registers the write-trap listener (before iocInit); ``judge`` decides."""

    def __init__(self, judge: Judge, disp_offset: int) -> None:
        self._judge = judge
        self._disp_offset = disp_offset
        #: record -> the put being processed (RSRV processes the record in the
        #: thread that called the listener; a put with callback may call it
        #: "after" from another thread: the message's userPvt finds the put)
        self._pending: dict[str, _Pending] = {}
        self._tokens: dict[int, _Pending] = {}
        self._count = itertools.count(1)
        self._callback = _LISTENER(self._listen)  # kept alive with self
        register = Com.asTrapWriteRegisterListener
        register.argtypes = (_LISTENER,)
        register.restype = ctypes.c_void_p
        register(self._callback)

    def accepted(self, record: str) -> bool | None:
        """In ``validate``: did the trap accept the put to ``record`` being
        processed in this thread (None: not a trapped put)."""
        pending = self._pending.get(record)
        return None if pending is None else pending.accepted

    def _listen(self, message: Any, after: int) -> None:
        try:
            msg = message.contents
            if after:
                pending = self._tokens.pop(msg.userPvt or 0, None)
                if pending is not None:
                    if self._pending.get(pending.record) is pending:
                        del self._pending[pending.record]
                    if pending.disabled:
                        ctypes.c_uint8.from_address(pending.disabled).value = 0
                return
            chan = ctypes.cast(msg.serverSpecific, ctypes.POINTER(ctypes.c_void_p))
            name = ctypes.cast(chan[0], ctypes.c_char_p).value or b""
            record = name.decode(errors="replace").split(".", 1)[0]
            host = (msg.hostid or b"").decode(errors="replace")
            user = (msg.userid or b"").decode(errors="replace")
            accepted = self._judge(record, _raw(msg), host, user)
            disabled = 0
            if accepted is False:  # dbChannel: name, then dbAddr whose first member is precord
                precord = chan[1]
                if precord:
                    disabled = precord + self._disp_offset
                    ctypes.c_uint8.from_address(disabled).value = 1
            pending = _Pending(record, accepted, disabled)
            token = next(self._count)
            self._pending[record] = self._tokens[token] = pending
            msg.userPvt = token
        except Exception:  # a listener must never raise into RSRV
            log.exception("CA write trap failed")
