"""The one put path: rules, access, PutError_RBV, and what the publisher posts."""

from __future__ import annotations

import math
import socket
from typing import Any

import pytest

from swmr_roi_ioc.config import parse_config
from swmr_roi_ioc.publish import (
    AlarmStatus,
    Publisher,
    PutHandler,
    PutRefusedError,
    PvSpec,
    Severity,
    WriteAccess,
    pv_table,
)

PREFIX = "T:ROI:"


class Recorder:
    """A sink: every post, in order."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, Any, Severity, AlarmStatus]] = []

    def post(self, spec: PvSpec, value: Any, severity: Severity, status: AlarmStatus,
             stamp: float) -> None:  # fmt: skip
        self.posts.append((spec.suffix, value, severity, status))


class State:
    """The Controller side: what was applied."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.hist = (0.0, 256.0)

    def set_roi(self, index: int, **fields: int | bool) -> None:
        self.calls.append(("roi", (index, fields)))

    def reset(self) -> None:
        self.calls.append(("reset", None))

    def set_histogram(self, size: int | None = None, low: float | None = None,
                      high: float | None = None) -> None:  # fmt: skip
        lo = self.hist[0] if low is None else low
        hi = self.hist[1] if high is None else high
        if not hi > lo:
            raise ValueError(f"HistMax ({hi:g}) must be greater than HistMin ({lo:g})")
        self.hist = (lo, hi)
        self.calls.append(("hist", (size, low, high)))


def _handler(access: WriteAccess | None = None) -> tuple[PutHandler, State, Recorder]:
    config = parse_config(
        f'ioc_name: t\nprefix: "{PREFIX}"\ndata_root: /data\n'
        "rois:\n  - {name: ROI1, x: 1, y: 2, width: 3, height: 4}\n"
    )
    specs = pv_table(config)
    sink = Recorder()
    state = State()
    publisher = Publisher(specs, [sink], ca=None)
    return PutHandler(PREFIX, specs, state, access or WriteAccess(), publisher), state, sink


@pytest.mark.parametrize(
    ("suffix", "value", "reason"),
    [
        ("1:MinX", -3, "-3 is outside 0..65536"),
        ("1:MinX", 1e9, "is outside 0..65536"),
        ("1:MinX", math.nan, "not a whole number"),
        ("1:SizeY", 2.5, "2.5 is not a whole number"),
        ("1:SizeY", "2.5", "not a whole number"),
        ("1:SizeX", 0, "0 is outside 1..65536"),
        ("1:MinX", "abc", "'abc' is not a number"),
        ("1:BgdWidth", -1, "outside 0.."),
        ("HistSize", 10**7, "outside 1..4096"),
        ("HistMin", math.inf, "not finite"),
        ("HistMax", -1.0, "HistMax (-1) must be greater than HistMin (0)"),
        ("1:Use", 5, "5 is outside 0..1"),
        ("1:Use", "Maybe", "'Maybe' is not one of"),
        ("Reset", 7, "write 1 (Reset), not 7"),
        ("1:Name", "x" * 50, "must be 1..39 characters"),
        ("1:Name", "  ", "must be 1..39 characters"),
        ("1:Total_RBV", 5.0, "1:Total_RBV is read-only"),
        ("Status_RBV", 0, "read-only"),
        ("Nope", 1, "no such writable PV"),
    ],
)
def test_a_bad_put_is_refused_with_its_reason(suffix: str, value: Any, reason: str) -> None:
    puts, state, sink = _handler()
    with pytest.raises(PutRefusedError) as info:
        puts.put(suffix, value, host="127.0.0.1", user="me")
    assert reason in str(info.value)
    assert str(info.value).startswith(PREFIX) or "denied" in str(info.value)
    assert state.calls == []
    assert sink.posts == [("PutError_RBV", str(info.value), Severity.NO_ALARM, 0)]


def test_a_good_put_is_applied_and_shown() -> None:
    puts, state, sink = _handler()
    puts.put("1:MinX", 7.0, host="127.0.0.1", user="me")
    puts.put("1:Use", "No", host="127.0.0.1", user="me")
    puts.put("HistMin", "10", host="127.0.0.1", user="me")
    puts.put("Reset", "Reset", host="127.0.0.1", user="me")
    puts.put("1:Name", b"Beam", host="127.0.0.1", user="me")
    assert state.calls == [
        ("roi", (0, {"x": 7})), ("roi", (0, {"use": False})), ("hist", (None, 10.0, None)),
        ("reset", None),
    ]  # fmt: skip
    shown = [(s, v) for s, v, *_ in sink.posts]
    assert shown == [("1:MinX", 7), ("1:Use", 0), ("HistMin", 10.0), ("Reset", 0),
                     ("1:Name", "Beam")]  # fmt: skip


