"""swmr_tools and multitables loops, unchanged, on their libraries and on our compat modules.

``python -m benchmarks.compat [--quick] [--frames N]`` (or ``python -m
benchmarks --compat``) writes one finished file (frames of 512x512 uint16,
one Blosc-LZ4 chunk per frame, a key dataset), then times on it, in the
same run, interleaved over the repeats:

- a swmr_tools ``DataSource`` loop summing each
  frame, imported from swmr_tools 0.9.0 and from
  ``swmr_roi_ioc.compat.swmr_tools``;
- a multitables ``Streamer`` loop (``get_queue`` + ``iter()``, 2 processes)
  summing each block, from multitables and from
  ``swmr_roi_ioc.compat.multitables``.

It prints frames/s (medians). A library that cannot be imported is
reported as such (multitables 2.0.1 fails to import under numpy 2).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import h5py
import hdf5plugin
import numpy as np


def write_file(path: Path, frames: int, shape: tuple[int, int] = (512, 512)) -> None:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w", libver="latest") as f:
        ds = f.create_dataset(
            "data",
            shape=(frames, *shape),
            dtype=np.uint16,
            chunks=(1, *shape),
            **hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE),
        )
        frame = rng.integers(0, 4000, size=shape, dtype=np.uint16)
        for i in range(frames):
            ds[i] = frame + i
        f.create_dataset("keys", data=np.ones(frames, dtype=np.int32))


def swmr_tools_loop(lib: ModuleType, path: Path) -> int:
    """The loop a swmr_tools user writes, summing each frame."""
    total = 0
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        df = lib.DataSource([f["/keys"]], {"/data": f["/data"]}, timeout=0.1)
        for dset in df:
            total += int(dset["/data"].sum())
    return total


def multitables_loop(lib: ModuleType, path: Path) -> int:
    """The loop a multitables user writes, summing each block."""
    total = 0
    stream = lib.Streamer(filename=str(path))
    queue = stream.get_queue(path="/data", n_procs=2, block_size=16, ordered=True)
    for guard in queue.iter():
        with guard as block:
            total += int(block.sum(dtype=np.int64))
    queue.close()
    total += int(stream.get_remainder("/data", queue.block_size).sum(dtype=np.int64))
    return total


def _load(name: str) -> ModuleType | str:
    try:
        return importlib.import_module(name)
    except Exception as exc:  # an incompatible install is a result, not a crash
        return f"cannot import {name}: {type(exc).__name__}: {exc}"


def run(frames: int, repeats: int, workdir: Path) -> list[dict[str, Any]]:
    path = workdir / "compat.h5"
    write_file(path, frames)
    expected = 0
    with h5py.File(path, "r") as f:
        expected = int(f["data"][()].sum(dtype=np.int64))
    cases: list[tuple[str, str, str, Callable[[ModuleType, Path], int]]] = [
        ("swmr_tools DataSource", "swmr_tools 0.9.0", "swmr_tools", swmr_tools_loop),
        (
            "swmr_tools DataSource",
            "ours (compat)",
            "swmr_roi_ioc.compat.swmr_tools",
            swmr_tools_loop,
        ),
        ("multitables Streamer", "multitables", "multitables", multitables_loop),
        (
            "multitables Streamer",
            "ours (compat)",
            "swmr_roi_ioc.compat.multitables",
            multitables_loop,
        ),
    ]
    times: dict[int, list[float]] = {k: [] for k in range(len(cases))}
    notes: dict[int, str] = {}
    for _ in range(repeats):
        for k, (_, _, module, loop) in enumerate(cases):
            lib = _load(module)
            if isinstance(lib, str):
                notes[k] = lib
                continue
            start = time.perf_counter()
            total = loop(lib, path)
            times[k].append(time.perf_counter() - start)
            if total != expected:
                notes[k] = f"WRONG total {total} != {expected}"
    rows = []
    for k, (loop_name, lib_name, _, _) in enumerate(cases):
        fps = frames / statistics.median(times[k]) if times[k] else None
        rows.append({"loop": loop_name, "library": lib_name, "fps": fps, "note": notes.get(k, "")})
    return rows


def print_rows(rows: list[dict[str, Any]], frames: int) -> None:
    print(f"compat: {frames} frames 512x512 uint16 Blosc-LZ4, one chunk per frame")
    print(f"{'loop':24} {'library':18} {'frames/s':>10}  note")
    for row in rows:
        fps = "-" if row["fps"] is None else f"{row['fps']:.0f}"
        print(f"{row['loop']:24} {row['library']:18} {fps:>10}  {row['note']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 frames, 1 round")
    parser.add_argument("--frames", type=int, default=None, help="frames (default 1000)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds (default 3)")
    args = parser.parse_args(argv)
    frames = args.frames or (200 if args.quick else 1000)
    repeats = args.repeats or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="compat-bench-") as tmp:
        rows = run(frames, repeats, Path(tmp))
    print_rows(rows, frames)
    return 0 if all("WRONG" not in r["note"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
