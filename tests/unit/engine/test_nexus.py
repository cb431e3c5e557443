"""The processed NeXus file: its tree, and that it appears atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from swmr_roi_ioc import __version__
from swmr_roi_ioc._errors import SwmrRoiError
from swmr_roi_ioc.engine import _nexus
from swmr_roi_ioc.engine._nexus import (
    NexusAcquisition,
    NexusError,
    NexusRegion,
    nexus_path,
    write_nexus,
)

H, W = 8, 10
DATASET = "/entry/data/data"
ROIS = {
    "ROI1": {"x": 1, "y": 2, "width": 3, "height": 4, "background_width": 0},
    "ROI2": {"x": 5, "y": 0, "width": 5, "height": 8, "background_width": 1},
}
CONFIG = "ioc_name: test\nrois:\n  - {name: ROI1, x: 1, y: 2, width: 3, height: 4}\n"


def write_raw(path: Path, frames: int) -> np.ndarray:
    rng = np.random.default_rng(frames)
    data = rng.integers(0, 1000, size=(frames, H, W), dtype=np.uint16)
    with h5py.File(path, "w") as f:
        f[DATASET] = data
    return data


def place(values: np.ndarray, shape: tuple[int, int], snake: bool) -> np.ndarray:
    """Naive snake placement, NaN where no frame landed."""
    rows, cols = shape
    out = np.full(shape, np.nan)
    for i, value in enumerate(values[: rows * cols]):
        row, col = divmod(i, cols)
        if snake and row % 2:
            col = cols - 1 - col
        out[row, col] = value
    return out


def region(
    name: str, frames: np.ndarray, box: dict[str, int] | None, shape: tuple[int, int], snake: bool
) -> NexusRegion:
    if box is None:
        part = frames.astype(np.float64)
    else:
        part = frames[
            :, box["y"] : box["y"] + box["height"], box["x"] : box["x"] + box["width"]
        ].astype(np.float64)
    total = part.sum(axis=(1, 2))
    series = {
        "total": total,
        "net": total - 1.5,
        "min": part.min(axis=(1, 2)),
        "max": part.max(axis=(1, 2)),
        "mean": part.mean(axis=(1, 2)),
    }
    return NexusRegion(name, series, place(total, shape, snake), None if box is None else box)


def acquisition(
    source: Path,
    frames: int,
    scan_shape: tuple[int, int] | None,
    snake: bool = False,
    rois: dict[str, dict[str, int]] | None = None,
) -> NexusAcquisition:
    data = write_raw(source, frames)
    shape = scan_shape if scan_shape is not None else (1, 16)
    regions = [
        region(n, data, b, shape, snake) for n, b in (ROIS if rois is None else rois).items()
    ]
    regions.append(region("Frame", data, None, shape, snake))
    return NexusAcquisition(
        source_file=source,
        dataset=DATASET,
        frames=frames,
        frame_shape=(H, W),
        scan_shape=scan_shape,
        snake=snake,
        regions=regions,
        max_map=place(data.max(axis=(1, 2)).astype(np.float64), shape, snake),
        config_yaml=CONFIG,
        ioc_name="test-ioc",
        started="2026-01-02T03:04:05+00:00",
        finished="2026-01-02T03:05:06+00:00",
    )


def strings(value: Any) -> list[str]:
    if isinstance(value, str | bytes):
        value = [value]
    return [v.decode() if isinstance(v, bytes) else str(v) for v in value]


def check_nxdata(group: h5py.Group) -> h5py.Dataset:
    """NXdata rules: signal names a dataset; each axis has a dataset and an index
    attribute, and its length matches the signal's dimension. Returns the signal."""
    assert group.attrs["NX_class"] == "NXdata"
    signal = group[group.attrs["signal"]]
    assert isinstance(signal, h5py.Dataset)
    axes = strings(group.attrs["axes"])
    assert len(axes) == signal.ndim
    for name in axes:
        index = int(group.attrs[f"{name}_indices"])
        assert axes[index] == name
        np.testing.assert_array_equal(group[name][()], np.arange(signal.shape[index]))
    for name in strings(group.attrs.get("auxiliary_signals", [])):
        assert group[name].shape == signal.shape
    return signal


