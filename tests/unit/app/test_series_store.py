"""The per-frame statistics store: chunked, compactly coded, bit for bit exact.

Every check compares bit patterns (uint64 views), so -0.0, NaN and inf count
too. The expected values are the FrameStats handed in, concatenated by numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from swmr_roi_ioc.app._series import CHUNK_FRAMES, SERIES_KEYS, RegionSeries
from swmr_roi_ioc.stats import FrameStats, Roi, ScanGeometry, compute_stats

ROIS = [Roi(1, 2, 5, 4), Roi(3, 1, 6, 6, background_width=1), Roi(0, 0, 3, 3)]
N = 2 * CHUNK_FRAMES + 517  # two sealed chunks and an open one


def _bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)


def assert_same_bits(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == np.float64 and actual.shape == expected.shape
    np.testing.assert_array_equal(_bits(actual), _bits(expected))


def _frames(dtype: str, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n, 8, 10)
    if dtype == "uint8":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if dtype == "uint16":
        return rng.integers(0, 65536, shape, dtype=np.uint16)
    if dtype == "uint32":  # sums beyond 2**32: totals need more than uint32
        return rng.integers(2**31, 2**32, shape, dtype=np.uint32)
    frames = (rng.standard_normal(shape) * 1e3).astype(dtype)
    frames[::7, 2, 3] = np.nan
    frames[::11, 4, 4] = np.inf
    frames[::13, 5, 6] = -np.inf
    frames[::17, 0, 0] = -0.0
    return frames


def _concat(parts: list[FrameStats]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([getattr(p, key) for p in parts]) for key in SERIES_KEYS}


def _fill(
    regions: list[RegionSeries], frames: np.ndarray, sizes: list[int]
) -> list[dict[str, np.ndarray]]:
    """Feed ``frames`` in batches of ``sizes`` (cycled) to ROIS and the whole
    frame (the first ``len(regions)`` of them); the expected series per region."""
    parts: list[list[FrameStats]] = [[] for _ in regions]
    start = 0
    i = 0
    while start < len(frames):
        stop = min(start + sizes[i % len(sizes)], len(frames))
        with np.errstate(invalid="ignore"):  # inf + -inf in float frames
            per_roi, whole = compute_stats(frames[start:stop], ROIS)
        for region, stats, acc in zip(
            regions, [*per_roi, whole][: len(regions)], parts, strict=True
        ):
            region.put(start, stats, live=True)
            acc.append(stats)
        start, i = stop, i + 1
    return [_concat(p) for p in parts]


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "float32", "float64"])
def test_round_trip_is_bit_exact(dtype: str) -> None:
    frames = _frames(dtype, N)
    regions = [RegionSeries(f"R{i}") for i in range(len(ROIS) + 1)]
    expected = _fill(regions, frames, [1, 1000, 3, CHUNK_FRAMES + 5, 77])
    for region, want in zip(regions, expected, strict=True):
        assert region.count == N
        got = region.full()
        for key in SERIES_KEYS:
            assert_same_bits(got[key], want[key])
            # any window, across chunk boundaries
            for first, stop in [(0, 1), (CHUNK_FRAMES - 3, CHUNK_FRAMES + 4), (5, N), (N - 1, N)]:
                assert_same_bits(region.read(key, first, stop), want[key][first:stop])
        assert region.latest.total == want["total"][-1] or np.isnan(want["total"][-1])
    if dtype.startswith("float"):
        assert np.isnan(expected[-1]["total"]).any() and np.isinf(expected[-1]["min"]).any()


def test_uint16_frames_take_a_fraction_of_float64() -> None:
    """Min/Max in uint16, integral totals as uint32, net and mean derived from
    the total: at most 8 bytes per frame, not 40 (plus the open chunk)."""
    frames = _frames("uint16", 4 * CHUNK_FRAMES)
    regions = [RegionSeries(f"R{i}") for i in range(len(ROIS) + 1)]
    expected = _fill(regions, frames, [100])
    sealed = 4 * CHUNK_FRAMES  # every chunk is full, so sealed
    for index in (0, 2, 3):  # no background: net == total
        assert regions[index].nbytes == sealed * 8
    # background: net = total - a fraction, kept as float64
    assert regions[1].nbytes == sealed * 16
    open_bytes = 5 * 8 * CHUNK_FRAMES  # one more frame opens a chunk
    region = regions[0]
    region.put(4 * CHUNK_FRAMES, compute_stats(_frames("uint16", 1, seed=5), ROIS)[0][0], live=True)
    assert region.nbytes == 4 * CHUNK_FRAMES * 8 + open_bytes
    assert_same_bits(region.read("mean", 0, 4 * CHUNK_FRAMES), expected[0]["mean"])


def test_overwrite_of_sealed_chunks_and_mixed_pixel_counts() -> None:
    """A recomputed ROI rewrites sealed chunks; until then a chunk mixes two
    geometries, so mean = total / one count no longer holds: still exact."""
    frames = _frames("uint16", 3 * CHUNK_FRAMES)
    region = RegionSeries("R")
    want = _fill([region], frames, [500])[0]
    first, stop = 1000, CHUNK_FRAMES + 1000
    other = compute_stats(frames[first:stop], [Roi(0, 0, 7, 5, background_width=2)])[0][0]
    region.put(first, other, live=False)
    for key in SERIES_KEYS:
        want[key][first:stop] = getattr(other, key)
        assert_same_bits(region.full()[key], want[key])
    assert region.count == 3 * CHUNK_FRAMES


def test_special_values_need_wider_storage() -> None:
    """-0.0, a NaN with a payload float32 cannot hold, integers past 2**32 and
    fractions: each series falls back to a wider dtype, never to a wrong value."""
    n = CHUNK_FRAMES + 10
    odd_nan = np.array([0x7FF8000000000123], dtype=np.uint64).view(np.float64)[0]
    total = np.arange(n, dtype=np.float64)
    total[5] = -0.0
    total[6] = odd_nan
    total[7] = 2.0**40 + 1
    net = total - 0.25
    low = np.full(n, -3.0)
    low[9] = 0.1  # not a float32
    high = 2.0**31 + np.arange(n)  # past int32, inside uint32
    mean = total / 7.0
    mean[100] = 1.5  # this chunk's mean is not total / a count
    stats = FrameStats(total=total, net=net, min=low, max=high, mean=mean)
    region = RegionSeries("R")
    region.put(0, stats, live=True)
    for key in SERIES_KEYS:
        assert_same_bits(region.read(key, 0, n), getattr(stats, key))
    # the first chunk is sealed: float64 but for max (uint32); the second is open
    assert region.nbytes == CHUNK_FRAMES * (8 + 8 + 8 + 4 + 8) + 5 * 8 * CHUNK_FRAMES


def test_gaps_are_nan_and_reads_past_the_end_too() -> None:
    frames = _frames("uint16", 20)
    per_roi, _ = compute_stats(frames, ROIS[:1])
    region = RegionSeries("R")
    region.put(0, FrameStats(*(getattr(per_roi[0], k)[:10] for k in SERIES_KEYS)), live=True)
    later = 3 * CHUNK_FRAMES + 2
    region.put(later, FrameStats(*(getattr(per_roi[0], k)[10:] for k in SERIES_KEYS)), live=True)
    assert region.count == later + 10
    total = region.read("total", 0, later + 12)
    assert_same_bits(total[:10], per_roi[0].total[:10])
    assert np.isnan(total[10:later]).all() and np.isnan(total[later + 10 :]).all()
    assert_same_bits(total[later : later + 10], per_roi[0].total[10:])
    assert region.nbytes <= 2 * 5 * 8 * CHUNK_FRAMES  # chunks never written hold nothing


def test_series_map_clear_and_restart() -> None:
    frames = _frames("float32", CHUNK_FRAMES + 50)
    region = RegionSeries("R")
    want = _fill([region], frames, [CHUNK_FRAMES + 50])[0]
    n = len(frames)
    series = region.series(100)
    assert_same_bits(series["max"], want["max"][n - 100 :])
    short = RegionSeries("S")
    short.put(0, FrameStats(*(want[k][:3] for k in SERIES_KEYS)), live=True)
    shown = short.series(5)["total"]
    assert_same_bits(shown[:3], want["total"][:3])
    assert np.isnan(shown[3:]).all()
    scan = ScanGeometry((40, 50), snake=True)  # 2000 cells: later frames are not on the map
    grid = region.placed("min", scan).reshape(40, 50)
    expected = want["min"][:2000].reshape(40, 50).copy()
    expected[1::2] = expected[1::2, ::-1]
    assert_same_bits(grid, expected)
    region.clear(1500)  # Reset: series and map start again at frame 1500
    assert np.isnan(region.placed("min", scan)[:1500]).all()
    assert_same_bits(region.series(100)["max"], want["max"][n - 100 :])
    assert_same_bits(region.full()["net"], want["net"])  # the NeXus file keeps everything
    region.restart()
    assert region.count == 0 and region.nbytes == 0
    assert np.isnan(region.series(4)["total"]).all()
    assert region.full()["total"].shape == (0,)


# -- incremental views: the same bits as rebuilding them from the store ------


def _placed_from_store(region: RegionSeries, key: str, scan: ScanGeometry) -> np.ndarray:
    """The map built from scratch, as it was before the views were incremental."""
    grid = np.full(scan.size, np.nan)
    stop = min(region.count, scan.size)
    if stop > region.origin:
        cells = scan.cells(np.arange(region.origin, stop))
        grid[cells] = region.read(key, region.origin, stop)
    return grid


def _series_from_store(region: RegionSeries, length: int) -> dict[str, np.ndarray]:
    first = max(region.origin, region.count - length)
    out = {}
    for key in SERIES_KEYS:
        shown = np.full(length, np.nan)
        part = region.read(key, first, region.count)
        shown[: len(part)] = part
        out[key] = shown
    return out


def _stats(rng: np.random.Generator, n: int) -> FrameStats:
    total = rng.integers(0, 1000, n).astype(np.float64)
    return FrameStats(total, total - 0.5, total % 7, total + 3, total / 9)


_live = st.tuples(  # n, gap: mostly a few frames right after the last, as live
    st.just("live"),
    st.one_of(st.integers(1, 3), st.integers(1, 40)),
    st.one_of(st.just(0), st.integers(0, 30)),
)
_ops = st.lists(
    st.one_of(
        _live,
        _live,
        st.tuples(st.just("recompute"), st.integers(1, 60), st.integers(0, 200)),  # n, start
        st.tuples(st.just("clear"), st.just(0), st.just(0)),
        st.tuples(st.just("restart"), st.just(0), st.just(0)),
        st.tuples(st.just("scan"), st.integers(1, 9), st.integers(1, 9)),  # rows, cols
        st.tuples(st.just("length"), st.integers(1, 50), st.just(0)),
        st.tuples(st.just("show"), st.just(0), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(ops=_ops, snake=st.booleans(), seed=st.integers(0, 2**16))
@example(ops=[("live", 1, 0)] * 8, snake=True, seed=0)
def test_views_equal_a_rebuild_after_any_writes(
    ops: list[tuple[str, int, int]], snake: bool, seed: int
) -> None:
    """Live batches (with gaps: a ROI not in use), recomputes of past frames,
    Reset, restart, new scan shapes and series lengths, in any order: every
    map and series shown equals the one built from the store, its range is
    numpy's, and an array
    handed out never changes while it is held (every other op's arrays are
    held; the others are dropped, so their buffers are written again)."""
    rng = np.random.default_rng(seed)
    region = RegionSeries("R")
    scan, length = ScanGeometry((4, 6), snake), 16
    handed: list[tuple[np.ndarray, np.ndarray]] = []
    before: tuple[int, dict[str, np.ndarray]] | None = None  # the last shown
    for step, (op, a, b) in enumerate(ops):
        hold = step % 2 == 0
        if op == "live":
            region.put(region.count + b, _stats(rng, a), live=True)
        elif op == "recompute":
            region.put(min(b, region.count), _stats(rng, a), live=False)
        elif op == "clear":
            region.clear(region.count)
        elif op == "restart":
            region.restart()
        elif op == "scan":
            scan = ScanGeometry((a, b), snake)
        elif op == "length":
            length = a
        for key in ("total", "max"):
            shown = region.placed(key, scan)
            assert not shown.flags.writeable
            assert_same_bits(shown, _placed_from_store(region, key, scan))
            finite = shown[np.isfinite(shown)]
            want = (finite.min(), finite.max()) if finite.size else (np.nan, np.nan)
            np.testing.assert_array_equal(region.placed_range(key, scan), want)
            if hold:
                handed.append((shown, shown.copy()))
        series = region.series(length)
        for key in SERIES_KEYS:
            assert_same_bits(series[key], _series_from_store(region, length)[key])
            if hold:
                handed.append((series[key], series[key].copy()))
        if op == "show" and before is not None:  # nothing changed: the same arrays
            assert (region.generation, series) == before
            assert series is before[1]
        before = (region.generation, series)
        del shown, series
    for array, copy in handed:
        assert_same_bits(array, copy)
