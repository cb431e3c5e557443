"""The worker processes: the IOC process never touches HDF5; a worker killed
(SIGKILL) or stopped (SIGSTOP: stuck, as in a hung read) mid-acquisition is
replaced, and following resumes with every frame counted exactly once."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from aioca import FORMAT_TIME, caget, caput

from tests.conftest import Process, swmr_roi_ioc
from tests.integration.helpers import message_of, read_frames, truth, wait_for, write_config

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("aioca_cleanup"),
    pytest.mark.timeout(600),  # replacement workers start slowly on a loaded machine
]

ROI = {"name": "ROI1", "x": 10, "y": 20, "width": 40, "height": 30, "background_width": 2}
FINISHED = 3
STALL = 4.0


def workers_of(pid: int) -> list[int]:
    """The engine worker processes of the IOC process ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z" and b"swmr_roi_ioc.engine._worker" in cmdline:
            out.append(int(entry.name))
    return sorted(out)


def loaded_hdf5(pid: int) -> bool:
    return "libhdf5" in Path(f"/proc/{pid}/maps").read_text()


def start_ioc(tmp_path: Path, prefix: str, processes: list[Process], **kw: object) -> Process:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    config = write_config(
        tmp_path / "ioc.yaml", prefix=prefix, data_root=data, file="scan.h5", rois=[ROI],
        scan=(20, 20), timeout=float(kw.get("timeout", 3.0)),
    )  # fmt: skip
    with config.open("a") as fh:
        fh.write(f"engine:\n  workers: {kw.get('workers', 2)}\n  stall_timeout: {STALL}\n")
    ioc = Process(swmr_roi_ioc("--log-level", "INFO", "run", str(config)))
    processes.append(ioc)
    return ioc


async def _severity(pv: str) -> int:
    return int((await caget(pv, format=FORMAT_TIME, timeout=5)).severity)


async def test_workers_killed_and_stopped_mid_acquisition(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    ioc = start_ioc(tmp_path, prefix, processes, timeout=60.0)
    h5 = tmp_path / "data" / "scan.h5"
    frames = 1200  # at 20 Hz: the writer runs through both faults
    writer = Process(
        swmr_roi_ioc(
            "simulate", str(h5), "--frames", str(frames), "--rate", "20", "--scan", "30", "40"
        )  # fmt: skip
    )
    processes.append(writer)
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v >= 40, 120)
    pid = ioc.proc.pid
    assert not loaded_hdf5(pid)  # the IOC process never loaded HDF5
    first = workers_of(pid)
    assert len(first) == 2, first

    # SIGKILL: replaced, resumed
    for worker in first:
        os.kill(worker, signal.SIGKILL)
    killed_at = int(await caget(f"{prefix}ArrayCounter_RBV"))
    # a replacement is a fresh interpreter: seconds of imports on a loaded machine
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v >= min(killed_at + 40, frames), 120)
    await asyncio.sleep(1.0)  # the spares started
    second = workers_of(pid)
    assert second and not set(second) & set(first), (first, second)

    # SIGSTOP: the reads do not return; MINOR within BLOCKED_S, then the worker
    # is killed after stall_timeout and replaced
    for worker in second:
        os.kill(worker, signal.SIGSTOP)
    stopped = time.monotonic()
    deadline = stopped + 5.0
    while "blocked for" not in (message := await message_of(prefix)):
        assert time.monotonic() < deadline, message  # CA answers meanwhile
        await asyncio.sleep(0.2)
    assert await _severity(f"{prefix}Status_RBV") >= 1
    stuck_at = int(await caget(f"{prefix}ArrayCounter_RBV"))
    goal = min(stuck_at + 20, frames)
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v >= goal, STALL + 120)
    if stuck_at < frames:  # frames were left: they came only from a replacement
        assert time.monotonic() - stopped >= STALL - 0.5
    # every stopped one was killed and replaced, the idle one found by its ping
    deadline = time.monotonic() + STALL + 120
    while set(third := workers_of(pid)) & set(second) or len(third) < 2:
        assert time.monotonic() < deadline, (second, third)
        await asyncio.sleep(0.5)

    assert writer.wait(60) == 0
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v == frames, 180)
    # Finished once source.timeout (60 s) passed without a new frame, counted
    # from the last frame: waiting exactly 60 s from here raced it
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == FINISHED, 60 + 30)
    data = read_frames(h5)
    region = data[:, 20:50, 10:50].astype(np.float64)
    totals = region.sum(axis=(1, 2))
    series = np.asarray(await caget(f"{prefix}1:TSTotal"))[:frames]
    np.testing.assert_array_equal(series, totals)  # every frame exactly once
    frame_max = np.asarray(await caget(f"{prefix}Frame:TSMaxValue"))[:frames]
    np.testing.assert_array_equal(frame_max, data.max(axis=(1, 2)))
    assert await _severity(f"{prefix}Status_RBV") == 0
    assert await _severity(f"{prefix}1:Total_RBV") == 0
    assert not loaded_hdf5(pid)


