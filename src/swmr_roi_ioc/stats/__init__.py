"""ROI statistics and scan geometry (numpy and a numba kernel; no I/O, no EPICS)."""

from typing import TYPE_CHECKING, Any

from swmr_roi_ioc.stats._roi import (
    FrameStats,
    Roi,
    clamp_roi,
    compute_stats,
    frame_stats,
    roi_outside,
    roi_stats,
)
from swmr_roi_ioc.stats._scan import ScanGeometry

if TYPE_CHECKING:
    from swmr_roi_ioc.stats._scanspec import ScanSpecError, grid_geometry, spec_geometry
from swmr_roi_ioc.stats._views import (
    Histogram,
    LiveViews,
    bin_factor,
    bin_image,
    histogram,
    live_views,
)

__all__ = [
    "FrameStats",
    "Histogram",
    "LiveViews",
    "Roi",
    "ScanGeometry",
    "ScanSpecError",
    "bin_factor",
    "bin_image",
    "clamp_roi",
    "compute_stats",
    "frame_stats",
    "grid_geometry",
    "histogram",
    "live_views",
    "roi_outside",
    "roi_stats",
    "spec_geometry",
]

#: imported on first use: scanspec (pydantic models) costs seconds of import,
#: paid by every engine worker process that never uses it
_LAZY = {"ScanSpecError", "grid_geometry", "spec_geometry"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from swmr_roi_ioc.stats import _scanspec

        return getattr(_scanspec, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
