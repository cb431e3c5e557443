"""What crosses the pipe between the IOC process and a worker (pickled).

Requests are ``(op, args)`` tuples; a reply is ``("ok", value)`` or
``("error", kind, message)`` (see ``_errors.rebuild``). Values are these
small dataclasses, ``FrameStats`` (a few float64 arrays) and plain types;
frames never cross the pipe. Besides the replies, a worker pushes
``("views", key, LiveViews)``: the histogram and binned image of the newest
frame of file ``key``, at most once per ``ViewParams.period``.
"""

from __future__ import annotations

from dataclasses import dataclass

from swmr_roi_ioc.stats import FrameStats, LiveViews, Roi


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
class ViewParams:
    """How the live views of a file's newest frame are made."""

    #: the histogram: bins over [low, high) (HistSize, HistMin, HistMax)
    bins: int
    low: float
    high: float
    #: the binned image's longest side at most this (publish.image_max_size)
    image_max: int
    #: at most one computation per period (1 / publish.rate_hz)
    period: float
    #: the IOC's count of histogram settings changes
    generation: int = 0


@dataclass(frozen=True)
class Opened:
    frame_shape: tuple[int, int]
    dtype: str
    itemsize: int
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


@dataclass(frozen=True)
class Processed:
    done: int
    batches: list[Batch]
    keys_lag: bool
    first_frame: tuple[int, int, bytes] | None


__all__ = ["Batch", "FileSpec", "LiveViews", "Opened", "Polled", "Processed", "Roi", "ViewParams"]
