"""swmr_tools and multitables loops, unchanged, on their libraries and on our compat modules.

``python -m benchmarks.compat [--quick] [--frames N] [--size N]`` (or
``python -m benchmarks --compat``) writes two finished files of camera
frames as areaDetector writes them (uint16 photon counts, one chunk per
frame, an unlimited key dataset, a finished flag): one uncompressed, one
Blosc-LZ4 with byte shuffle. The full run uses 1000 frames of 1024x1024
(2 MiB a frame), ``--quick`` 200 frames of 512x512. On each file it times,
in the same run, interleaved over the repeats:

- a swmr_tools ``DataSource`` loop summing each frame, imported from
  swmr_tools 0.9.0 and from ``swmr_roi_ioc.compat.swmr_tools``; on the
  compressed file also with ``use_direct_chunk=True`` (swmr_tools' own
  Blosc fast path);
- a multitables ``Streamer`` loop (``get_queue`` + ``iter()``, 2 processes)
  summing each block, from multitables and from
  ``swmr_roi_ioc.compat.multitables``.

Each case runs, once a round, in a fresh interpreter (``--one``) that
imports only the library under test, so neither library sees the other's
process-wide settings (python-blosc's thread count, for one), and times
the loop three times there (the interpreter's start is not timed). Cases
alternate their order from one round to the next. It prints frames/s
(medians over every timed loop) and, per loop, the ratio ours/theirs.
Every loop's total is checked against numpy on the file. A library that
cannot be imported is reported as such (multitables 2.0.1 fails to import
under numpy 2).
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import h5py
import hdf5plugin
import numpy as np

_OURS = "ours (compat)"
_MULTITABLES = [("multitables", "multitables"), (_OURS, "swmr_roi_ioc.compat.multitables")]


def camera_frames(n: int, shape: tuple[int, int], seed: int = 0) -> list[np.ndarray[Any, Any]]:
    """``n`` distinct detector-like frames: Poisson background and a moving spot."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    frames = []
    for k in range(n):
        cy, cx = shape[0] * (0.3 + 0.4 * k / n), shape[1] * (0.5 + 0.2 * np.sin(k))
        spot = 400.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (shape[0] / 40) ** 2))
        frames.append(rng.poisson(3.0 + spot).astype(np.uint16))
    return frames


def write_file(
    path: Path, frames: int, shape: tuple[int, int] = (512, 512), compressed: bool = True
) -> None:
    """A finished scan file: ``/data`` (one chunk per frame), ``/keys``, ``/finished``."""
    pool = camera_frames(16, shape)
    filters: dict[str, Any] = (
        dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE))
        if compressed
        else {}
    )
    with h5py.File(path, "w", libver="latest") as f:
        ds = f.create_dataset(
            "data",
            shape=(frames, *shape),
            maxshape=(None, *shape),
            dtype=np.uint16,
            chunks=(1, *shape),
            **filters,
        )
        for i in range(frames):
            frame = pool[i % len(pool)].copy()
            frame[0, 0] = i  # every frame differs
            ds[i] = frame
        f.create_dataset("keys", data=np.ones(frames, dtype=np.int32), maxshape=(None,))
        f.create_dataset("finished", data=np.ones(1, dtype=np.int32))


def swmr_tools_loop(lib: ModuleType, path: Path, **options: Any) -> int:
    """The loop a swmr_tools user writes, summing each frame."""
    total = 0
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        df = lib.DataSource(
            [f["/keys"]],
            {"/data": f["/data"]},
            timeout=1,
            finished_dataset=f["/finished"],
            **options,
        )
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


def _direct(lib: ModuleType, path: Path) -> int:
    return swmr_tools_loop(lib, path, use_direct_chunk=True)


_LOOPS: dict[str, Callable[[ModuleType, Path], int]] = {
    "datasource": swmr_tools_loop,
    "datasource-direct": _direct,
    "streamer": multitables_loop,
}


@dataclass
class Case:
    """One loop on one library and one file."""

    loop: str
    library: str
    module: str
    file: str
    run: str  # a key of _LOOPS


def _cases(files: list[str]) -> list[Case]:
    cases: list[Case] = []
    for file in files:
        loops = [("swmr_tools DataSource", "datasource")]
        if file == "blosc":
            loops.append(("swmr_tools DataSource direct", "datasource-direct"))
        for name, loop in loops:
            cases.append(Case(name, "swmr_tools 0.9.0", "swmr_tools", file, loop))
            cases.append(Case(name, _OURS, "swmr_roi_ioc.compat.swmr_tools", file, loop))
        for lib, module in _MULTITABLES:
            cases.append(Case("multitables Streamer", lib, module, file, "streamer"))
    return cases


