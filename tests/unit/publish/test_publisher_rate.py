"""The publisher's leading-edge rate limit per PV, on a real ServiceState and
PV table, with the clock under the test's control."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from swmr_roi_ioc.app import ServiceState
from swmr_roi_ioc.config import parse_config
from swmr_roi_ioc.publish import Publisher, pv_table
from swmr_roi_ioc.publish import _publisher as publisher_module
from swmr_roi_ioc.stats import FrameStats

CONFIG = """\
ioc_name: test-ioc
prefix: "T:"
data_root: /data
rois:
  - {name: A, x: 0, y: 0, width: 2, height: 2}
"""
PERIOD = 0.1


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Sink:
    def __init__(self, clock: _Clock) -> None:
        self.clock = clock
        self.posts: list[tuple[float, Any]] = []

    def post(self, spec: Any, value: Any, severity: Any, status: Any, stamp: float) -> None:
        if spec.suffix == "ArrayCounter_RBV":
            self.posts.append((self.clock.now, value))


def _stats(n: int) -> FrameStats:
    t = np.array([float(n)])
    return FrameStats(t, t, t, t, t)


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch) -> tuple[ServiceState, Publisher, _Sink, _Clock]:
    clock = _Clock()
    monkeypatch.setattr(publisher_module.time, "monotonic", clock)
    config = parse_config(CONFIG)
    state = ServiceState(config)
    state.start_acquisition("/data/x.h5", (8, 8))
    sink = _Sink(clock)
    publisher = Publisher(pv_table(config), [sink], ca=None)
    publisher.period = PERIOD
    return state, publisher, sink, clock


def test_a_jittered_source_at_the_rate_goes_out_at_once(
    setup: tuple[ServiceState, Publisher, _Sink, _Clock],
) -> None:
    """Frames at rate_hz with a few ms of jitter: each is posted when it comes
    (a strict 'a period since the last post' would push them later and later)."""
    state, publisher, sink, clock = setup
    start = clock.now
    jitter = np.random.default_rng(1).uniform(-0.02, 0.02, 200)
    for n in range(1, 200):
        clock.now = start + n * PERIOD + jitter[n]
        state.add_batch(n - 1, [_stats(n)], _stats(n), n)
        publisher.publish(state.snapshot())
        assert sink.posts[-1] == (clock.now, n)


def test_a_fast_source_is_posted_at_most_rate_hz_and_the_latest_when_due(
    setup: tuple[ServiceState, Publisher, _Sink, _Clock],
) -> None:
    """Frames at 10 x rate_hz: the first at once, then at most one post per
    period on average (one more at most in any stretch), never a stale one."""
    state, publisher, sink, clock = setup
    start = clock.now
    for n in range(1, 1001):  # 10 s at 100 Hz, a publish pass at each
        clock.now = start + n * PERIOD / 10
        state.add_batch(n - 1, [_stats(n)], _stats(n), n)
        due = publisher.publish(state.snapshot())
        assert due == float("inf") or clock.now < due <= clock.now + PERIOD
    times = np.array([t for t, _ in sink.posts])
    assert sink.posts[0] == (start + PERIOD / 10, 1)  # the leading edge
    for first in range(len(times)):  # any window of 1 s: at most rate_hz + 1
        assert np.count_nonzero((times >= times[first]) & (times < times[first] + 1.0)) <= 11
    assert len(times) >= 95  # and it keeps publishing at the rate
    values = [v for _, v in sink.posts]
    assert values == sorted(values)


def test_status_and_its_message_go_out_together(
    setup: tuple[ServiceState, Publisher, _Sink, _Clock],
) -> None:
    """A group shares one schedule: the new Status_RBV never shows beside the
    old message (nor the counter beside old statistics)."""
    from swmr_roi_ioc.publish import Status

    state, publisher, _, clock = setup
    seen: list[tuple[float, str, Any]] = []

    class _All:
        def post(self, spec: Any, value: Any, severity: Any, status: Any, stamp: float) -> None:
            seen.append((clock.now, spec.suffix, value))

    publisher.add_sink(_All())
    state.set_status(Status.FOLLOWING, "following")
    publisher.publish(state.snapshot())
    clock.now += PERIOD / 10
    state.set_status(Status.ERROR, "broken")
    due = publisher.publish(state.snapshot())
    assert not [s for s in seen if s[0] == clock.now and s[1].startswith("Status")]
    clock.now = due
    publisher.publish(state.snapshot())
    now = {suffix: value for t, suffix, value in seen if t == clock.now}
    assert now["Status_RBV"] == int(Status.ERROR)
    assert "broken" in str(now["StatusMessage_RBV"])
