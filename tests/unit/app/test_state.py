"""ServiceState: series in acquisition order, maps by snake position, Reset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from swmr_roi_ioc.app import PathRefusedError, ServiceState, resolve_under
from swmr_roi_ioc.config import parse_config
from swmr_roi_ioc.publish import Status
from swmr_roi_ioc.stats import compute_stats

CONFIG = """\
ioc_name: test-ioc
prefix: "T:"
data_root: /data
scan: {shape: [2, 3], snake: true}
publish: {time_series_length: 4}
rois:
  - {name: A, x: 0, y: 0, width: 2, height: 2}
  - {name: B, x: 5, y: 5, width: 10, height: 10}
"""


def _feed(state: ServiceState, frames: np.ndarray, start: int) -> None:
    rois = [r for r in state.rois_for_next_batch() if r is not None]
    per_roi, whole = compute_stats(frames, rois)
    state.add_batch(start, list(per_roi), whole, unique_id=start + len(frames))


def _frames(n: int, offset: int = 0) -> np.ndarray:
    return (np.arange(n * 8 * 8, dtype=np.uint16).reshape(n, 8, 8) + offset) % 97


def test_series_scroll_and_map_follows_snake() -> None:
    state = ServiceState(parse_config(CONFIG))
    state.start_acquisition("/data/x.h5", (8, 8))
    frames = _frames(6)
    _feed(state, frames[:4], 0)
    _feed(state, frames[4:], 4)
    snap = state.snapshot()
    totals = frames[:, :2, :2].astype(np.int64).sum(axis=(1, 2))
    # 6 frames, 4 points: the latest 4, oldest first
    np.testing.assert_array_equal(snap.rois[0].series["total"], totals[2:])
    grid = snap.rois[0].map.reshape(2, 3)
    np.testing.assert_array_equal(grid[0], totals[:3])
    np.testing.assert_array_equal(grid[1], totals[3:][::-1])  # snake: row 1 backwards
    assert snap.array_counter == 6 and snap.unique_id == 6
    # ROI B is clamped to the 8x8 frame: readbacks show it
    rb = snap.rois[1].readback
    assert rb is not None and (rb.x, rb.y, rb.width, rb.height) == (5, 5, 3, 3)
    assert snap.frame is not None
    assert snap.frame.stats.total == float(frames[-1].astype(np.int64).sum())


def test_reset_clears_and_series_restart() -> None:
    state = ServiceState(parse_config(CONFIG))
    state.start_acquisition("/data/x.h5", (8, 8))
    frames = _frames(3)
    _feed(state, frames, 0)
    generation = state.snapshot().arrays_generation
    state.reset()
    snap = state.snapshot()
    assert snap.arrays_generation > generation
    assert np.isnan(snap.rois[0].map).all() and np.isnan(snap.rois[0].series["total"]).all()
    assert snap.rois[0].stats.total == 0 and snap.array_counter == 3
    more = _frames(1, offset=5)
    _feed(state, more, 3)
    snap = state.snapshot()
    assert snap.rois[0].series["total"][0] == more[0, :2, :2].astype(np.int64).sum()
    assert np.isnan(snap.rois[0].series["total"][1:]).all()
    assert not np.isnan(snap.rois[0].map.reshape(2, 3)[1, 2])  # frame 3: row 1, col 2


def test_roi_change_applies_to_next_batch_and_error_marks_stale() -> None:
    state = ServiceState(parse_config(CONFIG))
    state.start_acquisition("/data/x.h5", (8, 8))
    state.set_roi(0, x=4, use=True)
    assert state.rois_for_next_batch()[0] is not None
    state.set_roi(1, use=False)
    assert state.rois_for_next_batch()[1] is None
    state.set_status(Status.ERROR, "broken")
    snap = state.snapshot()
    assert snap.rois[0].stale and snap.severity.name == "MAJOR"
    state.start_acquisition("/data/y.h5", (8, 8))
    assert not state.snapshot().rois[0].stale


def test_paths_outside_data_root_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.h5").touch()
    (root / "escape.h5").symlink_to(tmp_path / "secret.h5")
    assert resolve_under(root, "ok.h5") == (root / "ok.h5").resolve()
    for bad in ["../secret.h5", "escape.h5", str(tmp_path / "secret.h5"), "/etc/passwd"]:
        with pytest.raises(PathRefusedError):
            resolve_under(root, bad)


def _truth(frames: np.ndarray, x: int, y: int, w: int, h: int) -> dict[str, np.ndarray]:
    """Total/Net/Min/Max/Mean of a ROI without background, from int64 sums."""
    view = frames[:, y : y + h, x : x + w].astype(np.int64)
    total = view.sum(axis=(1, 2)).astype(np.float64)
    return {
        "total": total,
        "net": total,
        "min": view.min(axis=(1, 2)).astype(np.float64),
        "max": view.max(axis=(1, 2)).astype(np.float64),
        "mean": total / (w * h),
    }


def test_long_acquisition_and_retroactive_change_stay_bit_exact() -> None:
    """Thousands of frames (several storage chunks), then a retroactive ROI
    change recomputed in batches: the NeXus record equals numpy's numbers bit
    for bit, and the map and series show them."""
    state = ServiceState(parse_config(CONFIG))
    state.start_acquisition("/data/x.h5", (8, 8))
    rng = np.random.default_rng(7)
    n = 9_000
    frames = rng.integers(0, 65536, (n, 8, 8), dtype=np.uint16)
    for start in range(0, n, 700):
        _feed(state, frames[start : start + 700], start)
    record, count = state.acquisition_record()
    assert count == n
    expected = [_truth(frames, 0, 0, 2, 2), _truth(frames, 5, 5, 3, 3), _truth(frames, 0, 0, 8, 8)]
    for region, want in zip(record, expected, strict=True):
        for key, values in want.items():
            np.testing.assert_array_equal(
                region.series[key].view(np.uint64), values.view(np.uint64)
            )
    state.set_roi(0, x=1, y=2, width=5, height=3)
    request = state.take_recompute()
    assert request is not None
    for start in range(0, n, 2_500):
        stats = compute_stats(frames[start : start + 2_500], [request.roi])[0][0]
        assert state.put_recomputed(request, start, stats)
    record, _ = state.acquisition_record()
    changed = _truth(frames, 1, 2, 5, 3)
    for key, values in changed.items():
        np.testing.assert_array_equal(record[0].series[key].view(np.uint64), values.view(np.uint64))
    np.testing.assert_array_equal(record[1].series["max"], expected[1]["max"])
    snap = state.snapshot()
    np.testing.assert_array_equal(snap.rois[0].series["mean"], changed["mean"][-4:])
    assert snap.rois[0].stats.total == changed["total"][-1]
    grid = snap.rois[0].map.reshape(2, 3)  # the first 6 frames, snake
    np.testing.assert_array_equal(grid[0], changed["total"][:3])
    np.testing.assert_array_equal(grid[1], changed["total"][3:6][::-1])


def test_snapshots_follow_a_retroactive_change_batch_by_batch() -> None:
    """Views built before a ROI change pick up each recomputed batch (the
    cells those frames touch); the other regions keep their generation and
    their very arrays; what a snapshot handed out never changes."""
    state = ServiceState(parse_config(CONFIG))
    state.start_acquisition("/data/x.h5", (8, 8))
    frames = np.random.default_rng(3).integers(0, 65536, (6, 8, 8), dtype=np.uint16)
    _feed(state, frames, 0)
    before = state.snapshot()
    held = before.rois[0].map.copy()
    assert not before.rois[0].map.flags.writeable
    assert not before.rois[0].series["total"].flags.writeable
    state.set_roi(0, x=1, y=2, width=5, height=3)
    request = state.take_recompute()
    assert request is not None
    changed = _truth(frames, 1, 2, 5, 3)["total"]
    original = _truth(frames, 0, 0, 2, 2)["total"]
    stats = compute_stats(frames[:2], [request.roi])[0][0]
    assert state.put_recomputed(request, 0, stats)
    middle = state.snapshot()
    grid = middle.rois[0].map.reshape(2, 3)
    np.testing.assert_array_equal(grid[0], [*changed[:2], original[2]])
    np.testing.assert_array_equal(middle.rois[0].series["total"], original[2:])
    assert middle.rois[0].generation != before.rois[0].generation
    assert middle.rois[1].generation == before.rois[1].generation
    assert middle.rois[1].series is before.rois[1].series
    stats = compute_stats(frames[2:], [request.roi])[0][0]
    assert state.put_recomputed(request, 2, stats)
    after = state.snapshot()
    grid = after.rois[0].map.reshape(2, 3)
    np.testing.assert_array_equal(grid[0], changed[:3])
    np.testing.assert_array_equal(grid[1], changed[3:][::-1])
    np.testing.assert_array_equal(after.rois[0].series["total"], changed[2:])
    np.testing.assert_array_equal(before.rois[0].map, held)  # never written
