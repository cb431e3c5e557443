"""`swmr-roi-ioc check` knows the world: configs that pass the schema but would
fail at run time exit 2 with a located message; what would only surprise is a
warning (exit 0)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from swmr_roi_ioc.__main__ import main

FRAME = (40, 60)  # H, W
UID = "/entry/instrument/NDAttributes/NDArrayUniqueId"


def write_h5(path: Path, *, dtype: str = "uint16", ndim: int = 3) -> Path:
    """A small file in areaDetector's layout (data, NDAttributes)."""
    with h5py.File(path, "w", libver="latest") as f:
        shape = (3, *FRAME) if ndim == 3 else FRAME
        f.create_dataset("/entry/data/data", data=np.ones(shape, dtype=dtype))
        f.create_dataset(UID, data=np.arange(1, 4, dtype=np.int32))
    return path


def config_text(root: Path, *, file: str = "scan.h5", extra: str = "", roi: str = "") -> str:
    roi = roi or "    x: 1\n    y: 2\n    width: 3\n    height: 4\n"
    return (
        "ioc_name: test-ioc\n"
        'prefix: "T:"\n'
        f"data_root: {root}\n"
        "source:\n"
        f"  file: {file}\n"
        f"{extra}"
        "rois:\n"
        "  - name: ROI1\n"
        f"{roi}"
    )


def run_check(tmp_path: Path, text: str, *args: str) -> tuple[int, str]:
    """``swmr-roi-ioc check`` in this process (the CLI's main): (exit code, stderr)."""
    config = tmp_path / "ioc.yaml"
    config.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check", str(config), *args])
    assert "Traceback" not in err.getvalue() + out.getvalue(), err.getvalue()
    return code, err.getvalue()


Case = Callable[[Path], tuple[str, list[str]]]


def _missing_root(tmp: Path) -> tuple[str, list[str]]:
    return config_text(tmp / "nowhere"), [":3: data_root:", "does not exist"]


def _root_is_file(tmp: Path) -> tuple[str, list[str]]:
    (tmp / "root").write_text("")
    return config_text(tmp / "root"), [":3: data_root:", "is not a directory"]


def _file_outside(tmp: Path) -> tuple[str, list[str]]:
    (tmp / "data").mkdir()
    return config_text(tmp / "data", file=str(tmp / "other.h5")), [
        ":5: source.file:",
        "outside data_root",
    ]


def _dotdot_outside(tmp: Path) -> tuple[str, list[str]]:
    (tmp / "data").mkdir()
    return config_text(tmp / "data", file="../x.h5"), [":5: source.file:", "outside data_root"]


def _symlink_outside(tmp: Path) -> tuple[str, list[str]]:
    (tmp / "data").mkdir()
    write_h5(tmp / "real.h5")
    (tmp / "data" / "scan.h5").symlink_to(tmp / "real.h5")
    return config_text(tmp / "data"), [":5: source.file:", "outside data_root"]


def _file_is_dir(tmp: Path) -> tuple[str, list[str]]:
    (tmp / "scan.h5").mkdir()
    return config_text(tmp), [":5: source.file:", "is not a file"]


def _nexus_missing(tmp: Path) -> tuple[str, list[str]]:
    text = config_text(tmp) + f"nexus:\n  directory: {tmp / 'out'}\n"
    return text, [": nexus.directory:", "does not exist"]


def _nexus_is_file(tmp: Path) -> tuple[str, list[str]]:
    (tmp / "out").write_text("")
    text = config_text(tmp) + f"nexus:\n  directory: {tmp / 'out'}\n"
    return text, [": nexus.directory:", "is not a directory"]


def _nexus_read_only(tmp: Path) -> tuple[str, list[str]]:
    # /proc takes no new files, even for root (a permission bit would not stop root)
    text = config_text(tmp) + "nexus:\n  directory: /proc\n"
    return text, [": nexus.directory:", "does not take new files"]


def _dataset_missing(tmp: Path) -> tuple[str, list[str]]:
    write_h5(tmp / "scan.h5")
    return config_text(tmp, extra="  dataset: /entry/nothing\n"), [
        ":6: source.dataset:",
        "/entry/nothing is not in",
    ]


def _not_frames(tmp: Path) -> tuple[str, list[str]]:
    write_h5(tmp / "scan.h5", ndim=2)
    return config_text(tmp), [": source.dataset:", "not a stack of 2-D frames"]


def _dtype(tmp: Path) -> tuple[str, list[str]]:
    write_h5(tmp / "scan.h5", dtype="complex64")
    return config_text(tmp), [": source.dataset:", "complex64", "integers or floats"]


def _roi_outside_x(tmp: Path) -> tuple[str, list[str]]:
    write_h5(tmp / "scan.h5")
    roi = "    x: 60\n    y: 2\n    width: 3\n    height: 4\n"
    return config_text(tmp, roi=roi), [
        ":8: rois[0].x:",
        "ROI 1 (ROI1)",
        "outside the frame of 60 x 40",
    ]


def _roi_outside_y(tmp: Path) -> tuple[str, list[str]]:
    write_h5(tmp / "scan.h5")
    roi = "    x: 0\n    y: 500\n    width: 3\n    height: 4\n"
    return config_text(tmp, roi=roi), [":9: rois[0].y:", "outside the frame of 60 x 40"]


