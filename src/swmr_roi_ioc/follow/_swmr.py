"""Opening a file as a SWMR reader, refreshing datasets, transient errors."""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import TypeVar

import h5py
import h5py.h5f as h5f
import h5py.h5o as h5o
import h5py.h5p as h5p
import hdf5plugin  # registers the LZ4 / bitshuffle / Blosc filters with HDF5

from ._errors import FollowError, SwmrOpenError

__all__ = [
    "METADATA_READ_ATTEMPTS",
    "NotSwmrError",
    "is_transient",
    "maxshape_of",
    "metadata_read_attempts",
    "open_swmr",
    "refresh",
    "shared_dataset",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Version of the filter plugins in use (also keeps the registering import used).
HDF5PLUGIN_VERSION: str = hdf5plugin.version

_MAX_BACKOFF = 1.0

# Lower-case fragments of HDF5 error messages seen while a file is being
# created, before its writer is in SWMR mode, or while a reader races a flush.
_TRANSIENT_MARKERS = (
    "unable to lock file",
    "resource temporarily unavailable",
    "file signature not found",
    "truncated file",
    "already open for write",
    "not already open for swmr writing",
    "incorrect metadata checksum",
    "unable to read superblock",
    "unable to load superblock",
    "bad object header",
    "wrong b-tree signature",
    "bad local heap signature",
    "bad global heap",
    "addr overflow",
    "unable to protect metadata",
    "not in swmr mode",
)

#: Metadata read attempts of a SWMR reader (HDF5's default is 100). HDF5
#: retries a metadata read whose checksum fails, sleeping 1 ns, 2 ns, 4 ns ...
#: between attempts, so n attempts take about 2**n ns: 28 is ~0.27 s, plenty
#: to ride out a read racing the writer's flush. With 100, a truncated file
#: blocks the reading call for many minutes (measured: 30 attempts 1.1 s, 40
#: more than 100 s, the default still blocked after 10 min), holding the GIL
#: (h5py does not release it): every thread of the process stops meanwhile.
METADATA_READ_ATTEMPTS = 28


class NotSwmrError(SwmrOpenError):
    """The file is open for writing without SWMR mode: it can be read only
    once its writer closes it. Transient (a SWMR writer is in this state
    between creating the file and starting SWMR mode)."""


# OSError subclasses that waiting does not cure (for open_swmr's purposes a
# missing file is not "under construction": the caller decides how to wait).
_PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is an error a file under construction throws briefly.

    True for: the file locked by a writer not yet in SWMR mode, a file still
    open for (non-SWMR) writing, a missing or truncated superblock, a
    metadata checksum mismatch from racing a flush. False for a missing
    file, a permission problem and everything that is not an ``OSError``.
    The ``__cause__`` chain is followed, so a :class:`SwmrOpenError` wrapping
    a transient error is transient.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, BlockingIOError):
            return True
        if isinstance(current, OSError) and not isinstance(current, _PERMANENT):
            message = str(current).lower()
            if any(marker in message for marker in _TRANSIENT_MARKERS):
                return True
        current = current.__cause__
    return False


def refresh(dset: h5py.Dataset) -> None:
    """Refresh a SWMR-read dataset: its shape, chunk index and metadata.

    Uses ``Dataset.refresh()`` (``dset.id.refresh()`` alone leaves the
    wrapper's ``shape`` stale in h5py 3.13+).
    """
    dset.refresh()


def maxshape_of(dset: h5py.Dataset) -> tuple[int | None, ...]:
    """``dset.maxshape`` as a tuple (None entries = unlimited)."""
    maxshape = dset.maxshape
    return tuple(dset.shape) if maxshape is None else tuple(maxshape)


# One open h5py.Dataset per HDF5 object (file serial number, object address).
_SHARED: weakref.WeakValueDictionary[tuple[int, int], h5py.Dataset] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


