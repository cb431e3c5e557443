"""Rectangular ROI statistics exactly as areaDetector's NDPluginROIStat.

The reference is ``doComputeStatisticsT`` and ``processCallbacks`` in ADCore's
``ADApp/pluginSrc/NDPluginROIStat.cpp`` (2-D arrays). Column is x (dim 0),
row is y (dim 1); numpy frames are indexed ``[row, column]``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from swmr_roi_ioc._errors import SwmrRoiError
from swmr_roi_ioc.stats._sums import check_frames, exact_sum

# Frames are processed in chunks of about this many bytes, so that every ROI
# and the whole-frame sum read a chunk while it is still in the CPU cache.
_CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Roi:
    """A rectangle as NDPluginROIStat's MinX, MinY, SizeX, SizeY, BgdWidth."""

    x: int
    y: int
    width: int
    height: int
    background_width: int = 0


@dataclass(frozen=True, eq=False)
class FrameStats:
    """Statistics of one region for a batch: float64 arrays of shape (n,)."""

    total: npt.NDArray[np.float64]
    net: npt.NDArray[np.float64]
    min: npt.NDArray[np.float64]
    max: npt.NDArray[np.float64]
    mean: npt.NDArray[np.float64]


def _clamp_dim(offset: int, size: int, dim_size: int) -> tuple[int, int]:
    offset = max(offset, 0)
    offset = min(offset, dim_size - 1)
    size = max(size, 1)
    size = min(size, dim_size - offset)
    return offset, size


def clamp_roi(roi: Roi, frame_shape: tuple[int, int]) -> Roi:
    """Clamp ``roi`` to a frame of ``frame_shape`` (H, W), as NDPluginROIStat.

    Per dimension: offset = max(offset, 0); offset = min(offset, size - 1);
    size = max(size, 1); size = min(size, dimsize - offset). The background
    width becomes max(width, 0); the statistics cap it at the size per axis.
    """
    height, width = (int(v) for v in frame_shape)
    if height < 1 or width < 1:
        raise SwmrRoiError(f"frame shape must be positive, got {frame_shape}")
    x, size_x = _clamp_dim(int(roi.x), int(roi.width), width)
    y, size_y = _clamp_dim(int(roi.y), int(roi.height), height)
    return Roi(x, y, size_x, size_y, max(int(roi.background_width), 0))


def _background(frames: npt.NDArray[Any], roi: Roi) -> npt.NDArray[np.float64]:
    """NDPluginROIStat's background estimate, scaled to the ROI's pixel count.

    Top and bottom bands of ``bgd_y`` rows (both full width; they overlap and
    count twice when 2 * bgd_y > height), then for the rows between them the
    ``bgd_x`` columns at the left and at the right (same double counting).
    """
    n_elements = roi.width * roi.height
    if roi.background_width <= 0:
        return np.zeros(frames.shape[0], dtype=np.float64)
    bgd_x = min(roi.background_width, roi.width)
    bgd_y = min(roi.background_width, roi.height)
    x0, x1 = roi.x, roi.x + roi.width
    y0, y1 = roi.y, roi.y + roi.height
    bands = [(y0, y0 + bgd_y, x0, x1), (y1 - bgd_y, y1, x0, x1)]
    if y1 - bgd_y > y0 + bgd_y:
        bands.append((y0 + bgd_y, y1 - bgd_y, x0, x0 + bgd_x))
        bands.append((y0 + bgd_y, y1 - bgd_y, x1 - bgd_x, x1))
    parts = [exact_sum(frames[:, r0:r1, c0:c1]) for r0, r1, c0, c1 in bands]
    n_bgd = sum((r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in bands)
    bgd_sum = np.sum(parts, axis=0)
    return bgd_sum.astype(np.float64) / n_bgd * n_elements


def _clamped_stats(frames: npt.NDArray[Any], roi: Roi) -> FrameStats:
    view = frames[:, roi.y : roi.y + roi.height, roi.x : roi.x + roi.width]
    total = exact_sum(view).astype(np.float64)
    return FrameStats(
        total=total,
        net=total - _background(frames, roi),
        min=np.asarray(view.min(axis=(1, 2))).astype(np.float64),
        max=np.asarray(view.max(axis=(1, 2))).astype(np.float64),
        mean=total / (roi.width * roi.height),
    )


def _whole_frame(frames: npt.NDArray[Any]) -> Roi:
    return Roi(0, 0, frames.shape[2], frames.shape[1])


def roi_stats(frames: npt.ArrayLike, roi: Roi) -> FrameStats:
    """Statistics of ``roi`` (clamped to the frame) for each frame of (n, H, W)."""
    array = check_frames(frames)
    return _clamped_stats(array, clamp_roi(roi, (array.shape[1], array.shape[2])))


def frame_stats(frames: npt.ArrayLike) -> FrameStats:
    """Statistics of whole frames of an (n, H, W) batch; ``net`` equals ``total``."""
    array = check_frames(frames)
    return _clamped_stats(array, _whole_frame(array))


def _concat(parts: list[FrameStats]) -> FrameStats:
    if len(parts) == 1:
        return parts[0]
    return FrameStats(
        total=np.concatenate([p.total for p in parts]),
        net=np.concatenate([p.net for p in parts]),
        min=np.concatenate([p.min for p in parts]),
        max=np.concatenate([p.max for p in parts]),
        mean=np.concatenate([p.mean for p in parts]),
    )


def compute_stats(
    frames: npt.ArrayLike, rois: Sequence[Roi]
) -> tuple[list[FrameStats], FrameStats]:
    """Statistics of every ROI and of the whole frame for an (n, H, W) batch."""
    array = check_frames(frames)
    shape = (array.shape[1], array.shape[2])
    regions = [clamp_roi(roi, shape) for roi in rois] + [_whole_frame(array)]
    frame_bytes = max(array[0].nbytes if len(array) else 1, 1)
    step = max(_CHUNK_BYTES // frame_bytes, 1)
    chunks = [array[i : i + step] for i in range(0, len(array), step)] or [array]
    per_chunk = [[_clamped_stats(chunk, r) for r in regions] for chunk in chunks]
    merged = [_concat([stats[k] for stats in per_chunk]) for k in range(len(regions))]
    return merged[:-1], merged[-1]
