"""The benchmark in one command: ``python -m benchmarks [--quick] [--json out.json]``.

For each file variant (uint8 uncompressed, bitshuffle-LZ4, LZ4, Blosc, and
uint16 uncompressed) it writes a finished simulated NDFileHDF5 file
(``swmr_roi_ioc.sim.write_file``), then times, interleaved over ``--repeats``
rounds, the bounds, the references and our catch-up pipeline on it, and
deletes it. On the uint8 file it also times our pipeline against the ROI
count (1, 4, 16, 64) and ``compute_stats`` alone. It prints frames/s
(medians), the ratios to the bound and to swmr_tools, the CPU other processes
used meanwhile, whether every pipeline computed the same frame totals, and
the performance targets with PASS/MISS; ``--json`` writes it all as JSON.
Then the live parts (``benchmarks/live.py``: the IOC and the writer in their
own processes; latency, backlog, idle CPU, 50 clients) print a table of
their own and add their targets.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import catchup, compute, endtoend, engine_live, live
from benchmarks import compat as compat_bench
from benchmarks.measure import Sample, median_cpu_ms, median_fps, median_other, time_once
from benchmarks.report import Row, Target, live_table, table, targets_table, write_json

VARIANTS = [
    ("uint8", "none"),
    ("uint8", "bslz4"),
    ("uint8", "lz4"),
    ("uint8", "blosc"),
    ("uint16", "none"),
]
ROI_COUNTS = [1, 4, 16, 64]
RETRY_PAUSE = 2.0  # s


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--frames", type=int, default=3000, help="frames per file (default 3000)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 frames, 2 repeats")
    parser.add_argument(
        "--compat",
        action="store_true",
        help="only the swmr_tools/multitables loops on their libraries vs our compat modules",
    )
    parser.add_argument("--repeats", type=int, default=None, help="rounds (default 3; quick 2)")
    parser.add_argument("--shape", type=int, nargs=2, default=(1216, 1936), metavar=("H", "W"))
    parser.add_argument(
        "--max-other", type=float, default=0.25,
        help="retry a sample taken while other processes used more CPU cores than this",
    )  # fmt: skip
    parser.add_argument("--retries", type=int, default=2, help="retries of a busy sample")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--dir", type=Path, default=None, help="where files go (default: RAM)")
    parser.add_argument(
        "--only", choices=["none", "bslz4", "lz4", "blosc", "uint16"], action="append",
        help="measure only these variants (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--no-ioc", action="store_true", help="skip the IOC end-to-end catch-up rows"
    )
    live_group = parser.add_mutually_exclusive_group()
    live_group.add_argument("--no-live", action="store_true", help="skip the live parts")
    live_group.add_argument("--live-only", action="store_true", help="only the live parts")
    live_group.add_argument(
        "--serving", action="store_true",
        help="only serving: 50 CA and 10 PVA clients monitoring every PV at 500 frames/s",
    )  # fmt: skip
    return parser


def _workdir(requested: Path | None, need: int) -> Path:
    """A fresh directory: ``--dir``, else /dev/shm when it has room (files stay in RAM)."""
    if requested is not None:
        requested.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="swmr-bench-", dir=requested))
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > need * 1.2 and _available() > need * 1.6:
        return Path(tempfile.mkdtemp(prefix="swmr-bench-", dir=shm))
    return Path(tempfile.mkdtemp(prefix="swmr-bench-"))


def _available() -> int:
    """Bytes of memory available (MemAvailable): a file in /dev/shm takes RAM."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _write(path: Path, frames: int, shape: tuple[int, int], dtype: str, compression: str) -> float:
    from swmr_roi_ioc.sim import SimOptions, write_file

    t0 = time.perf_counter()
    write_file(
        path,
        SimOptions(frames=frames, rate_hz=0, shape=shape, dtype=dtype, compression=compression),
    )
    return time.perf_counter() - t0


Measure = tuple[str, str, str, Callable[[], Any]]  # key, label, kind, pipeline


def _m(key: str, label: str, kind: str, fn: Callable[..., Any], *args: Any) -> Measure:
    return (key, label, kind, functools.partial(fn, *args))


