"""Publishers: the EPICS IOC (one PV table; CA by softioc records, PVA by p4p)
and the Phoebus screens (the NeXus file is written by the engine's workers:
it needs HDF5)."""

from swmr_roi_ioc.stats import LiveViews

from ._access import WriteAccess
from ._ioc import Ioc
from ._model import (
    STATUS_LABELS,
    AlarmStatus,
    Geometry,
    RegionSnapshot,
    Severity,
    Snapshot,
    Status,
    StatValues,
)
from ._publisher import Publisher
from ._puts import PutHandler
from ._puts_rules import Controller, PutRefusedError
from ._pva import PvaServer
from ._pvtable import (
    GEOMETRY_PVS,
    Kind,
    NdArray,
    PvSpec,
    Source,
    hist_capacity,
    map_capacity,
    map_shape,
    pv_names,
    pv_table,
)
from ._screens import write_screens

__all__ = [
    "GEOMETRY_PVS",
    "STATUS_LABELS",
    "AlarmStatus",
    "Controller",
    "Geometry",
    "Ioc",
    "Kind",
    "LiveViews",
    "NdArray",
    "Publisher",
    "PutHandler",
    "PutRefusedError",
    "PvSpec",
    "PvaServer",
    "RegionSnapshot",
    "Severity",
    "Snapshot",
    "Source",
    "StatValues",
    "Status",
    "WriteAccess",
    "hist_capacity",
    "map_capacity",
    "map_shape",
    "pv_names",
    "pv_table",
    "write_screens",
]
