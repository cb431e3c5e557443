"""Issue 'detector' acceptance: the IOC attached to a (simulated) dcam's HDF5 plugin.

Separate processes: the simulated ADAravis + NDFileHDF5 camera, the IOC with
``source.plugin_prefix``, and in the test process a bluesky RunEngine with
ophyd-async's AravisDetector (nothing patched) or plain CA puts. Ground truth
comes from the file with numpy; values are read with the EPICS base caget and
pvget programs.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bluesky import RunEngine
from bluesky import plans as bp
from ophyd_async.core import AutoIncrementFilenameProvider, StaticPathProvider, init_devices
from ophyd_async.epics.adaravis import AravisDetector
from ophyd_async.epics.adcore import ADWriterFactory

from tests.conftest import Process, camera_env, epics_bin, epics_run_env, swmr_roi_ioc
from tests.integration.helpers import caget_program, read_frames

pytestmark = [pytest.mark.integration]

ROI = {"x": 40, "y": 60, "width": 60, "height": 50}
ROWS, COLS = 10, 20


def _ioc(tmp_path: Path, prefix: str, plugin: str, data: Path, *, pva: bool) -> list[str]:
    config = tmp_path / "ioc.yaml"
    config.write_text(
        "\n".join(
            [
                "ioc_name: test-ioc",
                f'prefix: "{prefix}"',
                f"data_root: {data}",
                "source:",
                f'  plugin_prefix: "{plugin}"',
                "  timeout: 2.0",
                f"scan: {{shape: [{ROWS}, {COLS}], snake: true}}",
                "rois:",
                "  - {name: ROI1, " + ", ".join(f"{k}: {v}" for k, v in ROI.items()) + "}",
                "publish: {rate_hz: 10}",
                f"pva: {'true' if pva else 'false'}",
            ]
        )
        + "\n"
    )
    return swmr_roi_ioc("--log-level", "INFO", "run", str(config))


def get(pv: str) -> str:
    return caget_program("-t", "-f", "0", pv).strip()


def get_str(pv: str) -> str:
    return caget_program("-t", "-S", pv).strip()


def put(pv: str, value: Any, *, string: bool = False) -> None:
    args = [str(epics_bin("caput")), "-t", "-w", "5"]
    if string:
        args.append("-S")
    result = subprocess.run(
        [*args, pv, str(value)], env=epics_run_env(), capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 0, result.stdout + result.stderr


def wait_until(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except AssertionError as exc:  # not serving yet
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}; {_status()}")


def _status() -> str:
    """Every IOC's status line, for failure messages."""
    out = subprocess.run(
        [str(epics_bin("caget")), "-w", "2", "-S", "-a", *_STATUS_PVS],
        env=epics_run_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    return out.stdout + out.stderr


_STATUS_PVS: list[str] = []


def _roi_total(frame: np.ndarray) -> int:
    x, y, w, h = ROI["x"], ROI["y"], ROI["width"], ROI["height"]
    return int(frame[y : y + h, x : x + w].astype(np.int64).sum())


def _detector(prefix: str, data: Path) -> AravisDetector:
    provider = StaticPathProvider(AutoIncrementFilenameProvider("scan"), data)
    with init_devices(timeout=30):
        det = AravisDetector(prefix, ADWriterFactory.hdf(provider))
    return det


def test_bluesky_count_is_followed_two_plans_two_files_and_pvget_agrees(
    tmp_path: Path,
    camera: tuple[str, Path],
    prefix: str,
    processes: list[Process],
    RE: RunEngine,  # noqa: N803
) -> None:
    cam_prefix, data = camera
    processes.append(Process(_ioc(tmp_path, prefix, cam_prefix + "HDF1:", data, pva=True)))
    wait_until("IOC up", lambda: get(f"{prefix}Status_RBV") in ("Waiting", "1"), 60)
    det = _detector(cam_prefix, data)

    files = []
    for num in (200, 30):
        assert RE(bp.count([det], num=num)).exit_status == "success"
        wait_until(
            f"{num} frames followed",
            lambda n=num: (
                get(f"{prefix}ArrayCounter_RBV") == str(n)
                and get(f"{prefix}Status_RBV") == "Finished"
            ),
            30,
        )
        path = Path(get_str(f"{prefix}FilePath_RBV"))
        files.append(path)
        frames = read_frames(path)
        assert len(frames) == num
        assert get(f"{prefix}FramesWritten_RBV") == str(num)
        assert int(get(f"{prefix}1:Total_RBV")) == _roi_total(frames[-1])
    assert files[0] != files[1] and files[0].parent == files[1].parent == data

    # PVAccess: the same numbers, and the map as an NTNDArray of the scan's shape
    pvget = str(epics_bin("pvget"))
    env = epics_run_env()
    out = subprocess.run(
        [pvget, "-w", "5", f"{prefix}1:Total_RBV"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.split()[-1]) == float(get(f"{prefix}1:Total_RBV"))
    out = subprocess.run(
        [pvget, "-w", "5", "-v", f"{prefix}1:Map"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "NTNDArray" in out.stdout
    sizes = [int(s) for s in re.findall(r"int size (\d+)", out.stdout)]
    assert sizes[:2] == [COLS, ROWS], out.stdout
    values = caget_program("-t", "-f", "0", f"{prefix}1:Map").split()
    ca_map = np.array([float(v) for v in values[1:]])  # first word: element count
    snake = np.full((ROWS, COLS), np.nan)
    totals = [_roi_total(f) for f in read_frames(files[1])]
    for i, total in enumerate(totals):
        r, c = divmod(i, COLS)
        snake[r, COLS - 1 - c if r % 2 else c] = total
    np.testing.assert_array_equal(ca_map.reshape(ROWS, COLS), snake)


def _start_capture(cam: str, data: Path, frames: int, rate_hz: float) -> None:
    """What a beamline's scan does over CA: Stream capture with SWMR, then Acquire."""
    hdf, drv = cam + "HDF1:", cam + "cam1:"
    put(hdf + "FilePath", str(data), string=True)
    put(hdf + "FileName", "live", string=True)
    put(hdf + "FileTemplate", "%s%s_%d.h5", string=True)
    for pv, value in [("FileWriteMode", "Stream"), ("SWMRMode", 1), ("LazyOpen", 1),
                      ("NumCapture", frames), ("AutoIncrement", 1)]:  # fmt: skip
        put(hdf + pv, value)
    for pv, value in [("ImageMode", "Multiple"), ("NumImages", frames),
                      ("AcquirePeriod", 1 / rate_hz), ("TriggerMode", "Off")]:  # fmt: skip
        put(drv + pv, value)
    put(hdf + "Capture", 1)  # a busy record: a plain put returns at once
    wait_until("Capture_RBV", lambda: get(hdf + "Capture_RBV") not in ("Done", "0"), 10)
    put(drv + "Acquire", 1)


def test_keys_lag_followed_live_by_extent_and_camera_ioc_death(
    tmp_path: Path,
    prefix: str,
    processes: list[Process],
    RE: RunEngine,  # noqa: N803
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    cam = prefix.replace(":ROI:", ":DCAM:")  # its own prefix, not under the IOC's
    sim = swmr_roi_ioc("sim-camera", "--prefix", cam, "--dir", str(data))
    camera = Process(sim, env=camera_env())
    processes.append(camera)
    processes.append(Process(_ioc(tmp_path, prefix, cam + "HDF1:", data, pva=False)))
    _STATUS_PVS[:] = [
        f"{prefix}{pv}" for pv in ("Status_RBV", "StatusMessage_RBV", "ArrayCounter_RBV")
    ]
    wait_until("IOC up", lambda: get(f"{prefix}Status_RBV") == "Waiting", 60)

    # NDAttributeChunk at its default: the keys are flushed only at the end
    _start_capture(cam, data, frames=1000, rate_hz=50)
    counts = []
    for _ in range(3):
        counts.append(int(wait_until("frames", lambda: int(get(f"{prefix}ArrayCounter_RBV")), 20)))
        time.sleep(0.5)
    assert counts[0] < counts[1] < counts[2] < 1000, counts  # live, not at the end
    message = get_str(f"{prefix}StatusMessage_RBV")
    # no keys configured: the remark names what lags (NDArrayUniqueId) and why
    assert "NDArrayUniqueId lags" in message and "NDAttributeChunk" in message, message
    assert get(f"{prefix}Status_RBV") == "Following"

    # the camera IOC dies mid-acquisition
    camera.proc.kill()
    killed = time.monotonic()
    status = wait_until(
        "LINK/MAJOR alarm",
        lambda: (out := caget_program("-a", f"{prefix}Status_RBV")) and "MAJOR" in out and out,
        10,
    )
    assert time.monotonic() - killed < 5, status
    assert "LINK" in status
    served = int(get(f"{prefix}ArrayCounter_RBV"))  # still answering, values kept
    assert served >= counts[-1]

    # it comes back: the next plan is followed without restarting the IOC
    processes.append(Process(sim, env=camera_env()))
    det = _detector(cam, data)
    assert RE(bp.count([det], num=25)).exit_status == "success"
    wait_until(
        "the new file followed",
        lambda: (
            get(f"{prefix}ArrayCounter_RBV") == "25" and get(f"{prefix}Status_RBV") == "Finished"
        ),
        40,
    )
    path = Path(get_str(f"{prefix}FilePath_RBV"))
    assert path.name.startswith("scan")
    frames = read_frames(path)
    assert int(get(f"{prefix}1:Total_RBV")) == _roi_total(frames[-1])
    assert "MAJOR" not in caget_program("-a", f"{prefix}Status_RBV")
