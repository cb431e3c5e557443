"""Catch-up pipelines on a finished file: bounds, references and ours.

Every pipeline reads frames ``0 .. frames-1`` of the simulated NDFileHDF5
file and returns the whole-frame total of each frame, so the run can check
that all of them computed the same numbers.

- bounds: ``read_direct_chunk`` into one buffer (memcpy-like), alone and with
  a plain numpy total; for compressed files raw chunks read in this thread
  and decompressed in 2 threads (dectris-compression / python-blosc), alone
  and with the total;
- references: the naive h5py loop (``refresh``, ``dset[i]``, default
  ``np.sum`` per ROI and frame) and swmr_tools' ``DataSource`` doing the same
  sums;
- ours: :class:`BlockStream` (its :class:`ChunkReader` fast path) feeding
  :func:`compute_stats` (total, net, min, max, mean of every ROI and the
  frame).
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from swmr_roi_ioc.follow import BlockStream, open_swmr, shared_dataset
from swmr_roi_ioc.sim import ATTRIBUTES_GROUP, DATA_PATH
from swmr_roi_ioc.stats import Roi, compute_stats

UNIQUE_ID = f"{ATTRIBUTES_GROUP}/NDArrayUniqueId"
Totals = NDArray[np.float64]

try:
    import dectris.compression as dectris_compression
except ImportError:  # pragma: no cover
    dectris_compression = None

try:
    import blosc
except ImportError:  # pragma: no cover
    blosc = None


def rois_for(count: int, shape: tuple[int, int]) -> list[Roi]:
    """``count`` ROIs: the 3 standard ones, or 128x128 squares on a grid."""
    height, width = shape
    if count == 3:
        wanted = [(100, 200, 256, 256), (800, 500, 300, 200), (1500, 900, 400, 250)]
        return [Roi(min(x, width - 1), min(y, height - 1), w, h) for x, y, w, h in wanted]
    side = int(np.ceil(np.sqrt(count)))
    step_x, step_y = max(1, width // side), max(1, height // side)
    size = 128
    return [
        Roi((k % side) * step_x, (k // side) * step_y, min(size, step_x), min(size, step_y))
        for k in range(count)
    ]


def _slices(rois: Sequence[Roi]) -> list[tuple[slice, slice]]:
    return [(slice(r.y, r.y + r.height), slice(r.x, r.x + r.width)) for r in rois]


# -- bounds -----------------------------------------------------------------


def bound_read_direct_chunk(path: Path, frames: int, with_total: bool) -> Totals | None:
    """``read_direct_chunk`` of each frame into one buffer (+ ``buf.sum()``)."""
    totals = np.zeros(frames) if with_total else None
    with open_swmr(path) as f:
        dset = shared_dataset(f, DATA_PATH)
        buf = np.empty(dset.shape[1:], dtype=dset.dtype)
        flat = buf.reshape(-1).view(np.uint8)
        tail = (0,) * (dset.ndim - 1)
        read = dset.id.read_direct_chunk
        for i in range(frames):
            read((i, *tail), out=flat)
            if totals is not None:
                totals[i] = buf.sum()
    return totals


def _decoder(compression: str, dtype: np.dtype[Any]) -> Callable[[memoryview, NDArray[Any]], None]:
    if compression in ("bslz4", "lz4"):
        assert dectris_compression is not None, "dectris-compression is not installed"
        decompress = dectris_compression.decompress
        itemsize = dtype.itemsize

        def dectris(raw: memoryview, out: NDArray[Any]) -> None:
            data = decompress(raw, compression, elem_size=itemsize)
            out.reshape(-1).view(np.uint8)[:] = np.frombuffer(data, np.uint8)

        return dectris
    if compression == "blosc":
        assert blosc is not None, "blosc is not installed"
        blosc.set_releasegil(True)
        blosc.set_nthreads(1)
        decompress_ptr = blosc.decompress_ptr

        def python_blosc(raw: memoryview, out: NDArray[Any]) -> None:
            decompress_ptr(raw, out.ctypes.data)

        return python_blosc
    raise ValueError(compression)


def bound_parallel_decompress(
    path: Path, frames: int, compression: str, with_total: bool, threads: int = 2
) -> Totals | None:
    """``threads`` threads, each: next index, raw chunk into its buffer, decompress (+ total).

    The least work a parallel reader of compressed frames can do: no queues,
    no hand-over between threads, one raw and one frame buffer per thread.
    """
    totals = np.zeros(frames) if with_total else None
    with open_swmr(path) as f:
        dset = shared_dataset(f, DATA_PATH)
        decode = _decoder(compression, dset.dtype)
        nbytes = int(np.prod(dset.shape[1:])) * dset.dtype.itemsize
        tail = (0,) * (dset.ndim - 1)
        read = dset.id.read_direct_chunk
        counter = itertools.count()

        def work() -> None:
            raw = np.empty(nbytes + nbytes // 8 + 4096, np.uint8)
            out = np.empty(dset.shape[1:], dset.dtype)
            while (i := next(counter)) < frames:
                _, view = read((i, *tail), out=raw)
                decode(memoryview(view), out)
                if totals is not None:
                    totals[i] = out.sum()

        with ThreadPoolExecutor(threads) as pool:
            for future in [pool.submit(work) for _ in range(threads)]:
                future.result()
    return totals


# -- references ---------------------------------------------------------------


def naive_h5py(path: Path, frames: int, rois: Sequence[Roi]) -> Totals:
    """What a first script does: refresh, ``dset[i]``, ``np.sum`` per ROI."""
    totals = np.zeros(frames)
    slices = _slices(rois)
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        dset = f[DATA_PATH]
        assert isinstance(dset, h5py.Dataset)
        for i in range(frames):
            dset.refresh()
            frame = dset[i]
            _ = [frame[sy, sx].sum() for sy, sx in slices]
            totals[i] = frame.sum()
    return totals


def swmr_tools_available() -> str | None:
    """None if swmr_tools imports, else why not."""
    try:
        importlib.import_module("swmr_tools")
    except Exception as exc:  # ImportError, or its own import-time errors
        return f"{type(exc).__name__}: {exc}"
    return None


def swmr_tools_datasource(path: Path, frames: int, rois: Sequence[Roi]) -> Totals:
    """swmr_tools' DataSource on the NDArrayUniqueId key, the same sums as naive."""
    from swmr_tools import DataSource

    totals = np.zeros(frames)
    slices = _slices(rois)
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        source = DataSource([f[UNIQUE_ID]], {DATA_PATH: f[DATA_PATH]}, timeout=1)
        for k, sliced in enumerate(source):
            frame = sliced[DATA_PATH][0]
            _ = [frame[sy, sx].sum() for sy, sx in slices]
            totals[k] = frame.sum()
            if k + 1 >= frames:
                break
    return totals


