"""Live parts of the engine's targets: the IOC running, as in ``live.py``.

- live 10 Hz: the writer at 10 Hz and ``publish.rate_hz`` 10 (the shipped
  config): flush -> camonitor arrival for every frame, and flush -> stats
  computed (the ``ArrayCounter_RBV`` stamp). Target: flush -> camonitor p99
  at most 20 ms (a frame is published at once: the last publish is older
  than a period).
- recompute while live: the writer first writes ``burst`` large frames flat
  out (``simulate --burst``), then goes on at 100 Hz. The file is then linked
  to the path the IOC waits for: the IOC catches up on the burst while the
  writer goes on (its catch-up rate, from the ``ArrayCounter_RBV`` stamps),
  then follows live. Once it is caught up ROI 1 is moved (``caput
  1:MinX``): every frame so far is read again and ROI 1 recomputed, by every
  worker, while the 100 Hz frames keep coming. The recompute rate is the
  frames recomputed over the time from the put to ``RecomputeProgress_RBV``
  reaching 100 (camonitor's arrival times); the live lag is the largest
  ``FramesWritten_RBV - ArrayCounter_RBV`` meanwhile, as time at the
  writer's rate. Afterwards ``1:TSTotal`` (as long as the acquisition) is
  compared with numpy for every frame. Targets: recompute rate at least
  0.5 x the catch-up rate; the live counter never more than 1 s behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.epics_env import epics_bin
from benchmarks.live import (
    PREFIX,
    Part,
    _caget,
    _camonitor_events,
    _config,
    _dist_text,
    _dist_values,
    _Event,
    _flushes,
    _latency,
    _parse_waveform,
    _pct,
    _processes,
    _row,
    _run_writer,
    _start_ioc,
    _wait_counter,
    _writer_args,
    _writer_rate,
    run_parts,
)
from benchmarks.report import Row, Target
from swmr_roi_ioc.stats import Roi, clamp_roi

RECOMPUTE_RATIO = 0.5
LAG_LIMIT_MS = 1000.0
LIVE10_TARGET_MS = 20.0
#: where ROI 1 moves for the recompute (columns)
MOVE_BY = 100


def _live10(data: Path, env: dict[str, str], shape: tuple[int, int], quick: bool) -> tuple[
        list[Row], list[Target]]:  # fmt: skip
    config, doc = _config(data, "live10.h5")
    doc["publish"]["rate_hz"] = 10.0
    config.write_text(json.dumps(doc, indent=2) + "\n")
    group = "live 10 Hz"
    log, cam_out, flush_log = data / "live10.log", data / "live10.cam", data / "live10.flush"
    frames = 100 if quick else 300
    with _processes(env) as procs:
        _start_ioc(procs, config, log)
        pvs = [f"{PREFIX}{n}" for n in ("ArrayCounter_RBV", "FramesWritten_RBV")]
        with cam_out.open("w") as out:
            procs.start([epics_bin("camonitor"), "-tsc", *pvs], stdout=out)
        time.sleep(1.0)
        args = _writer_args(data / "live10.h5", frames, 10.0, shape, flush_log)
        _run_writer(procs, args, timeout=frames / 10.0 * 3 + 60)
        _wait_counter(frames, env, 60)
        time.sleep(0.5)
    flush = _flushes(flush_log)
    lat = _latency(_camonitor_events(cam_out), flush, warmup_s=1.0)
    note = f"writer {_writer_rate(flush):.1f} frames/s, {frames} frames; rate_hz 10"
    rows = [
        _row(group, "live10_stats", "flush -> stats computed (ArrayCounter_RBV stamp)",
             _dist_text(lat.stats_ms), _dist_values(lat.stats_ms)),
        _row(group, "live10_camonitor", "flush -> camonitor arrival, every frame",
             _dist_text(lat.camonitor_ms), _dist_values(lat.camonitor_ms), note=note),
    ]  # fmt: skip
    target = Target("live 10 Hz, rate_hz 10: flush -> camonitor p99 (ms)",
                    _pct(lat.camonitor_ms, 99), LIVE10_TARGET_MS, "<=")  # fmt: skip
    return rows, [target]


def _rate_between(events: list[_Event], pv: str, low: int, high: int) -> float | None:
    """Frames/s of ``pv`` (a counter) from its first update above ``low`` to its
    first at or above ``high``, by the updates' own stamps."""
    updates = [(int(float(e.value)), e.stamp) for e in events if e.pv == pv]
    first = next((u for u in updates if u[0] > low), None)
    last = next((u for u in updates if u[0] >= high), None)
    if first is None or last is None or last[1] <= first[1]:
        return None
    return (last[0] - first[0]) / (last[1] - first[1])


