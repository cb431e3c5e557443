"""ROI statistics and scan geometry (numpy only, no I/O, no EPICS)."""

from swmr_roi_ioc.stats._roi import (
    FrameStats,
    Roi,
    clamp_roi,
    compute_stats,
    frame_stats,
    roi_stats,
)
from swmr_roi_ioc.stats._scan import ScanGeometry

__all__ = [
    "FrameStats",
    "Roi",
    "ScanGeometry",
    "clamp_roi",
    "compute_stats",
    "frame_stats",
    "roi_stats",
]
