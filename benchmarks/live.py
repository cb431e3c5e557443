"""Live, latency, idle and many-client measurements: the IOC running.

Everything runs as separate processes on loopback with private EPICS ports:
the simulated NDFileHDF5 writer (``python -m swmr_roi_ioc simulate``), the
IOC (``python -m swmr_roi_ioc run``, the shipped ``ioc/ioc.yaml`` with
``source.file`` pointed at the writer's file) and real libca clients. Each
part starts its own IOC.

- live 100 Hz: the writer at 100 Hz, frames of the benchmark's shape (uint8),
  logs the wall-clock time of every flush (``--flush-log``). The IOC stamps
  ``ArrayCounter_RBV`` and the statistics with the time they were computed;
  EPICS base ``camonitor -tsc`` prints that stamp and its own arrival time.
  flush -> stats: stamp of each update minus the flush of its newest frame
  (one sample per published update); flush -> camonitor: for every frame,
  the arrival of the first update whose counter includes it minus its flush
  (so the publish period, 1/rate_hz, is part of it). The first second of
  frames (the IOC opening the file) is left out of the percentiles and its
  worst case reported. Backlog: the largest ``FramesWritten_RBV -
  ArrayCounter_RBV`` camonitor saw.
- idle: then the writer is done, ``source.timeout`` is an hour, so the IOC is
  still Following: its CPU (utime + stime of ``/proc/PID/stat``) over 20 s
  (``--quick``) or 60 s.
- live max rate: the writer flat out (``--rate 0``). Frames skipped: written
  minus the final ``ArrayCounter_RBV``, plus every entry of the ``TSTotal``
  arrays (each ROI and the frame, read with ``caget``) that differs from
  numpy's sums over the file. Backlog: its largest value while writing and
  how long the IOC took to drain it after the writer closed.
- 50 clients: the writer at 500 Hz with 256 x 320 frames, 50 client
  processes (``benchmarks.live_client``, libca through ctypes) each
  monitoring every PV of the IOC; per client the updates/s of
  ``ArrayCounter_RBV`` and ``1:Total_RBV`` while frames arrive, against
  ``publish.rate_hz``; and the caproto warnings in the IOC's log ("High
  load. Dropped N responses", "Dropping all queued responses", "large
  backlog").

``run(ctx)`` returns rows and targets like ``catchup``; a part that fails
returns a row saying why and leaves its targets N/A.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.epics_env import epics_bin, loopback_env
from benchmarks.report import Row, Target

REPO = Path(__file__).resolve().parents[1]
SHIPPED_CONFIG = REPO / "ioc" / "ioc.yaml"
PREFIX = "BENCH:ROI:"
#: caproto 1.3.0's warnings when it drops monitor updates (server/common.py).
DROP_PATTERNS = ("Dropped", "Dropping all queued responses", "large backlog")
HIGH_LOAD = "High load"
CLIENTS = 50
BEHIND = "live max rate: backlog bounded: max backlog as ms of writing"
CLIENT_RATE_HZ = 500.0
CLIENT_SHAPE = (256, 320)
_STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)"
#: ``camonitor -tsc``: name, server stamp, (client arrival), value
_CAMONITOR_LINE = re.compile(rf"^(\S+)\s+{_STAMP}\({_STAMP}\)\s+(\S+)")


@dataclass
class LiveContext:
    """What the live measurements get from ``run.py``."""

    workdir: Path
    shape: tuple[int, int]
    quick: bool


@dataclass
class _Plan:
    live_frames: int
    max_frames: int
    idle_s: float
    clients_window_s: float


def _plan(quick: bool) -> _Plan:
    if quick:
        return _Plan(live_frames=500, max_frames=300, idle_s=20.0, clients_window_s=10.0)
    return _Plan(live_frames=2000, max_frames=2000, idle_s=60.0, clients_window_s=30.0)


# -- processes and EPICS environment -------------------------------------------


class _Procs:
    """Processes started by one part; stopped (SIGTERM, then SIGKILL) in reverse order."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.started: list[subprocess.Popen[Any]] = []

    def start(self, args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(args, env=self.env, **kwargs)
        self.started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.started):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for proc in self.started:
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