@pytest.fixture
def hanging_mount(tmp_path: Path) -> Iterator[tuple[Path, Path, Path]]:
    """(source dir the writer writes, FUSE mount the IOC reads, flag file):
    reads through the mount block while the flag file exists."""
    if not Path("/dev/fuse").exists() or shutil.which("fusermount3") is None:
        pytest.skip("needs /dev/fuse and fusermount3 (Debian fuse3)")
    source, mount, flag = tmp_path / "source", tmp_path / "mount", tmp_path / "hang"
    source.mkdir()
    mount.mkdir()
    fuse = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("fuse_hang.py")), str(source),
         str(mount), str(flag)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not os.path.ismount(mount):
            assert time.monotonic() < deadline and fuse.poll() is None, "FUSE mount failed"
            time.sleep(0.1)
        yield source, mount, flag
    finally:
        flag.unlink(missing_ok=True)  # release every blocked reader first
        subprocess.run(["fusermount3", "-u", "-z", str(mount)], check=False)
        fuse.terminate()
        try:
            fuse.wait(10)
        except subprocess.TimeoutExpired:
            fuse.kill()
            fuse.wait()


async def test_file_server_hang(
    tmp_path: Path,
    prefix: str,
    processes: list[Process],
    hanging_mount: tuple[Path, Path, Path],
) -> None:
    """Every read of the data file blocks (FUSE, as a stuck NFS mount) for
    longer than stall_timeout: CA answers within 1 s throughout, the alarm
    and message are there within 5 s, the stuck worker is replaced, and when
    the file answers again every frame is counted exactly once."""
    source, mount, flag = hanging_mount
    frames = 800
    config = write_config(
        tmp_path / "ioc.yaml", prefix=prefix, data_root=mount, file="scan.h5", rois=[ROI],
        scan=(20, 40), timeout=30.0,
    )  # fmt: skip
    with config.open("a") as fh:
        fh.write(f"engine:\n  workers: 2\n  stall_timeout: {STALL}\n")
    processes.append(Process(swmr_roi_ioc("--log-level", "INFO", "run", str(config))))
    h5 = source / "scan.h5"
    writer = Process(
        swmr_roi_ioc(
            "simulate", str(h5), "--frames", str(frames), "--rate", "40", "--scan", "20", "40"
        )  # fmt: skip
    )
    processes.append(writer)
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v >= 40, 120)

    flag.touch()  # the file server stops answering reads
    hung = time.monotonic()
    alarmed: float | None = None
    while time.monotonic() - hung < STALL + 6:
        asked = time.monotonic()
        value = await caget(f"{prefix}Status_RBV", format=FORMAT_TIME, timeout=1.0)
        assert time.monotonic() - asked < 1.0  # CA answers throughout
        message = await message_of(prefix)
        if alarmed is None and value.severity >= 1 and "blocked for" in message:
            alarmed = time.monotonic()
        await asyncio.sleep(0.2)
    assert alarmed is not None and alarmed - hung < 5.0, message
    assert "has not returned" in message and "scan.h5" in message, message
    assert int(await caget(f"{prefix}Status_RBV")) == 4  # Error, past stall_timeout
    assert (await caget(f"{prefix}Status_RBV", format=FORMAT_TIME)).severity == 2
    flag.unlink()  # it answers again

    assert writer.wait(60) == 0
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v == frames, 180)
    data = read_frames(h5)
    totals = data[:, 20:50, 10:50].astype(np.float64).sum(axis=(1, 2))
    series = np.asarray(await caget(f"{prefix}1:TSTotal", count=frames))
    np.testing.assert_array_equal(series, totals)  # every frame exactly once
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 2, 10)  # Following again
    assert (await caget(f"{prefix}1:Total_RBV", format=FORMAT_TIME)).severity == 0


