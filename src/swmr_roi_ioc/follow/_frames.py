"""FrameReader: read frames (or parts of them) by flat index."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from ._errors import FollowError, FrameIndexError
from ._grid import scan_grid, unravel
from ._keys import get_dataset
from ._swmr import maxshape_of, refresh

__all__ = ["FrameReader", "Region"]

_log = logging.getLogger(__name__)

#: A rectangle of a frame: (y, x, height, width), as ``read_region`` takes it.
Region = tuple[int, int, int, int]


class FrameReader:
    """Read the frame at a flat index of a dataset ``(*scan, *frame)``.

    ``scan_rank`` is the number of leading scan dimensions (1 for a stack of
    images, 2 for a grid scan or areaDetector extra dimensions). Flat
    indices run in C order over the scan dimensions: their max shape where
    fixed, else the current extent. Every read refreshes the dataset first,
    so frames written since the last read are found and metadata is never
    stale. Only read frames a :class:`KeyFollower` reported complete: a
    frame inside the extent but not yet written reads as fill value.
    """

    def __init__(self, dataset_path: str, h5file: h5py.File, scan_rank: int = 1) -> None:
        dset = get_dataset(h5file, dataset_path, "dataset")
        if not 1 <= scan_rank <= dset.ndim:
            raise FollowError(
                f"scan_rank {scan_rank} does not fit dataset {dataset_path!r} of shape {dset.shape}"
            )
        self.dataset_path = dataset_path
        self.h5file = h5file
        self.scan_rank = scan_rank
        self.dataset: h5py.Dataset = dset
        self.frame_shape: tuple[int, ...] = tuple(int(n) for n in dset.shape[scan_rank:])
        self.dtype: np.dtype[Any] = dset.dtype
        self._maxshape: tuple[int | None, ...] = maxshape_of(dset)[:scan_rank]

    def refresh(self) -> None:
        """Refresh the dataset (extent, chunk index, metadata)."""
        refresh(self.dataset)

    @property
    def maxshape(self) -> tuple[int | None, ...]:
        """Max shape of the scan dimensions (None where unlimited)."""
        return self._maxshape

    def _grid(self) -> tuple[int, ...]:
        return scan_grid(self.dataset.shape[: self.scan_rank], self._maxshape)

    def _position(self, index: int) -> tuple[int, ...]:
        """Position of ``index`` in the (already refreshed) extent, or raise."""
        shape = self.dataset.shape[: self.scan_rank]
        position = unravel(index, self._grid())
        if any(p >= n for p, n in zip(position, shape, strict=True)):
            raise FrameIndexError(
                f"frame {index} (position {position}) is outside the extent "
                f"{tuple(shape)} of {self.dataset_path!r}"
            )
        return position

    def scan_index(self, index: int) -> tuple[int, ...]:
        """Position over the scan dimensions of flat ``index``.

        Refreshes the dataset first if the position lies outside the extent
        seen so far (the grid of unlimited dimensions follows the extent).
        """
        position = unravel(index, self._grid())
        shape = self.dataset.shape[: self.scan_rank]
        if any(p >= n for p, n in zip(position, shape, strict=True)):
            self.refresh()
            position = unravel(index, self._grid())
        return position

    def read_frame(self, index: int) -> NDArray[Any]:
        """The frame at flat ``index``, shape :attr:`frame_shape`."""
        self.refresh()
        return np.asarray(self.dataset[self._position(index)])

    def read_region(self, index: int, y: int, x: int, height: int, width: int) -> NDArray[Any]:
        """Rows ``y:y+height``, columns ``x:x+width`` of the frame at ``index``.

        The rectangle applies to the last two dimensions and is clipped to
        the frame like numpy slicing.
        """
        return self.read_regions(index, [(y, x, height, width)])[0]

    def read_regions(self, index: int, regions: Sequence[Region]) -> list[NDArray[Any]]:
        """Several ``(y, x, height, width)`` rectangles of one frame, one refresh.

        Refreshing drops HDF5's chunk cache; reading all rectangles after a
        single refresh decompresses a compressed frame once, not per region.
        """
        if len(self.frame_shape) < 2:
            raise FollowError(f"{self.dataset_path!r}: frames of rank < 2 have no regions")
        for y, x, height, width in regions:
            if min(y, x, height, width) < 0:
                raise ValueError(f"negative region {(y, x, height, width)}")
        self.refresh()
        position = self._position(index)
        lead = (slice(None),) * (len(self.frame_shape) - 2)
        return [
            np.asarray(self.dataset[(*position, *lead, slice(y, y + h), slice(x, x + w))])
            for y, x, h, w in regions
        ]

    def read_frames(self, start: int, stop: int) -> NDArray[Any]:
        """Frames of flat indices ``[start, stop)`` as ``(stop-start, *frame)``.

        One hyperslab read for a stack (scan rank 1); for higher scan ranks
        one read per run along the last scan dimension.
        """
        if start < 0 or stop < start:
            raise FrameIndexError(f"bad frame range [{start}, {stop})")
        out = np.empty((stop - start, *self.frame_shape), dtype=self.dtype)
        if stop == start:
            return out
        self.refresh()
        self._position(stop - 1)  # raises unless the range ends inside the extent
        if self.scan_rank == 1:
            self.dataset.read_direct(out, np.s_[start:stop])
            return out
        grid = self._grid()
        row = grid[-1]
        index = start
        while index < stop:
            position = unravel(index, grid)
            run = min(stop - index, row - position[-1])
            self._position(index + run - 1)  # the whole run is inside the extent
            source = (*position[:-1], slice(position[-1], position[-1] + run))
            dest = np.s_[index - start : index - start + run]
            self.dataset.read_direct(out, source, dest)
            index += run
        return out
