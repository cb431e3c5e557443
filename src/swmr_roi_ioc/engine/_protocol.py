"""What crosses the pipe between the IOC process and a worker (pickled).

Requests are ``(op, args)`` tuples; a reply is ``("ok", value)`` or
``("error", kind, message)`` (see ``_errors.rebuild``). Values are these
small dataclasses, ``FrameStats`` (a few float64 arrays) and plain types;
frames never cross the pipe (the newest goes through ``FrameSlots``).
"""

from __future__ import annotations

from dataclasses import dataclass

from swmr_roi_ioc.stats import FrameStats, Roi


@dataclass(frozen=True)
class FileSpec:
    """Which file to follow and how (a worker opens it from this alone)."""

    path: str
    dataset: str
    keys: tuple[str, ...]
    timeout: float
    finished: str | None
    #: frame 0's stored bytes (offset, length, digest) when reopened
    first_frame: tuple[int, int, bytes] | None = None
    #: source.keys_lag: "extent" | "wait" | None (decided by the file)
    keys_lag: str | None = None


@dataclass(frozen=True)
class SlotsInfo:
    """The shared file holding the newest frames (see FrameSlots)."""

    path: str
    shape: tuple[int, int]
    dtype: str
    count: int


@dataclass(frozen=True)
class Opened:
    frame_shape: tuple[int, int]
    dtype: str
    itemsize: int
    slots: SlotsInfo | None
    #: how configured keys lagging the data are handled: "extent" | "wait"
    keys_mode: str = "wait"


@dataclass(frozen=True)
class Polled:
    #: frames complete in the file
    complete: int
    #: the file's own "finished" dataset says so
    finished: bool
    #: (rows, cols) of a scan-shaped dataset, else None
    scan_extent: tuple[int, int] | None
    #: frames the keys say complete / the data's extent covers (None: not followed)
    keys_complete: int | None = None
    extent_complete: int | None = None


@dataclass(frozen=True)
class Batch:
    """Statistics of frames [start, start + n) (n = len(frame.total))."""

    start: int
    rois: list[FrameStats | None]
    frame: FrameStats
    unique_id: int
    #: FrameSlots slot holding the batch's last frame, if sent
    slot: int | None


@dataclass(frozen=True)
class Processed:
    done: int
    batches: list[Batch]
    keys_lag: bool
    first_frame: tuple[int, int, bytes] | None


__all__ = ["Batch", "FileSpec", "Opened", "Polled", "Processed", "Roi", "SlotsInfo"]
