"""``swmr-roi-ioc check``: the schema, the machine, and a data file if there is one.

Beyond the schema (``config.load_config_located``) and the machine
(``config.check_world``), a file the config would follow (``--file FILE``, or
the fixed ``source.file`` when it exists) is opened read-only and its
metadata compared with the config: the frames dataset, its dtype, every ROI
against the frame size, the key and finished datasets. No frame is read.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import h5py

from swmr_roi_ioc.config import (
    ConfigIssue,
    Finding,
    IocConfig,
    PathRefusedError,
    check_world,
    load_config_located,
    located_issues,
    resolve_under,
)
from swmr_roi_ioc.follow import open_swmr

#: dtype kinds the statistics take: unsigned, signed integers and floats
SUPPORTED_KINDS = "uif"


def check_file(config: IocConfig, path: Path) -> list[Finding]:
    """What in ``config`` does not fit the HDF5 file at ``path``."""
    loc_file = ("source", "file")
    try:
        h5file = _open(path)
    except OSError as exc:
        return [Finding(loc_file, f"{path} cannot be opened as HDF5: {_reason(exc)}")]
    with h5file:
        return _check_open(config, h5file, path)


def _open(path: Path) -> h5py.File:
    try:
        return open_swmr(path)
    except OSError:  # a closed file written without SWMR's file format
        return h5py.File(path, "r", locking=False)


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return text.split("(", 1)[-1].rstrip(")") if "Unable to" in text else text


def _check_open(config: IocConfig, h5file: h5py.File, path: Path) -> list[Finding]:
    src = config.source
    out: list[Finding] = []
    dset = h5file.get(src.dataset)
    if not isinstance(dset, h5py.Dataset):
        what = "not in" if dset is None else "not a dataset in"
        return [Finding(("source", "dataset"), f"{src.dataset} is {what} {path}")]
    if dset.ndim < 3:
        out.append(
            Finding(
                ("source", "dataset"),
                f"{src.dataset} in {path} has shape {dset.shape}, not a stack of 2-D frames",
            )
        )
    if dset.dtype.kind not in SUPPORTED_KINDS:
        out.append(
            Finding(
                ("source", "dataset"),
                f"{src.dataset} in {path} holds {dset.dtype}: the statistics take "
                "integers or floats",
            )
        )
    if dset.ndim >= 2:
        out.extend(check_rois(config, (int(dset.shape[-2]), int(dset.shape[-1]))))
    for i, key in enumerate(src.keys):
        if key not in h5file:
            out.append(Finding(("source", "keys", i), f"{key} is not in {path}"))
    if src.finished is not None:
        obj = h5file.get(src.finished)
        if not isinstance(obj, h5py.Dataset):
            what = "not in" if obj is None else "not a dataset in"
            out.append(Finding(("source", "finished"), f"{src.finished} is {what} {path}"))
    return out


def check_rois(config: IocConfig, frame_shape: tuple[int, int]) -> list[Finding]:
    """ROIs against a frame of (H, W): entirely outside is an error (it would be
    clamped to one pixel at the edge, as NDPluginROIStat does); partly
    outside a warning (clamped to the frame)."""
    height, width = frame_shape
    size = f"{width} x {height} (columns 0-{width - 1}, rows 0-{height - 1})"
    out: list[Finding] = []
    for i, roi in enumerate(config.rois):
        where = f"ROI {i + 1} ({roi.name})"
        if roi.x >= width or roi.y >= height:
            key = "x" if roi.x >= width else "y"
            out.append(
                Finding(
                    ("rois", i, key),
                    f"{where} starts at x={roi.x}, y={roi.y}, outside the frame of {size}",
                )
            )
        elif roi.x + roi.width > width or roi.y + roi.height > height:
            key = "width" if roi.x + roi.width > width else "height"
            out.append(
                Finding(
                    ("rois", i, key),
                    f"{where} ({roi.width} x {roi.height} at x={roi.x}, y={roi.y}) extends "
                    f"past the frame of {size}: it will be clamped to it",
                    warning=True,
                )
            )
    return out


def _file_to_check(config: IocConfig, given: str | None) -> Path | None:
    if given is not None:
        return Path(given)
    if config.source.file is None:
        return None
    try:
        path = resolve_under(config.data_root, config.source.file)
    except (PathRefusedError, OSError):
        return None  # check_world says why
    return path if path.is_file() else None


def _fixed_file_kind(config: IocConfig) -> list[Finding]:
    """A fixed source.file that exists but is no regular file (a directory, a
    FIFO): the service would wait on it for ever. Only ``check`` says so up
    front; the running service reports it when opening fails."""
    if config.source.file is None:
        return []
    try:
        path = resolve_under(config.data_root, config.source.file)
    except (PathRefusedError, OSError):
        return []  # check_world says why
    if path.exists() and not path.is_file():
        return [Finding(("source", "file"), f"{path} is not a file")]
    return []


def check(config_path: str, data_file: str | None = None) -> tuple[IocConfig, list[ConfigIssue]]:
    """Every issue with a config (schema errors raise ConfigError as usual)."""
    config, locate = load_config_located(config_path)
    findings = check_world(config)
    findings.extend(_fixed_file_kind(config))
    path = _file_to_check(config, data_file)
    if path is not None:
        if not path.is_file():
            findings.append(Finding(("source", "file"), f"{path} does not exist"))
        else:
            findings.extend(check_file(config, path))
    return config, located_issues(config_path, locate, findings)


def run_check(config_path: str, data_file: str | None = None) -> int:
    """The ``check`` command: problems to stderr, the PV list to stdout.
    Exit 2 on any error, 0 with warnings only."""
    from swmr_roi_ioc.publish import pv_names

    config, issues = check(config_path, data_file)
    for issue in issues:
        print(issue, file=sys.stderr)
    errors = sum(not i.warning for i in issues)
    if errors:
        print(f"{config_path}: {errors} error(s): it would not work here", file=sys.stderr)
        return 2
    # building the PV groups makes caproto warn about large waveforms; not news here
    logging.getLogger("caproto").setLevel(logging.ERROR)
    names = pv_names(config)
    checked = _file_to_check(config, data_file)
    against = f", checked against {os.fspath(checked)}" if checked else ""
    warned = f", {len(issues)} warning(s)" if issues else ""
    print(f"{config_path}: ok, {len(config.rois)} ROIs, {len(names)} PVs{against}{warned}")
    for name in names:
        print(name)
    return 0
