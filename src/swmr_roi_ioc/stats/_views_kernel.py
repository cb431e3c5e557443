"""The live views' integer work in compiled loops (numba, no GIL held).

An engine worker computes the histogram and the binned image of the newest
frame in a thread beside the one that reads and computes statistics; these
loops hold no GIL, so that thread never waits for them. Integer arithmetic
only: per-value counts are exact, and every block sum of the binned image is
an integer below 2**53, exact in float64 in any order, so the results are
bit-identical to numpy's (``np.bincount`` and ``mean`` over f x f blocks).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from swmr_roi_ioc.stats import _numba_cache

_numba_cache.configure()

import numba  # noqa: E402  (NUMBA_CACHE_DIR must be set before numba reads it)
from numba.core import config as _numba_config  # noqa: E402

if os.environ.get("NUMBA_CACHE_DIR") and not getattr(_numba_config, "CACHE_DIR", ""):
    setattr(_numba_config, "CACHE_DIR", os.environ["NUMBA_CACHE_DIR"])  # noqa: B010


def counts_supported(dtype: np.dtype[Any]) -> bool:
    """Integer frames of at most 16 bits (every value has its own counter)."""
    return dtype.kind in "iu" and dtype.isnative and dtype.itemsize <= 2


def means_supported(dtype: np.dtype[Any]) -> bool:
    """Integer frames of at most 32 bits (block sums fit int64 exactly)."""
    return dtype.kind in "iu" and dtype.isnative and dtype.itemsize <= 4


@numba.njit(nogil=True, cache=True)
def _count_values(frame: Any, offset: int, counts: Any) -> None:  # pragma: no cover - compiled
    """counts[v - offset] += 1 for every pixel value v of a 2-D frame."""
    rows, cols = frame.shape
    for r in range(rows):
        row = frame[r]
        for c in range(cols):
            counts[row[c] - offset] += 1


@numba.njit(nogil=True, cache=True)
def _block_means(frame: Any, f: int, out: Any) -> None:  # pragma: no cover - compiled
    """out[i, j] = mean of frame[i*f:(i+1)*f, j*f:(j+1)*f] (exact integer sums)."""
    rows, cols = out.shape
    sums = np.zeros(cols, np.int64)
    for i in range(rows):
        sums[:] = 0
        for a in range(i * f, (i + 1) * f):
            row = frame[a]
            for j in range(cols):
                s = 0
                for b in range(j * f, (j + 1) * f):
                    s += row[b]
                sums[j] += s
        for j in range(cols):
            out[i, j] = float(sums[j]) / float(f * f)


def value_counts(frame: npt.NDArray[Any]) -> tuple[npt.NDArray[np.int64], int]:
    """(counts per value, the value of counts[0]) of an integer frame of at
    most 16 bits: one pass, no GIL."""
    info = np.iinfo(frame.dtype)
    counts = np.zeros(int(info.max) - int(info.min) + 1, dtype=np.int64)
    _count_values(np.ascontiguousarray(frame), int(info.min), counts)
    return counts, int(info.min)


def block_means(frame: npt.NDArray[Any], f: int) -> npt.NDArray[np.float64]:
    """Means of the f x f blocks of an integer frame (remainder cropped)."""
    out = np.empty((frame.shape[0] // f, frame.shape[1] // f), dtype=np.float64)
    _block_means(frame, f, out)
    return out