def _measurements(
    path: Path, frames: int, shape: tuple[int, int], compression: str, swmr_tools: bool
) -> list[Measure]:
    rois = catchup.rois_for(3, shape)
    out: list[Measure] = []
    if compression == "none":
        bound = catchup.bound_read_direct_chunk
        out.append(_m("bound", "bound: read_direct_chunk into a buffer", "bound", bound, path,
                      frames, False))  # fmt: skip
        out.append(_m("bound_total", "bound: read_direct_chunk + numpy total", "bound", bound,
                      path, frames, True))  # fmt: skip
    else:
        bound = catchup.bound_parallel_decompress
        label = f"bound: raw chunk + {compression} decompress, 2 threads"
        out.append(_m("bound", label, "bound", bound, path, frames, compression, False))
        label = f"bound: raw chunk + {compression} decompress + total, 2 thr"
        out.append(_m("bound_total", label, "bound", bound, path, frames, compression, True))
    label = "ref: naive h5py (refresh, dset[i], np.sum)"
    out.append(_m("naive", label, "reference", catchup.naive_h5py, path, frames, rois))
    if swmr_tools:
        label = "ref: swmr_tools DataSource + np.sum"
        fn = catchup.swmr_tools_datasource
        out.append(_m("swmr_tools", label, "reference", fn, path, frames, rois))
    label = "ours: BlockStream + compute_stats (3 ROIs + frame)"
    out.append(_m("ours", label, "ours", catchup.ours_stream, path, frames, rois))
    label = "ours, compute_stats in the consumer thread"
    consumer = functools.partial(catchup.ours_stream, in_workers=False)
    out.append(_m("ours_consumer", label, "ours", consumer, path, frames, rois))
    return out


def _roi_measurements(path: Path, frames: int, shape: tuple[int, int], dtype: str) -> list[Measure]:
    out: list[Measure] = []
    for count in ROI_COUNTS:
        rois = catchup.rois_for(count, shape)
        label = f"ours: BlockStream + compute_stats, {count} ROIs"
        out.append(_m(f"ours_roi{count}", label, "ours", catchup.ours_stream, path, frames, rois))
    for count in ROI_COUNTS:
        rois = catchup.rois_for(count, shape)
        label = f"diag: compute_stats alone in memory, {count} ROIs"
        fn = catchup.stats_in_memory
        out.append(_m(f"stats_roi{count}", label, "diagnostic", fn, shape, dtype, frames, rois))
    return out


@dataclass(frozen=True)
class Settings:
    """How samples are taken: rounds, and how contention is handled."""

    frames: int
    repeats: int
    #: A sample taken while other processes used more CPU cores than this is
    #: retried (up to ``retries`` times); if every try was busy the quietest is kept.
    max_other: float
    retries: int


def _sample(pipeline: Callable[[], Any], settings: Settings) -> tuple[Sample, int]:
    """One sample, retried while the machine is busy; (sample, discarded tries)."""
    tries: list[Sample] = []
    for attempt in range(1 + settings.retries):
        if attempt:
            time.sleep(RETRY_PAUSE)  # let a burst of other work pass
        sample = time_once(pipeline, settings.frames)
        if sample.other_cores is None or sample.other_cores <= settings.max_other:
            return sample, len(tries)
        tries.append(sample)
    quietest = min(tries, key=lambda s: s.other_cores or 0.0)
    return quietest, len(tries) - 1


def _run_group(
    group: str, measures: list[Measure], settings: Settings
) -> tuple[list[Row], dict[str, list[Sample]]]:
    samples: dict[str, list[Sample]] = {key: [] for key, *_ in measures}
    discarded: dict[str, int] = dict.fromkeys(samples, 0)
    for round_ in range(settings.repeats):
        for key, label, _kind, pipeline in measures:
            sample, dropped = _sample(pipeline, settings)
            samples[key].append(sample)
            discarded[key] += dropped
            other = "-" if sample.other_cores is None else f"{sample.other_cores:.2f}"
            print(f"  round {round_ + 1}/{settings.repeats}  {group:<12} {label:<58} "
                  f"{sample.fps:9,.0f} /s  other load {other}"
                  + (f" ({dropped} busy tries discarded)" if dropped else ""),
                  file=sys.stderr, flush=True)  # fmt: skip
    reference = next((s[0].totals for s in samples.values() if s and s[0].totals is not None), None)
    rows: list[Row] = []
    for key, label, kind, _ in measures:
        got = samples[key]
        check = ""
        if got[0].totals is not None and reference is not None:
            same = all(s.totals is not None and np.array_equal(s.totals, reference) for s in got)
            check = "totals ok" if same else "TOTALS DIFFER"
        busy = sum(1 for s in got if (s.other_cores or 0.0) > settings.max_other)
        note = f"{busy}/{len(got)} samples on a busy machine" if busy else ""
        if discarded[key]:
            note = f"{note}; " if note else ""
            note += f"{discarded[key]} busy tries retried"
        rows.append(Row(group, key, label, kind, median_fps(got), [s.fps for s in got],
                        median_other(got), median_cpu_ms(got), check=check, note=note))  # fmt: skip
    by_key = {r.key: r for r in rows}
    bound = by_key.get("bound")
    ref = by_key.get("swmr_tools")
    for row in rows:
        if row.fps is None or row.kind == "diagnostic":
            continue
        if bound is not None and bound.fps:
            row.vs_bound = row.fps / bound.fps
        if ref is not None and ref.fps:
            row.vs_swmr_tools = row.fps / ref.fps
    return rows, samples


