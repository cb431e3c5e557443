"""The worker's live views: at most one per period, the newest frame last,
new settings at once, nothing after forget; equal to numpy's."""

from __future__ import annotations

import threading
import time

import numpy as np

from swmr_roi_ioc.engine._protocol import ViewParams
from swmr_roi_ioc.engine._viewmaker import ViewMaker
from swmr_roi_ioc.stats import LiveViews, live_views

PERIOD = 0.3


class _Pushed:
    def __init__(self) -> None:
        self.views: list[tuple[int, LiveViews, float]] = []
        self.event = threading.Event()

    def __call__(self, key: int, views: LiveViews) -> None:
        self.views.append((key, views, time.monotonic()))
        self.event.set()

    def wait(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.views) < count:
            assert time.monotonic() < deadline, f"{len(self.views)} of {count} views pushed"
            self.event.wait(0.05)
            self.event.clear()


def _frames(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 4096, size=(60, 70), dtype=np.uint16) for _ in range(n)]


def _check(views: LiveViews, frame: np.ndarray, params: ViewParams) -> None:
    """Equal to plain numpy: the histogram by its rule, the mean of 2 x 2 blocks."""
    edges = params.low + np.arange(params.bins + 1) * (params.high - params.low) / params.bins
    inside = frame[(frame >= params.low) & (frame < params.high)]
    counts, _ = np.histogram(inside, bins=edges)
    np.testing.assert_array_equal(views.histogram, counts.astype(np.float64))
    assert views.below == int((frame < params.low).sum())
    assert views.above == int((frame >= params.high).sum())
    blocks = frame.astype(np.float64).reshape(30, 2, 35, 2).mean(axis=(1, 3))
    np.testing.assert_array_equal(views.image, blocks)
    assert views.generation == params.generation


def test_newest_frame_at_most_once_a_period_and_settings_at_once() -> None:
    pushed = _Pushed()
    maker = ViewMaker(pushed)
    params = ViewParams(bins=64, low=100.0, high=3000.0, image_max=35, period=PERIOD)
    frames = _frames(5)
    live_views(frames[0], 4, 0, 10, 35)  # the compiled loops loaded: timings below are its own
    maker.offer(7, frames[0])  # not configured: ignored
    maker.configure(7, params)
    maker.offer(7, frames[0])
    pushed.wait(1)
    _check(pushed.views[0][1], frames[0], params)
    for frame in frames[1:]:  # within the period of the first
        maker.offer(7, frame)
    time.sleep(PERIOD * 2)
    # then the newest at the end of the period, nothing between
    assert len(pushed.views) == 2
    (_, _, t0), (key, last, t1) = pushed.views
    assert key == 7 and t1 - t0 >= PERIOD * 0.9
    _check(last, frames[-1], params)

    wider = ViewParams(bins=16, low=0.0, high=4096.0, image_max=35, period=PERIOD, generation=1)
    maker.configure(7, wider)  # made again from the kept frame, without waiting
    pushed.wait(3, timeout=PERIOD * 0.9)
    _check(pushed.views[2][1], frames[-1], wider)

    maker.forget(7)
    maker.offer(7, frames[0])
    time.sleep(PERIOD * 1.5)
    assert len(pushed.views) == 3
