"""Issue 'robustness': faults of the writer and the file.

For each: the IOC keeps answering caget, Status/StatusMessage/alarm say what
happened, statistics of a broken acquisition are not published as valid, and
the next acquisition is followed without a restart."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from aioca import FORMAT_TIME, caget

from swmr_roi_ioc.app._acquisition import STALL_S
from tests.conftest import Process, swmr_roi_ioc
from tests.integration.helpers import message_of, read_frames, wait_for, write_config

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aioca_cleanup")]

ROI = {"name": "ROI1", "x": 10, "y": 20, "width": 40, "height": 30}
WAITING, FOLLOWING, FINISHED, ERROR = 1, 2, 3, 4


async def _start(tmp_path: Path, prefix: str, processes: list[Process]) -> tuple[Path, Path]:
    """The IOC process, once it serves (its start takes seconds on a loaded
    machine; a fault made before would be a different fault)."""
    data = tmp_path / "data"
    data.mkdir()
    config = write_config(
        tmp_path / "ioc.yaml", prefix=prefix, data_root=data, file="scan.h5", rois=[ROI],
        scan=(10, 10), timeout=1.0,
    )  # fmt: skip
    processes.append(Process(swmr_roi_ioc("--log-level", "INFO", "run", str(config))))
    await wait_for(f"{prefix}Status_RBV", lambda v: True, 60)
    return data, data / "scan.h5"


def _write(h5: Path, frames: int, *extra: str, rate: str = "0") -> list[str]:
    return swmr_roi_ioc("simulate", str(h5), "--frames", str(frames), "--rate", rate,
                        "--scan", "10", "10", *extra)  # fmt: skip


async def _severity(pv: str) -> int:
    return int((await caget(pv, format=FORMAT_TIME, timeout=5)).severity)


async def _recovers(prefix: str, h5: Path, processes: list[Process], frames: int = 12) -> None:
    """A good acquisition after the fault is followed, with valid statistics."""
    h5.unlink(missing_ok=True)
    writer = Process(_write(h5, frames))
    processes.append(writer)
    assert writer.wait(60) == 0
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v == frames, 30)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == FINISHED, 30)
    last = read_frames(h5)[-1]
    total = float(last[20:50, 10:50].astype(np.int64).sum())
    assert await caget(f"{prefix}1:Total_RBV") == total
    assert await _severity(f"{prefix}1:Total_RBV") == 0
    assert await _severity(f"{prefix}Status_RBV") == 0


async def test_writer_killed_mid_acquisition(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    _, h5 = await _start(tmp_path, prefix, processes)
    writer = Process(_write(h5, 1000, rate="50"))
    processes.append(writer)
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v >= 20, 30)
    writer.proc.send_signal(signal.SIGKILL)
    writer.wait(10)
    # no frame comes any more: Finished after source.timeout, with what was complete
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == FINISHED, 10)
    counter = int(await caget(f"{prefix}ArrayCounter_RBV"))
    assert 20 <= counter < 1000
    assert "no new frame" in await message_of(prefix)
    frames = read_frames(h5)[:counter]  # everything counted was complete on disk
    totals = frames[:, 20:50, 10:50].astype(np.int64).sum(axis=(1, 2))
    series = np.asarray(await caget(f"{prefix}1:TSTotal"))[:counter]
    np.testing.assert_array_equal(series, totals)
    await _recovers(prefix, h5, processes)


async def test_file_deleted_while_followed(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    _, h5 = await _start(tmp_path, prefix, processes)
    writer = Process(_write(h5, 400, rate="50"))
    processes.append(writer)
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v >= 10, 30)
    h5.unlink()
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == ERROR, 10)
    assert "disappeared" in await message_of(prefix)
    assert await _severity(f"{prefix}Status_RBV") == 2  # MAJOR
    assert await _severity(f"{prefix}1:Total_RBV") == 3  # stale: INVALID
    writer.proc.kill()
    writer.wait(10)
    await _recovers(prefix, h5, processes)


async def test_not_hdf5_then_dataset_missing_then_good(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    _, h5 = await _start(tmp_path, prefix, processes)
    h5.write_bytes(b"this is not an HDF5 file\n" * 100)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == ERROR, 20)
    assert "Cannot open" in await message_of(prefix)
    assert int(await caget(f"{prefix}ArrayCounter_RBV")) == 0

    h5.unlink()
    with h5py.File(h5, "w", libver="latest") as f:  # HDF5, but not the configured dataset
        f.create_dataset("/entry/other", data=np.zeros((3, 4, 4)))
    deadline = time.monotonic() + 20
    while "/entry/data/data" not in (message := await message_of(prefix)):
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.2)
    assert int(await caget(f"{prefix}Status_RBV")) in (WAITING, ERROR)
    await _recovers(prefix, h5, processes)


async def test_new_file_with_other_shape_and_dtype(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    _, h5 = await _start(tmp_path, prefix, processes)
    first = Process(_write(h5, 10, "--dtype", "uint16", "--shape", "256", "320"))
    processes.append(first)
    assert first.wait(60) == 0
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == FINISHED, 30)
    assert await caget(f"{prefix}1:MaxSizeX_RBV") == 320
    h5.unlink()
    second = Process(_write(h5, 15, "--dtype", "uint8", "--shape", "40", "30"))
    processes.append(second)
    assert second.wait(60) == 0
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v == 15, 30)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == FINISHED, 30)
    assert await caget(f"{prefix}1:MaxSizeX_RBV") == 30
    assert await caget(f"{prefix}1:SizeX_RBV") == 20  # clamped to the new frame
    frames = read_frames(h5)
    assert await caget(f"{prefix}1:Total_RBV") == float(
        frames[-1, 20:40, 10:30].astype(np.int64).sum()
    )


async def test_float_frames_with_nan_and_inf(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    _, h5 = await _start(tmp_path, prefix, processes)
    frames = np.ones((5, 64, 64), dtype=np.float32)
    frames[1, 25, 15] = np.nan
    frames[2, 25, 15] = np.inf
    frames[3, 0, 0] = -np.inf
    with h5py.File(h5, "w", libver="latest") as f:
        f.create_dataset("/entry/data/data", data=frames, chunks=(1, 64, 64),
                         maxshape=(None, 64, 64))  # fmt: skip
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v == 5, 30)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == FINISHED, 30)
    series = np.asarray(await caget(f"{prefix}1:TSTotal"))[:5]
    assert series[0] == 1200 and np.isnan(series[1]) and np.isinf(series[2])
    assert series[3] == 1200 and series[4] == 1200  # (0, 0) is outside ROI 1
    frame_max = np.asarray(await caget(f"{prefix}Frame:TSMaxValue"))[:5]
    assert frame_max[2] == np.inf
    # the live views and map ranges stayed sane: the IOC still serves, histogram counted
    assert (
        int(await caget(f"{prefix}HistAbove_RBV")) + int(await caget(f"{prefix}HistBelow_RBV")) >= 0
    )
    assert np.isfinite(await caget(f"{prefix}1:MapMax_RBV"))
    await _recovers(prefix, h5, processes)


async def test_keys_that_never_become_non_zero(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    h5 = data / "scan.h5"
    config = write_config(
        tmp_path / "ioc.yaml", prefix=prefix, data_root=data, file="scan.h5", rois=[ROI],
        scan=(10, 10), timeout=1.0,
    )  # fmt: skip
    config.write_text(
        config.read_text().replace("  timeout: 1.0", "  timeout: 1.0\n  keys: [/entry/keys/k]")
    )
    processes.append(Process(swmr_roi_ioc("--log-level", "INFO", "run", str(config))))
    with h5py.File(h5, "w", libver="latest") as f:
        f.create_dataset("/entry/data/data", data=np.ones((4, 8, 8), np.uint16),
                         maxshape=(None, 8, 8), chunks=(1, 8, 8))  # fmt: skip
        f.create_dataset("/entry/keys/k", data=np.zeros(4, np.int32), maxshape=(None,))
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == FINISHED, 20)
    assert int(await caget(f"{prefix}ArrayCounter_RBV")) == 0
    assert int(await caget(f"{prefix}FramesWritten_RBV")) == 0
    start = time.monotonic()
    while time.monotonic() - start < 1.0:  # still serving
        assert int(await caget(f"{prefix}Status_RBV")) == FINISHED
        await asyncio.sleep(0.2)


# -- issue 7, second part: truncation, a path that stops answering, no SWMR --


async def _alarmed(prefix: str, words: tuple[str, ...], timeout: float = 10) -> str:
    """Status goes to Error with a message holding ``words``; statistics alarmed."""
    deadline = time.monotonic() + timeout
    while True:
        message = await message_of(prefix)
        if int(await caget(f"{prefix}Status_RBV")) == ERROR and all(w in message for w in words):
            break
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.05)
    assert await _severity(f"{prefix}Status_RBV") == 2  # MAJOR
    assert await _severity(f"{prefix}1:Total_RBV") == 3  # stale: INVALID
    return message


async def test_file_truncated_while_written(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    """The writer goes on writing past the cut: the cut-off frames are lost,
    said so, never read as zeros into valid statistics."""
    _, h5 = await _start(tmp_path, prefix, processes)
    writer = Process(_write(h5, 1000, rate="50"))
    processes.append(writer)
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v >= 20, 30)
    os.truncate(h5, h5.stat().st_size // 2)
    await _alarmed(prefix, ("truncated",))
    # the writer writes on, so the file grows back with a hole: given up, not resumed
    message = await _alarmed(prefix, ("Gave up", "lost"))
    assert "hole" in message, message
    counter = int(await caget(f"{prefix}ArrayCounter_RBV"))
    await asyncio.sleep(1.5)  # the holed file is not taken for a new one
    assert int(await caget(f"{prefix}Status_RBV")) == ERROR
    assert int(await caget(f"{prefix}ArrayCounter_RBV")) == counter
    writer.proc.kill()
    writer.wait(10)
    await _recovers(prefix, h5, processes)


async def test_file_truncated_after_writer_stopped(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    """A cut file that stays cut: Error "truncated ... retrying", no HDF5 call
    blocks (metadata read attempts lowered), a new file is followed."""
    _, h5 = await _start(tmp_path, prefix, processes)
    writer = Process(_write(h5, 1000, rate="50"))
    processes.append(writer)
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v >= 20, 30)
    writer.proc.send_signal(signal.SIGSTOP)
    os.truncate(h5, 3000)  # through the superblock and metadata
    message = await _alarmed(prefix, ("truncated to 3000 bytes", "retrying"))
    start = time.monotonic()
    while time.monotonic() - start < 2.0:  # still serving, still saying so
        assert int(await caget(f"{prefix}Status_RBV", timeout=2)) == ERROR
        assert "truncated" in await message_of(prefix), message
        await asyncio.sleep(0.2)
    writer.proc.kill()
    writer.wait(10)
    await _recovers(prefix, h5, processes)


async def test_path_stops_answering_then_answers_again(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    """Reads fail on the same file (same inode) for a while, then work again:
    retried with backoff, resumed where it stopped, no frame lost or counted
    twice. Made real: the writer paused, the file's bytes cut, then put back."""
    _, h5 = await _start(tmp_path, prefix, processes)
    frames = 300
    writer = Process(_write(h5, frames, rate="50"))
    processes.append(writer)
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v >= 30, 30)
    writer.proc.send_signal(signal.SIGSTOP)
    inode = h5.stat().st_ino
    saved = h5.read_bytes()
    os.truncate(h5, 0)
    await _alarmed(prefix, ("failed after", "retrying"))
    counter = int(await caget(f"{prefix}ArrayCounter_RBV"))
    assert 30 <= counter < frames
    await asyncio.sleep(3.0)  # longer than source.timeout: not "Finished", still retrying
    assert int(await caget(f"{prefix}Status_RBV")) == ERROR
    assert "retrying" in await message_of(prefix)
    with open(h5, "r+b") as fh:  # the same file answers again
        fh.write(saved)
    assert h5.stat().st_ino == inode
    writer.proc.send_signal(signal.SIGCONT)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == FOLLOWING, 10)
    assert writer.wait(60) == 0
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == FINISHED, 30)
    assert int(await caget(f"{prefix}ArrayCounter_RBV")) == frames
    data = read_frames(h5)
    assert len(data) == frames
    totals = data[:, 20:50, 10:50].astype(np.int64).sum(axis=(1, 2))
    series = np.asarray(await caget(f"{prefix}1:TSTotal"))
    np.testing.assert_array_equal(series[:frames], totals)
    assert await _severity(f"{prefix}Status_RBV") == 0
    assert await _severity(f"{prefix}1:Total_RBV") == 0  # valid again once resumed
    await _recovers(prefix, h5, processes)


