"""The simulated camera's frames: deterministic, in range, cheap, a picture."""

import time

import numpy as np
import pytest

from swmr_roi_ioc._errors import SwmrRoiError
from swmr_roi_ioc.sim import (
    SimError,
    SimOptions,
    frame_pattern,
    sample_brightness,
    scan_position,
    spot_centre,
)

DTYPES = ["uint8", "uint16", "uint32", "int32", "float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_frames_are_deterministic_typed_and_in_range(dtype: str) -> None:
    options = SimOptions(frames=12, shape=(48, 64), dtype=dtype, scan=(3, 4))
    frames = np.stack([frame_pattern(i, options) for i in range(12)])
    assert frames.shape == (12, 48, 64)
    assert frames.dtype == np.dtype(dtype)
    again = np.stack([frame_pattern(i, options) for i in reversed(range(12))])[::-1]
    np.testing.assert_array_equal(frames, again)
    assert frames.min() >= 0
    if np.issubdtype(frames.dtype, np.integer):
        assert frames.max() <= np.iinfo(frames.dtype).max
    else:
        assert np.all(np.isfinite(frames))
        assert np.any(frames != np.round(frames))  # fractional values
    # every frame is different (noise and spot move)
    flat = frames.reshape(12, -1)
    assert len({row.tobytes() for row in flat}) == 12


def test_uint8_never_wraps_even_with_a_bright_spot() -> None:
    options = SimOptions(frames=400, shape=(40, 40), dtype="uint8", scan=(20, 20))
    peak = max(int(frame_pattern(i, options).max()) for i in range(0, 400, 7))
    assert 150 < peak <= 255


def test_seed_changes_the_background() -> None:
    a = frame_pattern(3, SimOptions(shape=(32, 32), seed=0))
    b = frame_pattern(3, SimOptions(shape=(32, 32), seed=1))
    assert not np.array_equal(a, b)


def test_snake_scan_positions() -> None:
    options = SimOptions(frames=12, scan=(3, 4))
    positions = [scan_position(i, options) for i in range(12)]
    assert positions[:4] == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert positions[4:8] == [(1, 3), (1, 2), (1, 1), (1, 0)]
    assert positions[8:] == [(2, 0), (2, 1), (2, 2), (2, 3)]
    raster = SimOptions(frames=12, scan=(3, 4), snake=False)
    assert scan_position(5, raster) == (1, 1)
    assert scan_position(13, options) == (0, 1)  # wraps past the end
    assert scan_position(7, SimOptions(frames=10)) == (0, 7)  # one-row scan


def test_spot_sweeps_left_to_right_with_the_column() -> None:
    options = SimOptions(frames=30, shape=(100, 300), scan=(1, 30))
    xs = [spot_centre(0, col, options)[1] for col in range(30)]
    assert xs == sorted(xs)
    assert xs[0] < 300 / 3 < 2 * 300 / 3 < xs[-1]
    # the brightest pixel of a frame is at the spot
    frame = frame_pattern(15, options)
    y, x = np.unravel_index(np.argmax(frame), frame.shape)
    cy, cx = spot_centre(0, 15, options)
    assert abs(int(y) - cy) <= 3 and abs(int(x) - cx) <= 3


def test_sample_is_a_ring_with_a_dot() -> None:
    shape = (41, 41)
    image = np.array([[sample_brightness(r, c, shape) for c in range(41)] for r in range(41)])
    assert image.min() >= 0.1 and image.max() <= 1.0
    centre, ring, outside = image[20, 20], image[20, 20 + 12], image[0, 0]
    assert ring > 0.9 and centre > 0.6 and outside < 0.15
    assert image[20, 20 + 6] < 0.3  # dark gap between dot and ring


def test_full_size_uint8_frame_is_cheap() -> None:
    options = SimOptions(frames=1000, shape=(1216, 1936), dtype="uint8")
    frame_pattern(0, options)  # builds the cached noise bank
    times = []
    for i in range(1, 31):
        t = time.perf_counter()
        frame_pattern(i, options)
        times.append(time.perf_counter() - t)
    assert float(np.median(times)) < 5e-3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"frames": 0},
        {"shape": (0, 10)},
        {"dtype": "int8"},
        {"compression": "gzip"},
        {"scan": (0, 3)},
        {"num_frames_flush": 0},
        {"attribute_chunk": 0},
        {"frames": 13, "scan": (3, 4), "extra_dims": True},
    ],
)
def test_bad_options_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(SimError) as info:
        SimOptions(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, SwmrRoiError)


def test_attribute_chunk_default_is_adcore_numcapture_capped() -> None:
    assert SimOptions(frames=50).attribute_chunk_frames == 50
    assert SimOptions(frames=100_000).attribute_chunk_frames == 16384
    assert SimOptions(frames=50, attribute_chunk=7).attribute_chunk_frames == 7
    assert SimOptions(frames=50).scan_shape == (1, 50)
