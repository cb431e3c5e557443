"""Publishers: the caproto IOC (CA); later p4p (PVA), NeXus and screens."""

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

__all__ = [
    "STATUS_LABELS",
    "Controller",
    "Geometry",
    "PutRefusedError",
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
