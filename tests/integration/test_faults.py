"""Issue 'robustness' (first part): faults of the writer and the file.

For each: the IOC keeps answering caget, Status/StatusMessage/alarm say what
happened, statistics of a broken acquisition are not published as valid, and
the next acquisition is followed without a restart."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from aioca import FORMAT_TIME, caget

from tests.conftest import Process, swmr_roi_ioc
from tests.integration.helpers import message_of, read_frames, wait_for, write_config

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aioca_cleanup")]

ROI = {"name": "ROI1", "x": 10, "y": 20, "width": 40, "height": 30}
WAITING, FOLLOWING, FINISHED, ERROR = 1, 2, 3, 4


def _start(tmp_path: Path, prefix: str, processes: list[Process]) -> tuple[Path, Path]:
    data = tmp_path / "data"
    data.mkdir()
    config = write_config(
        tmp_path / "ioc.yaml", prefix=prefix, data_root=data, file="scan.h5", rois=[ROI],
        scan=(10, 10), timeout=1.0,
    )  # fmt: skip
    processes.append(Process(swmr_roi_ioc("--log-level", "INFO", "run", str(config))))
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
    _, h5 = _start(tmp_path, prefix, processes)
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
    _, h5 = _start(tmp_path, prefix, processes)
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
    _, h5 = _start(tmp_path, prefix, processes)
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
    _, h5 = _start(tmp_path, prefix, processes)
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
    _, h5 = _start(tmp_path, prefix, processes)
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