@contextmanager
def _processes(env: dict[str, str]) -> Iterator[_Procs]:
    procs = _Procs(env)
    try:
        yield procs
    finally:
        procs.stop_all()


def _caget(pv: str, env: dict[str, str], *options: str) -> str | None:
    out = subprocess.run(
        [epics_bin("caget"), "-w", "2", "-t", *options, pv],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def _caget_number(pv: str, env: dict[str, str]) -> float | None:
    text = _caget(pv, env)
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def _wait_pv(pv: str, env: dict[str, str], ok: Any, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = _caget(pv, env)
        if last is not None and ok(last):
            return last
        time.sleep(0.2)
    raise RuntimeError(f"{pv} never satisfied the condition in {timeout:g} s (last {last!r})")


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the IOC and the writer ----------------------------------------------------


def _config(data: Path, file: str) -> tuple[Path, dict[str, Any]]:
    """The shipped ioc.yaml following ``data/file`` (timeout 1 h, so it stays Following)."""
    from swmr_roi_ioc.config import load_config

    doc = load_config(SHIPPED_CONFIG).model_dump(mode="json")
    doc["ioc_name"] = "benchmark"
    doc["prefix"] = PREFIX
    doc["data_root"] = str(data)
    doc["source"].update(file=file, plugin_prefix=None, timeout=3600.0)
    doc["screens_dir"] = None
    path = data / f"{Path(file).stem}.yaml"
    path.write_text(json.dumps(doc, indent=2) + "\n")  # JSON is YAML
    return path, doc


def _start_ioc(procs: _Procs, config: Path, log: Path) -> subprocess.Popen[Any]:
    with log.open("w") as err:
        ioc = procs.start(
            [sys.executable, "-m", "swmr_roi_ioc", "--log-level", "WARNING", "run", str(config)],
            stderr=err,
        )
    _wait_pv(f"{PREFIX}Status_RBV", procs.env, lambda v: v == "Waiting", 90)
    return ioc


def _writer_args(out: Path, frames: int, rate: float, shape: tuple[int, int],
                 flush_log: Path) -> list[str]:  # fmt: skip
    return [
        sys.executable, "-m", "swmr_roi_ioc", "--log-level", "WARNING", "simulate", str(out),
        "--frames", str(frames), "--rate", str(rate), "--shape", str(shape[0]), str(shape[1]),
        "--dtype", "uint8", "--flush-log", str(flush_log),
    ]  # fmt: skip


def _run_writer(procs: _Procs, args: list[str], timeout: float) -> None:
    writer = procs.start(args, stderr=subprocess.PIPE, text=True)
    try:
        _, err = writer.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        procs.stop(writer)
        raise RuntimeError(f"the writer did not finish in {timeout:g} s") from None
    if writer.returncode != 0:
        raise RuntimeError(f"the writer failed ({writer.returncode}): {err[-500:]}")


def _flushes(path: Path) -> np.ndarray:
    """``t[n]`` = POSIX time at which n frames were visible (t[0] = NaN)."""
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    flushes = [(int(n), float(t)) for n, t in lines]
    when = np.full(max(n for n, _ in flushes) + 1, np.nan)
    shown = 0
    for n, t in flushes:  # in order: the first flush that showed a frame counts
        if n > shown:
            when[shown + 1 : n + 1] = t
            shown = n
    return when


def _wait_counter(frames: int, env: dict[str, str], timeout: float) -> tuple[float, float]:
    """Wait until ArrayCounter_RBV reaches ``frames``; (its value, seconds waited)."""
    t0 = time.monotonic()
    counter = 0.0
    while time.monotonic() - t0 < timeout:
        counter = _caget_number(f"{PREFIX}ArrayCounter_RBV", env) or 0.0
        if counter >= frames:
            break
        time.sleep(0.1)
    return counter, time.monotonic() - t0


def _log_warnings(log: Path) -> tuple[list[str], list[str]]:
    """(caproto 'dropped' lines, other 'High load' lines) of an IOC log."""
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    dropped = [line for line in text if any(p in line for p in DROP_PATTERNS)]
    load = [line for line in text if HIGH_LOAD in line and line not in dropped]
    return dropped, load


# -- camonitor -----------------------------------------------------------------


@dataclass
class _Event:
    pv: str
    stamp: float  # the PV's timestamp (server)
    arrival: float  # camonitor's own clock when the update arrived
    value: str


def _posix(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()


def _camonitor_events(path: Path) -> list[_Event]:
    events = []
    for line in path.read_text(errors="replace").splitlines():
        m = _CAMONITOR_LINE.match(line)
        if m:
            events.append(_Event(m[1], _posix(m[2]), _posix(m[3]), m[4]))
    return events


@dataclass
class _Latency:
    stats_ms: np.ndarray  # flush -> stats computed, one per published update
    camonitor_ms: np.ndarray  # flush -> arrival, every frame
    warmup_stats_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    warmup_camonitor_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    backlog_max: int = 0  # after the warm-up
    backlog_max_all: int = 0
    counter_final: int = 0
    stamp_before_flush: int = 0  # updates stamped before their frame's flush (must be 0)
    stamp_after_arrival: int = 0  # updates stamped after they arrived (must be 0)


def _latency(events: list[_Event], flush: np.ndarray, warmup_s: float) -> _Latency:
    frames = len(flush) - 1
    counter_pv, written_pv = f"{PREFIX}ArrayCounter_RBV", f"{PREFIX}FramesWritten_RBV"
    updates = [(int(float(e.value)), e.stamp, e.arrival) for e in events if e.pv == counter_pv]
    updates = [u for u in updates if 0 < u[0] <= frames]
    steady_from = flush[1] + warmup_s
    stats, stats_warm, before, after = [], [], 0, 0
    for counter, stamp, arrival in updates:
        ms = 1e3 * (stamp - flush[counter])
        (stats if flush[counter] >= steady_from else stats_warm).append(ms)
        before += stamp < flush[counter]
        after += stamp > arrival
    cam = np.full(frames + 1, np.nan)
    shown = 0
    for counter, _, arrival in updates:
        if counter > shown:
            cam[shown + 1 : counter + 1] = 1e3 * (arrival - flush[shown + 1 : counter + 1])
            shown = counter
    steady = flush >= steady_from
    counted, written, backlog, backlog_all = 0, 0, 0, 0
    for e in events:
        if e.pv == counter_pv:
            counted = int(float(e.value))
        elif e.pv == written_pv:
            written = int(float(e.value))
        backlog_all = max(backlog_all, written - counted)
        if e.arrival >= steady_from:
            backlog = max(backlog, written - counted)
    return _Latency(
        stats_ms=np.asarray(stats),
        camonitor_ms=cam[steady & np.isfinite(cam)],
        warmup_stats_ms=np.asarray(stats_warm),
        warmup_camonitor_ms=cam[~steady & np.isfinite(cam)],
        backlog_max=backlog,
        backlog_max_all=backlog_all,
        counter_final=max((u[0] for u in updates), default=0),
        stamp_before_flush=before,
        stamp_after_arrival=after,
    )


def _pct(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if values.size else None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _dist_text(values: np.ndarray) -> str:
    return (f"p50 {_ms(_pct(values, 50))} ms  p99 {_ms(_pct(values, 99))} ms  "
            f"max {_ms(_pct(values, 100))} ms  (n={values.size})")  # fmt: skip


def _dist_values(values: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {"n": float(values.size)}
    for name, q in (("p50_ms", 50), ("p99_ms", 99), ("max_ms", 100)):
        v = _pct(values, q)
        if v is not None:
            out[name] = v
    return out


def _writer_rate(flush: np.ndarray) -> float:
    span = flush[-1] - flush[1]
    return (len(flush) - 2) / span if span > 0 else float("nan")


# -- the parts -----------------------------------------------------------------


def _live100(
    data: Path, env: dict[str, str], shape: tuple[int, int], plan: _Plan
) -> tuple[list[Row], list[Target]]:
    config, doc = _config(data, "live100.h5")
    rate_hz = float(doc["publish"]["rate_hz"])
    group = "live 100 Hz"
    log, cam_out, flush_log = data / "live100.log", data / "live100.cam", data / "live100.flush"
    with _processes(env) as procs:
        ioc = _start_ioc(procs, config, log)
        pvs = [f"{PREFIX}{n}" for n in ("ArrayCounter_RBV", "FramesWritten_RBV", "1:Total_RBV")]
        with cam_out.open("w") as out:
            procs.start([epics_bin("camonitor"), "-tsc", *pvs], stdout=out)
        time.sleep(1.0)
        cpu0, t0 = _cpu_seconds(ioc.pid), time.monotonic()
        frames = plan.live_frames
        args = _writer_args(data / "live100.h5", frames, 100.0, shape, flush_log)
        _run_writer(procs, args, timeout=frames / 100.0 * 10 + 60)
        counter, _ = _wait_counter(frames, env, 60)
        ioc_cores = (_cpu_seconds(ioc.pid) - cpu0) / (time.monotonic() - t0)
        time.sleep(2.0 / rate_hz + 0.5)  # the last update reaches camonitor
        flush = _flushes(flush_log)
        lat = _latency(_camonitor_events(cam_out), flush, warmup_s=1.0)
        # idle: the file stopped growing, the IOC still Following
        status = _caget(f"{PREFIX}Status_RBV", env)
        idle = _idle(ioc.pid, plan.idle_s)
        status_after = _caget(f"{PREFIX}Status_RBV", env)
    dropped, load = _log_warnings(log)
    writer_rate = _writer_rate(flush)
    note = (f"writer {writer_rate:.1f} frames/s, {frames} frames {shape[0]}x{shape[1]} uint8; "
            f"rate_hz {rate_hz:g}; IOC {ioc_cores:.2f} cores")  # fmt: skip
    checks = []
    if lat.stamp_before_flush or lat.stamp_after_arrival:
        checks.append(f"STAMPS WRONG: {lat.stamp_before_flush} before the flush, "
                      f"{lat.stamp_after_arrival} after arrival")  # fmt: skip
    warm = (f"first 1 s (file opening) left out: worst {_ms(_pct(lat.warmup_stats_ms, 100))} / "
            f"{_ms(_pct(lat.warmup_camonitor_ms, 100))} ms")  # fmt: skip
    rows = [
        _row(group, "live100_stats", "flush -> stats computed (ArrayCounter_RBV stamp)",
             _dist_text(lat.stats_ms), _dist_values(lat.stats_ms), note=warm,
             check="; ".join(checks)),
        _row(group, "live100_camonitor", "flush -> camonitor arrival, every frame",
             _dist_text(lat.camonitor_ms), _dist_values(lat.camonitor_ms), note=note),
        _row(group, "live100_backlog", "backlog FramesWritten - ArrayCounter, max",
             f"{lat.backlog_max} frames", {"backlog_max": lat.backlog_max},
             note=f"ArrayCounter {int(counter)} of {frames} written"
                  + (f"; {len(dropped)} caproto 'dropped' warnings" if dropped else "")
                  + (f"; {len(load)} 'High load' warnings" if load else "")),
    ]  # fmt: skip
    idle_pct = 100.0 * idle
    following = status == status_after == "Following"
    rows.append(_row(
        "idle", "idle", "IOC CPU following a file that stopped growing",
        f"{idle_pct:.2f} % of one core over {plan.idle_s:g} s", {"percent": idle_pct},
        check="" if following else f"STATUS {status} -> {status_after}, not Following",
        note="1 camonitor client connected",
    ))  # fmt: skip
    targets = [
        Target("live 100 Hz: flush -> stats p99 (ms)", _pct(lat.stats_ms, 99), 5, "<="),
        Target("live 100 Hz: flush -> camonitor p99 (ms)", _pct(lat.camonitor_ms, 99),
               1000.0 / rate_hz + 20, "<=", f"(1/rate_hz + 20 ms, rate_hz {rate_hz:g})"),
        Target("idle: % of one core", idle_pct if following else None, 1, "<="),
    ]  # fmt: skip
    if abs(writer_rate - 100.0) > 5:
        targets[1].detail += f" (the writer ran at {writer_rate:.0f} frames/s, not 100)"
    return rows, targets


def _idle(pid: int, seconds: float) -> float:
    """CPU of ``pid`` in cores over ``seconds``."""
    cpu0, t0 = _cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (_cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)


def _livemax(
    data: Path, env: dict[str, str], shape: tuple[int, int], plan: _Plan
) -> tuple[list[Row], list[Target]]:
    config, doc = _config(data, "livemax.h5")
    group = "live max rate"
    log, cam_out, flush_log = data / "livemax.log", data / "livemax.cam", data / "livemax.flush"
    frames = plan.max_frames
    h5 = data / "livemax.h5"
    with _processes(env) as procs:
        ioc = _start_ioc(procs, config, log)
        pvs = [f"{PREFIX}{n}" for n in ("ArrayCounter_RBV", "FramesWritten_RBV")]
        with cam_out.open("w") as out:
            procs.start([epics_bin("camonitor"), "-tsc", *pvs], stdout=out)
        time.sleep(1.0)
        cpu0, t0 = _cpu_seconds(ioc.pid), time.monotonic()
        _run_writer(procs, _writer_args(h5, frames, 0, shape, flush_log), timeout=600)
        counter, drain = _wait_counter(frames, env, 120)
        ioc_cores = (_cpu_seconds(ioc.pid) - cpu0) / (time.monotonic() - t0)
        time.sleep(0.5)
        ts_len = int(doc["publish"]["time_series_length"])
        series = {
            name: _caget(f"{PREFIX}{name}:TSTotal", env, "-f", "1")
            for name in [str(n + 1) for n in range(len(doc["rois"]))] + ["Frame"]
        }
    flush = _flushes(flush_log)
    written = len(flush) - 1
    events = _camonitor_events(cam_out)
    lat = _latency(events, flush, warmup_s=1.0)
    truth = _totals(h5, doc["rois"], written, ts_len)
    mismatched, compared = 0, 0
    problems = []
    for name, text in series.items():
        got = _parse_waveform(text)
        want = truth[name]
        if got is None or got.size < want.size:
            problems.append(f"{name}:TSTotal unreadable")
            mismatched += want.size
            continue
        compared += want.size
        mismatched += int(np.count_nonzero(got[: want.size] != want))
    skipped = max(written - int(counter), 0) + mismatched
    dropped, load = _log_warnings(log)
    writer_rate = _writer_rate(flush)
    span = flush[-1] - flush[1]
    ioc_rate = (_counter_at(events, flush[-1]) - 1) / span if span > 0 else float("nan")
    behind_ms = 1e3 * lat.backlog_max / writer_rate if writer_rate > 0 else float("nan")
    check = "ok" if skipped == 0 and not problems else "; ".join(problems) or "FRAMES SKIPPED"
    rows = [
        _row(group, "livemax_rate", "writer flat out; IOC frames/s while it wrote",
             f"writer {writer_rate:,.0f} /s  IOC {ioc_rate:,.0f} /s",
             {"writer_fps": writer_rate, "ioc_fps": ioc_rate},
             note=f"{written} frames {shape[0]}x{shape[1]} uint8; IOC {ioc_cores:.2f} cores"),
        _row(group, "livemax_skipped", "frames skipped (written - ArrayCounter; TSTotal vs numpy)",
             f"{skipped}", {"skipped": skipped, "array_counter": counter, "written": written,
                            "ts_compared": compared, "ts_mismatched": mismatched},
             check=check,
             note=f"ArrayCounter {int(counter)} of {written}; {compared} TSTotal values of "
                  f"{len(series)} regions compared"),
        _row(group, "livemax_backlog", "backlog max after the first second; drain time",
             f"max {lat.backlog_max} frames = {behind_ms:.0f} ms of writing; "
             f"drained {drain:.2f} s after the writer closed",
             {"backlog_max": lat.backlog_max, "backlog_max_all": lat.backlog_max_all,
              "behind_ms": behind_ms, "drain_s": drain},
             note=f"max {lat.backlog_max_all} frames including the file opening"
                  + (f"; {len(dropped)} caproto 'dropped' warnings" if dropped else "")
                  + (f"; {len(load)} 'High load' warnings" if load else "")),
        _row(group, "livemax_stats", "flush -> stats computed (ArrayCounter_RBV stamp)",
             _dist_text(lat.stats_ms), _dist_values(lat.stats_ms),
             note="after the first second; for information, no target"),
    ]  # fmt: skip
    rate_hz = float(doc["publish"]["rate_hz"])
    targets = [
        Target("live max rate: frames skipped", float(skipped), 0, "<="),
        Target(BEHIND, behind_ms, 1000.0 / rate_hz, "<=",
               f"(1/rate_hz: never more than one publish period behind; "
               f"{lat.backlog_max} frames at {writer_rate:.0f} frames/s)"),
    ]  # fmt: skip
    return rows, targets


def _counter_at(events: list[_Event], when: float) -> int:
    """ArrayCounter_RBV of the newest update stamped at or before ``when``."""
    counter = 0
    for e in events:
        if e.pv == f"{PREFIX}ArrayCounter_RBV" and e.stamp <= when:
            counter = max(counter, int(float(e.value)))
    return counter


def _parse_waveform(text: str | None) -> np.ndarray | None:
    if text is None:
        return None
    parts = text.split()
    try:
        count = int(parts[0])
        return np.array([float(v) for v in parts[1 : count + 1]])
    except (ValueError, IndexError):
        return None


def _totals(
    path: Path, rois: list[dict[str, Any]], frames: int, ts_len: int
) -> dict[str, np.ndarray]:
    """numpy's totals of each ROI and the frame for the frames TSTotal shows
    (the last ``ts_len``; TSTotal starts with them, NaN after)."""
    import h5py

    first = max(0, frames - ts_len)
    sums: dict[str, list[float]] = {str(n + 1): [] for n in range(len(rois))}
    sums["Frame"] = []
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        dset = f["/entry/instrument/detector/data"]
        for index in range(first, frames):
            frame = np.asarray(dset[index])
            for n, roi in enumerate(rois):
                y, x, h, w = roi["y"], roi["x"], roi["height"], roi["width"]
                sums[str(n + 1)].append(float(frame[y : y + h, x : x + w].sum(dtype=np.uint64)))
            sums["Frame"].append(float(frame.sum(dtype=np.uint64)))
    return {name: np.asarray(values) for name, values in sums.items()}


def _clients50(data: Path, env: dict[str, str], plan: _Plan) -> tuple[list[Row], list[Target]]:
    from swmr_roi_ioc.config import load_config
    from swmr_roi_ioc.publish import pv_names

    config, doc = _config(data, "clients.h5")
    rate_hz = float(doc["publish"]["rate_hz"])
    group = "50 clients"
    log, flush_log = data / "clients.log", data / "clients.flush"
    counted = [f"{PREFIX}ArrayCounter_RBV", f"{PREFIX}1:Total_RBV"]
    names = pv_names(load_config(config))
    pvs = counted + [n for n in names if n not in counted]
    frames = int(CLIENT_RATE_HZ * (plan.clients_window_s + 4))
    results: list[dict[str, Any]] = []
    with _processes(env) as procs:
        ioc = _start_ioc(procs, config, log)
        clients = [
            procs.start([sys.executable, "-m", "benchmarks.live_client", *pvs],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
            for _ in range(CLIENTS)
        ]  # fmt: skip
        t_clients = time.monotonic()
        for client in clients:
            assert client.stdout is not None
            line = client.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a client did not connect: {line!r}")
        print(f"  live: {CLIENTS} clients connected in {time.monotonic() - t_clients:.1f} s",
              file=sys.stderr, flush=True)  # fmt: skip
        cpu0, t0 = _cpu_seconds(ioc.pid), time.monotonic()
        args = _writer_args(data / "clients.h5", frames, CLIENT_RATE_HZ, CLIENT_SHAPE, flush_log)
        # frames for the window at 500 Hz; stopped (SIGINT: it closes the file and
        # its flush log) when the window has passed, should it run slower
        writer = procs.start(args)
        try:
            writer.wait(timeout=plan.clients_window_s + 4)
        except subprocess.TimeoutExpired:
            writer.send_signal(signal.SIGINT)
            try:
                writer.wait(timeout=60)
            except subprocess.TimeoutExpired:  # a swamped machine: the log has what it wrote
                writer.kill()
                writer.wait(timeout=30)
        ioc_cores = (_cpu_seconds(ioc.pid) - cpu0) / (time.monotonic() - t0)
        time.sleep(0.5)
        for client in clients:
            assert client.stdin is not None
            client.stdin.write("stop\n")
            client.stdin.flush()
        for client in clients:
            assert client.stdout is not None
            line = client.stdout.readline()
            results.append(json.loads(line) if line.strip() else {})
    flush = _flushes(flush_log)
    start, stop = flush[1] + 2.0, flush[-1] - 0.5  # frames arriving all along
    window = stop - start
    per_pv: dict[str, list[float]] = {pv: [] for pv in counted}
    for result in results:
        arrivals = result.get("arrivals", {})
        for pv in counted:
            times = np.asarray(arrivals.get(pv, []))
            per_pv[pv].append(float(np.count_nonzero((times >= start) & (times < stop))) / window)
    dropped, load = _log_warnings(log)
    total_updates = sum(sum(r.get("counts", {}).values()) for r in results)
    writer_rate = _writer_rate(flush)
    rows: list[Row] = []
    targets: list[Target] = []
    for pv in counted:
        rates = per_pv[pv]
        short = pv[len(PREFIX) :]
        low = min(rates) if len(rates) == CLIENTS else 0.0
        rows.append(_row(
            group, f"clients50_{short}", f"updates/s of {short} per client: min / median",
            f"{low:.2f} / {statistics.median(rates) if rates else 0:.2f} /s",
            {"min": low, "median": statistics.median(rates) if rates else 0.0,
             "rate_hz": rate_hz, "clients": float(len(rates))},
            note=f"{len(rates)} clients answered; window {window:.1f} s; rate_hz {rate_hz:g}",
        ))  # fmt: skip
        targets.append(Target(f"50 clients: min updates/s of {short} / rate_hz",
                              low / rate_hz, 0.9, ">="))  # fmt: skip
    rows.append(_row(
        group, "clients50_log", "caproto 'dropped' warnings in the IOC's log",
        f"{len(dropped)}", {"dropped": float(len(dropped)), "high_load": float(len(load))},
        note=f"{len(load)} other 'High load' warnings; writer {writer_rate:.0f} frames/s "
             f"{CLIENT_SHAPE[0]}x{CLIENT_SHAPE[1]} uint8; {len(pvs)} PVs per client, "
             f"{total_updates:,} updates received in all; IOC {ioc_cores:.2f} cores"
             + (f"; first: {dropped[0][-120:]}" if dropped else ""),
    ))  # fmt: skip
    targets.append(Target("50 clients: caproto 'dropped' warnings", float(len(dropped)), 0, "<="))
    return rows, targets


def _row(group: str, key: str, label: str, text: str, values: dict[str, Any], *,
         note: str = "", check: str = "") -> Row:  # fmt: skip
    return Row(group, key, label, "live", text=text, values=values, note=note, check=check)


#: The targets of each part (name, threshold, better), N/A when the part fails.
PARTS: list[tuple[str, list[tuple[str, float, str]]]] = [
    ("live 100 Hz", [("live 100 Hz: flush -> stats p99 (ms)", 5, "<="),
                     ("live 100 Hz: flush -> camonitor p99 (ms)", 120, "<="),
                     ("idle: % of one core", 1, "<=")]),
    ("live max rate", [("live max rate: frames skipped", 0, "<="),
                       (BEHIND, 100, "<=")]),
    ("50 clients", [("50 clients: min updates/s of ArrayCounter_RBV / rate_hz", 0.9, ">="),
                    ("50 clients: min updates/s of 1:Total_RBV / rate_hz", 0.9, ">="),
                    ("50 clients: caproto 'dropped' warnings", 0, "<=")]),
]  # fmt: skip


Part = Any  # () -> (rows, targets)


def run_parts(prefix: str, names: list[tuple[str, list[tuple[str, float, str]]]],
              make_parts: Any, workdir: Path) -> tuple[list[Row], list[Target]]:  # fmt: skip
    """Run live parts in a fresh data directory beside ``workdir`` with private
    EPICS ports and a caRepeater of their own. ``make_parts(data, env)`` gives
    one callable per entry of ``names`` (group, its targets); a part that
    fails gives a row saying why and leaves its targets N/A."""
    parent = workdir.parent if workdir.parent.is_dir() else Path(tempfile.gettempdir())
    data = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    env = loopback_env()
    rows: list[Row] = []
    targets: list[Target] = []
    repeater = subprocess.Popen([epics_bin("caRepeater")], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for (group, expected), part in zip(names, make_parts(data, env), strict=True):
            t0 = time.monotonic()
            print(f"  live: {group} ...", file=sys.stderr, flush=True)
            try:
                got_rows, got_targets = part()
            except Exception as exc:  # noqa: BLE001 - one failing part must not hide the others
                got_rows = [Row(group, group, group, "live", text="failed",
                                note=f"{type(exc).__name__}: {exc}")]  # fmt: skip
                got_targets = [Target(n, None, t, b, "(failed)") for n, t, b in expected]
            rows += got_rows
            targets += got_targets
            for row in got_rows:
                print(f"  live: {row.group:<20} {row.label:<58} {row.text}",
                      file=sys.stderr, flush=True)  # fmt: skip
            print(f"  live: {group} took {time.monotonic() - t0:.0f} s", file=sys.stderr)
            for h5 in data.glob("*.h5"):
                h5.unlink()  # frames take RAM in /dev/shm
    finally:
        repeater.terminate()
        repeater.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)
    return rows, targets


def run(ctx: LiveContext) -> tuple[list[Row], list[Target]]:
    """Measure every live part; a failing part gives a row saying why."""
    plan = _plan(ctx.quick)

    def parts(data: Path, env: dict[str, str]) -> list[Part]:
        return [
            lambda: _live100(data, env, ctx.shape, plan),
            lambda: _livemax(data, env, ctx.shape, plan),
            lambda: _clients50(data, env, plan),
        ]

    return run_parts("swmr-live-", PARTS, parts, ctx.workdir)
