"""Deterministic frames of the simulated camera: a picture worth mapping.

Each frame is a dim Poisson-like background plus one bright Gaussian spot.
The spot sweeps from the left to the right edge of the frame as the scan
column goes from first to last (and moves a little down with the row), so
ROIs placed left, centre and right of the frame light up in different thirds
of the scan. Its brightness follows a "sample" of the scan position, a ring
with a dot in the middle, so the maps of the whole frame and of every ROI
show a picture.

Cheap: the background comes from a small cached bank of noise frames,
shifted per index, and the spot is only computed in its local window.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt

from swmr_roi_ioc.sim._options import SimOptions

Frame = npt.NDArray[Any]

_BANK_FRAMES = 3
#: (background Poisson mean, spot peak above background) per dtype.
_LEVELS: dict[str, tuple[float, float]] = {
    "uint8": (3.0, 200.0),
    "uint16": (20.0, 3000.0),
    "uint32": (50.0, 20000.0),
    "int32": (50.0, 20000.0),
    "float32": (20.0, 3000.0),
    "float64": (20.0, 3000.0),
}


def scan_position(index: int, options: SimOptions) -> tuple[int, int]:
    """(row, col) of flat frame ``index`` on the scan, snake-aware.

    Indices past the end of the scan wrap around to its start.
    """
    rows, cols = options.scan_shape
    point = index % (rows * cols)
    row, col = divmod(point, cols)
    if options.snake and row % 2 == 1:
        col = cols - 1 - col
    return row, col


def sample_brightness(row: int, col: int, scan_shape: tuple[int, int]) -> float:
    """Relative brightness (0.1..1) of the simulated sample at a scan point."""
    rows, cols = scan_shape
    u = (col + 0.5) / cols - 0.5
    v = (row + 0.5) / rows - 0.5
    d = float(np.hypot(u, v))
    ring = np.exp(-(((d - 0.3) / 0.07) ** 2))
    dot = 0.7 * np.exp(-((d / 0.07) ** 2))
    return 0.1 + 0.9 * float(max(ring, dot))


def spot_centre(row: int, col: int, options: SimOptions) -> tuple[int, int]:
    """(y, x) pixel of the spot centre for a scan point."""
    height, width = options.shape
    rows, cols = options.scan_shape
    u = (col + 0.5) / cols
    v = (row + 0.5) / rows - 0.5
    margin = width / 20
    x = margin + u * (width - 2 * margin)
    y = height / 2 + v * height / 4
    return int(y), int(x)


def spot_sigma(shape: tuple[int, int]) -> float:
    """Gaussian width (pixels) of the spot for a frame shape."""
    return max(1.5, min(shape) / 30)


@functools.lru_cache(maxsize=4)
def _kernel(sigma: float) -> npt.NDArray[np.float32]:
    radius = int(np.ceil(4 * sigma))
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-(offsets**2) / (2 * sigma**2))
    kernel = np.outer(g, g).astype(np.float32)
    kernel.flags.writeable = False
    return kernel


@functools.lru_cache(maxsize=2)
def _noise_bank(shape: tuple[int, int], dtype: str, seed: int) -> Frame:
    """A few Poisson background frames for (shape, dtype, seed), read-only."""
    rng = np.random.default_rng(seed)
    lam = _LEVELS[dtype][0]
    bank = rng.poisson(lam, size=(_BANK_FRAMES, *shape)).astype(dtype)
    bank.flags.writeable = False
    return bank


def _background(index: int, options: SimOptions) -> Frame:
    height, width = options.shape
    bank = _noise_bank(options.shape, options.dtype, options.seed)
    src = bank[index % _BANK_FRAMES]
    turn = index // _BANK_FRAMES
    dy = (turn * 7919) % height
    dx = (turn * 104729) % width
    out = np.empty_like(src)
    # out = np.roll(src, (dy, dx), axis=(0, 1)), in four block copies
    out[dy:, dx:] = src[: height - dy, : width - dx]
    out[dy:, :dx] = src[: height - dy, width - dx :]
    out[:dy, dx:] = src[height - dy :, : width - dx]
    out[:dy, :dx] = src[height - dy :, width - dx :]
    return out


def frame_pattern(index: int, options: SimOptions) -> Frame:
    """The deterministic frame (H, W) of ``options.dtype`` for flat ``index``.

    Integer dtypes hold integers clipped to the dtype's range; float dtypes
    carry fractional values in the spot.
    """
    frame = _background(index, options)
    row, col = scan_position(index, options)
    amplitude = _LEVELS[options.dtype][1] * sample_brightness(row, col, options.scan_shape)
    kernel = _kernel(spot_sigma(options.shape))
    radius = kernel.shape[0] // 2
    height, width = options.shape
    cy, cx = spot_centre(row, col, options)
    y0, y1 = max(cy - radius, 0), min(cy + radius + 1, height)
    x0, x1 = max(cx - radius, 0), min(cx + radius + 1, width)
    if y0 >= y1 or x0 >= x1:
        return frame
    k = kernel[y0 - cy + radius : y1 - cy + radius, x0 - cx + radius : x1 - cx + radius]
    window = frame[y0:y1, x0:x1]
    spot = k * np.float32(amplitude)
    spot += window
    if np.issubdtype(frame.dtype, np.integer):
        # values stay far below 2**24, so float32 holds them exactly
        np.rint(spot, out=spot)
        np.minimum(spot, np.iinfo(frame.dtype).max, out=spot)
    window[...] = spot
    return frame
