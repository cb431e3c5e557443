"""ROI statistics against a line-by-line port of NDPluginROIStat (ADCore).

Integer frames have two implementations, the compiled kernel (the default)
and numpy (float frames, and the reference): every property runs on both.
"""

import contextlib
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from swmr_roi_ioc._errors import SwmrRoiError
from swmr_roi_ioc.stats import (
    FrameStats,
    Roi,
    _roi,
    _sums,
    clamp_roi,
    compute_stats,
    frame_stats,
    roi_stats,
)

# ---------------------------------------------------------------------------
# Naive reference: processCallbacks' clamping and doComputeStatisticsT for
# ndims == 2, loop by loop, with Python floats as the C++ doubles.
# ---------------------------------------------------------------------------


def naive_clamp(roi: Roi, height: int, width: int) -> tuple[list[int], list[int], int]:
    offset = [roi.x, roi.y]
    size = [roi.width, roi.height]
    dims = [width, height]
    for dim in range(2):
        offset[dim] = max(offset[dim], 0)
        offset[dim] = min(offset[dim], dims[dim] - 1)
        size[dim] = max(size[dim], 1)
        size[dim] = min(size[dim], dims[dim] - offset[dim])
    return offset, size, max(roi.background_width, 0)


def naive_stats(frame: list[list[Any]], roi: Roi) -> tuple[float, ...]:
    """(total, net, min, max, mean) of one 2-D frame (list of rows)."""
    (offset_x, offset_y), (size_x, size_y), bgd_width = naive_clamp(roi, len(frame), len(frame[0]))
    total = 0.0
    bgd = 0.0
    n_bgd = 0
    bgd_width_x = min(bgd_width, size_x)
    bgd_width_y = min(bgd_width, size_y)
    initial = True
    minimum = maximum = 0.0
    n_elements = size_x * size_y
    for y in range(offset_y, offset_y + size_y):
        for x in range(offset_x, offset_x + size_x):
            value = float(frame[y][x])
            if initial:
                minimum = maximum = value
                initial = False
            if value < minimum:
                minimum = value
            if value > maximum:
                maximum = value
            total += value
    if bgd_width > 0:
        for y in range(offset_y, offset_y + bgd_width_y):
            for x in range(offset_x, offset_x + size_x):
                n_bgd += 1
                bgd += float(frame[y][x])
        for y in range(offset_y + size_y - bgd_width_y, offset_y + size_y):
            for x in range(offset_x, offset_x + size_x):
                n_bgd += 1
                bgd += float(frame[y][x])
        for y in range(offset_y + bgd_width_y, offset_y + size_y - bgd_width_y):
            for x in range(offset_x, offset_x + bgd_width_x):
                n_bgd += 1
                bgd += float(frame[y][x])
            for x in range(offset_x + size_x - bgd_width_x, offset_x + size_x):
                n_bgd += 1
                bgd += float(frame[y][x])
    if n_bgd > 0:
        bgd = bgd / n_bgd * n_elements
    net = total - bgd
    mean = total / n_elements if n_elements > 0 else 0.0
    return total, net, minimum, maximum, mean


def check_against_naive(frames: np.ndarray, roi: Roi, got: FrameStats) -> None:
    fields = (got.total, got.net, got.min, got.max, got.mean)
    for field in fields:
        assert field.dtype == np.float64
        assert field.shape == (frames.shape[0],)
    for i, frame in enumerate(frames):
        want = naive_stats(frame.tolist(), roi)
        have = tuple(float(field[i]) for field in fields)
        if frames.dtype.kind == "f":
            scale = float(np.abs(frame).sum()) + 1.0
            assert np.allclose(have, want, rtol=1e-12, atol=1e-12 * scale), (
                have,
                want,
            )
        else:
            assert have == want


# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------

DTYPES = [np.dtype(t) for t in (np.uint8, np.uint16, np.int32, np.float64)]
HUGE = 2**31 - 1


@st.composite
def frame_batches(draw: st.DrawFn, max_side: int = 7) -> np.ndarray:
    dtype = draw(st.sampled_from(DTYPES))
    shape = (
        draw(st.integers(1, 3)),
        draw(st.integers(1, max_side)),
        draw(st.integers(1, max_side)),
    )
    if dtype.kind == "f":
        elements = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    else:
        info = np.iinfo(dtype.name)
        elements = st.integers(int(info.min), int(info.max))
    return draw(hnp.arrays(dtype, shape, elements=elements))


coords = st.one_of(st.integers(-4, 12), st.sampled_from([-HUGE - 1, HUGE]))
sizes = st.one_of(st.integers(-3, 12), st.sampled_from([-HUGE - 1, HUGE]))


@st.composite
def rois(draw: st.DrawFn) -> Roi:
    return Roi(
        x=draw(coords),
        y=draw(coords),
        width=draw(sizes),
        height=draw(sizes),
        background_width=draw(st.integers(-2, 14)),
    )


