"""Options of the simulated NDFileHDF5 writer, and their validation."""

from __future__ import annotations

from dataclasses import dataclass

from swmr_roi_ioc._errors import SwmrRoiError

DTYPES = ("uint8", "uint16", "uint32", "int32", "float32", "float64")
COMPRESSIONS = ("none", "lz4", "bslz4", "blosc")
#: ADCore caps the default NDAttributeChunk (NumCapture) at this many frames.
MAX_ATTRIBUTE_CHUNK = 16384


class SimError(SwmrRoiError, ValueError):
    """Bad simulator options, or the simulated writer failed."""


@dataclass(frozen=True)
class SimOptions:
    """What the simulated ADAravis + NDFileHDF5 (SWMR) acquisition writes.

    The names follow the plugin's PVs where one exists (``NumFramesFlush``,
    ``NDAttributeChunk``, ``NumExtraDims``).
    """

    frames: int = 100
    #: Frames per second; ``<= 0`` writes as fast as possible.
    rate_hz: float = 10.0
    #: The first ``burst`` frames are written as fast as possible, the rest
    #: at ``rate_hz`` (a file already long when the acquisition goes on live).
    burst: int = 0
    #: Frame shape (H, W).
    shape: tuple[int, int] = (256, 320)
    dtype: str = "uint16"
    #: (rows, cols) of the snake scan the pattern follows;
    #: ``None`` means one row of ``frames`` points.
    scan: tuple[int, int] | None = None
    #: Odd rows run backwards (in the pattern; storage is acquisition order).
    snake: bool = True
    compression: str = "none"
    #: Write the scan-shaped dataset (rows, cols, H, W), grown one point at a
    #: time as ADCore's extra dimensions do.
    extra_dims: bool = False
    #: ``NumFramesFlush``: the data dataset is flushed every N frames.
    num_frames_flush: int = 1
    #: ``NDAttributeChunk``: attribute datasets are flushed every N frames;
    #: ``None`` is ADCore's default, ``min(frames, 16384)``.
    attribute_chunk: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise SimError(f"frames must be >= 1, got {self.frames}")
        if len(self.shape) != 2 or min(self.shape) < 1:
            raise SimError(f"shape must be two positive sizes (H, W), got {self.shape}")
        if self.dtype not in DTYPES:
            raise SimError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.compression not in COMPRESSIONS:
            raise SimError(f"compression must be one of {COMPRESSIONS}, got {self.compression!r}")
        if self.scan is not None and (len(self.scan) != 2 or min(self.scan) < 1):
            raise SimError(f"scan must be two positive sizes (rows, cols), got {self.scan}")
        if self.burst < 0:
            raise SimError(f"burst must be >= 0, got {self.burst}")
        if self.num_frames_flush < 1:
            raise SimError(f"num_frames_flush must be >= 1, got {self.num_frames_flush}")
        if self.attribute_chunk is not None and self.attribute_chunk < 1:
            raise SimError(f"attribute_chunk must be >= 1, got {self.attribute_chunk}")
        rows, cols = self.scan_shape
        if self.extra_dims and self.frames > rows * cols:
            raise SimError(f"extra_dims: {self.frames} frames do not fit a {rows}x{cols} scan")

    @property
    def scan_shape(self) -> tuple[int, int]:
        """(rows, cols) of the scan: ``scan``, or one row of ``frames``."""
        if self.scan is None:
            return (1, self.frames)
        return (int(self.scan[0]), int(self.scan[1]))

    @property
    def attribute_chunk_frames(self) -> int:
        """The effective ``NDAttributeChunk``."""
        if self.attribute_chunk is None:
            return min(self.frames, MAX_ATTRIBUTE_CHUNK)
        return self.attribute_chunk
