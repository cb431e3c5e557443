"""Issue 6 acceptance: every PV named in every generated screen answers a real
``caget`` from a running IOC with that config, and the Reset button's write is
accepted when put the way Phoebus puts it (as a string)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from aioca import DBR_STRING, caput

from swmr_roi_ioc.config import load_config
from swmr_roi_ioc.publish._screens import write_screens
from tests.conftest import Process, epics_bin, epics_run_env, swmr_roi_ioc
from tests.unit.publish.test_screens import parse

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aioca_cleanup")]

#: PVs per caget invocation (a few invocations for the whole set)
BATCH = 60


def _config(path: Path, prefix: str, data: Path) -> Path:
    path.write_text(
        f"""\
ioc_name: test-ioc
description: screens acceptance
prefix: "{prefix}"
data_root: {data}
source: {{file: not-there-yet.h5, timeout: 1.0}}
scan: {{shape: [6, 8]}}
rois:
  - {{name: ROI1, x: 10, y: 20, width: 40, height: 30}}
  - {{name: ROI2, x: 150, y: 100, width: 60, height: 60, background_width: 3}}
  - {{name: Dark, x: 0, y: 0, width: 8, height: 8}}
publish: {{time_series_length: 64, image_max_size: 64}}
pva: false
"""
    )
    return path


def _screen_pvs(paths: list[Path]) -> list[str]:
    """Every PV named anywhere in the displays (widgets, traces, rules)."""
    names: set[str] = set()
    for path in paths:
        root = parse(path)  # macros expanded, as Phoebus shows it
        for tag in ("pv_name", "x_pv", "y_pv"):
            for node in root.iter(tag):
                text = (node.text or "").strip().removeprefix("ca://").removeprefix("pva://")
                if text:
                    names.add(text)
    return sorted(names)


def _caget(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(epics_bin("caget")), *args],
        env=epics_run_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _wait_until_served(pv: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _caget("-w", "1", pv, timeout=10).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"the IOC never served {pv}")


async def test_every_screen_pv_answers_caget(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    config_path = _config(tmp_path / "ioc.yaml", prefix, data)
    processes.append(Process(swmr_roi_ioc("run", str(config_path))))
    screens = write_screens(load_config(config_path), tmp_path / "opi")
    pvs = _screen_pvs(screens)
    assert len(pvs) > 100
    assert all(pv.startswith(prefix) for pv in pvs)

    _wait_until_served(f"{prefix}Status_RBV")
    for start in range(0, len(pvs), BATCH):
        batch = pvs[start : start + BATCH]
        # -# 2: at most two elements of each array, enough to prove it answers
        result = _caget("-w", "5", "-#", "2", *batch)
        if result.returncode != 0:  # caget prints nothing then: name the culprits
            silent = [pv for pv in batch if _caget("-w", "2", "-#", "1", pv).returncode != 0]
            raise AssertionError(f"no answer from {silent}: {result.stderr}")
        answered = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
        assert answered == set(batch), sorted(set(batch) - answered)
        assert "not connected" not in result.stdout + result.stderr

    status = _caget("-w", "5", "-t", f"{prefix}Status_RBV")
    assert status.stdout.strip() == "Waiting"  # the file does not exist yet

    # Phoebus' write-PV action puts its value as a string (DBR_STRING)
    (reset,) = [
        action
        for path in screens
        for action in parse(path).iter("action")
        if action.get("type") == "write_pv"
    ]
    assert reset.findtext("pv_name") == f"{prefix}Reset"
    await caput(
        f"{prefix}Reset", reset.findtext("value"), datatype=DBR_STRING, wait=True, timeout=5
    )


async def test_ioc_writes_its_screens_into_screens_dir_at_start(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    opi = tmp_path / "opi"
    config = _config(tmp_path / "ioc.yaml", prefix, data)
    config.write_text(config.read_text() + f"screens_dir: {opi}\n")
    processes.append(Process(swmr_roi_ioc("run", str(config))))
    _wait_until_served(f"{prefix}Status_RBV")
    written = sorted(p.name for p in opi.glob("*.bob"))
    assert "index.bob" in written and len(written) >= 5
    assert written == sorted(p.name for p in write_screens(load_config(config), tmp_path / "again"))
