"""Opening a file as a SWMR reader, refreshing datasets, transient errors."""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import TypeVar

import h5py
import h5py.h5o as h5o
import hdf5plugin  # registers the LZ4 / bitshuffle / Blosc filters with HDF5

from ._errors import FollowError, SwmrOpenError

__all__ = ["is_transient", "maxshape_of", "open_swmr", "refresh", "shared_dataset"]

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
)

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
    """Describe a closed-but-truncated file HDF5 would hang on, else None.

    In SWMR-read mode HDF5 skips its own "truncated file" check and retries
    reading missing metadata with a backoff that can block for many minutes.
    A file whose superblock (version 2 or 3) says no writer has it open
    while it is shorter than the end-of-file address stored there is a copy
    in progress or the leftover of a crashed writer: report it instead.
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
    version, width, flags = head[8], head[9], head[11]
    if version < 2 or width != 8 or flags != 0:
        return None
    base = int.from_bytes(head[12:20], "little")
    eof = int.from_bytes(head[28:36], "little")
    if size < base + eof:
        return (
            f"truncated file: eof = {size}, stored_eof = {base + eof} "
            "(file closed by its writer but incomplete)"
        )
    return None


def open_swmr(
    path: str | os.PathLike[str],
    *,
    rdcc_nbytes: int = 64 * 2**20,
    retries: int = 0,
    backoff: float = 0.05,
) -> h5py.File:
    """Open ``path`` read-only as a SWMR reader.

    ``h5py.File(path, "r", libver="latest", swmr=True, rdcc_nbytes=...)``
    with the compression filters of ``hdf5plugin`` registered. With
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
            return h5py.File(path, "r", libver="latest", swmr=True, rdcc_nbytes=rdcc_nbytes)
        except OSError as exc:
            if attempt >= retries or not is_transient(exc):
                err = SwmrOpenError(f"cannot open {os.fspath(path)!r} for SWMR reading: {exc}")
                err.errno = exc.errno
                err.filename = os.fspath(path)
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