@pytest.mark.parametrize(
    ("dtype", "compression"), [("uint8", "none"), ("uint16", "bslz4"), ("uint16", "none")]
)
async def test_parallel_catch_up_equals_numpy(
    tmp_path: Path, prefix: str, processes: list[Process], dtype: str, compression: str
) -> None:
    """A file found already long is caught up by both workers in parallel,
    applied in frame order: every frame's statistics equal numpy's."""
    data = tmp_path / "data"
    data.mkdir()
    h5 = data / "scan.h5"
    frames = 1500
    args = ["--frames", str(frames), "--rate", "0", "--dtype", dtype,
            "--compression", compression, "--scan", "30", "50"]  # fmt: skip
    writer = Process(swmr_roi_ioc("simulate", str(h5), *args))
    processes.append(writer)
    assert writer.wait(120) == 0
    ioc = start_ioc(tmp_path, prefix, processes, timeout=1.0)
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v == frames, 120)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == FINISHED, 30)
    got = read_frames(h5)
    want = truth(got, 10, 20, 40, 30, bgd=2)
    for stat, pv in [("total", "TSTotal"), ("net", "TSNet"), ("min", "TSMinValue"),
                     ("max", "TSMaxValue"), ("mean", "TSMeanValue")]:  # fmt: skip
        series = np.asarray(await caget(f"{prefix}1:{pv}", count=frames))
        np.testing.assert_allclose(series, want[stat], rtol=1e-12, err_msg=stat)
    frame_total = np.asarray(await caget(f"{prefix}Frame:TSTotal", count=frames))
    np.testing.assert_array_equal(frame_total, got.astype(np.float64).sum(axis=(1, 2)))
    assert not loaded_hdf5(ioc.proc.pid)


def _read_bytes(pids: list[int]) -> dict[int, int]:
    """Bytes each process has read through read()/pread() (its rchar)."""
    out = {}
    for pid in pids:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("rchar:"):
                out[pid] = int(line.split()[1])
    return out


async def test_recompute_reads_on_every_worker(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    """A ROI moved after the scan is recomputed for every past frame by both
    workers in parallel (each reads a large share of the frames again), and
    every frame's new statistics equal numpy's."""
    data = tmp_path / "data"
    data.mkdir()
    h5 = data / "scan.h5"
    frames = 1000  # 160 kB each: 160 MB read again
    args = ["--frames", str(frames), "--rate", "0", "--dtype", "uint16", "--scan", "20", "50"]
    writer = Process(swmr_roi_ioc("simulate", str(h5), *args))
    processes.append(writer)
    assert writer.wait(120) == 0
    ioc = start_ioc(tmp_path, prefix, processes, timeout=1.0)
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v == frames, 120)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == FINISHED, 30)
    pids = workers_of(ioc.proc.pid)
    assert len(pids) == 2, pids
    before = _read_bytes(pids)

    await caput(f"{prefix}1:MinX", 100, wait=True)
    await wait_for(f"{prefix}RecomputeProgress_RBV", lambda v: v == 100, 120)
    got = read_frames(h5)
    want = truth(got, 100, 20, 40, 30, bgd=2)
    await wait_for(
        f"{prefix}1:TSTotal",
        lambda v: np.array_equal(np.asarray(v)[:frames], want["total"]),
        30,
    )
    for stat, pv in [("net", "TSNet"), ("min", "TSMinValue"), ("max", "TSMaxValue"),
                     ("mean", "TSMeanValue")]:  # fmt: skip
        series = np.asarray(await caget(f"{prefix}1:{pv}", count=frames))
        np.testing.assert_allclose(series, want[stat], rtol=1e-12, err_msg=stat)
    after = _read_bytes(pids)
    share = {pid: (after[pid] - before[pid]) / got.nbytes for pid in pids}
    assert all(s > 0.2 for s in share.values()), share  # both took part
    assert sum(share.values()) > 0.95, share  # every frame read again