def _key_missing(tmp: Path) -> tuple[str, list[str]]:
    write_h5(tmp / "scan.h5")
    extra = "  keys: [/entry/instrument/NDAttributes/NDArrayUniqueId, /entry/nope]\n"
    return config_text(tmp, extra=extra), [":6: source.keys[1]:", "/entry/nope is not in"]


def _finished_missing(tmp: Path) -> tuple[str, list[str]]:
    write_h5(tmp / "scan.h5")
    return config_text(tmp, extra="  finished: /entry/done\n"), [
        ":6: source.finished:",
        "/entry/done is not in",
    ]


def _not_hdf5(tmp: Path) -> tuple[str, list[str]]:
    (tmp / "scan.h5").write_text("not HDF5")
    return config_text(tmp), [":5: source.file:", "cannot be opened as HDF5"]


CASES: dict[str, Case] = {
    "data_root missing": _missing_root,
    "data_root a file": _root_is_file,
    "file outside data_root": _file_outside,
    "file ../ outside data_root": _dotdot_outside,
    "file a symlink out of data_root": _symlink_outside,
    "file a directory": _file_is_dir,
    "nexus directory missing": _nexus_missing,
    "nexus directory a file": _nexus_is_file,
    "nexus directory read-only": _nexus_read_only,
    "dataset missing": _dataset_missing,
    "dataset not frames": _not_frames,
    "dtype unsupported": _dtype,
    "ROI outside in x": _roi_outside_x,
    "ROI outside in y": _roi_outside_y,
    "key missing": _key_missing,
    "finished dataset missing": _finished_missing,
    "file not HDF5": _not_hdf5,
}


@pytest.mark.parametrize("case", CASES)
def test_check_fails_what_would_fail_at_run_time(tmp_path: Path, case: str) -> None:
    text, words = CASES[case](tmp_path)
    code, err = run_check(tmp_path, text)
    assert code == 2, err
    line = next((x for x in err.splitlines() if words[0] in x), "")
    assert line.startswith(str(tmp_path / "ioc.yaml")), err
    for word in words[1:]:
        assert word in line, err
    assert "it would not work here" in err


def test_roi_partly_outside_is_a_warning_exit_0(tmp_path: Path) -> None:
    write_h5(tmp_path / "scan.h5")
    roi = "    x: 50\n    y: 2\n    width: 30\n    height: 4\n"
    code, err = run_check(tmp_path, config_text(tmp_path, roi=roi))
    assert code == 0, err
    assert f"{tmp_path / 'ioc.yaml'}:10: warning: rois[0].width:" in err
    assert "clamped" in err


def test_file_option_checks_another_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--file: the config names no fixed file (plugin), a sample file is given."""
    sample = write_h5(tmp_path / "sample.h5")
    text = config_text(tmp_path).replace("  file: scan.h5\n", "  plugin_prefix: 'X:HDF1:'\n")
    config = tmp_path / "ioc.yaml"
    config.write_text(text)
    assert main(["check", str(config), "--file", str(sample)]) == 0
    assert f"checked against {sample}" in capsys.readouterr().out
    config.write_text(text.replace("x: 1\n", "x: 99\n"))
    assert main(["check", str(config), "--file", str(sample)]) == 2
    assert "outside the frame of 60 x 40" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("typo", "line", "suggestion"),
    [
        ("    backround_width: 2\n", 11, "rois[0].backround_width: unknown key; did you mean "
         "'background_width'?"),
        ("source:\n  timout: 3\n", 12, "source.timout: unknown key; did you mean 'timeout'?"),
        ("publsh:\n  rate_hz: 3\n", 11, "publsh: unknown key; did you mean 'publish'?"),
        ("scan:\n  snak: false\n", 12, "scan.snak: unknown key; did you mean 'snake'?"),
    ],
)  # fmt: skip
def test_typos_get_suggestions(tmp_path: Path, typo: str, line: int, suggestion: str) -> None:
    base = (
        "ioc_name: test-ioc\n"
        'prefix: "T:"\n'
        f"data_root: {tmp_path}\n"
        "rois:\n"
        "  - name: ROI1\n"
        "    x: 1\n"
        "    y: 2\n"
        "    width: 3\n"
        "    height: 4\n"
    )
    if typo.startswith("    "):
        base += "    use: true\n" + typo
    else:
        base += "pva: false\n" + typo
    code, err = run_check(tmp_path, base)
    assert code == 2
    assert f"{tmp_path / 'ioc.yaml'}:{line}: {suggestion}" in err, err


def test_non_yaml_input_is_one_line(tmp_path: Path) -> None:
    h5 = write_h5(tmp_path / "scan.h5")
    result = subprocess.run(
        [sys.executable, "-m", "swmr_roi_ioc", "check", str(h5)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"{h5}:1: not a YAML text file (an HDF5 file); an ioc.yaml is expected here"
    )
    assert result.stdout == ""


def test_ioc_name_error_is_readable(tmp_path: Path) -> None:
    code, err = run_check(tmp_path, config_text(tmp_path).replace("test-ioc", "Test_IOC"))
    assert code == 2
    assert "ioc_name: must be lower-case letters, digits and '-'" in err
    assert "^[" not in err  # no raw regex


def test_relative_nexus_directory_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    text = config_text(tmp_path) + "nexus:\n  directory: out\n"
    config = tmp_path / "ioc.yaml"
    config.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "swmr_roi_ioc", "check", str(config)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr
    assert "warning: nexus.directory: relative" in result.stderr
