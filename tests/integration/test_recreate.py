"""The camera recreates its file at the same path (NDFileHDF5, AutoIncrement
off: H5F_ACC_TRUNC, the same inode): the writer's create must succeed while
the IOC follows the file or after it finished, and the IOC follows the new
content as a new acquisition, every frame equal to numpy's numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from aioca import caget

from tests.conftest import Process, swmr_roi_ioc
from tests.integration.helpers import message_of, read_frames, wait_for, write_config

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aioca_cleanup")]

ROI = {"name": "ROI1", "x": 10, "y": 20, "width": 40, "height": 30}
FOLLOWING, FINISHED = 2, 3


def _write(h5: Path, frames: int, seed: int, rate: str = "0") -> Process:
    args = ["--frames", str(frames), "--rate", rate, "--scan", "10", "10", "--seed", str(seed)]
    return Process(swmr_roi_ioc("simulate", str(h5), *args))


async def _exact(prefix: str, h5: Path, frames: int) -> None:
    """ArrayCounter reaches ``frames``, Finished, and every frame's total is numpy's."""
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v == frames, 30)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == FINISHED, 30)
    data = read_frames(h5)
    assert len(data) == frames
    totals = data[:, 20:50, 10:50].astype(np.int64).sum(axis=(1, 2))
    series = np.asarray(await caget(f"{prefix}1:TSTotal"))[:frames]
    np.testing.assert_array_equal(series, totals)


@pytest.mark.parametrize("timeout", [1.0, 8.0], ids=["after-finished", "while-following"])
async def test_writer_recreates_the_same_path(
    tmp_path: Path, prefix: str, processes: list[Process], timeout: float
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    h5 = data / "scan.h5"
    config = write_config(
        tmp_path / "ioc.yaml", prefix=prefix, data_root=data, file="scan.h5", rois=[ROI],
        scan=(10, 10), timeout=timeout,
    )  # fmt: skip
    processes.append(Process(swmr_roi_ioc("--log-level", "INFO", "run", str(config))))
    first = _write(h5, 40, seed=1, rate="100")
    processes.append(first)
    assert first.wait(60) == 0, first.text
    inode = h5.stat().st_ino
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v == 40, 30)
    if timeout > 5:  # source.timeout not over: still following the first file
        assert int(await caget(f"{prefix}Status_RBV")) == FOLLOWING
    else:
        await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == FINISHED, 30)
    second = _write(h5, 25, seed=2, rate="100")
    processes.append(second)
    assert second.wait(60) == 0, second.text  # the create was not refused
    assert h5.stat().st_ino == inode  # recreated in place, as H5F_ACC_TRUNC does
    await _exact(prefix, h5, 25)
    assert "scan.h5" in await message_of(prefix)
    # and once more after that one finished
    third = _write(h5, 30, seed=3)
    processes.append(third)
    assert third.wait(60) == 0, third.text
    await _exact(prefix, h5, 30)