def check_common(f: h5py.File, acq: NexusAcquisition, default: str = "ROI1") -> None:
    assert f.attrs["NX_class"] == "NXroot"
    assert f.attrs["default"] == "entry"
    entry = f["entry"]
    assert entry.attrs["NX_class"] == "NXentry"
    assert entry.attrs["default"] == default
    assert entry["title"].asstr()[()] == acq.source_file.stem
    assert entry["start_time"].asstr()[()] == acq.started
    assert entry["end_time"].asstr()[()] == acq.finished
    assert entry["program_name"].asstr()[()] == "swmr-roi-ioc"
    assert entry["program_name"].attrs["version"] == __version__
    n = acq.frames
    for reg in acq.regions:
        group = entry[reg.name]
        check_nxdata(group)
        for key, values in reg.series.items():
            assert group[key].shape == (n,)
            assert group[key].dtype == np.float64
            np.testing.assert_array_equal(group[key][()], values)
        np.testing.assert_array_equal(group["frame_index"][()], np.arange(n))
        if reg.geometry is None:
            assert "roi" not in group
        else:
            roi = group["roi"]
            assert roi.attrs["NX_class"] in ("NXcollection", "NXparameters")
            assert {k: int(roi[k][()]) for k in roi} == reg.geometry
            assert all(roi[k].shape == () for k in roi)
    check_nxdata(entry["max_intensity"])
    detector = entry["instrument/detector"]
    assert entry["instrument"].attrs["NX_class"] == "NXinstrument"
    assert detector.attrs["NX_class"] == "NXdetector"
    assert tuple(detector["frame_shape"][()]) == (H, W)
    with h5py.File(acq.source_file, "r") as raw:
        np.testing.assert_array_equal(detector["data"][()], raw[DATASET][()])
    process = entry["process"]
    assert process.attrs["NX_class"] == "NXprocess"
    assert process["program"].asstr()[()] == "swmr-roi-ioc"
    assert process["version"].asstr()[()] == __version__
    assert process["date"].asstr()[()] == acq.finished
    assert bool(process["snake"][()]) is acq.snake
    note = process["NOTE"]
    assert note.attrs["NX_class"] == "NXnote"
    assert note["type"].asstr()[()] == "text/x-yaml"
    assert note["data"].asstr()[()] == CONFIG
    # the default chain ends at an NXdata with a signal
    default_group = f[f"{f.attrs['default']}/{entry.attrs['default']}"]
    check_nxdata(default_group)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_map_2d_snake(tmp_path: Path) -> None:
    acq = acquisition(tmp_path / "scan.h5", 20, (4, 5), snake=True)
    path = write_nexus(acq, nexus_path(acq.source_file, None))
    assert path == tmp_path / "scan_roi.nxs"
    assert leftovers(tmp_path) == []
    with h5py.File(path, "r") as f:
        check_common(f, acq)
        for reg in acq.regions:
            group = f["entry"][reg.name]
            assert strings(group.attrs["axes"]) == ["scan_row", "scan_col"]
            assert int(group.attrs["scan_row_indices"]) == 0
            assert int(group.attrs["scan_col_indices"]) == 1
            assert group["data"].shape == (4, 5)
            np.testing.assert_array_equal(group["data"][()], reg.map)
        np.testing.assert_array_equal(f["entry/max_intensity/data"][()], acq.max_map)
        assert tuple(f["entry/process/scan_shape"][()]) == (4, 5)
        # snake: the second row runs backwards
        roi1 = acq.regions[0]
        assert f["entry/ROI1/data"][1, 4] == roi1.series["total"][5]


def test_partial_map_keeps_nan(tmp_path: Path) -> None:
    acq = acquisition(tmp_path / "part.h5", 13, (4, 5), snake=True)
    path = write_nexus(acq, tmp_path / "out.nxs")
    with h5py.File(path, "r") as f:
        check_common(f, acq)
        got = f["entry/ROI2/data"][()]
        assert np.isnan(got).sum() == 7
        np.testing.assert_array_equal(got, acq.regions[1].map)


def test_line_1d(tmp_path: Path) -> None:
    acq = acquisition(tmp_path / "line.h5", 7, (1, 7))
    path = write_nexus(acq, tmp_path / "line_roi.nxs")
    with h5py.File(path, "r") as f:
        check_common(f, acq)
        for reg in acq.regions:
            group = f["entry"][reg.name]
            assert strings(group.attrs["axes"]) == ["scan_col"]
            assert int(group.attrs["scan_col_indices"]) == 0
            np.testing.assert_array_equal(group["data"][()], reg.map[0])
        np.testing.assert_array_equal(f["entry/max_intensity/data"][()], acq.max_map[0])


def test_column_1d(tmp_path: Path) -> None:
    acq = acquisition(tmp_path / "col.h5", 3, (3, 1))
    path = write_nexus(acq, tmp_path / "col_roi.nxs")
    with h5py.File(path, "r") as f:
        check_common(f, acq)
        group = f["entry/ROI1"]
        assert strings(group.attrs["axes"]) == ["scan_row"]
        np.testing.assert_array_equal(group["data"][()], acq.regions[0].map[:, 0])


