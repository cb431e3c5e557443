"""The engine: worker processes that own the files (follow, read, decompress,
compute every frame's statistics and the live views of the newest frame, write
the NeXus file), and their IOC-side handles. Only the worker side (``_worker``,
``_file``, ``_pipeline``, ``_nexus``, ``_viewmaker``) runs in the workers and
imports h5py; what this package exports never does, so the IOC
process never touches HDF5 (an import-linter contract says so).
"""

from ._errors import (
    DataLostError,
    NotSwmrFileError,
    ReadError,
    RewrittenError,
    TruncatedError,
    WorkerLostError,
)
from ._nexus_model import NexusAcquisition, NexusError, NexusRegion, nexus_path
from ._pool import BLOCKED_S, WorkerPool
from ._protocol import FileSpec, ViewParams
from ._remote import RemoteAcquisition, StatsSink

__all__ = [
    "BLOCKED_S",
    "DataLostError",
    "FileSpec",
    "NexusAcquisition",
    "NexusError",
    "NexusRegion",
    "NotSwmrFileError",
    "ReadError",
    "RemoteAcquisition",
    "RewrittenError",
    "StatsSink",
    "TruncatedError",
    "ViewParams",
    "WorkerLostError",
    "WorkerPool",
    "nexus_path",
]