_NO_SWMR_WRITER = """
import sys, h5py, numpy as np
frames = np.random.default_rng(7).integers(0, 4000, (8, 64, 80), dtype=np.uint16)
f = h5py.File(sys.argv[1], "w")  # h5py's default: no SWMR, earliest format
d = f.create_dataset("/entry/data/data", data=frames, maxshape=(None, 64, 80), chunks=(1, 64, 80))
f.flush()
print("written", flush=True)
sys.stdin.readline()
f.close()
"""


async def test_file_written_without_swmr(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    """Not followed while its writer has it open (that would read metadata
    being changed); Status says so with an alarm; read whole once closed."""
    _, h5 = await _start(tmp_path, prefix, processes)
    writer = subprocess.Popen(
        [sys.executable, "-c", _NO_SWMR_WRITER, str(h5)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None and writer.stdout is not None
    try:
        assert writer.stdout.readline().strip() == "written"
        deadline = time.monotonic() + 20
        while "without SWMR mode" not in (message := await message_of(prefix)):
            assert time.monotonic() < deadline, message
            await asyncio.sleep(0.2)
        assert int(await caget(f"{prefix}Status_RBV")) == WAITING
        assert await _severity(f"{prefix}Status_RBV") == 1  # MINOR
        assert int(await caget(f"{prefix}ArrayCounter_RBV")) == 0
        writer.stdin.write("\n")  # the writer closes it: now it is read whole
        writer.stdin.flush()
        assert writer.wait(10) == 0
    finally:
        writer.stdin.close()
        writer.stdout.close()
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v == 8, 30)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == FINISHED, 30)
    frames = read_frames(h5)
    assert await caget(f"{prefix}1:Total_RBV") == float(
        frames[-1, 20:50, 10:50].astype(np.int64).sum()
    )
    assert await _severity(f"{prefix}1:Total_RBV") == 0
    await _recovers(prefix, h5, processes)


async def test_watchdog_reports_a_read_that_does_not_return(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    """A path whose reads block (a FIFO nobody writes: open() waits): the
    reader-thread call is reported by the watchdog while it hangs; when it
    returns the IOC goes on by itself."""
    _, h5 = await _start(tmp_path, prefix, processes)
    os.mkfifo(h5)
    message = ""
    deadline = time.monotonic() + STALL_S + 15
    while "has not returned" not in message:
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.5)
        message = await message_of(prefix)  # the IOC answers meanwhile
    assert int(await caget(f"{prefix}Status_RBV")) == ERROR
    assert await _severity(f"{prefix}Status_RBV") == 2
    fd = await asyncio.to_thread(os.open, h5, os.O_WRONLY)  # it answers (nothing)
    try:
        h5.unlink()
        await _recovers(prefix, h5, processes)
    finally:
        os.close(fd)
