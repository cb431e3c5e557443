"""A real SWMR writer for the follower tests, run as its own process.

It writes the way areaDetector's NDFileHDF5 does: every object exists before
``start_swmr_write``; per frame ``set_extent`` then write then flush; the
``NDArrayUniqueId`` key is flushed only every ``key_flush`` frames; extra
dimensions grow innermost first ((1, 1) -> (1, 2) .. (1, C) -> (2, C)).

Protocol on stdin/stdout, one line each:

- writer prints ``ready`` once SWMR writing started, then waits for a line;
- free-running (``step`` false): writes ``frames`` frames at ``rate`` Hz,
  prints ``done``, and keeps the file open until stdin closes;
- stepping (``step`` true): per frame it waits for a line, sets the extent
  and flushes (prints ``extent N``), waits for a line, writes and flushes
  (prints ``wrote N``); then ``done``.

Run: ``python swmr_writer.py '{"path": "f.h5", "frames": 10, ...}'``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (writes LZ4 / Blosc when asked)
import numpy as np
from numpy.typing import NDArray

DATA = "/entry/data/data"
KEYS = "/entry/instrument/NDAttributes"
UNIQUE_ID = f"{KEYS}/NDArrayUniqueId"
FINISHED = "/entry/finished"


def expected_frame(index: int, height: int, width: int) -> NDArray[np.uint32]:
    """The frame the writer writes at flat ``index``: never zero (fill is 0)."""
    base = np.arange(height * width, dtype=np.uint32).reshape(height, width)
    return base + np.uint32((index + 1) * 1000)


def extent_for(index: int, scan: tuple[int, ...] | None) -> tuple[int, ...]:
    """Scan extent after frame ``index`` was placed, grown as NDFileHDF5 grows it."""
    if scan is None:
        return (index + 1,)
    _, cols = scan
    if index < cols:
        return (1, index + 1)
    return (index // cols + 1, cols)


def position_for(index: int, scan: tuple[int, ...] | None) -> tuple[int, ...]:
    if scan is None:
        return (index,)
    return divmod(index, scan[1])


@dataclass
class WriterConfig:
    path: str
    frames: int = 20
    shape: tuple[int, int] = (8, 8)
    scan: tuple[int, int] | None = None  # rows, cols: extra dimensions
    keys: bool = True
    key_flush: int = 1
    rate: float = 200.0
    step: bool = False
    finished: bool = False
    compression: dict[str, Any] = field(default_factory=dict[str, Any])


def _write(cfg: WriterConfig) -> None:
    height, width = cfg.shape
    scan = tuple(cfg.scan) if cfg.scan is not None else None
    lead = (1,) * (len(scan) if scan else 1)
    f = h5py.File(cfg.path, "w", libver="latest")
    data = f.create_dataset(
        DATA,
        shape=(*tuple(0 for _ in lead), height, width),
        maxshape=(*tuple(None for _ in lead), height, width),
        chunks=(*lead, height, width),
        dtype=np.uint32,
        **cfg.compression,
    )
    key = None
    if cfg.keys:
        key = f.create_dataset(
            UNIQUE_ID, shape=(0,), maxshape=(None,), chunks=(64,), dtype=np.int32
        )
    finished = f.create_dataset(FINISHED, data=np.zeros(1, dtype=np.int32), maxshape=(1,))
    f.swmr_mode = True
    print("ready", flush=True)
    sys.stdin.readline()
    period = 1.0 / cfg.rate
    start = time.monotonic()
    for index in range(cfg.frames):
        if cfg.step:
            sys.stdin.readline()
        else:
            delay = start + index * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        extent = extent_for(index, scan)
        data.resize((*extent, height, width))
        if key is not None:
            key.resize((index + 1,))
        if cfg.step:
            data.flush()
            if key is not None:
                key.flush()
            print(f"extent {index}", flush=True)
            sys.stdin.readline()
        data[(*position_for(index, scan),)] = expected_frame(index, height, width)
        data.flush()
        if key is not None:
            key[index] = index + 1
            if (index + 1) % cfg.key_flush == 0:
                key.flush()
        if cfg.step:
            print(f"wrote {index}", flush=True)
    if key is not None:
        key.flush()
    if cfg.finished:
        finished[0] = 1
        finished.flush()
    print("done", flush=True)
    sys.stdin.read()
    f.close()


class Writer:
    """The writer process, driven from a test."""

    def __init__(self, cfg: WriterConfig) -> None:
        self.cfg = cfg
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__)), json.dumps(asdict(cfg))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.expect() == "ready"

    def send(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def expect(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line:
            raise RuntimeError(f"writer ended: rc={self.proc.wait()}")
        return line

    def step(self) -> str:
        self.send()
        return self.expect()

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()


if __name__ == "__main__":
    raw = json.loads(sys.argv[1])
    raw["shape"] = tuple(raw["shape"])
    _write(WriterConfig(**raw))
