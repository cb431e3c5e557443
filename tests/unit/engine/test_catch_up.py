"""How a backlog is shared by the workers: each takes the next hop as soon as
it is done with its last, the results are applied in frame order whatever
order they arrive in, and a failed or short part ends the call there.

The pool here answers like the worker processes, with delays that make the
later hops finish first; the real workers and files are in
tests/integration/test_engine_faults.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import pytest

from swmr_roi_ioc.engine import _remote
from swmr_roi_ioc.engine._pool import WorkerPool
from swmr_roi_ioc.engine._protocol import Batch, FileSpec, Opened, Processed, ViewParams
from swmr_roi_ioc.engine._remote import RemoteAcquisition
from swmr_roi_ioc.stats import FrameStats, LiveViews, Roi


class Sink:
    def __init__(self) -> None:
        self.starts: list[int] = []

    def rois_for_next_batch(self) -> list[Roi | None]:
        return []

    def add_batch(self, start: int, rois: object, frame: FrameStats, unique_id: int) -> None:
        self.starts.append(start)

    def view_params(self) -> ViewParams:
        return ViewParams(4, 0.0, 4.0, 4, 0.1)

    def set_live_views(self, views: LiveViews) -> None:
        pass


class Pool:
    """Answers ``process``/``catch_up`` after ``delay(worker, start)`` s."""

    def __init__(self, size: int, delay: Callable[[int, int], float]) -> None:
        self.size = size
        self.delay = delay
        #: (worker, start) of each hop, in the order they were asked for
        self.asked: list[tuple[int, int]] = []
        self.fail_at: int | None = None
        self.short_at: int | None = None
        self.busy: dict[int, int] = {}
        self.overlap = False

    def generation(self, index: int) -> int:
        return 0

    def watch_views(self, key: int, callback: object) -> None:
        pass

    async def call(self, index: int, op: str, *args: object, about: str = "") -> object:
        index %= self.size
        if op == "open":
            return Opened((8, 8), "|u1", 1)
        if op not in ("process", "catch_up"):
            return None
        _key, start, stop, _rois = args
        assert isinstance(start, int) and isinstance(stop, int)
        self.asked.append((index, start))
        if self.busy.get(index):
            self.overlap = True  # one call at a time per worker
        self.busy[index] = 1
        try:
            await asyncio.sleep(self.delay(index, start))
        finally:
            self.busy[index] = 0
        if start == self.fail_at:
            raise OSError(f"read of frame {start} failed")
        if start == self.short_at:
            stop = start + 1
        stats = FrameStats.of(np.zeros((5, stop - start)))
        return Processed(stop, [Batch(start, [], stats, stop)], False, None)


async def _acquisition(pool: Pool, complete: int) -> tuple[RemoteAcquisition, Sink]:
    sink = Sink()
    spec = FileSpec("/nowhere.h5", "/entry/data/data", (), 1.0, None)
    acq = await RemoteAcquisition.open(pool, spec, sink)  # type: ignore[arg-type]
    acq.complete = complete
    return acq, sink


@pytest.fixture
def small_hops(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(_remote, "HOP_FRAMES", 10)
    return 10


async def test_hops_applied_in_order_while_workers_never_wait(small_hops: int) -> None:
    # worker 1 is fast, worker 0 slow: worker 1 takes several hops while
    # worker 0 reads one, and its results wait until worker 0's are applied
    pool = Pool(2, lambda worker, start: 0.05 if worker == 0 else 0.005)
    acq, sink = await _acquisition(pool, 100)
    assert await acq.process() == 100
    assert sink.starts == list(range(0, 100, small_hops))
    assert acq.done == 100
    workers = [w for w, _ in pool.asked]
    assert workers.count(1) > workers.count(0) > 0  # nobody waited for a round to end
    assert not pool.overlap


async def test_a_later_part_failing_keeps_what_came_before(small_hops: int) -> None:
    pool = Pool(2, lambda worker, start: 0.001 * (100 - start))
    pool.fail_at = 40
    acq, sink = await _acquisition(pool, 100)
    assert await acq.process() == 40
    assert sink.starts == [0, 10, 20, 30]
    assert acq.done == 40
    assert all(start <= 60 for _, start in pool.asked)  # no hop handed out long after


async def test_the_first_part_failing_raises(small_hops: int) -> None:
    pool = Pool(2, lambda worker, start: 0.001)
    pool.fail_at = 0
    acq, sink = await _acquisition(pool, 100)
    with pytest.raises(OSError, match="frame 0"):
        await acq.process()
    assert sink.starts == []
    assert acq.done == 0


async def test_a_short_part_ends_the_call_there(small_hops: int) -> None:
    pool = Pool(2, lambda worker, start: 0.001)
    pool.short_at = 30
    acq, sink = await _acquisition(pool, 100)
    assert await acq.process() == 31
    assert sink.starts == [0, 10, 20, 30]
    # the next call goes on from there
    pool.short_at = None
    assert await acq.process() == 69
    assert acq.done == 100
    assert sink.starts[4:] == [31, 41, 51, 61, 71, 81, 91]


async def test_a_call_lasts_at_most_catch_up_s(
    small_hops: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_remote, "CATCH_UP_S", 0.1)
    pool = Pool(2, lambda worker, start: 0.02)
    acq, sink = await _acquisition(pool, 10_000)
    done = await acq.process()
    assert 0 < done < 200  # hops in flight at the deadline still applied
    assert sink.starts == list(range(0, done, small_hops))


async def test_live_frames_go_to_the_own_worker(small_hops: int) -> None:
    pool = Pool(2, lambda worker, start: 0.001)
    acq, sink = await _acquisition(pool, 15)  # less than PARALLEL_HOPS hops
    assert await acq.process() == 10
    assert await acq.process() == 5
    assert pool.asked == [(0, 0), (0, 10)]


def test_pool_threads_share_the_cores() -> None:
    assert WorkerPool(1, 30.0).threads >= 1
    assert WorkerPool(64, 30.0).threads == 1


def test_a_requests_batches_are_sent_as_one() -> None:
    from swmr_roi_ioc.engine._file import _merged

    def stats(start: int, n: int) -> FrameStats:
        return FrameStats.of(np.arange(start, start + n, dtype=np.float64) * np.ones((5, 1)))

    batches = [Batch(s, [stats(s, 3), None], stats(s, 3), s + 3) for s in (10, 13, 16)]
    (one,) = _merged(batches)
    assert one.start == 10 and one.unique_id == 19 and one.rois[1] is None
    roi = one.rois[0]
    assert roi is not None
    np.testing.assert_array_equal(roi.total, np.arange(10, 19))
    np.testing.assert_array_equal(one.frame.values, stats(10, 9).values)
    # computed with other ROIs (never within one request): left as they are
    mixed = [*batches[:2], Batch(16, [None, stats(16, 3)], stats(16, 3), 19)]
    assert _merged(mixed) == mixed
