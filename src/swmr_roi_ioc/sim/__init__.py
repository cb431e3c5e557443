"""A simulated areaDetector NDFileHDF5 writer (ADAravis "dcam") in SWMR mode.

It writes what ADCore's NDFileHDF5 plugin writes with its default layout, so
the follower, the tests and the demo can run without a camera; and it serves
a simulated dcam (ADAravis + NDFileHDF5) as an EPICS IOC (pythonSoftIOC, in
a process of its own) that ophyd-async's ``AravisDetector`` drives
(:func:`run_sim_camera`).
"""

from swmr_roi_ioc.sim._camera import SimCamera, camera_frame_options, run_sim_camera
from swmr_roi_ioc.sim._camera_driver import AravisDriverGroup
from swmr_roi_ioc.sim._camera_hdf import NDFileHDF5Group
from swmr_roi_ioc.sim._camera_pvs import NDArray
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
    Hdf5Writer,
    write_file,
)

__all__ = [
    "ATTRIBUTES_GROUP",
    "DATA_LINK_PATH",
    "DATA_PATH",
    "DETECTOR_ATTRIBUTES_GROUP",
    "EPICS_EPOCH_OFFSET",
    "PERFORMANCE_PATH",
    "AravisDriverGroup",
    "Hdf5Writer",
    "NDArray",
    "NDFileHDF5Group",
    "SimCamera",
    "SimError",
    "SimOptions",
    "camera_frame_options",
    "frame_pattern",
    "run_sim_camera",
    "sample_brightness",
    "scan_position",
    "spot_centre",
    "write_file",
]
