"""Publishers: the caproto IOC (CA), its p4p mirror (PVA); later NeXus and screens."""

from ._ca import (
    Controller,
    PutRefusedError,
    RoiIoc,
    build_ioc,
    map_capacity,
    map_shape,
    pv_names,
)
from ._ca_context import SafeContext
from ._model import (
    STATUS_LABELS,
    Geometry,
    LiveViews,
    RegionSnapshot,
    Severity,
    Snapshot,
    Status,
    StatValues,
)
from ._nexus import NexusAcquisition, NexusError, NexusRegion, nexus_path, write_nexus
from ._pva import PvaMirror
from ._screens import write_screens

__all__ = [
    "STATUS_LABELS",
    "Controller",
    "Geometry",
    "LiveViews",
    "NexusAcquisition",
    "NexusError",
    "NexusRegion",
    "PutRefusedError",
    "PvaMirror",
    "RegionSnapshot",
    "RoiIoc",
    "SafeContext",
    "Severity",
    "Snapshot",
    "StatValues",
    "Status",
    "build_ioc",
    "map_capacity",
    "map_shape",
    "nexus_path",
    "pv_names",
    "write_nexus",
    "write_screens",
]
