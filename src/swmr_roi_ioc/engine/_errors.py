"""Errors of reading a file in a worker, as the IOC process sees them.

Every one is an ``OSError``: the acquisition lifecycle retries them all with
one policy. They cross the pipe from a worker as (kind, message) and are
rebuilt here, so nothing on the IOC side needs HDF5 to understand them.
"""

from __future__ import annotations


class ReadError(OSError):
    """A read of the followed file failed in a worker (the message says how)."""

    kind = "read"

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class TruncatedError(ReadError):
    """The followed file (same inode) is shorter than it was: truncated.

    Raised before reading (nothing is read from a shrunk file) and after
    reading a batch whose frames may have been read past the new end (HDF5
    returns zeros there, no error): those frames are read again on resume.
    """

    kind = "truncated"


class DataLostError(ReadError):
    """The file grew back after a truncation but with a hole where the cut-off
    bytes were (its writer went on writing): those frames are gone."""

    kind = "lost"


class RewrittenError(ReadError):
    """Another file is at the path now, written over the old one in place
    (same inode, ``O_TRUNC``: NDFileHDF5 with AutoIncrement off recreates its
    file every acquisition): frame 0's stored bytes differ. Not a fault: the
    new content is followed as a new acquisition."""

    kind = "rewritten"


class NotSwmrFileError(ReadError):
    """The file is open for writing without SWMR mode: readable once closed."""

    kind = "not-swmr"


class WorkerLostError(ReadError):
    """The worker running the call died or was killed (stuck); a new one
    takes over and the call can be made again."""

    kind = "worker-lost"


_KINDS: dict[str, type[ReadError]] = {
    cls.kind: cls
    for cls in (ReadError, TruncatedError, DataLostError, RewrittenError, NotSwmrFileError,
                WorkerLostError)
}  # fmt: skip


def rebuild(kind: str, message: str) -> ReadError:
    """The IOC-side exception for a worker's (kind, message)."""
    return _KINDS.get(kind, ReadError)(message)