def _ioc_row(
    group: str, path: Path, frames: int, shape: tuple[int, int], group_rows: list[Row]
) -> Row:
    """The IOC end to end on the same file, once (file -> ArrayCounter_RBV over CA)."""
    label = "ours: the IOC end to end (file -> ArrayCounter_RBV, CA)"
    print(f"  {group:<12} {label} ...", file=sys.stderr, flush=True)
    try:
        got = endtoend.ioc_catchup(path, frames, catchup.rois_for(3, shape))
    except Exception as exc:  # a failing part is a row saying why
        return Row(group, "ioc", label, "ours", note=f"failed: {exc}")
    note = got.note
    if got.first_s is not None:
        note = (f"{note}; " if note else "") + f"first update {got.first_s:.2f} s after the link"
    if not got.complete:
        note += "; NOT every frame counted"
    row = Row(group, "ioc", label, "ours", got.fps, [got.fps] if got.fps else [],
              note=note.strip("; "))  # fmt: skip
    by_key = {r.key: r for r in group_rows}
    if got.fps and (bound := by_key.get("bound")) and bound.fps:
        row.vs_bound = got.fps / bound.fps
    if got.fps and (ref := by_key.get("swmr_tools")) and ref.fps:
        row.vs_swmr_tools = got.fps / ref.fps
    print(f"  {group:<12} {label} {got.fps or 0:9,.0f} /s  {note}", file=sys.stderr, flush=True)
    return row


def _versions() -> dict[str, str]:
    import h5py
    import hdf5plugin

    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "h5py": h5py.version.version,
        "hdf5": h5py.version.hdf5_version,
        "hdf5plugin": hdf5plugin.version,
    }
    for name in ("swmr_tools", "blosc", "dectris.compression"):
        try:
            from importlib.metadata import version

            dist = {"dectris.compression": "dectris-compression", "swmr_tools": "swmr-tools"}
            versions[name] = version(dist.get(name, name))
        except Exception:
            versions[name] = "unavailable"
    return versions


def _targets(rows: list[Row]) -> list[Target]:
    def fps(group: str, key: str) -> float | None:
        return next((r.fps for r in rows if r.group == group and r.key == key), None)

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else a / b

    ours8 = fps("uint8 none", "ours")
    bslz4 = ratio(fps("uint8 bslz4", "ours"), fps("uint8 bslz4", "bound"))
    rois = ratio(fps("ROI count", "ours_roi4"), fps("ROI count", "ours_roi64"))
    targets = [
        Target(
            "catch-up uint8: ours / memcpy-like bound",
            ratio(ours8, fps("uint8 none", "bound")),
            0.6,
            ">=",
        ),  # fmt: skip
        Target(
            "catch-up uint8: ours / swmr_tools",
            ratio(ours8, fps("uint8 none", "swmr_tools")),
            2.5,
            ">=",
        ),  # fmt: skip
        Target("bitshuffle-LZ4: ours / parallel-decompression bound", bslz4, 0.8, ">="),
        Target("cost of 64 ROIs / cost of 4 ROIs (ours, per frame)", rois, 2.0, "<="),
    ]
    # the IOC end to end (worker processes, statistics over CA)
    for group in ("uint8 none", "uint16 none"):
        ioc = fps(group, "ioc")
        name = f"catch-up {group.split()[0]}, IOC end to end"
        targets.append(Target(f"{name} / read_direct_chunk bound", ratio(ioc, fps(group, "bound")),
                              1.0, ">="))  # fmt: skip
        targets.append(Target(f"{name} / swmr_tools", ratio(ioc, fps(group, "swmr_tools")),
                              5.0, ">="))  # fmt: skip
    targets.append(Target("bitshuffle-LZ4, IOC end to end / 2-thread decompression bound",
                          ratio(fps("uint8 bslz4", "ioc"), fps("uint8 bslz4", "bound")),
                          1.0, ">="))  # fmt: skip
    stats4, stats64 = fps("ROI count", "stats_roi4"), fps("ROI count", "stats_roi64")
    if stats4 and stats64:
        targets[-1].detail = f"(compute_stats alone: {stats4 / stats64:.2f}x)"
    return targets


