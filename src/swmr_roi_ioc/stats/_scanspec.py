"""A scan's own map geometry: a scanspec ``Spec`` or bluesky's grid metadata.

Frame ``i`` of a scan goes where the scan's path puts it: the frame order of
``Spec.calculate()`` (the same stack scanspec's ``Path`` and
``frames().midpoints`` walk, snakes included), mapped to a (rows, cols) map:
the fastest dimension is the columns, every slower one together the rows.
Computed from indices, not positions, so repeated or unordered positions
place exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import numpy.typing as npt
from scanspec.core import Dimension, SnakedDimension, stack2dimension
from scanspec.specs import Spec

from swmr_roi_ioc._errors import SwmrRoiError
from swmr_roi_ioc.stats._scan import ScanGeometry

#: The largest scan placed frame by frame (as scan.shape's bound).
MAX_POINTS = 4_000_000


class ScanSpecError(SwmrRoiError):
    """A start document's scan description that cannot be turned into a map."""


def _geometry(dims: Sequence[Dimension[str]]) -> ScanGeometry:
    lengths = [len(d) for d in dims]
    if not lengths or min(lengths) < 1:
        raise ScanSpecError(f"a scan of shape {lengths} has no frames")
    total = int(np.prod(lengths, dtype=np.int64))
    if total > MAX_POINTS:
        raise ScanSpecError(f"a scan of {total} points is too large for a map (> {MAX_POINTS})")
    # the same stack with each dimension's midpoints replaced by its indices
    indexed: list[Dimension[str]] = [
        (SnakedDimension if isinstance(d, SnakedDimension) else Dimension)(
            {f"d{k}": np.arange(len(d), dtype=np.float64)}
        )
        for k, d in enumerate(dims)
    ]
    points = stack2dimension(indexed).midpoints
    per_dim: list[npt.NDArray[np.int64]] = [
        np.rint(points[f"d{k}"]).astype(np.int64) for k in range(len(dims))
    ]
    cols = lengths[-1]
    rows = total // cols
    if len(dims) > 1:
        row = np.ravel_multi_index(tuple(per_dim[:-1]), tuple(lengths[:-1]))
    else:
        row = np.zeros(total, dtype=np.int64)
    order = np.asarray(row, dtype=np.int64) * cols + per_dim[-1]
    snake = any(isinstance(d, SnakedDimension) for d in dims[1:])
    return ScanGeometry((rows, cols), snake, order=order)


def spec_geometry(serialized: object) -> ScanGeometry:
    """The map of a scan described by ``Spec.serialize()`` output."""
    try:
        spec = Spec.deserialize(serialized)  # pyright: ignore[reportArgumentType]
        dims = spec.calculate()
    except ScanSpecError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydantic, or a spec that cannot calculate
        raise ScanSpecError(f"scan_spec is not a scanspec Spec: {exc}") from exc
    return _geometry(dims)


def grid_geometry(shape: Sequence[int], snaking: Sequence[bool] | None = None) -> ScanGeometry:
    """The map of bluesky's ``grid_scan``: its ``shape`` and ``snaking`` flags
    (slowest axis first; a snaking axis runs backwards on every other pass)."""
    flags = list(snaking or [False] * len(shape))
    if len(flags) != len(shape):
        raise ScanSpecError(f"snaking {flags} does not match shape {list(shape)}")
    dims: list[Dimension[str]] = []
    for n, snake in zip(shape, flags, strict=True):
        given = cast(object, n)  # from a JSON document: check it
        if isinstance(given, bool) or not isinstance(given, int | np.integer) or n < 1:
            raise ScanSpecError(f"shape {list(shape)} is not a list of positive integers")
        points = {"p": np.arange(int(n), dtype=np.float64)}
        dims.append(SnakedDimension(points) if snake else Dimension(points))
    return _geometry(dims)
