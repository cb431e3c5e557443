"""One followed file inside a worker process: open, poll, read, compute.

What the IOC process used to do in its reader thread, now in a worker: the
SWMR handle (no file locking), the follower, the pipeline, and the checks
that tell a truncated file, a file with lost bytes and a file written over
in place apart (by the file's size, its holes and frame 0's stored bytes,
read with ``os.pread``: HDF5's view of a file rewritten under its handle is
stale).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from swmr_roi_ioc.follow import FrameReader, KeyFollower, open_swmr, shared_dataset
from swmr_roi_ioc.stats import FrameStats, Roi

from ._errors import DataLostError, RewrittenError, TruncatedError
from ._pipeline import STREAM_WORKERS, FramePipeline
from ._protocol import Batch, FileSpec, Opened, Polled

log = logging.getLogger(__name__)

#: The hole check looks at the whole file this often, and at the last
#: HOLE_TAIL bytes (where a truncation cuts) on every poll in between.
FULL_HOLE_SCAN_S = 5.0
HOLE_TAIL = 16 * 2**20

#: The group areaDetector's NDFileHDF5 writes its attribute datasets into.
ND_ATTRIBUTES = "/entry/instrument/NDAttributes"

#: frame 0's stored bytes: (offset, length, digest)
FirstFrame = tuple[int, int, bytes]


@dataclass
class _Sink:
    """The pipeline's sink in a worker: the ROIs of the request, the batches
    to send back, and the newest frame (for the live views, not the pipe)."""

    rois: list[Roi | None]
    batches: list[Batch]
    latest: np.ndarray | None = None

    def rois_for_next_batch(self) -> list[Roi | None]:
        return self.rois

    def add_batch(
        self,
        start: int,
        rois: Sequence[FrameStats | None],
        frame: FrameStats,
        unique_id: int,
        last_frame: np.ndarray | None = None,
    ) -> None:
        if last_frame is not None:
            self.latest = last_frame
        self.batches.append(Batch(start, list(rois), frame, unique_id))


class FollowedFile:
    """An open file being followed, in a worker. Create with :meth:`open`."""

    def __init__(
        self,
        spec: FileSpec,
        h5file: h5py.File,
        follower: KeyFollower,
        pipeline: FramePipeline,
        fd: int,
        on_frame: Callable[[np.ndarray], None] | None,
    ) -> None:
        self.path = Path(spec.path)
        self._h5file = h5file
        self.follower = follower
        self._pipeline = pipeline
        #: where the newest frame of each request goes (the live views)
        self._on_frame = on_frame
        #: our own descriptor of the file: its size, whatever the path names now
        self._fd = fd
        self._size = os.fstat(fd).st_size
        #: the smallest size since the largest (a truncation)
        self._low: int | None = None
        #: bytes [0, _solid) held data (no hole) at the last look
        self._solid = _first_hole(fd, self._size)
        self._full_scan = time.monotonic()
        self._scanned_size = self._size
        #: the whole-file hole scan running in a thread: (first hole, _solid then)
        self._scan: Future[tuple[int, int]] | None = None
        self.first_frame: FirstFrame | None = spec.first_frame

    @classmethod
    def open(
        cls,
        spec: FileSpec,
        on_frame: Callable[[np.ndarray], None] | None = None,
        *,
        threads: int = STREAM_WORKERS,
    ) -> FollowedFile:
        """Open ``spec.path``; raises OSError, KeyError, ValueError. The newest
        frame of each request is given to ``on_frame`` (the live views);
        ``threads`` read and compute a long range."""
        path = Path(spec.path)
        h5file = open_swmr(path)
        fd = -1
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                dset = shared_dataset(h5file, spec.dataset)
            except (KeyError, TypeError) as exc:
                raise KeyError(f"dataset {spec.dataset} is not in {path}") from exc
            if dset.ndim < 3:
                raise ValueError(
                    f"{spec.dataset} has shape {dset.shape}, not a stack of 2-D frames"
                )
            scan_rank = dset.ndim - 2
            mode = keys_lag_mode(spec.keys_lag, h5file)
            follower = KeyFollower(
                h5file,
                list(spec.keys),
                timeout=spec.timeout,
                finished_dataset=spec.finished,
                dataset_paths=[spec.dataset],
                scan_rank=scan_rank,
                keys_decide=mode == "wait",
            )
            reader = FrameReader(spec.dataset, h5file, scan_rank)
            sink = _Sink([], [])
            pipeline = FramePipeline(sink, reader, h5file, follower, threads=threads)
            followed = cls(spec, h5file, follower, pipeline, fd, on_frame)
            followed._sink = sink  # noqa: SLF001 - set once, here
            followed.keys_mode = mode
            return followed
        except Exception:
            if fd >= 0:
                os.close(fd)
            h5file.close()
            raise

    _sink: _Sink
    keys_mode = "wait"
    #: frames complete at the last poll
    known_complete = 0

    def opened(self) -> Opened:
        dset = self._pipeline.dataset
        shape = self._pipeline.frame_shape
        return Opened(
            frame_shape=(int(shape[-2]), int(shape[-1])),
            dtype=dset.dtype.str,
            itemsize=int(dset.dtype.itemsize),
            keys_mode=self.keys_mode,
        )

    # -- the file's identity -------------------------------------------------

    def _check_size(self) -> None:
        """Raise TruncatedError while the file is shorter than it was;
        DataLostError if bytes it held became a hole (truncated, then its
        writer went on writing past the cut); RewrittenError if another file
        was written over it. Bytes restored in place pass."""
        size = os.fstat(self._fd).st_size
        if size < self._size:
            self._low = size if self._low is None else min(self._low, size)
            if self._rewritten() is True:
                raise RewrittenError(f"{self.path} was written again in place (new file)")
            raise TruncatedError(f"{self.path} was truncated to {size} bytes ({self._size} before)")
        # its last HOLE_TAIL bytes here; the whole file in a thread, at most
        # every FULL_HOLE_SCAN_S (SEEK_HOLE walks every page on tmpfs: 9 ms
        # per 1.4 GB, which live frames must not wait for)
        hole = _first_hole(self._fd, size, max(0, self._solid - HOLE_TAIL))
        if hole < self._solid:
            self._lost(hole)
        self._whole_file(size)
        if self._low is not None:
            if self._rewritten() is not False:
                raise RewrittenError(f"{self.path} was written again in place (new file)")
            self._low = None
        self._solid = hole
        self._size = size

    def _lost(self, hole: int) -> None:
        raise DataLostError(
            f"{self.path} was truncated and written on past a hole at byte {hole}: "
            "the frames stored there are lost"
        )

    def _whole_file(self, size: int) -> None:
        """The whole-file hole scan: its result if done (DataLostError for a
        hole in bytes that held data when it started), a new one when due."""
        scan = self._scan
        if scan is not None and scan.done():
            self._scan = None
            hole, solid = scan.result()
            # still a hole now? (the scan may have seen a truncation's end
            # that was written over since, or is being restored in place)
            if hole < solid and _first_hole(self._fd, size, hole) == hole:
                self._lost(hole)
        now = time.monotonic()
        if (
            self._scan is None
            and now - self._full_scan >= FULL_HOLE_SCAN_S
            and size != self._scanned_size
        ):
            self._full_scan, self._scanned_size = now, size
            fd, solid = self._fd, self._solid
            self._scan = _scanner().submit(lambda: (_first_hole(fd, size), solid))

    def _frame0_bytes(self) -> FirstFrame | None:
        """Where frame 0 is stored and the digest of those bytes; None if unknown."""
        dset = self._pipeline.dataset
        try:
            if dset.chunks is not None:
                info = dset.id.get_chunk_info_by_coord((0,) * dset.ndim)
                offset, length = int(info.byte_offset), int(info.size)
            else:
                offset = int(dset.id.get_offset())
                shape = self._pipeline.frame_shape
                length = int(np.prod(shape[-2:])) * dset.dtype.itemsize
        except (OSError, ValueError, TypeError, RuntimeError):
            return None
        if offset < 0 or length <= 0:
            return None
        return offset, length, self._digest_at(offset, length)

    def _digest_at(self, offset: int, length: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        return hashlib.blake2b(data, digest_size=16).digest() if len(data) == length else b""

    def _rewritten(self) -> bool | None:
        """Frame 0's stored bytes now differ from those first seen: True; the
        same: False; unknown (not seen yet, or cut off): None."""
        if self.first_frame is None:
            return None
        offset, length, digest = self.first_frame
        now = self._digest_at(offset, length)
        if not now:
            return None
        return now != digest

    def check_same_file(self) -> None:
        """RewrittenError unless frame 0's bytes are those of the acquisition
        this one reopens."""
        if self.first_frame is not None and self._rewritten() is not False:
            raise RewrittenError(f"{self.path} is another file now")

    # -- following -----------------------------------------------------------

    def poll(self) -> Polled:
        self._check_size()
        f = self.follower
        complete = f.poll()
        self.known_complete = complete
        return Polled(complete, f.finished, self._scan_extent(), f.keys_complete, f.extent_complete)

    def _scan_extent(self) -> tuple[int, int] | None:
        dset = self._pipeline.dataset
        if dset.ndim != 4:
            return None
        fixed = (dset.maxshape or dset.shape)[:2]
        if all(n is not None for n in fixed):
            return (int(fixed[0] or 1), int(fixed[1] or 1))
        return (int(dset.shape[0]), int(dset.shape[1]))

    def process(self, first: int, stop: int, rois: list[Roi | None]) -> tuple[int, list[Batch]]:
        """Frames [first, stop) with ``rois``: (one past the last done, batches)."""
        self._check_size()
        self._sink.rois = rois
        self._sink.batches = []
        self._sink.latest = None
        done = self._pipeline.process(first, stop)
        # truncated meanwhile: frames read past the new end are zeros, so
        # nothing is sent (nor shown) and they are read again on resume
        self._check_size()
        if self._sink.latest is not None and self._on_frame is not None:
            self._on_frame(self._sink.latest)
        if self.first_frame is None:
            self.first_frame = self._frame0_bytes()
        return done, _merged(self._sink.batches)

    @property
    def keys_lag(self) -> bool:
        return self._pipeline.keys_lag

    def roi_stats(self, start: int, stop: int, roi: Roi) -> FrameStats:
        """One ROI's statistics of frames [start, stop), read again."""
        return self._pipeline.roi_stats(start, stop, roi)

    def close(self) -> None:
        try:
            if self._scan is not None:
                self._scan.result()  # before its descriptor is closed
            self._pipeline.close()
            self._h5file.close()
        except Exception as exc:  # noqa: BLE001 - closing a broken file must not raise
            log.debug("closing %s: %s", self.path, exc)
        finally:
            os.close(self._fd)