def _serving(*, quick: bool) -> int:
    """The serving parts alone: their rows and targets; 1 if a part failed to run."""
    from benchmarks import serving

    rows, targets, ran = serving.run(window=10.0 if quick else serving.WINDOW_S)
    print("\nServing")
    for row in rows:
        print(f"  {row.group:<15} {row.label:<48} {row.text:<22} {row.note}")
    print("\nTargets")
    for target in targets:
        print(f"  {target.status:<5} {target.name}: {target.measured} ({target.better} "
              f"{target.threshold:g})")  # fmt: skip
    return 0 if ran else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.serving:
        return _serving(quick=args.quick)
    if args.compat:
        return compat_bench.main(["--quick"] if args.quick else [])
    frames = 100 if args.quick and args.frames == 3000 else args.frames
    repeats = args.repeats or (2 if args.quick else 3)
    shape = (int(args.shape[0]), int(args.shape[1]))
    settings = Settings(frames, repeats, args.max_other, args.retries)
    variants = [] if args.live_only else VARIANTS
    if args.only and not args.live_only:
        variants = [v for v in VARIANTS if (v[1] if v[0] == "uint8" else v[0]) in args.only]
    largest = (
        max((np.dtype(d).itemsize for d, _ in variants), default=1) * frames * shape[0] * shape[1]
    )
    workdir = _workdir(args.dir, largest)
    swmr_tools_error = catchup.swmr_tools_available()
    print(f"swmr-roi-ioc benchmark: {frames} frames {shape[0]}x{shape[1]}, {repeats} rounds, "
          f"{os.cpu_count()} CPUs, files in {workdir}", file=sys.stderr)  # fmt: skip
    if swmr_tools_error:
        print(f"swmr_tools unavailable ({swmr_tools_error}): its rows are skipped", file=sys.stderr)
    rows: list[Row] = []
    written: dict[str, float] = {}
    t_start = time.perf_counter()
    try:
        for dtype, compression in variants:
            group = f"{dtype} {compression}"
            path = workdir / f"{dtype}_{compression}.h5"
            written[group] = _write(path, frames, shape, dtype, compression)
            print(f"wrote {path.name} in {written[group]:.1f} s", file=sys.stderr, flush=True)
            measures = _measurements(path, frames, shape, compression, swmr_tools_error is None)
            group_rows, _ = _run_group(group, measures, settings)
            rows += group_rows
            if not args.no_ioc:
                rows.append(_ioc_row(group, path, frames, shape, group_rows))
            if (dtype, compression) == ("uint8", "none"):
                roi_measures = _roi_measurements(path, frames, shape, dtype)
                roi_rows, _ = _run_group("ROI count", roi_measures, settings)
                rows += roi_rows
            path.unlink()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if swmr_tools_error and variants:
        rows.append(Row("references", "swmr_tools", "ref: swmr_tools DataSource", "reference",
                        note=f"unavailable: {swmr_tools_error}"))  # fmt: skip
    targets = _targets(rows) if variants else []
    compute_rows: list[Row] = []
    if not args.live_only:  # the statistics kernel and the publish snapshot, no I/O
        compute_rows, compute_targets = compute.run(shape, args.quick)
        targets += compute_targets
    live_rows: list[Row] = []
    if not args.no_live:
        live_rows, live_targets = live.run(live.LiveContext(workdir, shape, args.quick))
        targets += live_targets
        catchup8 = next((r.fps for r in rows if r.group == "uint8 none" and r.key == "ioc"), None)
        more_rows, more_targets = engine_live.run(workdir, shape, args.quick, catchup8)
        live_rows += more_rows
        targets += more_targets
    elapsed = time.perf_counter() - t_start
    if rows:
        print()
        print(f"Catch-up on a finished file, {frames} frames {shape[0]}x{shape[1]}, median of "
              f"{repeats} rounds (frames/s; cpu ms/f = CPU time of all our threads per frame; "
              "'other load' = CPU cores used by other processes meanwhile)")  # fmt: skip
        print()
        print(table(rows))
    if live_rows:
        print()
        print(f"Live: the writer and the IOC in their own processes, frames {shape[0]}x{shape[1]} "
              "uint8 unless noted (latencies from the writer's flush, in ms)")  # fmt: skip
        print()
        print(live_table(live_rows))
    rows += live_rows + compute_rows
    print()
    print("Targets:")
    print(targets_table(targets))
    print(f"\n{elapsed:.0f} s in all")
    if args.json is not None:
        doc = {
            "frames": frames, "shape": shape, "repeats": repeats, "cpus": os.cpu_count(),
            "max_other_cores": settings.max_other, "retries": settings.retries,
            "platform": platform.platform(), "versions": _versions(),
            "write_seconds": written, "elapsed_seconds": elapsed,
        }  # fmt: skip
        write_json(args.json, doc, rows, targets)
        print(f"wrote {args.json}")
    return _exit_code(rows)


def _exit_code(rows: list[Row]) -> int:
    """1 if any part failed to run (its targets are then unmeasured), else 0."""
    failed = [r for r in rows if r.text == "failed"]
    for row in failed:
        print(f"FAILED to run: {row.group}: {row.note}", file=sys.stderr)
    return 1 if failed else 0
