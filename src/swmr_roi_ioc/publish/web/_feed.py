"""What the live page shows, taken from the state the PVs publish.

:class:`PageData` is built from a :class:`Snapshot` and the :class:`LiveViews`
(never from the file), once per publish period for all browsers; each
browser's page copies what changed into its plots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from swmr_roi_ioc.publish import LiveViews, Severity, Snapshot


class PageState(Protocol):
    """The service state the page reads (the app's ServiceState)."""

    @property
    def version(self) -> int:
        """Changes whenever anything shown may have changed."""
        ...

    @property
    def views_generation(self) -> int:
        """Changes when new live views (image, histogram) arrived."""
        ...

    @property
    def array_rate(self) -> float:
        """Frames/s processed now (decays with time alone)."""
        ...

    def snapshot(self) -> Snapshot:
        """One coherent view of everything the PVs publish."""
        ...

    def live_views(self) -> LiveViews | None:
        """Histogram and binned image of the latest frame (made by the engine)."""
        ...


class PutPath(Protocol):
    """The one way a client changes the IOC: the same validation, access
    rules and effects as a CA or PVA put of ``P:<suffix>``.

    ``suffix`` is a PV name without the prefix, e.g. ``"1:MinX"`` or
    ``"Reset"``; a refused put raises ``PutRefusedError`` whose message says why."""

    def put(self, suffix: str, value: object, *, host: str, user: str) -> None: ...


@dataclass(frozen=True, eq=False)
class MapView:
    """One map: rows x cols, NaN where no frame has landed."""

    name: str
    grid: np.ndarray
    #: finite range of the grid (the colour scale); NaN when empty
    low: float
    high: float


@dataclass(frozen=True)
class RoiBox:
    """A ROI's readback geometry, in frame pixels."""

    name: str
    x: int
    y: int
    width: int
    height: int
    use: bool


@dataclass(frozen=True, eq=False)
class ImageView:
    """The latest frame binned, with what the histogram counted."""

    image: np.ndarray
    low: float
    high: float
    hist_centres: np.ndarray
    hist_counts: np.ndarray
    hist_width: float
    below: int
    above: int
    generation: int


@dataclass(frozen=True, eq=False)
class PageData:
    """Everything one refresh of the page needs."""

    status: str
    severity: Severity
    message: str
    file_path: str
    array_counter: int
    frames_written: int
    unique_id: int
    array_rate: float
    recompute_progress: float
    frame_shape: tuple[int, int]
    boxes: list[RoiBox]
    maps: list[MapView]
    #: changes when the maps changed (the page skips them otherwise)
    maps_generation: int
    image: ImageView | None


def finite_range(values: np.ndarray) -> tuple[float, float]:
    """(min, max) ignoring NaN; (NaN, NaN) when nothing is finite."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (math.nan, math.nan)
    return (float(finite.min()), float(finite.max()))


def _map_view(name: str, flat: np.ndarray, shape: tuple[int, int]) -> MapView:
    rows, cols = shape
    grid = np.asarray(flat[: rows * cols], dtype=np.float64).reshape(rows, cols)
    low, high = finite_range(grid)
    return MapView(name, grid, low, high)


def image_view(views: LiveViews) -> ImageView:
    """The binned image and histogram of the latest frame, for the page."""
    low, high = finite_range(views.image)
    width = (views.hist_max - views.hist_min) / max(views.hist_size, 1)
    return ImageView(
        image=np.asarray(views.image, dtype=np.float32),
        low=low,
        high=high,
        hist_centres=np.asarray(views.histogram_x[: views.hist_size], dtype=np.float64),
        hist_counts=np.asarray(views.histogram[: views.hist_size], dtype=np.float64),
        hist_width=width,
        below=views.below,
        above=views.above,
        generation=views.generation,
    )


def page_data(snap: Snapshot, image: ImageView | None, array_rate: float | None = None) -> PageData:
    """The page's view of ``snap`` (maps of the ROIs and the whole frame)."""
    regions = [*snap.rois, *([snap.frame] if snap.frame is not None else [])]
    boxes = [
        RoiBox(r.name, rb.x, rb.y, rb.width, rb.height, rb.use)
        for r in snap.rois
        if (rb := r.readback) is not None
    ]
    shape = snap.frame.frame_shape if snap.frame is not None else (0, 0)
    return PageData(
        status=snap.status.label,
        severity=snap.severity,
        message=snap.message,
        file_path=snap.file_path,
        array_counter=snap.array_counter,
        frames_written=snap.frames_written,
        unique_id=snap.unique_id,
        array_rate=snap.array_rate if array_rate is None else array_rate,
        recompute_progress=snap.recompute_progress,
        frame_shape=shape,
        boxes=boxes,
        maps=[_map_view(r.name, r.map, snap.map_shape) for r in regions],
        maps_generation=snap.arrays_generation,
        image=image,
    )