def _merged(batches: list[Batch]) -> list[Batch]:
    """A request's batches (blocks of a few frames, in frame order, the same
    ROIs) as one: the IOC process then applies one batch per request (a
    catch-up sent it ~36 per 256 MB, each a state update of its own)."""
    if len(batches) < 2:
        return batches
    first, last = batches[0], batches[-1]
    pattern = [r is None for r in first.rois]
    if any([r is None for r in b.rois] != pattern for b in batches):
        return batches  # not computed alike: as they are

    def joined(parts: list[FrameStats]) -> FrameStats:
        return FrameStats.of(np.concatenate([p.values for p in parts], axis=1))

    rois: list[FrameStats | None] = []
    for k, stats in enumerate(first.rois):
        parts = [b.rois[k] for b in batches]
        rois.append(None if stats is None else joined([p for p in parts if p is not None]))
    frame = joined([b.frame for b in batches])
    return [Batch(first.start, rois, frame, last.unique_id)]


def keys_lag_mode(configured: str | None, h5file: h5py.File) -> str:
    """``source.keys_lag``, its default decided by the file: 'extent' for an
    areaDetector file (it has NDAttributes), 'wait' for others."""
    if configured is not None:
        return configured
    return "extent" if ND_ATTRIBUTES in h5file else "wait"


_scanner_pool: ThreadPoolExecutor | None = None


def _scanner() -> ThreadPoolExecutor:
    """The worker's one thread for whole-file hole scans."""
    global _scanner_pool
    if _scanner_pool is None:
        _scanner_pool = ThreadPoolExecutor(1, thread_name_prefix="hole-scan")
    return _scanner_pool


def _first_hole(fd: int, size: int, start: int = 0) -> int:
    """Offset of the first hole at or after ``start`` (``size`` if none, or
    no SEEK_HOLE support)."""
    if start >= size:
        return size
    try:
        return os.lseek(fd, start, os.SEEK_HOLE)
    except OSError:
        return size
