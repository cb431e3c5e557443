"""A worker process: owns the files, answers the IOC process's requests.

Started by the IOC process as ``python -m swmr_roi_ioc.engine._worker FD
THREADS``
(a fresh interpreter: spawn semantics, nothing inherited but the socket),
kept alive across acquisitions. One request at a time, in order; each reply
is ``("ok", value)`` or ``("error", kind, message)``. Runs until the socket
closes.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from swmr_roi_ioc.follow import NotSwmrError
from swmr_roi_ioc.stats import LiveViews, Roi, compute_stats, live_views

from ._errors import ReadError
from ._file import FollowedFile
from ._nexus import NexusAcquisition, write_nexus
from ._pipeline import STREAM_WORKERS
from ._protocol import FileSpec, Processed, ViewParams
from ._viewmaker import Push, ViewMaker

log = logging.getLogger(__name__)


class Worker:
    """The files this worker has open, by the key the IOC process gave them,
    and the live views of their newest frames (pushed through ``push``)."""

    def __init__(self, push: Push, threads: int = STREAM_WORKERS) -> None:
        self._files: dict[int, FollowedFile] = {}
        #: threads that read and compute a long range of one file
        self.threads = threads
        self._views = ViewMaker(push)
        self._ops: dict[str, Callable[..., Any]] = {
            "open": self.open,
            "poll": lambda key: self._files[key].poll(),
            "process": self.process,
            "catch_up": self.catch_up,
            "roi_stats": self.roi_stats,
            "check_same": lambda key: self._files[key].check_same_file(),
            "close": self.close,
            "views": self._views.configure,
            "forget": self.forget,
            "nexus": self.nexus,
            "ping": lambda: os.getpid(),
        }

    def open(self, key: int, spec: FileSpec, views: ViewParams | None) -> Any:
        """Open ``spec`` as file ``key``; with ``views``, make the live views
        of its newest frames."""
        self.close(key)
        on_frame = None
        if views is not None:
            self._views.configure(key, views)
            on_frame = functools.partial(self._views.offer, key)
        followed = FollowedFile.open(spec, on_frame, threads=self.threads)
        self._files[key] = followed
        return followed.opened()

    def process(self, key: int, first: int, stop: int, rois: list[Roi | None]) -> Processed:
        followed = self._files[key]
        done, batches = followed.process(first, stop, rois)
        return Processed(done, batches, followed.keys_lag, followed.first_frame)

    def catch_up(self, key: int, first: int, stop: int, rois: list[Roi | None]) -> Processed:
        """A helper's part of a catch-up: see the file as it is now (unless
        it already knows the part complete), then process."""
        followed = self._files[key]
        if stop > followed.known_complete:
            followed.poll()
        return self.process(key, first, stop, rois)

    def roi_stats(self, key: int, start: int, stop: int, roi: Roi) -> Any:
        return self._files[key].roi_stats(start, stop, roi)

    def close(self, key: int) -> None:
        followed = self._files.pop(key, None)
        if followed is not None:
            followed.close()

    def forget(self, key: int) -> None:
        """The IOC process is done with file ``key``: its views too."""
        self.close(key)
        self._views.forget(key)

    def nexus(self, record: NexusAcquisition, target: str) -> str:
        return str(write_nexus(record, Path(target)))

    def handle(self, request: tuple[str, tuple[Any, ...]]) -> tuple[Any, ...]:
        op, args = request
        try:
            return ("ok", self._ops[op](*args))
        except ReadError as exc:
            return ("error", exc.kind, str(exc))
        except NotSwmrError as exc:
            return ("error", "not-swmr", str(exc))
        except KeyError as exc:  # str(KeyError) quotes its message
            return ("error", "read", str(exc.args[0]) if exc.args else repr(exc))
        except Exception as exc:  # noqa: BLE001 - every failure goes back as a reply
            log.debug("%s failed", op, exc_info=True)
            return ("error", "read", str(exc) or type(exc).__name__)


def warm_up() -> None:
    """Load the compiled loops (statistics, live views) for the usual frame
    types now, before the worker says it is ready: the first frame of an
    acquisition must not wait for numba to load them (a few hundred ms)."""
    for dtype in (np.uint8, np.uint16):
        frames = np.zeros((1, 8, 8), dtype=dtype)
        compute_stats(frames, [Roi(1, 1, 4, 4, 1)])
        live_views(frames[0], 4, 0.0, 4.0, 4)


def serve(conn: Connection, threads: int = STREAM_WORKERS) -> None:
    """Answer requests until the IOC process closes the socket."""
    lock = threading.Lock()  # replies and pushed views share the socket

    def send(message: tuple[Any, ...]) -> None:
        with lock:
            conn.send(message)

    def push(key: int, views: LiveViews) -> None:
        send(("views", key, views))

    worker = Worker(push, threads)
    warm_up()
    send(("ready", os.getpid()))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        try:
            send(worker.handle(request))
        except (BrokenPipeError, OSError):
            return


def main() -> None:
    # the IOC process decides when a worker goes: Ctrl-C in a terminal
    # reaches the whole process group and must not kill a worker mid-write
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=os.environ.get("SWMR_ROI_WORKER_LOG", "WARNING"),
        format="%(asctime)s %(levelname)s worker %(process)d %(name)s: %(message)s",
    )
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else STREAM_WORKERS
    serve(Connection(int(sys.argv[1])), threads)


if __name__ == "__main__":
    main()
