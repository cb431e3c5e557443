"""A simulated areaDetector NDFileHDF5 writer (ADAravis "dcam") in SWMR mode.

It writes what ADCore's NDFileHDF5 plugin writes with its default layout, so
the follower, the tests and the demo can run without a camera.
"""

from swmr_roi_ioc.sim._options import SimError, SimOptions
from swmr_roi_ioc.sim._pattern import (
    frame_pattern,
    sample_brightness,
    scan_position,
    spot_centre,
)
from swmr_roi_ioc.sim._writer import (
    ATTRIBUTES_GROUP,
    DATA_LINK_PATH,
    DATA_PATH,
    DETECTOR_ATTRIBUTES_GROUP,
    EPICS_EPOCH_OFFSET,
    PERFORMANCE_PATH,
    write_file,
)

__all__ = [
    "ATTRIBUTES_GROUP",
    "DATA_LINK_PATH",
    "DATA_PATH",
    "DETECTOR_ATTRIBUTES_GROUP",
    "EPICS_EPOCH_OFFSET",
    "PERFORMANCE_PATH",
    "SimError",
    "SimOptions",
    "frame_pattern",
    "sample_brightness",
    "scan_position",
    "spot_centre",
    "write_file",
]