def _wait_flushed(flush_log: Path, frames: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if flush_log.exists():
            lines = flush_log.read_text().split()
            if len(lines) >= 2 and int(lines[-2]) >= frames:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the writer did not write {frames} frames in {timeout:g} s")


def _recompute(data: Path, env: dict[str, str], shape: tuple[int, int], quick: bool,
               catchup_fps: float | None) -> tuple[list[Row], list[Target]]:  # fmt: skip
    burst, more = (300, 1000) if quick else (3000, 3000)
    frames = burst + more
    config, doc = _config(data, "followed.h5")
    doc["publish"]["time_series_length"] = frames
    doc["scan"]["shape"] = None
    config.write_text(json.dumps(doc, indent=2) + "\n")
    group = "recompute while live"
    log, cam_out, flush_log = data / "recompute.log", data / "recompute.cam", data / "rc.flush"
    raw, followed = data / "written.h5", data / "followed.h5"
    roi = doc["rois"][0]
    new_x = roi["x"] + MOVE_BY
    with _processes(env) as procs:
        _start_ioc(procs, config, log)
        pvs = [f"{PREFIX}{n}" for n in
               ("ArrayCounter_RBV", "FramesWritten_RBV", "RecomputeProgress_RBV")]  # fmt: skip
        with cam_out.open("w") as out:
            procs.start([epics_bin("camonitor"), "-tsc", *pvs], stdout=out)
        time.sleep(1.0)
        args = [*_writer_args(raw, frames, 100.0, shape, flush_log), "--burst", str(burst)]
        writer = procs.start(args, stderr=subprocess.DEVNULL)
        _wait_flushed(flush_log, burst, 600)
        os.link(raw, followed)  # a file already long, still written at 100 Hz
        # caught up: within a few frames of the writer
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            counter = float(_caget(f"{PREFIX}ArrayCounter_RBV", env) or 0)
            written = float(_caget(f"{PREFIX}FramesWritten_RBV", env) or 0)
            if counter >= burst and written - counter <= 20:
                break
            time.sleep(0.2)
        time.sleep(1.0)
        put_at = time.time()
        subprocess.run([epics_bin("caput"), f"{PREFIX}1:MinX", str(new_x)], env=env,
                       capture_output=True, check=True, timeout=30)  # fmt: skip
        deadline = time.monotonic() + 600
        done = False
        while time.monotonic() < deadline and not done:
            time.sleep(0.2)
            done = any(e.pv.endswith("RecomputeProgress_RBV") and e.arrival > put_at
                       and float(e.value) >= 100 for e in _camonitor_events(cam_out)
                       if e.arrival > put_at + 0.05)  # fmt: skip
        if writer.wait(timeout=frames / 100.0 + 120) != 0:
            raise RuntimeError("the writer failed")
        counter, _ = _wait_counter(frames, env, 120)
        time.sleep(0.5)
        series = _parse_waveform(_caget(f"{PREFIX}1:TSTotal", env, "-f", "1"))
    events = _camonitor_events(cam_out)
    flush = _flushes(flush_log)
    catchup = _rate_between(events, f"{PREFIX}ArrayCounter_RBV", 0, burst)
    progress = [e for e in events if e.pv.endswith("RecomputeProgress_RBV") and e.arrival > put_at]
    end = next((e for e in progress if float(e.value) >= 100 and e.arrival > put_at + 0.05), None)
    if end is None:
        raise RuntimeError("RecomputeProgress_RBV never reached 100")
    # frames recomputed: every frame counted by the time the recompute caught up
    counted = max((int(float(e.value)) for e in events
                   if e.pv.endswith("ArrayCounter_RBV") and e.arrival <= end.arrival),
                  default=0)  # fmt: skip
    recompute_fps = counted / (end.arrival - put_at)
    lag, counted_now, written_now = 0, 0, 0
    for e in events:
        if e.pv.endswith("ArrayCounter_RBV"):
            counted_now = int(float(e.value))
        elif e.pv.endswith("FramesWritten_RBV"):
            written_now = int(float(e.value))
        if put_at <= e.arrival <= end.arrival:
            lag = max(lag, written_now - counted_now)
    writer_live = (len(flush) - 1 - burst) / (flush[-1] - flush[burst + 1])
    lag_ms = 1e3 * lag / writer_live
    exact = "unreadable"
    if series is not None and series.size >= frames:
        import h5py

        with h5py.File(raw, "r", libver="latest", swmr=True, locking=False) as f:
            dset = f["/entry/instrument/detector/data"]
            # clamped to the frame as NDPluginROIStat does (a small --shape)
            c = clamp_roi(Roi(new_x, roi["y"], roi["width"], roi["height"]), shape)
            x, y, w, h = c.x, c.y, c.width, c.height
            want = np.array([float(np.asarray(dset[i, y : y + h, x : x + w]).sum(
                dtype=np.uint64)) for i in range(frames)])  # fmt: skip
        wrong = int(np.count_nonzero(series[:frames] != want))
        exact = "every frame equals numpy" if wrong == 0 else f"{wrong} FRAMES DIFFER"
    note = (f"{frames} frames {shape[0]}x{shape[1]} uint8: {burst} written flat out, then "
            f"{writer_live:.0f} frames/s; {counted} frames recomputed in "
            f"{end.arrival - put_at:.1f} s")  # fmt: skip
    ref = f"catch-up {catchup:,.0f} /s" if catchup else "catch-up unmeasured"
    if catchup_fps:
        ref += f" (IOC end to end on a finished file: {catchup_fps:,.0f} /s)"
    rows = [
        _row(group, "recompute_rate", "ROI 1 moved: frames recomputed /s, 100 Hz live meanwhile",
             f"{recompute_fps:,.0f} /s; {ref}",
             {"recompute_fps": recompute_fps, "catchup_fps": catchup or 0.0,
              "frames": counted}, note=note, check=exact),
        _row(group, "recompute_lag", "live counter behind the writer during the recompute",
             f"max {lag} frames = {lag_ms:.0f} ms", {"lag_frames": lag, "lag_ms": lag_ms},
             note=f"ArrayCounter {int(counter)} of {frames} at the end"),
    ]  # fmt: skip
    ratio = recompute_fps / catchup if catchup else None
    targets = [
        Target("recompute while live: recompute rate / catch-up rate", ratio, RECOMPUTE_RATIO,
               ">=", ref),
        Target("recompute while live: live counter behind (ms)", lag_ms, LAG_LIMIT_MS, "<="),
    ]  # fmt: skip
    if exact != "every frame equals numpy":
        targets[0].detail += f"; {exact}"
    return rows, targets


PARTS: list[tuple[str, list[tuple[str, float, str]]]] = [
    ("live 10 Hz", [("live 10 Hz, rate_hz 10: flush -> camonitor p99 (ms)", LIVE10_TARGET_MS,
                     "<=")]),
    ("recompute while live", [
        ("recompute while live: recompute rate / catch-up rate", RECOMPUTE_RATIO, ">="),
        ("recompute while live: live counter behind (ms)", LAG_LIMIT_MS, "<=")]),
]  # fmt: skip


def run(workdir: Path, shape: tuple[int, int], quick: bool,
        catchup_fps: float | None = None) -> tuple[list[Row], list[Target]]:  # fmt: skip
    """Both parts; a part that fails gives a row saying why (its targets N/A)."""

    def parts(data: Path, env: dict[str, str]) -> list[Part]:
        return [
            lambda: _live10(data, env, shape, quick),
            lambda: _recompute(data, env, shape, quick, catchup_fps),
        ]

    return run_parts("swmr-engine-", PARTS, parts, workdir)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from benchmarks.report import live_table, targets_table

    parser = argparse.ArgumentParser(prog="python -m benchmarks.engine_live", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer frames")
    parser.add_argument("--shape", type=int, nargs=2, default=(1216, 1936), metavar=("H", "W"))
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="swmr-bench-", dir="/dev/shm"))
    try:
        rows, targets = run(workdir, (int(args.shape[0]), int(args.shape[1])), args.quick)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(live_table(rows))
    print(targets_table(targets))
    return 1 if any(r.text == "failed" for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
