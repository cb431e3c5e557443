"""ChunkReader: frames read chunk by chunk, decompressed outside the HDF5 lock.

Where every chunk of a dataset is exactly one frame, a frame is read with
``H5Dread_chunk`` (``dset.id.read_direct_chunk``): uncompressed chunks go
straight into the caller's buffer (one copy out of the page cache), and
compressed chunks (LZ4, bitshuffle-LZ4/Zstd, Blosc) are read raw and
decompressed by libraries that release the GIL, so decompression runs in
parallel while HDF5 itself stays serialised by h5py's lock. A chunk whose
filter mask says every filter was skipped (HDF5 stores a chunk the
compressor could not shrink as is) is copied as it is. Anything else
(frames split over chunks or sharing one, other filters, a chunk with only
some filters skipped, a codec library missing) falls back to HDF5's own
read, so the arrays are always exactly those of ``dset[i]``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import h5py
import h5py.h5d as h5d
import h5py.h5s as h5s
import h5py.h5t as h5t
import numpy as np
from numpy.typing import NDArray

from ._errors import FollowError, FrameIndexError
from ._grid import covered_prefix, scan_grid, unravel
from ._swmr import maxshape_of, refresh

__all__ = ["ChunkReader", "codec_available"]

_log = logging.getLogger(__name__)

# HDF5 registered filter ids (https://portal.hdfgroup.org/documentation/hdf5-docs/registered_filter_plugins.html)
_FILTER_BLOSC = 32001
_FILTER_LZ4 = 32004
_FILTER_BITSHUFFLE = 32008
# bitshuffle's cd_values[4]: the compressor after the shuffle
_BITSHUFFLE_CODECS = {2: "bslz4", 3: "bszstd"}

try:  # dectris-compression: LZ4 and bitshuffle-LZ4 in HDF5 framing, GIL released
    import dectris.compression as _dectris  # pyright: ignore[reportMissingImports]
except ImportError:  # pragma: no cover - optional dependency
    _dectris = None

try:  # python-blosc 1.x: decompress_ptr straight into our buffer
    import blosc as _blosc  # pyright: ignore[reportMissingImports]
except ImportError:  # pragma: no cover - optional dependency
    _blosc = None

_BLOSC_SETUP = threading.Lock()
_blosc_ready = False
_BLOSC_HEADER = 16


def codec_available(name: str) -> bool:
    """Whether the library for fast-path codec ``name`` is importable."""
    if name == "none":
        return True
    if name in ("lz4", "bslz4", "bszstd"):
        return _dectris is not None
    if name == "blosc":
        return _blosc is not None
    return False


def _setup_blosc() -> None:
    """Let python-blosc release the GIL (process-wide, idempotent).

    Without it ``blosc.decompress_ptr`` holds the GIL and threads cannot
    decompress in parallel. Each call then uses blosc's own thread count;
    ChunkReader already runs several decompressions at once, so it lowers
    that count to 1 the first time, and only if nobody changed the default.
    """
    global _blosc_ready
    if _blosc is None or _blosc_ready:
        return
    with _BLOSC_SETUP:
        if _blosc_ready:
            return
        _blosc.set_releasegil(True)
        if _blosc.nthreads == _blosc.ncores:
            _blosc.set_nthreads(1)
        _blosc_ready = True


class _UnsupportedChunkError(Exception):
    """This chunk cannot take the fast path: read it through HDF5."""


Decoder = Callable[[memoryview, NDArray[np.uint8]], None]


def _dectris_decoder(algorithm: str, elem_size: int) -> Decoder:
    assert _dectris is not None
    decompress = _dectris.decompress

    def decode(raw: memoryview, out: NDArray[np.uint8]) -> None:
        try:
            data = decompress(raw, algorithm, elem_size=elem_size)
        except (RuntimeError, ValueError) as exc:
            raise _UnsupportedChunkError(f"{algorithm}: {exc}") from exc
        if len(data) != out.nbytes:
            raise _UnsupportedChunkError(f"{algorithm}: {len(data)} bytes, frame has {out.nbytes}")
        out[:] = np.frombuffer(data, dtype=np.uint8)

    return decode


def _blosc_decode(raw: memoryview, out: NDArray[np.uint8]) -> None:
    assert _blosc is not None
    if len(raw) < _BLOSC_HEADER:
        raise _UnsupportedChunkError("blosc: chunk shorter than its header")
    header = bytes(raw[:_BLOSC_HEADER])
    nbytes = int.from_bytes(header[4:8], "little")
    cbytes = int.from_bytes(header[12:16], "little")
    # decompress_ptr writes the header's nbytes: never past our buffer
    if nbytes != out.nbytes or cbytes > len(raw):
        raise _UnsupportedChunkError(f"blosc: header says {nbytes} bytes, frame has {out.nbytes}")
    try:
        written = _blosc.decompress_ptr(raw, out.ctypes.data)
    except Exception as exc:  # blosc raises its own error types
        raise _UnsupportedChunkError(f"blosc: {exc}") from exc
    if written != out.nbytes:
        raise _UnsupportedChunkError(f"blosc: wrote {written} bytes, frame has {out.nbytes}")


def _plan(dset: h5py.Dataset, scan_rank: int) -> tuple[str | None, Decoder | None, str]:
    """(codec, decoder, why) of the fast path for ``dset``; codec None = fallback."""
    frame_shape = tuple(dset.shape[scan_rank:])
    if dset.dtype.kind not in "biuf" or dset.dtype.hasobject:
        return None, None, f"dtype {dset.dtype} is not a plain number"
    dcpl = dset.id.get_create_plist()
    if dcpl.get_layout() != h5d.CHUNKED or dset.chunks is None:
        return None, None, "not chunked"
    chunks = tuple(dset.chunks)
    if any(c != 1 for c in chunks[:scan_rank]) or chunks[scan_rank:] != frame_shape:
        return None, None, f"chunks {chunks} are not one frame {frame_shape} each"
    filters = [dcpl.get_filter(k) for k in range(dcpl.get_nfilters())]
    if not filters:
        return "none", None, "uncompressed, one frame per chunk"
    if len(filters) > 1:
        return None, None, f"{len(filters)} filters in the pipeline"
    code, _flags, values, _name = filters[0]
    values = tuple(int(v) for v in values)
    itemsize = dset.dtype.itemsize
    if code == _FILTER_LZ4:
        if _dectris is None:
            return None, None, "LZ4 needs dectris-compression"
        return "lz4", _dectris_decoder("lz4", itemsize), "LZ4 via dectris-compression"
    if code == _FILTER_BITSHUFFLE:
        name = _BITSHUFFLE_CODECS.get(values[4]) if len(values) > 4 else None
        if name is None:
            return None, None, f"bitshuffle without LZ4/Zstd (cd_values {values})"
        if len(values) > 2 and values[2] != itemsize:
            return None, None, f"bitshuffle element size {values[2]} != {itemsize}"
        if _dectris is None:
            return None, None, f"{name} needs dectris-compression"
        return name, _dectris_decoder(name, itemsize), f"{name} via dectris-compression"
    if code == _FILTER_BLOSC:
        if _blosc is None:
            return None, None, "Blosc needs the blosc package"
        _setup_blosc()
        return "blosc", _blosc_decode, "Blosc via python-blosc"
    return None, None, f"filter {code} has no fast path"


class ChunkReader:
    """Read frames of ``dset`` by flat index, fast where the layout allows.

    ``dset`` must be the process's one handle of the dataset (get it with
    :func:`~swmr_roi_ioc.follow.shared_dataset`). ``scan_rank`` leading
    dimensions are scan dimensions (flat indices run over them in C order,
    as :class:`FrameReader`); the rest is the frame. ``threads`` bounds the
    small pool that decompresses chunks of multi-frame reads in parallel.

    :attr:`codec` names the fast path (``"none"``, ``"lz4"``, ``"bslz4"``,
    ``"bszstd"``, ``"blosc"``) or is None when every read goes through HDF5
    (:attr:`reason` says why). Counters :attr:`fast_frames` and
    :attr:`fallback_frames` tell how frames were read. Results equal
    ``dset[position]`` bit for bit. Thread-safe; HDF5 calls serialise on
    h5py's lock, decompression does not.

    It does not refresh the dataset before each read (a KeyFollower polling
    the same handle does that); a frame outside the extent seen so far
    triggers one refresh, then :class:`FrameIndexError`.
    """

    def __init__(self, dset: h5py.Dataset, scan_rank: int = 1, *, threads: int = 2) -> None:
        if not 1 <= scan_rank <= dset.ndim:
            raise FollowError(f"scan_rank {scan_rank} does not fit dataset of shape {dset.shape}")
        self.dataset = dset
        self.scan_rank = scan_rank
        self.frame_shape: tuple[int, ...] = tuple(int(n) for n in dset.shape[scan_rank:])
        self.dtype: np.dtype[Any] = dset.dtype
        self.frame_nbytes = int(np.prod(self.frame_shape, dtype=np.int64)) * self.dtype.itemsize
        self.threads = max(1, int(threads))
        self._maxshape = maxshape_of(dset)[:scan_rank]
        self._tail = (0,) * (dset.ndim - scan_rank)
        # (scan extent, its grid) of the last position() call
        self._extent: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())
        codec, decoder, reason = _plan(dset, scan_rank)
        nfilters = dset.id.get_create_plist().get_nfilters() if dset.chunks is not None else 0
        # the filter mask of a chunk stored with every filter skipped
        self._skipped_mask = (1 << nfilters) - 1
        #: Fast-path codec, or None when every frame is read through HDF5.
        self.codec: str | None = codec
        #: Why the fast path is (not) taken.
        self.reason = reason
        self._decode = decoder
        # HDF5's own read of one frame through the low-level API (h5py's
        # high-level selection machinery costs ~0.1 ms a call): plain numbers
        self._low_level = (
            dset.dtype.kind in "biuf"
            and not dset.dtype.hasobject
            and len(self.frame_shape) > 0
            and self.frame_nbytes > 0
        )
        self._mspace: h5s.SpaceID | None = None
        self._mtype: h5t.TypeID | None = None
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._count_lock = threading.Lock()
        #: Frames read with ``read_direct_chunk`` / through HDF5's own read.
        self.fast_frames = 0
        self.fallback_frames = 0
        _log.debug("%s: fast path %s (%s)", dset.name, codec, reason)

    # -- geometry -----------------------------------------------------------

    @property
    def fast(self) -> bool:
        """True if frames are read with ``read_direct_chunk``."""
        return self.codec is not None

    def frame_count(self, *, refresh_first: bool = True) -> int:
        """Frames inside the extent (flat, from 0), refreshing the dataset first."""
        if refresh_first:
            refresh(self.dataset)
        shape = tuple(self.dataset.shape[: self.scan_rank])
        return covered_prefix(shape, scan_grid(shape, self._maxshape))

    def position(self, index: int) -> tuple[int, ...]:
        """Scan position of flat ``index``; refreshes once if outside the extent."""
        position = self._inside(index)
        if position is None:
            refresh(self.dataset)
            position = self._inside(index)
            if position is None:
                shape = tuple(self.dataset.shape[: self.scan_rank])
                raise FrameIndexError(
                    f"frame {index} (position {unravel(index, scan_grid(shape, self._maxshape))})"
                    f" is outside the extent {shape} of {self.dataset.name!r}"
                )
        return position

    def _inside(self, index: int) -> tuple[int, ...] | None:
        """Position of ``index`` if inside the extent the dataset handle has now."""
        shape = self.dataset.shape[: self.scan_rank]
        extent, grid = self._extent
        if shape != extent:
            grid = scan_grid(shape, self._maxshape)
            self._extent = (shape, grid)
        if len(shape) == 1:
            return (index,) if 0 <= index < shape[0] else None
        position = unravel(index, grid)
        for p, n in zip(position, shape, strict=True):
            if p >= n:
                return None
        return position

    # -- reading ------------------------------------------------------------

    def empty(self, n: int) -> NDArray[Any]:
        """An uninitialised ``(n, *frame_shape)`` array of the dataset's dtype."""
        return np.empty((n, *self.frame_shape), dtype=self.dtype)

    def read_frame(self, index: int, out: NDArray[Any] | None = None) -> NDArray[Any]:
        """The frame at flat ``index`` (into ``out`` of the frame's shape if given)."""
        if out is None:
            target = np.empty(self.frame_shape, dtype=self.dtype)
        else:
            self._check_out(out[np.newaxis], 1)
            target = out
        if self.codec is None:
            self._fallback_one(index, target)
        else:
            self._read_one(index, target)
        return target

    def read_frames(
        self, start: int, stop: int, out: NDArray[Any] | None = None, *, parallel: bool = True
    ) -> NDArray[Any]:
        """Frames ``[start, stop)`` as ``(stop - start, *frame_shape)``."""
        if start < 0 or stop < start:
            raise FrameIndexError(f"bad frame range [{start}, {stop})")
        return self.read_indices(range(start, stop), out, parallel=parallel)

    def read_indices(
        self,
        indices: Iterable[int] | NDArray[np.integer[Any]],
        out: NDArray[Any] | None = None,
        *,
        parallel: bool = True,
    ) -> NDArray[Any]:
        """The frames at ``indices`` (any order, repeats allowed), stacked.

        ``out`` (C-contiguous, ``(len(indices), *frame_shape)``, the dataset's
        dtype) receives them if given. With ``parallel`` and a compressed
        fast path, raw chunks are read in this thread and decompressed in the
        reader's pool; otherwise everything runs in the calling thread.
        """
        wanted = [int(i) for i in indices]
        target = self.empty(len(wanted)) if out is None else out
        self._check_out(target, len(wanted))
        if not wanted:
            return target
        if self.codec is None:
            self._read_fallback(wanted, target)
        elif parallel and self._decode is not None and len(wanted) > 1 and self.threads > 1:
            self._read_pipelined(wanted, target)
        else:
            for k, index in enumerate(wanted):
                self._read_one(index, target[k])
        return target

    def _check_out(self, out: NDArray[Any], n: int) -> None:
        expected = (n, *self.frame_shape)
        if out.shape != expected or out.dtype != self.dtype or not out.flags.c_contiguous:
            raise ValueError(
                f"out must be C-contiguous {expected} {self.dtype}, "
                f"got {out.shape} {out.dtype} (contiguous={out.flags.c_contiguous})"
            )

    def _count(self, fast: int, fallback: int) -> None:
        with self._count_lock:
            self.fast_frames += fast
            self.fallback_frames += fallback

    def _scratch(self, size: int = 0) -> NDArray[np.uint8]:
        """This thread's buffer for raw chunks (grown to ``size`` bytes)."""
        buf: NDArray[np.uint8] | None = getattr(self._local, "raw", None)
        want = max(size, self.frame_nbytes + self.frame_nbytes // 8 + 4096)
        if buf is None or buf.nbytes < size:
            buf = np.empty(want, dtype=np.uint8)
            self._local.raw = buf
        return buf

    def _read_raw(self, offset: tuple[int, ...], buf: NDArray[np.uint8]) -> tuple[int, memoryview]:
        """``(filter_mask, bytes)`` of one chunk into ``buf`` (grown if needed)."""
        dsid = self.dataset.id
        try:
            mask, data = dsid.read_direct_chunk(offset, out=buf)
        except ValueError:  # chunk larger than buf (incompressible data)
            size = int(dsid.get_chunk_info_by_coord(offset).size)
            buf = np.empty(size, dtype=np.uint8)
            mask, data = dsid.read_direct_chunk(offset, out=buf)
        return int(mask), memoryview(data)

    def _offset(self, index: int) -> tuple[int, ...]:
        return (*self.position(index), *self._tail)

    def _read_one(self, index: int, out: NDArray[Any]) -> None:
        """One frame into ``out`` (frame-shaped view), fast path or fallback."""
        offset = self._offset(index)
        flat = out.reshape(-1).view(np.uint8)
        try:
            if self._decode is None:
                mask, data = self.dataset.id.read_direct_chunk(offset, out=flat)
                if mask == 0 and len(memoryview(data)) == self.frame_nbytes:
                    self._count(1, 0)
                    return
                raise _UnsupportedChunkError(f"mask {mask}, {len(memoryview(data))} bytes")
            mask, raw = self._read_raw(offset, self._scratch())
            if mask != 0:
                self._copy_stored(mask, raw, flat)
            else:
                self._decode(raw, flat)
            self._count(1, 0)
        except (_UnsupportedChunkError, RuntimeError, OSError, ValueError) as exc:
            _log.debug("frame %d: fallback read (%s)", index, exc)
            self._fallback_one(index, out)

    def _copy_stored(self, mask: int, raw: memoryview, flat: NDArray[np.uint8]) -> None:
        """A chunk stored with every filter skipped is the frame itself."""
        if mask != self._skipped_mask or len(raw) != self.frame_nbytes:
            raise _UnsupportedChunkError(f"filter mask {mask}, {len(raw)} bytes")
        flat[:] = np.frombuffer(raw, dtype=np.uint8)

    def _fallback_one(self, index: int, out: NDArray[Any]) -> None:
        """One frame through HDF5's own read (filters, any chunk layout)."""
        position = self.position(index)
        if self._low_level:
            dsid = self.dataset.id
            fspace = dsid.get_space()
            count = (1,) * self.scan_rank + self.frame_shape
            fspace.select_hyperslab((*position, *self._tail), count)
            if self._mspace is None or self._mtype is None:
                self._mspace = h5s.create_simple(self.frame_shape)
                self._mtype = h5t.py_create(self.dtype)
            dsid.read(self._mspace, fspace, out, self._mtype)
        else:
            self.dataset.read_direct(out, source_sel=position)
        self._count(0, 1)

    def _read_fallback(self, indices: Sequence[int], out: NDArray[Any]) -> None:
        """HDF5's own read: one hyperslab per run of consecutive indices (rank 1)."""
        if self.scan_rank != 1:
            for k, index in enumerate(indices):
                self._fallback_one(index, out[k])
            return
        k = 0
        while k < len(indices):
            run = 1
            while k + run < len(indices) and indices[k + run] == indices[k] + run:
                run += 1
            self.position(indices[k] + run - 1)  # raises outside the extent
            first = indices[k]
            self.dataset.read_direct(out, np.s_[first : first + run], np.s_[k : k + run])
            self._count(0, run)
            k += run

    # -- pipelined decompression ----------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="chunk-decode")
            return self._pool

    def _read_pipelined(self, indices: Sequence[int], out: NDArray[Any]) -> None:
        """Raw chunks read here (serialised), decompressed in the pool."""
        decode = self._decode
        assert decode is not None
        pool = self._executor()
        in_flight = 2 * self.threads
        free: queue.SimpleQueue[NDArray[np.uint8]] = queue.SimpleQueue()
        for _ in range(in_flight):
            free.put(np.empty(self.frame_nbytes + self.frame_nbytes // 8 + 4096, np.uint8))
        pending: list[tuple[int, Future[bool]]] = []

        def work(raw: memoryview, buf: NDArray[np.uint8], k: int, mask: int) -> bool:
            try:
                flat = out[k].reshape(-1).view(np.uint8)
                if mask != 0:
                    self._copy_stored(mask, raw, flat)
                else:
                    decode(raw, flat)
                return True
            except _UnsupportedChunkError:
                return False
            finally:
                raw.release()
                free.put(buf)

        try:
            for k, index in enumerate(indices):
                buf = free.get()
                offset = self._offset(index)
                try:
                    mask, raw = self._read_raw(offset, buf)
                except (RuntimeError, OSError, ValueError):
                    free.put(buf)
                    self._fallback_one(index, out[k])
                    continue
                pending.append((k, pool.submit(work, raw, buf, k, mask)))
        finally:
            results = [(k, future.result()) for k, future in pending]
        failed = [k for k, ok in results if not ok]
        self._count(len(results) - len(failed), 0)
        for k in failed:
            self._fallback_one(indices[k], out[k])

    def close(self) -> None:
        """Stop the decompression pool (reads still work, single-threaded)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def __enter__(self) -> ChunkReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
