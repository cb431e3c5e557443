"""Live views of one frame: histogram (NDPluginStats' rules) and a binned image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from swmr_roi_ioc._errors import SwmrRoiError
from swmr_roi_ioc.stats import _views_kernel


@dataclass(frozen=True, eq=False)
class Histogram:
    """Counts of one frame in ``size`` equal bins over [low, high)."""

    counts: npt.NDArray[np.float64]
    #: bin centres (NDPluginStats' HistogramX)
    centres: npt.NDArray[np.float64]
    #: pixels below ``low`` and at or above ``high``
    below: int
    above: int


def histogram(frame: npt.ArrayLike, size: int, low: float, high: float) -> Histogram:
    """Histogram of ``frame`` as NDPluginStats computes it: bin = (v - low) *
    size / (high - low), values below ``low`` counted in ``below``, values at
    or above ``high`` in ``above``; NaN is counted nowhere."""
    if size < 1 or not high > low:
        raise SwmrRoiError(f"histogram needs size >= 1 and high > low, got {size}, {low}, {high}")
    array = np.asarray(frame)
    scale = size / (high - low)
    if _views_kernel.counts_supported(array.dtype) and array.ndim == 2:
        # few distinct values: count each value once (compiled, no GIL), then
        # place the values that occur
        per_value, offset = _views_kernel.value_counts(array)
        present = np.flatnonzero(per_value)
        levels = present.astype(np.float64) + offset
        return _place(levels, per_value[present].astype(np.float64), size, low, high, scale)
    values = array.ravel()
    if values.dtype.kind in "iu" and values.dtype.itemsize <= 2:
        offset = int(values.min()) if values.size else 0
        per_value = np.bincount(values.astype(np.int64) - offset)
        levels = np.arange(per_value.size, dtype=np.float64) + offset
        return _place(levels, per_value.astype(np.float64), size, low, high, scale)
    finite = values[~np.isnan(values)] if values.dtype.kind == "f" else values
    return _place(finite.astype(np.float64), None, size, low, high, scale)


def _place(
    levels: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64] | None,
    size: int,
    low: float,
    high: float,
    scale: float,
) -> Histogram:
    below_mask = levels < low
    above_mask = levels >= high
    inside = ~(below_mask | above_mask)
    # multiply, then divide: the same rounding as (v - low) * size / (high - low)
    bins = np.floor((levels[inside] - low) * size / (high - low)).astype(np.int64)
    np.clip(bins, 0, size - 1, out=bins)
    w = None if weights is None else weights[inside]
    counts = np.bincount(bins, weights=w, minlength=size).astype(np.float64)
    if weights is None:
        below, above = int(below_mask.sum()), int(above_mask.sum())
    else:
        below, above = int(weights[below_mask].sum()), int(weights[above_mask].sum())
    centres = low + (np.arange(size, dtype=np.float64) + 0.5) / scale
    return Histogram(counts=counts, centres=centres, below=below, above=above)


def bin_factor(shape: tuple[int, int], max_size: int) -> int:
    """The smallest integer factor that brings both sides to at most max_size."""
    if max_size < 1:
        raise SwmrRoiError(f"max_size must be >= 1, got {max_size}")
    return max(1, -(-max(shape) // max_size))


def bin_image(frame: npt.ArrayLike, max_size: int) -> npt.NDArray[np.float64]:
    """``frame`` binned by an integer factor f (mean of f x f blocks, the
    remainder rows and columns cropped) so each side is at most max_size."""
    array = np.asarray(frame)
    if array.ndim != 2:
        raise SwmrRoiError(f"bin_image needs a 2-D frame, got shape {array.shape}")
    f = bin_factor((array.shape[0], array.shape[1]), max_size)
    if _views_kernel.means_supported(array.dtype):
        return _views_kernel.block_means(array, f)  # compiled, no GIL, exact
    h, w = array.shape[0] // f, array.shape[1] // f
    blocks = array[: h * f, : w * f].reshape(h, f, w, f)
    return blocks.mean(axis=(1, 3), dtype=np.float64)


@dataclass(frozen=True, eq=False)
class LiveViews:
    """Histogram and binned image of the latest frame (at the publish rate)."""

    histogram: npt.NDArray[np.float64]
    histogram_x: npt.NDArray[np.float64]
    below: int
    above: int
    hist_size: int
    hist_min: float
    hist_max: float
    #: the latest frame binned to at most image_max_size per side, (rows, cols)
    image: npt.NDArray[np.float64]
    #: changes when the frame or the histogram settings change
    generation: int


def live_views(
    frame: npt.ArrayLike, bins: int, low: float, high: float, image_max: int, generation: int = 0
) -> LiveViews:
    """The histogram (``bins`` over [low, high)) and the binned image of one frame."""
    hist = histogram(frame, bins, low, high)
    return LiveViews(
        histogram=hist.counts,
        histogram_x=hist.centres,
        below=hist.below,
        above=hist.above,
        hist_size=bins,
        hist_min=low,
        hist_max=high,
        image=bin_image(frame, image_max),
        generation=generation,
    )