def test_access_is_checked_by_address_and_user() -> None:
    access = WriteAccess([socket.gethostname()], ["scientist"])
    puts, state, _ = _handler(access)
    with pytest.raises(PutRefusedError, match="write access denied to me@127.0.0.1"):
        puts.put("1:MinX", 7, host="127.0.0.1", user="me")
    with pytest.raises(PutRefusedError, match="write access denied"):
        puts.put("1:MinX", 7, host="192.0.2.1", user="scientist")
    puts.put("1:MinX", 7, host="127.0.0.1", user="scientist")  # this machine, by loopback
    assert state.calls == [("roi", (0, {"x": 7}))]


def test_the_access_security_file() -> None:
    assert "RULE(0, WRITE, TRAPWRITE)\n" in WriteAccess().acf()
    acf = WriteAccess([socket.gethostname()], ["a", "b"]).acf()
    assert 'UAG(writers) { "a", "b" }' in acf
    assert '"127.0.0.1"' in acf.split("HAG(writers)")[1].split("}")[0]
    assert "RULE(0, WRITE, TRAPWRITE) { UAG(writers) HAG(writers) }" in acf
    # every record: read by all; only setpoints' VAL (ASL 0) writable
    assert "ASG(DEFAULT) {\n    RULE(1, READ)\n}" in acf
    nobody = WriteAccess(["no-such-host.invalid"]).acf()
    assert "WRITE" not in nobody


def test_the_publisher_posts_only_changes() -> None:
    from swmr_roi_ioc.app import ServiceState

    config = parse_config(
        f'ioc_name: t\nprefix: "{PREFIX}"\ndata_root: /data\n'
        "rois:\n  - {name: ROI1, x: 1, y: 2, width: 3, height: 4}\n"
    )
    sink = Recorder()
    publisher = Publisher(pv_table(config), [sink], ca=None)
    state = ServiceState(config)
    publisher.publish(state.snapshot())
    first = {s for s, *_ in sink.posts}
    assert {"Status_RBV", "1:Total_RBV", "1:TSTotal", "1:Map", "Frame:MaxMap"} <= first
    sink.posts.clear()
    publisher.publish(state.snapshot())
    assert {s for s, *_ in sink.posts} <= {"Uptime_RBV", "ArrayRate_RBV"}
    sink.posts.clear()
    state.set_link("camera IOC unreachable")
    state.set_run("uid-1", "grid_scan")
    publisher.publish(state.snapshot())
    posted = {s: (v, sev, st) for s, v, sev, st in sink.posts}
    assert posted["Status_RBV"][1:] == (Severity.MAJOR, AlarmStatus.LINK)
    assert posted["RunUid_RBV"][0] == "uid-1"
    assert posted["PlanName_RBV"][0] == "grid_scan"
    assert "1:TSTotal" not in posted  # arrays only when they changed


def test_each_status_change_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    from swmr_roi_ioc.app import ServiceState
    from swmr_roi_ioc.publish import Status

    config = parse_config(f'ioc_name: t\nprefix: "{PREFIX}"\ndata_root: /data\n')
    publisher = Publisher(pv_table(config), [Recorder()], ca=None)
    state = ServiceState(config)
    caplog.set_level("INFO", logger="swmr_roi_ioc.publish")
    for message in ("Following f.h5: 1 frames", "Following f.h5: 2 frames"):
        state.set_status(Status.FOLLOWING, message)
        publisher.publish(state.snapshot())
    publisher.publish(state.snapshot())
    state.set_link("camera IOC unreachable")
    publisher.publish(state.snapshot())
    state.set_status(Status.ERROR, "Cannot open f.h5")
    publisher.publish(state.snapshot())
    lines = [
        (r.levelname, r.getMessage()) for r in caplog.records if "Status_RBV" in r.getMessage()
    ]
    assert lines == [
        ("INFO", "Status_RBV Following: Following f.h5: 1 frames"),
        ("WARNING", "Status_RBV Following [LINK/MAJOR]: camera IOC unreachable. Following f.h5: "
                    "2 frames"),
        ("WARNING", "Status_RBV Error [LINK/MAJOR]: camera IOC unreachable. Cannot open f.h5"),
    ]  # fmt: skip
