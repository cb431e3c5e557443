"""What the processed NeXus file of one acquisition holds (no HDF5 here:
the IOC process builds it; a worker writes it, see ``_nexus``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swmr_roi_ioc._errors import SwmrRoiError


class NexusError(SwmrRoiError):
    """The NeXus file could not be written (nothing was left under its name)."""


@dataclass(frozen=True)
class NexusRegion:
    """One region (ROI n or the whole frame) of an acquisition."""

    #: "ROI1", ..., or "Frame": the NXdata group's name.
    name: str
    #: "total", "net", "min", "max", "mean": float64 (n,), acquisition order.
    series: dict[str, np.ndarray]
    #: float64 (rows, cols): total placed by scan position, NaN where no frame landed.
    map: np.ndarray
    #: {"x", "y", "width", "height", "background_width"} as used; None for Frame.
    geometry: dict[str, int] | None


@dataclass(frozen=True)
class NexusAcquisition:
    """Everything the NeXus file of one acquisition holds."""

    #: The raw HDF5 file (absolute).
    source_file: Path
    #: The frames dataset inside it, e.g. "/entry/data/data".
    dataset: str
    #: Number of frames n.
    frames: int
    #: (H, W) of a frame.
    frame_shape: tuple[int, int]
    #: (rows, cols) of the maps; None when no scan geometry is configured
    #: (the file then holds time series only).
    scan_shape: tuple[int, int] | None
    snake: bool
    #: ROIs then Frame.
    regions: list[NexusRegion]
    #: (rows, cols) per-frame maxima placed by scan position.
    max_map: np.ndarray
    #: The ioc.yaml text used.
    config_yaml: str
    ioc_name: str
    #: ISO 8601.
    started: str
    #: ISO 8601.
    finished: str


def nexus_path(source_file: Path, directory: str | Path | None) -> Path:
    """``<directory or source_file.parent>/<source stem>_roi.nxs``."""
    source = Path(source_file)
    folder = source.parent if directory is None or str(directory) == "" else Path(directory)
    return folder.expanduser() / f"{source.stem}_roi.nxs"
