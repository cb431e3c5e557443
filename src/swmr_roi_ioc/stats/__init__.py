"""ROI statistics and scan geometry (numpy and a numba kernel; no I/O, no EPICS)."""

from swmr_roi_ioc.stats._roi import (
    FrameStats,
    Roi,
    clamp_roi,
    compute_stats,
    frame_stats,
    roi_stats,
)
from swmr_roi_ioc.stats._scan import ScanGeometry
from swmr_roi_ioc.stats._scanspec import ScanSpecError, grid_geometry, spec_geometry
from swmr_roi_ioc.stats._views import Histogram, bin_factor, bin_image, histogram

__all__ = [
    "FrameStats",
    "Histogram",
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
    "roi_stats",
    "spec_geometry",
]