# -- ours -----------------------------------------------------------------------


def ours_stream(
    path: Path,
    frames: int,
    rois: Sequence[Roi],
    *,
    workers: int = 2,
    block_size: int | None = None,
    in_workers: bool = True,
) -> Totals:
    """BlockStream (fast chunk path) + compute_stats on each block, as the IOC does.

    ``in_workers``: compute_stats runs as the stream's ``process`` in its
    worker threads (in parallel, on the block still in cache); else in this
    (the consumer's) thread.
    """
    totals = np.zeros(frames)
    rois = list(rois)

    def stats(block: NDArray[Any]) -> Any:
        return compute_stats(block, rois)

    with open_swmr(path) as f:
        stream = BlockStream(
            f, DATA_PATH, workers=workers, block_size=block_size,
            process=stats if in_workers else None,
        )  # fmt: skip
        with stream:
            for guard in stream:
                with guard as block:
                    _, whole = guard.result if in_workers else stats(block)
                totals[guard.start : guard.stop] = whole.total
    return totals[:frames]


def stats_in_memory(shape: tuple[int, int], dtype: str, frames: int, rois: Sequence[Roi]) -> None:
    """compute_stats alone on frames already in memory (blocks of 3): its own cost."""
    rng = np.random.default_rng(0)
    block = rng.integers(0, 50, (3, *shape)).astype(dtype)
    for _ in range(0, frames, 3):
        compute_stats(block, rois)
