"""multitables 2's interface on :mod:`swmr_roi_ioc.follow`: change one import.

``Streamer`` streams a dataset in blocks read ahead by worker processes,
``Reader`` reads requests (numpy-style indexing, PyTables' table queries
evaluated on h5py's compound datasets) into shared-memory stages. Workers
are real processes (``n_procs``); each reads through
:class:`swmr_roi_ioc.follow.ChunkReader`. Files are read with h5py, so
PyTables itself is not needed. See docs/compat.md for the differences.
"""

from . import dataset_ops
from ._stage import SharedMemoryError, Stage, StagePool
from .reader import Reader
from .request import Request, RequestPool
from .streamer import QueueClosed, Streamer, StreamQueue

__all__ = [
    "QueueClosed",
    "Reader",
    "Request",
    "RequestPool",
    "SharedMemoryError",
    "Stage",
    "StagePool",
    "StreamQueue",
    "Streamer",
    "dataset_ops",
]

__version__ = "2.0.1"
