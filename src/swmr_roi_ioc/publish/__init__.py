"""Publishers: the caproto IOC (CA), its p4p mirror (PVA); later NeXus and screens."""

from ._ca import Controller, PutRefusedError, RoiIoc, build_ioc, map_shape, pv_names
from ._model import (
    STATUS_LABELS,
    Geometry,
    RegionSnapshot,
    Severity,
    Snapshot,
    Status,
    StatValues,
)
from ._pva import PvaMirror

__all__ = [
    "STATUS_LABELS",
    "Controller",
    "Geometry",
    "PutRefusedError",
    "PvaMirror",
    "RegionSnapshot",
    "RoiIoc",
    "Severity",
    "Snapshot",
    "StatValues",
    "Status",
    "build_ioc",
    "map_shape",
    "pv_names",
]