def small_blocks() -> Any:
    """Force the uint16/uint32 row-block path, with blocks of 2 rows."""
    return mock.patch.multiple(
        _sums,
        _MIN_BLOCK_WIDTH=1,
        ROW_BLOCKS={
            np.dtype(np.uint8): (np.uint16, 2),
            np.dtype(np.uint16): (np.uint32, 2),
        },
    )


def numpy_path(use_kernel: bool) -> Any:
    """The kernel (the default), or numpy for integer frames too."""
    if use_kernel:
        return contextlib.nullcontext()
    return mock.patch.object(_roi, "USE_KERNEL", False)


both_paths = pytest.mark.parametrize("use_kernel", [True, False], ids=["kernel", "numpy"])


# ---------------------------------------------------------------------------
# Property tests
# ---------------------------------------------------------------------------


@both_paths
@settings(max_examples=400, deadline=None)
@given(frames=frame_batches(), roi=rois(), blocks=st.booleans())
def test_roi_stats_matches_ndpluginroistat(
    frames: np.ndarray, roi: Roi, blocks: bool, use_kernel: bool
) -> None:
    with numpy_path(use_kernel), small_blocks() if blocks else contextlib.nullcontext():
        got = roi_stats(frames, roi)
    check_against_naive(frames, roi, got)


@settings(max_examples=100, deadline=None)
@given(frames=frame_batches(), roi=rois())
def test_clamp_roi_matches_ndpluginroistat(frames: np.ndarray, roi: Roi) -> None:
    height, width = frames.shape[1:]
    (x, y), (size_x, size_y), bgd = naive_clamp(roi, height, width)
    clamped = clamp_roi(roi, (height, width))
    assert clamped == Roi(x, y, size_x, size_y, bgd)
    assert 0 <= clamped.x and clamped.x + clamped.width <= width
    assert 0 <= clamped.y and clamped.y + clamped.height <= height
    assert clamp_roi(clamped, (height, width)) == clamped


@both_paths
@settings(max_examples=100, deadline=None)
@given(frames=frame_batches())
def test_frame_stats_is_whole_frame_without_background(
    frames: np.ndarray, use_kernel: bool
) -> None:
    with numpy_path(use_kernel):
        got = frame_stats(frames)
    whole = Roi(0, 0, frames.shape[2], frames.shape[1])
    check_against_naive(frames, whole, got)
    assert np.array_equal(got.net, got.total)


@both_paths
@settings(max_examples=100, deadline=None)
@given(
    frames=frame_batches(),
    roi_list=st.lists(rois(), max_size=4),
    chunk_bytes=st.sampled_from([1, 50, _roi._CHUNK_BYTES]),
)
def test_compute_stats_equals_single_calls(
    frames: np.ndarray, roi_list: list[Roi], chunk_bytes: int, use_kernel: bool
) -> None:
    with numpy_path(use_kernel), mock.patch.object(_roi, "_CHUNK_BYTES", chunk_bytes):
        per_roi, whole = compute_stats(frames, roi_list)
    assert len(per_roi) == len(roi_list)
    for roi, got in zip(roi_list, per_roi, strict=True):
        check_against_naive(frames, roi, got)
    want = frame_stats(frames)
    for name in ("total", "net", "min", "max", "mean"):
        assert np.array_equal(getattr(whole, name), getattr(want, name))


@settings(max_examples=200, deadline=None)
@given(
    frames=frame_batches(max_side=12),
    roi_list=st.lists(rois(), min_size=_roi.MANY_REGIONS - 1, max_size=_roi.MANY_REGIONS + 8),
    blocks=st.booleans(),
)
def test_many_rois_one_pass_is_bit_identical(
    frames: np.ndarray, roi_list: list[Roi], blocks: bool
) -> None:
    """Without the kernel, from MANY_REGIONS regions on, integer frames go
    through the band tables: the same bits as the region-by-region path, and
    as NDPluginROIStat."""
    with numpy_path(False), small_blocks() if blocks else contextlib.nullcontext():
        per_roi, whole = compute_stats(frames, roi_list)
        with mock.patch.object(_roi, "MANY_REGIONS", 10**6):
            direct, direct_whole = compute_stats(frames, roi_list)
    for roi, got, want in zip(roi_list, [*per_roi, whole], [*direct, direct_whole], strict=False):
        check_against_naive(frames, roi, got)
        for name in ("total", "net", "min", "max", "mean"):
            assert getattr(got, name).tobytes() == getattr(want, name).tobytes(), name
    for name in ("total", "net", "min", "max", "mean"):
        assert getattr(whole, name).tobytes() == getattr(direct_whole, name).tobytes(), name


@settings(max_examples=50, deadline=None)
@given(
    frames=hnp.arrays(
        st.sampled_from([np.dtype(np.uint8), np.dtype(np.uint16)]),
        st.tuples(st.integers(1, 2), st.integers(1, 600), st.integers(120, 300)),
    )
)
def test_block_sums_exact_on_wide_frames(frames: np.ndarray) -> None:
    with numpy_path(False):
        got = frame_stats(frames)
    assert got.total.tobytes() == frame_stats(frames).total.tobytes()
    want = frames.sum(axis=(1, 2), dtype=np.int64).astype(np.float64)
    assert np.array_equal(got.total, want)