@pytest.mark.parametrize("scan_shape", [None, (1, 1)])
def test_point_series(tmp_path: Path, scan_shape: tuple[int, int] | None) -> None:
    acq = acquisition(tmp_path / "points.h5", 9, scan_shape)
    path = write_nexus(acq, tmp_path / "points_roi.nxs")
    with h5py.File(path, "r") as f:
        check_common(f, acq)
        for reg in acq.regions:
            group = f["entry"][reg.name]
            assert strings(group.attrs["axes"]) == ["frame_index"]
            assert int(group.attrs["frame_index_indices"]) == 0
            np.testing.assert_array_equal(group["data"][()], reg.series["total"])
            assert strings(group.attrs["auxiliary_signals"]) == ["net", "min", "max", "mean"]
        frame = acq.regions[-1]
        np.testing.assert_array_equal(f["entry/max_intensity/data"][()], frame.series["max"])
        assert ("scan_shape" in f["entry/process"]) is (scan_shape is not None)


def test_only_frame_region_is_default(tmp_path: Path) -> None:
    acq = acquisition(tmp_path / "frame.h5", 4, (2, 2), rois={})
    path = write_nexus(acq, tmp_path / "frame_roi.nxs")
    with h5py.File(path, "r") as f:
        check_common(f, acq, default="Frame")


def test_external_link_relative_beside_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    acq = acquisition(tmp_path / "raw.h5", 4, (2, 2))
    path = write_nexus(acq, tmp_path / "raw_roi.nxs")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with h5py.File(path, "r") as f:
        link = f["entry/instrument/detector"].get("data", getlink=True)
        assert isinstance(link, h5py.ExternalLink)
        assert (link.filename, link.path) == ("raw.h5", DATASET)
        with h5py.File(acq.source_file, "r") as raw:
            np.testing.assert_array_equal(f["entry/instrument/detector/data"][()], raw[DATASET])


def test_external_link_absolute_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "processed").mkdir()
    acq = acquisition(tmp_path / "raw" / "scan.h5", 4, (2, 2))
    path = write_nexus(acq, nexus_path(acq.source_file, tmp_path / "processed"))
    assert path == tmp_path / "processed" / "scan_roi.nxs"
    with h5py.File(path, "r") as f:
        link = f["entry/instrument/detector"].get("data", getlink=True)
        assert link.filename == str(acq.source_file)
        check_common(f, acq)


def test_nexus_path() -> None:
    source = Path("/data/bl01c/scan_0001.h5")
    assert nexus_path(source, None) == Path("/data/bl01c/scan_0001_roi.nxs")
    assert nexus_path(source, "") == Path("/data/bl01c/scan_0001_roi.nxs")
    assert nexus_path(source, "/proc/out") == Path("/proc/out/scan_0001_roi.nxs")
    assert nexus_path(source, Path("/x")) == Path("/x/scan_0001_roi.nxs")


def test_replaces_existing_file_atomically(tmp_path: Path) -> None:
    old = acquisition(tmp_path / "a.h5", 20, (4, 5), snake=True)
    path = write_nexus(old, tmp_path / "a_roi.nxs")
    new = acquisition(tmp_path / "a.h5", 6, (2, 3))
    with h5py.File(path, "r") as reader:  # a reader holds the old file open
        write_nexus(new, path)
        # ... and still reads the old content after the rename
        assert reader["entry/ROI1/data"].shape == (4, 5)
        np.testing.assert_array_equal(reader["entry/ROI1/data"][()], old.regions[0].map)
    with h5py.File(path, "r") as f:
        check_common(f, new)
        assert f["entry/ROI1/data"].shape == (2, 3)
    assert leftovers(tmp_path) == []


def test_stale_tmp_is_overwritten(tmp_path: Path) -> None:
    acq = acquisition(tmp_path / "s.h5", 4, (2, 2))
    (tmp_path / "s_roi.nxs.tmp").write_bytes(b"half a file from a crash")
    path = write_nexus(acq, tmp_path / "s_roi.nxs")
    assert leftovers(tmp_path) == []
    with h5py.File(path, "r") as f:
        check_common(f, acq)


def bad_series(acq: NexusAcquisition, value: Any) -> NexusAcquisition:
    first = acq.regions[0]
    series = dict(first.series, net=value)
    regions = [NexusRegion(first.name, series, first.map, first.geometry), *acq.regions[1:]]
    return NexusAcquisition(**{**acq.__dict__, "regions": regions})


