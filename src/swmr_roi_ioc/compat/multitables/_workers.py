"""Worker processes: each opens the file itself and evaluates requests into stages.

Processes start from a forkserver (a clean parent, not a fork of the
caller) that has this module, and so h5py, hdf5plugin, numpy and our
follower, imported once: a worker is a fork of it, it imports nothing
itself. Every worker reads through one h5py handle per dataset and
:class:`swmr_roi_ioc.follow.ChunkReader` for rows (the fast chunk path
where the layout allows); results go straight into the request's stage.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import os
import pickle
import threading
from multiprocessing import forkserver, shared_memory
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from ...follow import ChunkReader, SwmrOpenError, open_swmr, shared_dataset
from ._stage import SharedMemoryError, Stage
from .dataset_ops import OpBase, apply
from .request import Request

__all__ = ["WorkerPool", "dataset_at", "open_file"]

_log = logging.getLogger(__name__)


def open_file(path: str) -> h5py.File:
    """``path`` open for reading: as a SWMR reader, else (older formats) plainly."""
    try:
        return open_swmr(path)
    except SwmrOpenError:
        return h5py.File(path, "r")


def dataset_at(h5file: h5py.File, path: str) -> h5py.Dataset:
    """The dataset at ``path`` (``TypeError`` for a group)."""
    obj = h5file[path]
    if not isinstance(obj, h5py.Dataset):
        raise TypeError(f"{path!r} is not a dataset")
    return obj


class _Rows:
    """Row reads of one worker: a ChunkReader per dataset (h5py for tables)."""

    def __init__(self) -> None:
        self._readers: dict[str, ChunkReader | None] = {}

    def __call__(self, ds: h5py.Dataset, indices: NDArray[np.int64]) -> NDArray[Any]:
        name = ds.name or ""
        if name not in self._readers:
            usable = ds.ndim >= 1 and ds.dtype.names is None and ds.dtype.kind != "O"
            self._readers[name] = ChunkReader(ds, 1, threads=1) if usable else None
        reader = self._readers[name]
        count = int(ds.shape[0])
        if indices.size and (indices.min() < 0 or indices.max() >= count):
            raise IndexError(f"row index out of range for {name!r} of {count} rows")
        if reader is not None:
            out = reader.empty(len(indices))
            reader.read_indices(indices, out, parallel=False)
            return out
        if indices.size and np.all(np.diff(indices) == 1):
            return ds[int(indices[0]) : int(indices[-1]) + 1]
        order = np.unique(indices)
        picked = ds[order] if order.size else ds[0:0]
        return picked[np.searchsorted(order, indices)]


def _serve(filename: str, tasks: Any, results: Any) -> None:
    """A worker process: evaluate ``(id, op, stage name, nbytes)`` until None."""
    rows = _Rows()
    stages: dict[str, shared_memory.SharedMemory] = {}
    with open_file(filename) as h5file:
        while (task := tasks.get()) is not None:
            req_id, op, stage_name, nbytes = task
            try:
                ds = shared_dataset(h5file, op._path)  # noqa: SLF001 - the op's dataset
                result = apply(op, ds, rows)
                if result.nbytes > nbytes:
                    raise SharedMemoryError(
                        f"the result ({result.nbytes} bytes, shape {result.shape}) does not "
                        f"fit the stage of {nbytes} bytes"
                    )
                shm = stages.get(stage_name)
                if shm is None:
                    shm = stages[stage_name] = shared_memory.SharedMemory(name=stage_name)
                np.ndarray(result.shape, result.dtype, buffer=shm.buf)[...] = result
                results.put((req_id, result.dtype, result.shape, None))
                del result
            except Exception as exc:
                results.put((req_id, None, None, _picklable(exc)))
    for shm in stages.values():
        shm.close()


def _picklable(exc: Exception) -> Exception:
    try:
        pickle.dumps(exc)
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def _forkserver_context() -> Any:
    """The forkserver context, its server preloading this module (and so the
    heavy imports) when it starts; modules already asked for stay."""
    ctx = mp.get_context("forkserver")
    server = getattr(forkserver, "_forkserver", None)
    current = getattr(server, "_preload_modules", None)
    modules = list(current) if isinstance(current, list) else ["__main__"]
    if __name__ not in modules:
        ctx.set_forkserver_preload([*modules, __name__])  # no effect once running
    return ctx


class WorkerPool:
    """``n_procs`` worker processes on ``filename``, and the thread collecting results."""

    def __init__(self, filename: str, n_procs: int) -> None:
        if n_procs < 1:
            raise ValueError(f"n_procs must be >= 1, got {n_procs}")
        ctx = _forkserver_context()
        self.filename = os.fspath(filename)
        self._tasks = ctx.Queue()
        self._results = ctx.Queue()
        self._pending: dict[int, Request] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._procs = [
            ctx.Process(
                target=_serve,
                args=(self.filename, self._tasks, self._results),
                name=f"multitables-worker-{k}",
                daemon=True,
            )
            for k in range(n_procs)
        ]
        for proc in self._procs:
            proc.start()
        self._collector = threading.Thread(
            target=self._collect, name="multitables-results", daemon=True
        )
        self._collector.start()
        self._closed = False

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def submit(self, op: OpBase, stage: Stage) -> Request:
        """Queue ``op``; its result lands in ``stage`` (already acquired)."""
        if self._closed:
            stage.release()
            raise RuntimeError("the reader is closed")
        request = Request(stage)
        with self._lock:
            req_id = next(self._ids)
            self._pending[req_id] = request
        self._tasks.put((req_id, op, stage.name, stage.nbytes))
        return request

    def _collect(self) -> None:
        while True:
            item = self._results.get()
            if item is None:
                return
            req_id, dtype, shape, error = item
            with self._lock:
                request = self._pending.pop(req_id, None)
            if request is not None:
                request._finish(dtype, shape, error)  # noqa: SLF001

    def close(self, wait: bool = False) -> None:
        """Stop the workers (``wait``: let them finish the queued requests first)."""
        if self._closed:
            return
        self._closed = True
        for _ in self._procs:
            self._tasks.put(None)
        if wait:
            for proc in self._procs:
                proc.join()
        else:
            for proc in self._procs:
                proc.join(0.5)
                if proc.is_alive():
                    proc.terminate()
        self._results.put(None)
        self._collector.join()
        with self._lock:
            pending, self._pending = self._pending, {}
        for request in pending.values():
            request._finish(None, None, RuntimeError("the reader was closed"))  # noqa: SLF001