def shared_dataset(h5file: h5py.Group, path: str) -> h5py.Dataset:
    """The one open ``h5py.Dataset`` for the object at ``path``.

    HDF5 2.0.0 (h5py 3.16) breaks when a dataset is open twice in a process
    and one of the two is refreshed: both then read every chunk as the first
    one and chunk look-ups fail. Every reader in this package (and any code
    reading a followed file) must get its datasets here: one object per
    HDF5 object, whatever path (hard link) names it, for as long as anyone
    holds it. Raises ``KeyError`` if ``path`` does not exist and
    ``TypeError`` if it is not a dataset.
    """
    if path not in h5file:
        raise KeyError(f"{path!r} not in {h5file.file.filename!r}")
    info = h5o.get_info(h5file.id, path.encode())
    if info.type != h5o.TYPE_DATASET:
        raise TypeError(f"{path!r} is not a dataset")
    key = (int(info.fileno), int(info.addr))
    with _SHARED_LOCK:
        dset = _SHARED.get(key)
        if dset is not None and dset.id.valid:
            return dset
        dset = h5file[path]
        assert isinstance(dset, h5py.Dataset)
        _SHARED[key] = dset
        return dset


def _superblock_problem(path: str | os.PathLike[str]) -> str | None:
    """Describe a file HDF5 would hang on or must not be read yet, else None.

    In SWMR-read mode HDF5 skips its own "truncated file" check and retries
    reading missing metadata with a backoff that can block for many minutes.
    A file whose superblock (version 2 or 3) says no writer has it open
    while it is shorter than the end-of-file address stored there is a copy
    in progress or the leftover of a crashed writer: report it instead.

    A superblock whose consistency flags say "open for write" without "SWMR
    write" (bit 0 without bit 2 in versions 2-3; bit 0 of the 32-bit flags
    in versions 0-1) belongs to a file written without SWMR mode: HDF5 would
    refuse it (file lock) or, with file locking off, read metadata the
    writer is changing. Its message contains "not in SWMR mode".
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            offset = 0
            while offset + 48 <= size:
                fh.seek(offset)
                head = fh.read(48)
                if head[:8] == b"\x89HDF\r\n\x1a\n":
                    break
                offset = 512 if offset == 0 else offset * 2
            else:
                return None
    except OSError:
        return None  # let HDF5 report it
    version = head[8]
    if version < 2:
        if int.from_bytes(head[20:24], "little") & 1:
            return _NOT_SWMR
        return None
    width, flags = head[9], head[11]
    if flags & 1 and not flags & 4:
        return _NOT_SWMR
    if width != 8 or flags != 0:
        return None
    base = int.from_bytes(head[12:20], "little")
    eof = int.from_bytes(head[28:36], "little")
    if size < base + eof:
        return (
            f"truncated file: eof = {size}, stored_eof = {base + eof} "
            "(file closed by its writer but incomplete)"
        )
    return None


_NOT_SWMR = (
    "open for writing but not in SWMR mode (superblock flags): readable once its "
    "writer closes it (h5clear -s clears the flag a crashed writer left)"
)


@functools.cache
def _hdf5_library() -> ctypes.CDLL | None:
    """The libhdf5 h5py uses (the mapped file of this process), else None."""
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            paths = {line.split()[-1] for line in maps if "libhdf5" in line}
    except OSError:
        return None
    for path in sorted(paths):
        name = os.path.basename(path)
        if name.startswith("libhdf5") and not name.startswith("libhdf5_hl"):
            try:
                lib = ctypes.CDLL(path)  # already loaded: the same handle
                setter = lib.H5Pset_metadata_read_attempts
            except (OSError, AttributeError):
                continue
            setter.argtypes = [ctypes.c_int64, ctypes.c_uint]
            setter.restype = ctypes.c_int
            getter = lib.H5Pget_metadata_read_attempts
            getter.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_uint)]
            getter.restype = ctypes.c_int
            return lib
    _log.warning(
        "cannot set HDF5 metadata read attempts (libhdf5 not found): "
        "reading a truncated file may block for a long time"
    )
    return None


def _swmr_fapl(rdcc_nbytes: int) -> h5p.PropFAID:
    """h5py's file access list for ``libver="latest"``, with our chunk cache
    size, no file locking, and, where h5py's libhdf5 can be found,
    METADATA_READ_ATTEMPTS.

    Without file locking: a reader's lock makes the writer's create of the
    same path fail (NDFileHDF5 with AutoIncrement off recreates its file
    every acquisition), and a reader must never cost the camera a file."""
    fapl = h5p.create(h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5f.LIBVER_LATEST, h5f.LIBVER_LATEST)
    fapl.set_file_locking(False, True)
    cache = list(fapl.get_cache())
    fapl.set_cache(cache[0], cache[1], rdcc_nbytes, cache[3])
    lib = _hdf5_library()
    if lib is not None and lib.H5Pset_metadata_read_attempts(fapl.id, METADATA_READ_ATTEMPTS) < 0:
        _log.warning("H5Pset_metadata_read_attempts failed; keeping HDF5's default")
    return fapl


def metadata_read_attempts(h5file: h5py.File) -> int | None:
    """The metadata read attempts an open file uses (None if unknown)."""
    lib = _hdf5_library()
    if lib is None:
        return None
    fapl = h5file.id.get_access_plist()
    value = ctypes.c_uint()
    if lib.H5Pget_metadata_read_attempts(fapl.id, ctypes.byref(value)) < 0:
        return None
    return value.value


def open_swmr(
    path: str | os.PathLike[str],
    *,
    rdcc_nbytes: int = 64 * 2**20,
    retries: int = 0,
    backoff: float = 0.05,
) -> h5py.File:
    """Open ``path`` read-only as a SWMR reader.

    Like ``h5py.File(path, "r", libver="latest", swmr=True, locking=False,
    rdcc_nbytes=...)`` with the compression filters of ``hdf5plugin`` registered, and HDF5's
    metadata read attempts lowered to METADATA_READ_ATTEMPTS (a truncated
    file then fails in a fraction of a second instead of blocking). A file
    open for writing without SWMR mode raises :class:`NotSwmrError`. With
    ``retries > 0`` transient errors (see :func:`is_transient`) are retried
    up to ``retries`` times, sleeping ``backoff`` seconds, doubling each time
    up to 1 s. Raises :class:`SwmrOpenError` (a :class:`FollowError` and an
    :class:`OSError`) chained to the last HDF5 error.
    """
    delay = backoff
    attempt = 0
    while True:
        try:
            problem = _superblock_problem(path)
            if problem is not None:
                raise OSError(f"Unable to open file ({problem})")
            fid = h5f.open(
                os.fsencode(path), h5f.ACC_RDONLY | h5f.ACC_SWMR_READ, fapl=_swmr_fapl(rdcc_nbytes)
            )
            return h5py.File(fid)
        except OSError as exc:
            if attempt >= retries or not is_transient(exc):
                kind = NotSwmrError if "not in SWMR mode" in str(exc) else SwmrOpenError
                err = kind(f"cannot open {os.fspath(path)!r} for SWMR reading: {exc}")
                err.errno = exc.errno  # no filename: str(err) stays the message
                raise err from exc
            _log.debug("open %s: transient error, retry in %.3f s: %s", path, delay, exc)
            time.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)
            attempt += 1


def call_with_retries(
    fn: Callable[[], _T],
    what: str,
    *,
    attempts: int = 4,
    backoff: float = 0.005,
    missing: Callable[[], str | None] | None = None,
) -> _T:
    """Call ``fn``; on ``OSError``/``KeyError`` retry with backoff.

    A file under construction can throw either briefly. After ``attempts``
    tries the error becomes a :class:`FollowError` naming ``what``; if
    ``missing`` returns a message (the object vanished), that message is used.
    """
    delay = backoff
    for attempt in range(attempts):
        try:
            return fn()
        except (OSError, KeyError) as exc:
            if attempt + 1 >= attempts:
                gone = missing() if missing is not None else None
                raise FollowError(gone or f"{what}: {exc}") from exc
            _log.debug("%s: retry in %.3f s after %r", what, delay, exc)
            time.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)
    raise AssertionError("unreachable")  # pragma: no cover
