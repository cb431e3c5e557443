"""Histogram and binned image against naive implementations."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from swmr_roi_ioc.stats import bin_factor, bin_image, histogram


def naive_histogram(values: list[float], size: int, low: float, high: float) -> tuple:
    counts = [0] * size
    below = above = 0
    for v in values:
        if math.isnan(v):
            continue
        if v < low:
            below += 1
        elif v >= high:
            above += 1
        else:
            counts[min(size - 1, int(math.floor((v - low) * size / (high - low))))] += 1
    return counts, below, above


@settings(max_examples=150, deadline=None)
@given(
    dtype=st.sampled_from(["uint8", "int8", "uint16", "int16", "int32", "float64"]),
    size=st.integers(1, 40),
    low=st.integers(-50, 300),
    width=st.integers(1, 400),
    seed=st.integers(0, 2**32 - 1),
)
def test_histogram_matches_naive(dtype: str, size: int, low: int, width: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 255, size=(7, 9)).astype(dtype)
    if dtype in ("int8", "int16"):  # negative values, and the type's extremes
        info = np.iinfo(dtype)
        frame = rng.integers(info.min, int(info.max) + 1, size=(7, 9)).astype(dtype)
        frame[0, :2] = info.min, info.max
    if dtype == "float64":
        frame = frame + rng.random((7, 9))
        frame[0, 0] = np.nan
    h = histogram(frame, size, float(low), float(low + width))
    counts, below, above = naive_histogram(frame.ravel().tolist(), size, low, low + width)
    assert h.counts.tolist() == counts
    assert (h.below, h.above) == (below, above)
    finite = int(np.isfinite(frame).sum())
    assert h.counts.sum() + h.below + h.above == finite  # every pixel counted once
    assert len(h.centres) == size


def test_histogram_bins_sum_to_pixel_count_for_a_camera_frame() -> None:
    frame = np.random.default_rng(1).integers(0, 4096, size=(256, 320), dtype=np.uint16)
    h = histogram(frame, 256, 0, 4096)
    assert h.counts.sum() == frame.size and h.below == h.above == 0


@settings(max_examples=150, deadline=None)
@given(
    h=st.integers(1, 60),
    w=st.integers(1, 60),
    max_size=st.integers(1, 70),
    dtype=st.sampled_from(["uint8", "int16", "uint16", "uint32", "int64", "float32"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_bin_image_matches_loops(h: int, w: int, max_size: int, dtype: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        low, high = max(int(info.min), -(2**40)), min(int(info.max), 2**40)
        frame = rng.integers(low, high, size=(h, w), endpoint=True).astype(dtype)
    else:
        frame = (rng.random((h, w)) * 1000).astype(dtype)
    out = bin_image(frame, max_size)
    f = bin_factor((h, w), max_size)
    assert out.shape == (h // f, w // f)
    assert max(out.shape) <= max_size
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            block = frame[r * f : (r + 1) * f, c * f : (c + 1) * f]
            if frame.dtype.kind == "f":
                assert out[r, c] == block.astype(np.float64).mean()
            else:  # exact: the integer sum, divided once
                assert out[r, c] == float(int(block.astype(object).sum())) / block.size
