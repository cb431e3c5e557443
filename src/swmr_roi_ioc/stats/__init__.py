"""ROI statistics and scan geometry (numpy only, no I/O, no EPICS)."""

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
from swmr_roi_ioc.stats._views import Histogram, bin_factor, bin_image, histogram

__all__ = [
    "FrameStats",
    "Histogram",
    "Roi",
    "ScanGeometry",
    "bin_factor",
    "bin_image",
    "clamp_roi",
    "compute_stats",
    "frame_stats",
    "histogram",
    "roi_outside",
    "roi_stats",
]