@pytest.mark.parametrize(
    "value",
    [np.zeros(3), np.array(["a", "b", "c", "d"]), np.zeros((4, 1))],
    ids=["short", "strings", "2-d"],
)
def test_bad_array_leaves_nothing(tmp_path: Path, value: Any) -> None:
    acq = bad_series(acquisition(tmp_path / "b.h5", 4, (2, 2)), value)
    with pytest.raises(NexusError, match="ROI1"):
        write_nexus(acq, tmp_path / "b_roi.nxs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.h5"]


def test_bad_map_shape(tmp_path: Path) -> None:
    acq = acquisition(tmp_path / "m.h5", 4, (2, 2))
    acq = NexusAcquisition(**{**acq.__dict__, "max_map": np.zeros((3, 3))})
    with pytest.raises(NexusError, match="max_map"):
        write_nexus(acq, tmp_path / "m_roi.nxs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5"]


@pytest.mark.parametrize("name", ["", "a/b", "max_intensity", "process"])
def test_bad_region_name(tmp_path: Path, name: str) -> None:
    acq = acquisition(tmp_path / "n.h5", 4, (2, 2), rois={name: ROIS["ROI1"]})
    with pytest.raises(NexusError):
        write_nexus(acq, tmp_path / "n_roi.nxs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.h5"]


def test_failure_mid_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = acquisition(tmp_path / "c.h5", 4, (2, 2))
    path = write_nexus(old, tmp_path / "c_roi.nxs")
    before = path.read_bytes()
    seen: list[bool] = []

    def boom(entry: h5py.Group, acq: NexusAcquisition) -> None:
        seen.append(Path(f"{path}.tmp").is_file())  # the regions are written by now
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(_nexus, "_write_process", boom)
    with pytest.raises(NexusError, match="disk on fire") as info:
        write_nexus(acquisition(tmp_path / "c.h5", 6, (2, 3)), path)
    assert isinstance(info.value, SwmrRoiError)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert seen == [True]
    assert leftovers(tmp_path) == []
    assert path.read_bytes() == before


def test_failure_at_rename_removes_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    acq = acquisition(tmp_path / "r.h5", 4, (2, 2))

    def refuse(src: Any, dst: Any) -> None:
        raise PermissionError("no")

    monkeypatch.setattr(_nexus.os, "replace", refuse)
    with pytest.raises(NexusError) as info:
        write_nexus(acq, tmp_path / "r_roi.nxs")
    assert isinstance(info.value.__cause__, PermissionError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5"]


def test_interrupt_removes_tmp_and_propagates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    acq = acquisition(tmp_path / "k.h5", 4, (2, 2))

    def interrupt(entry: h5py.Group, acq: NexusAcquisition) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_nexus, "_write_process", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_nexus(acq, tmp_path / "k_roi.nxs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.h5"]


def test_missing_directory_is_refused_not_created(tmp_path: Path) -> None:
    acq = acquisition(tmp_path / "d.h5", 4, (2, 2))
    target = tmp_path / "missing" / "deeper" / "d_roi.nxs"
    with pytest.raises(NexusError, match="does not exist"):
        write_nexus(acq, target)
    assert not (tmp_path / "missing").exists()


def test_directory_at_final_name_is_refused(tmp_path: Path) -> None:
    acq = acquisition(tmp_path / "e.h5", 4, (2, 2))
    (tmp_path / "e_roi.nxs").mkdir()
    with pytest.raises(NexusError, match="directory"):
        write_nexus(acq, tmp_path / "e_roi.nxs")
    assert leftovers(tmp_path) == []


def test_directory_at_tmp_name_is_left_alone(tmp_path: Path) -> None:
    acq = acquisition(tmp_path / "g.h5", 4, (2, 2))
    (tmp_path / "g_roi.nxs.tmp").mkdir()
    with pytest.raises(NexusError):
        write_nexus(acq, tmp_path / "g_roi.nxs")
    assert (tmp_path / "g_roi.nxs.tmp").is_dir()
    assert not (tmp_path / "g_roi.nxs").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory(tmp_path: Path) -> None:
    acq = acquisition(tmp_path / "ro.h5", 4, (2, 2))
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(NexusError):
            write_nexus(acq, out / "ro_roi.nxs")
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)


def test_unwritable_directory_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a read-only directory does to a non-root user, also under root."""
    acq = acquisition(tmp_path / "w.h5", 4, (2, 2))

    def refuse(*args: Any, **kwargs: Any) -> h5py.File:
        raise PermissionError(13, "Permission denied", str(args[0]))

    monkeypatch.setattr(_nexus.h5py, "File", refuse)
    with pytest.raises(NexusError, match="Permission denied") as info:
        write_nexus(acq, tmp_path / "w_roi.nxs")
    assert isinstance(info.value.__cause__, PermissionError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.h5"]