# ---------------------------------------------------------------------------
# Examples
# ---------------------------------------------------------------------------


@both_paths
def test_uint8_all_255_2000x2000_is_exact(use_kernel: bool) -> None:
    frames = np.full((1, 2000, 2000), 255, dtype=np.uint8)
    with numpy_path(use_kernel):
        got = roi_stats(frames, Roi(0, 0, 2000, 2000, background_width=10))
        whole = frame_stats(frames)
    assert got.total[0] == 255 * 4_000_000
    assert got.mean[0] == 255.0
    assert got.min[0] == got.max[0] == 255.0
    assert got.net[0] == 0.0
    assert whole.total[0] == 255 * 4_000_000


@both_paths
def test_uint16_65535_frames_are_exact(use_kernel: bool) -> None:
    frames = np.full((2, 1000, 1000), 65535, dtype=np.uint16)
    # taller than one uint32 block of 65537 rows
    tall = np.full((1, 70_000, 130), 65535, dtype=np.uint16)
    with numpy_path(use_kernel):
        assert np.array_equal(frame_stats(frames).total, [65535e6, 65535e6])
        assert frame_stats(tall).total[0] == 65535 * 70_000 * 130


@both_paths
def test_random_uint8_block_edges(use_kernel: bool) -> None:
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(3, 1216, 1936), dtype=np.uint8)
    roi = Roi(13, 250, 1500, 600, background_width=7)
    with numpy_path(use_kernel):
        got = roi_stats(frames, roi)
    view = frames[:, 250:850, 13:1513].astype(np.int64)
    assert np.array_equal(got.total, view.sum(axis=(1, 2)))
    assert np.array_equal(got.min, view.min(axis=(1, 2)))
    assert np.array_equal(got.max, view.max(axis=(1, 2)))


@pytest.mark.parametrize(
    ("roi", "clamped"),
    [
        # half outside to the left/top: offset -> 0, size kept (fits)
        (Roi(-10, -5, 30, 100), Roi(0, 0, 30, 50)),
        # half outside to the right/bottom: size cut at the edge
        (Roi(35, 45, 10, 10, 3), Roi(35, 45, 5, 5, 3)),
        # fully outside: the last column/row, one pixel wide
        (Roi(100, 60, 10, 10), Roi(39, 49, 1, 1)),
        # zero and negative sizes become one pixel; negative background 0
        (Roi(3, 4, 0, -7, -2), Roi(3, 4, 1, 1, 0)),
        # huge size: up to the edge; background kept as given
        (Roi(2, 1, HUGE, HUGE, 99), Roi(2, 1, 38, 49, 99)),
    ],
)
def test_clamp_examples(roi: Roi, clamped: Roi) -> None:
    assert clamp_roi(roi, (50, 40)) == clamped


@both_paths
def test_background_double_counts_overlapping_rows(use_kernel: bool) -> None:
    # 3x3 ROI, BgdWidth 2: top rows 0-1 and bottom rows 1-2 (row 1 twice),
    # 12 background pixels, no middle rows.
    frames = np.zeros((1, 3, 3), dtype=np.uint8)
    frames[0, 0, 0] = 1
    with numpy_path(use_kernel):
        got = roi_stats(frames, Roi(0, 0, 3, 3, 2))
    assert got.total[0] == 1.0
    assert got.net[0] == 1.0 - 1.0 / 12 * 9


@both_paths
def test_background_double_counts_overlapping_columns(use_kernel: bool) -> None:
    # 3 wide, 5 tall, BgdWidth 2: middle row 2 takes columns 0-1 and 1-2
    frames = np.zeros((1, 5, 3), dtype=np.int32)
    frames[0, 2, 1] = 1
    with numpy_path(use_kernel):
        got = roi_stats(frames, Roi(0, 0, 3, 5, 2))
    assert got.net[0] == 1.0 - 2.0 / 16 * 15


def test_empty_batch() -> None:
    per_roi, whole = compute_stats(np.zeros((0, 4, 5), np.uint8), [Roi(1, 1, 2, 2)])
    assert per_roi[0].total.shape == (0,)
    assert whole.mean.shape == (0,)


@pytest.mark.parametrize(
    "frames",
    [
        np.zeros((4, 5), np.uint8),
        np.zeros((1, 2, 4, 5), np.uint8),
        np.zeros((1, 0, 5), np.uint8),
        np.zeros((1, 4, 5), np.complex128),
        np.zeros((1, 4, 5), np.bool_),
    ],
)
def test_bad_frames_raise(frames: np.ndarray) -> None:
    with pytest.raises(SwmrRoiError):
        roi_stats(frames, Roi(0, 0, 1, 1))
    with pytest.raises(SwmrRoiError):
        frame_stats(frames)
    with pytest.raises(SwmrRoiError):
        compute_stats(frames, [])


def test_clamp_roi_rejects_empty_frame() -> None:
    with pytest.raises(SwmrRoiError):
        clamp_roi(Roi(0, 0, 1, 1), (0, 5))