def _load(name: str) -> ModuleType | str:
    try:
        return importlib.import_module(name)
    except Exception as exc:  # an incompatible install is a result, not a crash
        return f"cannot import {name}: {type(exc).__name__}: {exc}"


def run_one(module: str, loop: str, path: Path, times: int = 3) -> dict[str, Any]:
    """Time one loop ``times`` times in this process: ``{"seconds": [...],
    "total"}`` or ``{"error"}``."""
    lib = _load(module)
    if isinstance(lib, str):
        return {"error": lib}
    seconds: list[float] = []
    totals: set[int] = set()
    for _ in range(times):
        start = time.perf_counter()
        totals.add(_LOOPS[loop](lib, path))
        seconds.append(time.perf_counter() - start)
    if len(totals) != 1:
        return {"error": f"WRONG: totals differ between runs: {sorted(totals)}"}
    return {"seconds": seconds, "total": totals.pop()}


def _run_child(case: Case, path: Path) -> dict[str, Any]:
    """:func:`run_one` in a fresh interpreter."""
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "benchmarks.compat", "--one", case.module, case.run, str(path)]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=900, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"}
    return json.loads(lines[-1])


def run(
    frames: int, repeats: int, workdir: Path, shape: tuple[int, int] = (512, 512)
) -> list[dict[str, Any]]:
    """Time every case ``repeats`` times, interleaved; one row per case."""
    paths = {"none": workdir / "none.h5", "blosc": workdir / "blosc.h5"}
    expected: dict[str, int] = {}
    for name, path in paths.items():
        write_file(path, frames, shape, compressed=name == "blosc")
        with h5py.File(path, "r") as f:
            data = f["data"]
            expected[name] = sum(int(data[i].sum(dtype=np.int64)) for i in range(frames))
    cases = _cases(list(paths))
    times: dict[int, list[float]] = {k: [] for k in range(len(cases))}
    notes: dict[int, str] = {}
    for round_ in range(repeats):
        order = list(enumerate(cases))
        if round_ % 2:
            order.reverse()
        for k, case in order:
            if "cannot import" in notes.get(k, ""):
                continue
            result = _run_child(case, paths[case.file])
            if "error" in result:
                notes[k] = result["error"]
                continue
            times[k].extend(result["seconds"])
            if result["total"] != expected[case.file]:
                notes[k] = f"WRONG total {result['total']} != {expected[case.file]}"
    rows: list[dict[str, Any]] = []
    for k, case in enumerate(cases):
        fps = frames / statistics.median(times[k]) if times[k] else None
        rows.append(
            {
                "loop": case.loop,
                "file": case.file,
                "library": case.library,
                "fps": fps,
                "note": notes.get(k, ""),
            }
        )
    for row in rows:  # ours / theirs, on the ours row
        if row["library"] != _OURS or row["fps"] is None:
            continue
        theirs = [
            r
            for r in rows
            if r["loop"] == row["loop"] and r["file"] == row["file"] and r["library"] != _OURS
        ]
        if theirs and theirs[0]["fps"]:
            row["ratio"] = row["fps"] / theirs[0]["fps"]
    return rows


def print_rows(rows: list[dict[str, Any]], frames: int, shape: tuple[int, int]) -> None:
    print(
        f"compat: {frames} frames {shape[0]}x{shape[1]} uint16, one chunk per frame; "
        "files: none = uncompressed, blosc = Blosc-LZ4 + shuffle"
    )
    print(f"{'loop':30} {'file':6} {'library':18} {'frames/s':>10} {'ours/theirs':>12}  note")
    for row in rows:
        fps = "-" if row["fps"] is None else f"{row['fps']:.0f}"
        ratio = f"{row['ratio']:.2f}x" if "ratio" in row else ""
        print(
            f"{row['loop']:30} {row['file']:6} {row['library']:18} {fps:>10} {ratio:>12}  "
            f"{row['note']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 frames of 512x512")
    parser.add_argument("--frames", type=int, default=None, help="frames (default 1000)")
    parser.add_argument("--size", type=int, default=None, help="frame side (default 1024)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds (default 3)")
    parser.add_argument(
        "--one", nargs=3, metavar=("MODULE", "LOOP", "FILE"), help="time one loop (internal)"
    )
    args = parser.parse_args(argv)
    if args.one:
        module, loop, path = args.one
        print(json.dumps(run_one(module, loop, Path(path))))
        return 0
    frames = args.frames or (200 if args.quick else 1000)
    side = args.size or (512 if args.quick else 1024)
    repeats = args.repeats or 3
    with tempfile.TemporaryDirectory(prefix="compat-bench-") as tmp:
        rows = run(frames, repeats, Path(tmp), (side, side))
    print_rows(rows, frames, (side, side))
    failed = [r for r in rows if r["note"] and not r["note"].startswith("cannot import")]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
