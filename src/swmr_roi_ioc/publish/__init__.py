"""Publishers: the caproto IOC (CA), its p4p mirror (PVA), the screens (the NeXus
file is written by the engine's workers: it needs HDF5)."""

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
from ._pva import PvaMirror
from ._screens import write_screens

__all__ = [
    "STATUS_LABELS",
    "Controller",
    "Geometry",
    "LiveViews",
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
    "pv_names",
    "write_screens",
]
