"""Write access control (ioc.yaml access): a write from a host or user not
listed is refused over CA and PVA, with the value unchanged; listed ones work."""

from __future__ import annotations

import getpass
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Process, epics_bin, epics_run_env, swmr_roi_ioc
from tests.integration.helpers import caget_program, wait_for, write_config

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aioca_cleanup")]


def _ioc(tmp_path: Path, prefix: str, access: str, processes: list[Process]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    config = write_config(
        tmp_path / "ioc.yaml", prefix=prefix, data_root=data, file="none.h5",
        rois=[{"name": "ROI1", "x": 1, "y": 2, "width": 3, "height": 4}],
    )  # fmt: skip
    text = config.read_text().replace("pva: false", "pva: true") + access
    config.write_text(text)
    processes.append(Process(swmr_roi_ioc("--log-level", "INFO", "run", str(config))))


def _tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(epics_bin(name)), *args], env=epics_run_env(), capture_output=True, text=True,
        timeout=20, check=False,
    )  # fmt: skip


async def test_write_from_a_host_not_listed_is_refused(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    _ioc(tmp_path, prefix, "access: {write_hosts: [beamline-console.example]}\n", processes)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 1, 30)
    put = _tool("caput", "-w", "5", f"{prefix}1:MinX", "9")
    assert put.returncode != 0 or "denied" in (put.stdout + put.stderr).lower(), put.stdout
    assert caget_program("-t", f"{prefix}1:MinX").strip() == "1"
    pvput = _tool("pvput", "-w", "5", f"{prefix}1:MinX", "9")
    assert pvput.returncode != 0
    assert "write access denied" in (pvput.stdout + pvput.stderr)
    assert caget_program("-t", f"{prefix}1:MinX").strip() == "1"
    # reading stays open to everyone
    assert caget_program("-t", f"{prefix}1:Total_RBV").strip() == "0"


async def test_write_from_a_listed_host_and_user_works(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    host, user = socket.gethostname(), getpass.getuser()
    access = f"access: {{write_hosts: [{host}], write_users: [{user}]}}\n"
    _ioc(tmp_path, prefix, access, processes)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 1, 30)
    assert _tool("caput", "-w", "5", f"{prefix}1:MinX", "9").returncode == 0
    assert caget_program("-t", f"{prefix}1:MinX").strip() == "9"
    assert _tool("pvput", "-w", "5", f"{prefix}1:MinY", "7").returncode == 0
    assert caget_program("-t", f"{prefix}1:MinY").strip() == "7"


async def test_write_from_a_user_not_listed_is_refused(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    _ioc(tmp_path, prefix, "access: {write_users: [beamline-scientist]}\n", processes)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 1, 30)
    _tool("caput", "-w", "5", f"{prefix}1:MinX", "9")
    assert caget_program("-t", f"{prefix}1:MinX").strip() == "1"


async def test_bad_puts_are_refused_with_a_reason(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    from aioca import DBR_DOUBLE, caget, caput

    _ioc(tmp_path, prefix, "", processes)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 1, 30)
    bad = [
        ("1:MinX", -3), ("1:MinX", 1e9), ("1:MinX", float("nan")), ("1:SizeX", 0),
        ("1:SizeY", 2.5, DBR_DOUBLE), ("1:BgdWidth", -1), ("HistSize", 10**7),
        ("HistMin", float("inf")), ("HistMax", -1.0), ("1:Use", 5), ("Reset", 7),
    ]  # fmt: skip
    before = {pv: await caget(prefix + pv) for pv, *_ in bad}
    accepted = []
    # libca clients convert to the channel's native type before sending (2.5 -> 2 for
    # a LONG, as for a longout record); a client that sends a DOUBLE gets 2.5 refused
    for pv, value, *datatype in bad:
        try:
            await caput(prefix + pv, value, *datatype, wait=True, timeout=5)
        except Exception:  # noqa: BLE001 - aioca's CANothing: the put failed
            pass
        else:
            accepted.append((pv, value, await caget(prefix + pv)))
        assert await caget(prefix + pv) == before[pv], pv
    assert not accepted, accepted
    # a string where a number is expected, over the real caput program
    out = _tool("caput", "-w", "5", f"{prefix}1:MinX", "abc")
    assert out.returncode != 0 or caget_program("-t", f"{prefix}1:MinX").strip() == "1"
    assert caget_program("-t", f"{prefix}1:MinX").strip() == "1"
    # the IOC says why, in its log
    log = "".join(processes[-1].output)
    assert "is outside 0..65536" in log and "not a whole number" in log


async def test_only_a_setpoints_value_is_writable(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    """Every other field is read-only to clients: a SCAN moved away from I/O
    Intr would silently stop a record's publishing."""
    _ioc(tmp_path, prefix, "", processes)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 1, 30)
    for field, value in (("1:MinX.SCAN", "1 second"), ("1:Total_RBV.SCAN", "Passive"),
                         ("Status_RBV.DISP", "1"), ("1:Total_RBV", "5")):  # fmt: skip
        before = caget_program("-t", prefix + field).strip()
        put = _tool("caput", "-c", "-w", "5", prefix + field, value)
        assert put.returncode != 0 or "denied" in (put.stdout + put.stderr).lower(), field
        assert caget_program("-t", prefix + field).strip() == before, field
    assert _tool("caput", "-c", "-w", "5", f"{prefix}1:MinX", "8").returncode == 0
    assert caget_program("-t", f"{prefix}1:MinX").strip() == "8"
    # a refused put says why in PutError_RBV, over CA and PVA
    assert _tool("caput", "-c", "-w", "5", f"{prefix}1:SizeX", "0").returncode != 0
    reason = "1:SizeX: 0 is outside 1..65536"
    assert reason in caget_program("-t", "-S", f"{prefix}PutError_RBV")
    pvget = _tool("pvget", "-w", "5", f"{prefix}PutError_RBV")
    assert reason in pvget.stdout, pvget.stdout
