"""What an operator sees: startup checks in Status and the log, keys that lag
the data (both keys_lag values), a ROI outside the frame."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from aioca import DBR_CHAR_STR, FORMAT_TIME, caget

from tests.conftest import Process, swmr_roi_ioc
from tests.integration.helpers import (
    message_of,
    read_frames,
    status_of,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aioca_cleanup")]

ROI = {"name": "ROI1", "x": 10, "y": 20, "width": 40, "height": 30}
UID = "/entry/instrument/NDAttributes/NDArrayUniqueId"


def _ioc(processes: list[Process], config: Path) -> Process:
    ioc = Process(swmr_roi_ioc("--log-level", "INFO", "run", str(config)))
    processes.append(ioc)
    return ioc


async def test_startup_checks_show_in_status_and_log_once(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    """data_root missing and nexus.directory missing: Status Error naming the
    first, each logged once at ERROR; once both exist the source starts."""
    data, out = tmp_path / "data", tmp_path / "out"
    config = write_config(
        tmp_path / "ioc.yaml", prefix=prefix, data_root=data, file="scan.h5", rois=[ROI]
    )
    config.write_text(config.read_text() + f"nexus:\n  directory: {out}\n")
    ioc = _ioc(processes, config)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 4, 30)  # Error
    message = await message_of(prefix)
    assert f"data_root: {data} does not exist" in message, message
    assert "and 1 more" in message
    assert (await caget(f"{prefix}Status_RBV", format=FORMAT_TIME)).severity == 2
    await asyncio.sleep(11)  # two more checks: still logged once each
    lines = [line for line in ioc.text.splitlines() if "config cannot work here" in line]
    assert len(lines) == 2, ioc.text
    assert " ERROR " in lines[0] and f"data_root: {data} does not exist" in lines[0]
    assert " ERROR " in lines[1] and f"nexus.directory: {out} does not exist" in lines[1]

    data.mkdir()
    out.mkdir()
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 1, 20)  # Waiting
    assert "Waiting for" in await message_of(prefix)
    assert "config checks pass now" in ioc.text


@pytest.mark.parametrize("mode", ["extent", "wait"])
async def test_keys_that_lag_the_data(
    tmp_path: Path, prefix: str, processes: list[Process], mode: str
) -> None:
    """swmr_tools' habit, keys: [NDArrayUniqueId], on a file where ADCore flushes
    attributes only at the end (NDAttributeChunk = NumCapture): 'extent'
    follows the frames live, 'wait' waits for the keys; both say so with the
    numbers, and both end with every frame."""
    data = tmp_path / "data"
    data.mkdir()
    h5 = data / "scan.h5"
    config = write_config(
        tmp_path / "ioc.yaml", prefix=prefix, data_root=data, file="scan.h5", rois=[ROI],
        timeout=2.0,
    )  # fmt: skip
    text = config.read_text().replace(
        "source:\n", f"source:\n  keys: [{UID}]\n  keys_lag: {mode}\n"
    )
    config.write_text(text)
    _ioc(processes, config)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 1, 30)  # Waiting
    frames = 120
    writer = Process(
        swmr_roi_ioc("simulate", str(h5), "--frames", str(frames), "--rate", "20")
    )  # 6 s
    processes.append(writer)
    message = await wait_for(
        f"{prefix}StatusMessage_RBV",
        lambda v: "keys lag the data" in str(v),
        30,
        datatype=DBR_CHAR_STR,
    )
    message = await message_of(prefix)
    assert writer.proc.poll() is None, "the writer finished before the lag was reported"
    assert "NDArrayUniqueId set for 0 of" in message, message
    assert "NDAttributeChunk" in message
    counter = int(await caget(f"{prefix}ArrayCounter_RBV"))
    if mode == "extent":
        assert counter > 0, message
        assert "following the extent" in message and "keys_lag: extent" in message
    else:
        assert counter == 0, message
        assert "waiting for them" in message and "keys_lag: wait" in message
    assert await status_of(prefix) == "Following"
    assert writer.wait(60) == 0
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 3, 30)  # Finished
    assert int(await caget(f"{prefix}ArrayCounter_RBV")) == frames
    truth = read_frames(h5)[-1, 20:50, 10:50].astype(np.int64).sum()
    assert int(await caget(f"{prefix}1:Total_RBV")) == truth


async def test_roi_outside_the_frame_raises_minor_and_says_so(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    h5 = data / "scan.h5"
    outside = {"name": "Far", "x": 400, "y": 10, "width": 20, "height": 20}
    config = write_config(
        tmp_path / "ioc.yaml", prefix=prefix, data_root=data, file="scan.h5",
        rois=[ROI, outside], timeout=0.5,
    )  # fmt: skip
    _ioc(processes, config)
    writer = Process(
        swmr_roi_ioc("simulate", str(h5), "--frames", "10", "--rate", "0", "--shape", "240", "320")
    )
    processes.append(writer)
    assert writer.wait(60) == 0
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 3, 30)
    deadline = time.monotonic() + 5
    while (await caget(f"{prefix}2:Total_RBV", format=FORMAT_TIME)).severity != 1:
        assert time.monotonic() < deadline, await message_of(prefix)
        await asyncio.sleep(0.2)
    assert (await caget(f"{prefix}2:MeanValue_RBV", format=FORMAT_TIME)).severity == 1
    assert (await caget(f"{prefix}1:Total_RBV", format=FORMAT_TIME)).severity == 0
    message = await message_of(prefix)
    assert "ROI 2 (Far) outside the 320 x 240 frame" in message, message
    # NDPluginROIStat's numbers all the same: one pixel at the edge
    frame = read_frames(h5)[-1]
    assert int(await caget(f"{prefix}2:Total_RBV")) == int(frame[10:30, 319].sum())
