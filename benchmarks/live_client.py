"""One Channel Access client of the 50-client benchmark: monitors PVs, counts updates.

    python -m benchmarks.live_client PV [PV ...]

A real libca client (the ``libca`` aioca loads, from ``epicscorelibs``) driven
through ctypes, one process per client as libca keeps one context per
process: it connects every PV, subscribes to each with ``DBR_TIME_*`` of its
native type and count 0 (the whole current array, as ``camonitor`` asks),
prints ``ready`` once every subscription is made, and records the arrival
time (``time.time()`` in the libca callback) of every update. It never
formats values: 50 ``camonitor`` processes printing every element of every
array would spend both cores of the test machine on ``printf``.

When its stdin closes or gets a line it prints one JSON line: per PV the
arrival times of the first ``TIMED`` PVs (the ones the benchmark counts) and
the number of updates of every PV, then exits.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import time

#: How many of the PVs given first get their arrival times recorded.
TIMED = 2
ECA_NORMAL = 1
DBE_VALUE, DBE_ALARM = 1, 4
#: DBR_TIME_STRING; DBR_TIME_<type> = this + the native DBF type.
DBR_TIME_STRING = 14
CONNECT_TIMEOUT = 30.0


class _EventArgs(ctypes.Structure):
    _fields_ = [  # noqa: RUF012 - ctypes' own declaration
        ("usr", ctypes.c_void_p),
        ("chid", ctypes.c_void_p),
        ("type", ctypes.c_long),
        ("count", ctypes.c_long),
        ("dbr", ctypes.c_void_p),
        ("status", ctypes.c_int),
    ]


_CALLBACK = ctypes.CFUNCTYPE(None, _EventArgs)


def _libca() -> ctypes.CDLL:
    from epicscorelibs.path import get_lib

    lib = ctypes.CDLL(get_lib("ca"))
    lib.ca_context_create.argtypes = [ctypes.c_int]
    lib.ca_create_channel.argtypes = [
        ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint,
        ctypes.POINTER(ctypes.c_void_p),
    ]  # fmt: skip
    lib.ca_pend_io.argtypes = [ctypes.c_double]
    lib.ca_field_type.argtypes = [ctypes.c_void_p]
    lib.ca_field_type.restype = ctypes.c_short
    lib.ca_state.argtypes = [ctypes.c_void_p]
    lib.ca_create_subscription.argtypes = [
        ctypes.c_long, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_long, _CALLBACK,
        ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
    ]  # fmt: skip
    lib.ca_flush_io.argtypes = []
    return lib


def main(pvs: list[str]) -> int:
    lib = _libca()
    counts = [0] * len(pvs)
    arrivals: list[list[float]] = [[] for _ in pvs[:TIMED]]

    def on_event(args: _EventArgs) -> None:
        if args.status != ECA_NORMAL:
            return
        index = int(args.usr or 0)
        counts[index] += 1
        if index < TIMED:
            arrivals[index].append(time.time())

    callback = _CALLBACK(on_event)  # kept alive until exit
    if lib.ca_context_create(1) != ECA_NORMAL:  # preemptive callbacks
        print("ca_context_create failed", file=sys.stderr)
        return 1
    chids = [ctypes.c_void_p() for _ in pvs]
    for pv, chid in zip(pvs, chids, strict=True):
        lib.ca_create_channel(pv.encode(), None, None, 0, ctypes.byref(chid))
    lib.ca_pend_io(CONNECT_TIMEOUT)
    missing = [pv for pv, chid in zip(pvs, chids, strict=True) if lib.ca_state(chid) != 2]
    if missing:
        print(f"not connected: {missing[:5]} ({len(missing)})", file=sys.stderr)
        return 1
    evids = [ctypes.c_void_p() for _ in pvs]
    for index, chid in enumerate(chids):
        dbr = DBR_TIME_STRING + lib.ca_field_type(chid)
        status = lib.ca_create_subscription(
            dbr, 0, chid, DBE_VALUE | DBE_ALARM, callback, index, ctypes.byref(evids[index])
        )
        if status != ECA_NORMAL:
            print(f"subscription to {pvs[index]} failed: {status}", file=sys.stderr)
            return 1
    lib.ca_flush_io()
    print("ready", flush=True)
    sys.stdin.readline()  # the benchmark says stop (or goes away)
    result = {"arrivals": dict(zip(pvs, arrivals, strict=False)),
              "counts": dict(zip(pvs, counts, strict=True))}  # fmt: skip
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)  # no libca teardown: its threads may still be delivering


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
