"""Frames of a data dataset that are covered by its extent *and* written."""

from __future__ import annotations

import itertools
import logging

import h5py
import h5py.h5d as h5d

from ._errors import FollowError
from ._grid import covered_prefix, fixed_total, scan_grid, unravel
from ._swmr import maxshape_of, refresh

__all__ = ["ExtentTracker", "default_scan_rank"]

_log = logging.getLogger(__name__)

# Frames split into more chunks than this are checked by first and last chunk.
_MAX_CHUNKS_CHECKED = 64


def default_scan_rank(dset: h5py.Dataset) -> int:
    """Leading scan dimensions when frames are the last two (at least one)."""
    return max(1, dset.ndim - 2)


class ExtentTracker:
    """Follow how many frames of a data dataset are complete.

    The extent alone is not enough: NDFileHDF5 calls ``H5Dset_extent`` before
    it writes a frame, and with extra dimensions a whole new row becomes part
    of the extent while its frames still read as fill value. When every chunk
    holds at most one frame (chunk size 1 over the scan dims) and chunks are
    allocated when written (the default), a frame counts only once its
    chunks are allocated (``get_chunk_info_by_coord``). The writer fills the
    file in flat-index order, so the written frames are a prefix: it is found
    by galloping forward from the last complete frame, then bisecting, in
    O(log k) chunk look-ups for k new frames (one when nothing is new).

    Otherwise (frames sharing chunks, virtual datasets, early allocation)
    written frames cannot be told from fill and the extent is trusted.
    """

    def __init__(self, path: str, dset: h5py.Dataset, scan_rank: int | None = None) -> None:
        rank = default_scan_rank(dset) if scan_rank is None else scan_rank
        if not 1 <= rank <= dset.ndim:
            raise FollowError(
                f"scan_rank {rank} does not fit dataset {path!r} of shape {dset.shape}"
            )
        self.path = path
        self.dset = dset
        self.scan_rank = rank
        self.maxshape: tuple[int | None, ...] = maxshape_of(dset)[:rank]
        self.total = fixed_total(self.maxshape)
        self.done = 0
        self.can_check_chunks = self._chunks_hold_single_frames()
        if not self.can_check_chunks:
            _log.info(
                "%s: chunks are not one frame each (chunks=%s): completeness "
                "follows the extent only; the last frames may read as fill value",
                path,
                dset.chunks,
            )

    def _chunks_hold_single_frames(self) -> bool:
        chunks = self.dset.chunks
        if chunks is None or any(c != 1 for c in chunks[: self.scan_rank]):
            return False
        try:
            alloc = self.dset.id.get_create_plist().get_alloc_time()
        except Exception:  # pragma: no cover - exotic layouts
            return False
        return alloc != h5d.ALLOC_TIME_EARLY

    def update(self) -> int:
        """Refresh the dataset and return the number of complete frames."""
        refresh(self.dset)
        shape = tuple(self.dset.shape)
        rank = self.scan_rank
        grid = scan_grid(shape[:rank], self.maxshape)
        covered = covered_prefix(shape[:rank], grid)
        if any(n <= 0 for n in shape[rank:]):
            covered = 0
        if not self.can_check_chunks or covered <= self.done:
            self.done = covered
            return self.done
        self.done = self._written_prefix(self.done, covered, grid, shape)
        return self.done

    def _written_prefix(
        self, lo: int, hi: int, grid: tuple[int, ...], shape: tuple[int, ...]
    ) -> int:
        """First unwritten index in [lo, hi), given all below ``lo`` are written.

        Gallops forward from ``lo`` (one look-up when nothing new was
        written), then bisects: O(log k) look-ups for k new frames.
        """
        offsets = self._frame_chunk_offsets(shape)
        if not self._written(lo, grid, offsets):
            return lo
        good, bad, step = lo + 1, hi, 1
        while good < bad:
            probe = min(good + step - 1, bad - 1)
            if not self._written(probe, grid, offsets):
                bad = probe
                break
            good = probe + 1
            step *= 2
        while good < bad:
            mid = (good + bad) // 2
            if self._written(mid, grid, offsets):
                good = mid + 1
            else:
                bad = mid
        return good

    def _frame_chunk_offsets(self, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        chunks = self.dset.chunks
        assert chunks is not None
        rank = self.scan_rank
        ranges = [range(0, n, c) for n, c in zip(shape[rank:], chunks[rank:], strict=True)]
        offsets = list(itertools.product(*ranges))
        if len(offsets) > _MAX_CHUNKS_CHECKED:
            offsets = [offsets[0], offsets[-1]]
        return offsets

    def _written(self, index: int, grid: tuple[int, ...], offsets: list[tuple[int, ...]]) -> bool:
        position = unravel(index, grid)
        dsid = self.dset.id
        for inner in offsets:
            try:
                info = dsid.get_chunk_info_by_coord(position + inner)
            except Exception:
                return False
            if info.byte_offset is None:
                return False
        return True
