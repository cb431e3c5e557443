"""Rectangular ROI statistics exactly as areaDetector's NDPluginROIStat.

The reference is ``doComputeStatisticsT`` and ``processCallbacks`` in ADCore's
``ADApp/pluginSrc/NDPluginROIStat.cpp`` (2-D arrays). Column is x (dim 0),
row is y (dim 1); numpy frames are indexed ``[row, column]``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from swmr_roi_ioc._errors import SwmrRoiError
from swmr_roi_ioc.stats import _kernel
from swmr_roi_ioc.stats._bands import BandTables, background_rects, region_edges
from swmr_roi_ioc.stats._sums import check_frames, exact_sum

#: Integer frames (any integer dtype, any ROI count) go through the compiled
#: one-pass kernel (:mod:`._kernel`): measured on 1216 x 1936 frames in blocks
#: of 3 (benchmarks/compute.py, CPU time) 3-4x faster than numpy for 3 and 4
#: ROIs, 4-6x for 64 (uint8, uint16; int16, int32, uint32 2-4x), and it runs
#: without the GIL. Float frames keep numpy
#: (their sums depend on the order of the additions).
USE_KERNEL = True

#: Without the kernel (USE_KERNEL off: numpy, the reference the kernel is
#: tested against), from this many regions (ROIs + the frame) on, integer
#: frames go through per-band column tables: one pass over the frame serves
#: every region. Measured on 1216 x 1936 uint8 (thread CPU time): 17 regions
#: 6 % slower than region by region, 65 regions 40 % faster.
MANY_REGIONS = 24

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


class FrameStats:
    """Statistics of one region for a batch: float64 arrays of shape (n,).

    Held as one (5, n) array (total, net, min, max, mean): the kernel's
    results for 64 regions are 65 views of its output, not 325, and one array
    per region crosses the pipe from a worker."""

    __slots__ = ("values",)

    def __init__(
        self,
        total: npt.ArrayLike,
        net: npt.ArrayLike,
        min: npt.ArrayLike,  # noqa: A002 - NDPluginROIStat's names
        max: npt.ArrayLike,  # noqa: A002
        mean: npt.ArrayLike,
    ) -> None:
        self.values: npt.NDArray[np.float64] = np.stack(
            [np.asarray(v, dtype=np.float64) for v in (total, net, min, max, mean)]
        )

    @classmethod
    def of(cls, values: npt.NDArray[np.float64]) -> FrameStats:
        """From a (5, n) float64 array (kept, not copied)."""
        stats = cls.__new__(cls)
        stats.values = values
        return stats

    @property
    def total(self) -> npt.NDArray[np.float64]:
        return self.values[0]

    @property
    def net(self) -> npt.NDArray[np.float64]:
        return self.values[1]

    @property
    def min(self) -> npt.NDArray[np.float64]:
        return self.values[2]

    @property
    def max(self) -> npt.NDArray[np.float64]:
        return self.values[3]

    @property
    def mean(self) -> npt.NDArray[np.float64]:
        return self.values[4]

    def __getstate__(self) -> npt.NDArray[np.float64]:
        return np.ascontiguousarray(self.values)  # a view: its own data only

    def __setstate__(self, state: npt.NDArray[np.float64]) -> None:
        self.values = state


def _clamp_dim(offset: int, size: int, dim_size: int) -> tuple[int, int]:
    offset = max(offset, 0)
    offset = min(offset, dim_size - 1)
    size = max(size, 1)
    size = min(size, dim_size - offset)
    return offset, size


def roi_outside(roi: Roi, frame_shape: tuple[int, int]) -> bool:
    """``roi`` starts past the frame's last column or row: clamping leaves one
    pixel at the edge (NDPluginROIStat's numbers, but not the region asked for)."""
    height, width = (int(v) for v in frame_shape)
    return int(roi.x) >= width or int(roi.y) >= height


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


def _background(
    frames: npt.NDArray[Any], roi: Roi, tables: BandTables | None = None
) -> npt.NDArray[np.float64]:
    """NDPluginROIStat's background estimate, scaled to the ROI's pixel count.

    Top and bottom bands of ``bgd_y`` rows (both full width; they overlap and
    count twice when 2 * bgd_y > height), then for the rows between them the
    ``bgd_x`` columns at the left and at the right (same double counting).
    """
    n_elements = roi.width * roi.height
    rects = background_rects(roi.x, roi.y, roi.width, roi.height, roi.background_width)
    if not rects:
        return np.zeros(frames.shape[0], dtype=np.float64)
    if tables is not None:
        parts = list(tables.totals(np.array(rects, dtype=np.intp)))
    else:
        parts = [exact_sum(frames[:, r0:r1, c0:c1]) for r0, r1, c0, c1 in rects]
    n_bgd = sum((r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in rects)
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


def _kernel_frames(array: npt.NDArray[Any]) -> npt.NDArray[Any] | None:
    """``array`` as the compiled kernel takes it, or None: numpy's turn."""
    if not USE_KERNEL or not len(array) or array.dtype.kind not in "iu":
        return None
    if not array.dtype.isnative:  # e.g. big-endian in the file: one native copy
        array = array.astype(array.dtype.newbyteorder("="))
    return array if _kernel.supported(array.dtype) else None


@functools.lru_cache(maxsize=64)
def _clamped(
    rois: tuple[Roi, ...], height: int, width: int
) -> tuple[tuple[Roi, ...], tuple[_kernel.Region, ...]]:
    """The ROIs clamped and the whole frame, also as the kernel's tuples
    (cached: the same ROIs come back batch after batch, and clamping 64 of
    them costs more than the kernel's pass over their pixels)."""
    regions = (*(clamp_roi(roi, (height, width)) for roi in rois), Roi(0, 0, width, height))
    return regions, tuple((r.x, r.y, r.width, r.height, r.background_width) for r in regions)


def _kernel_stats(
    array: npt.NDArray[Any], geometry: tuple[_kernel.Region, ...]
) -> list[FrameStats]:
    out = _kernel.kernel_stats(array, geometry)
    return [FrameStats.of(region) for region in out]


def roi_stats(frames: npt.ArrayLike, roi: Roi) -> FrameStats:
    """Statistics of ``roi`` (clamped to the frame) for each frame of (n, H, W)."""
    array = check_frames(frames)
    clamped = clamp_roi(roi, (array.shape[1], array.shape[2]))
    native = _kernel_frames(array)
    if native is not None:
        geometry = (clamped.x, clamped.y, clamped.width, clamped.height, clamped.background_width)
        return _kernel_stats(native, (geometry,))[0]
    return _clamped_stats(array, clamped)


def frame_stats(frames: npt.ArrayLike) -> FrameStats:
    """Statistics of whole frames of an (n, H, W) batch; ``net`` equals ``total``."""
    array = check_frames(frames)
    native = _kernel_frames(array)
    if native is not None:
        return _kernel_stats(native, ((0, 0, array.shape[2], array.shape[1], 0),))[0]
    return _clamped_stats(array, _whole_frame(array))


def _concat(parts: list[FrameStats]) -> FrameStats:
    if len(parts) == 1:
        return parts[0]
    return FrameStats.of(np.concatenate([p.values for p in parts], axis=1))


def _block_stats(array: npt.NDArray[Any], regions: Sequence[Roi]) -> list[FrameStats]:
    """Every (clamped) region of one cache-sized block, with few numpy calls:
    the results land in one (regions, 5, n) array (each call re-takes the GIL
    from the other workers, so fewer calls is faster in the threaded stream).
    Many regions of an integer block share one pass (:class:`BandTables`)."""
    tables = None
    out = np.empty((len(regions), 5, array.shape[0]), dtype=np.float64)
    if len(regions) >= MANY_REGIONS and array.dtype.kind in "iu" and len(array):
        geometry = [(r.x, r.y, r.width, r.height, r.background_width) for r in regions]
        tables = BandTables(array, *region_edges(geometry))
        rects = [(r.y, r.y + r.height, r.x, r.x + r.width) for r in regions]
        out[:, 0] = tables.totals(np.array(rects, dtype=np.intp))
    for k, roi in enumerate(regions):
        total, net, low, high = out[k, 0], out[k, 1], out[k, 2], out[k, 3]
        x0, x1, y0, y1 = roi.x, roi.x + roi.width, roi.y, roi.y + roi.height
        if tables is not None:
            low[:], high[:] = tables.extremes(y0, y1, x0, x1)
        else:
            view = array[:, y0:y1, x0:x1]
            total[:] = exact_sum(view)
            low[:] = view.min(axis=(1, 2))
            high[:] = view.max(axis=(1, 2))
        if roi.background_width > 0:
            np.subtract(total, _background(array, roi, tables), out=net)
        else:
            net[:] = total
    pixels = np.array([roi.width * roi.height for roi in regions], dtype=np.float64)
    np.divide(out[:, 0], pixels[:, np.newaxis], out=out[:, 4])
    return [FrameStats.of(region) for region in out]


def compute_stats(
    frames: npt.ArrayLike, rois: Sequence[Roi]
) -> tuple[list[FrameStats], FrameStats]:
    """Statistics of every ROI and of the whole frame for an (n, H, W) batch.

    Thread-safe; integer frames are computed without holding the GIL."""
    array = check_frames(frames)
    regions, geometry = _clamped(tuple(rois), array.shape[1], array.shape[2])
    native = _kernel_frames(array)
    if native is not None:
        merged = _kernel_stats(native, geometry)
        return merged[:-1], merged[-1]
    frame_bytes = max(array[0].nbytes if len(array) else 1, 1)
    step = max(_CHUNK_BYTES // frame_bytes, 1)
    if len(array) <= step:
        merged = _block_stats(array, regions)
    else:
        per_chunk = [_block_stats(array[i : i + step], regions) for i in range(0, len(array), step)]
        merged = [_concat([stats[k] for stats in per_chunk]) for k in range(len(regions))]
    return merged[:-1], merged[-1]
