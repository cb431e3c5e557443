"""The command line: help for every option, `run`'s default config, `config`,
`simulate --scan` (demo and disk use: tests/integration/test_demo.py)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from swmr_roi_ioc.__main__ import _parser, main

ROOT = Path(__file__).parents[2]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = _parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_has_help() -> None:
    commands = _subparsers()
    assert {"run", "demo", "check", "schema", "config", "screens", "probe", "simulate"} <= set(
        commands
    )
    for name, sub in commands.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
        text = sub.format_help()
        assert "issue" not in text.lower(), text
    simulate = commands["simulate"].format_help()
    assert "(default: 10.0)" in simulate and "(default: uint16)" in simulate
    assert "rows x cols of --scan" in simulate


def test_run_without_config_says_how_to_get_one(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "swmr_roi_ioc", "run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert "./ioc/ioc.yaml is not here" in result.stderr
    assert "swmr-roi-ioc config > ioc.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_prints_the_documented_default_and_it_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config"]) == 0
    text = capsys.readouterr().out
    assert text == (ROOT / "ioc" / "ioc.yaml").read_text()
    written = tmp_path / "ioc.yaml"
    written.write_text(text)
    monkeypatch.setenv("SWMR_ROI_DATA_ROOT", str(tmp_path))
    assert main(["check", str(written)]) == 0
    assert "ok, 3 ROIs" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "frames"), [(["--scan", "4", "5"], 20),
                                              (["--scan", "4", "5", "--frames", "7"], 7),
                                              ([], 100)])  # fmt: skip
def test_simulate_scan_writes_rows_times_cols(tmp_path: Path, args: list[str], frames: int) -> None:
    out = tmp_path / "s.h5"
    cmd = ["simulate", str(out), "--rate", "0", "--shape", "8", "10", *args]
    result = subprocess.run(
        [sys.executable, "-m", "swmr_roi_ioc", *cmd],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    with h5py.File(out, "r") as f:
        dset = f["/entry/data/data"]
        assert isinstance(dset, h5py.Dataset)
        assert dset.shape[0] == frames


def test_probe_reads_a_pv_the_ioc_serves(tmp_path: Path) -> None:
    from swmr_roi_ioc._probe import uptime_pv
    from swmr_roi_ioc.config import load_config
    from swmr_roi_ioc.publish import pv_names

    config = load_config(ROOT / "ioc" / "ioc.yaml")
    assert uptime_pv(config) in pv_names(config)


def test_probe_without_a_running_ioc_exits_1(tmp_path: Path) -> None:
    env = {**os.environ, "SWMR_ROI_RUNTIME_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "swmr_roi_ioc", "probe", str(ROOT / "ioc" / "ioc.yaml")],
        capture_output=True, text=True, check=False, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 1
    assert "no pid file" in result.stderr and "not running here?" in result.stderr
