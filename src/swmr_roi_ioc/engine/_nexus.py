"""The processed NeXus file of one acquisition, written atomically.

The file is built as ``<final>.tmp`` beside the final name, flushed, fsync'ed and
closed, and only then renamed (``os.replace``) onto the final name, the way
suitcase.nxstxm's ``finish_export`` does: nothing ever sees a half-written file
under the final name, and a reader holding an older file keeps reading it.

Layout (NeXus; every group has its ``NX_class``, ``default`` leads from the
root to the first ROI's NXdata)::

    /                       default="entry"
    /entry                  NXentry: title, start_time, end_time, program_name
      ROI1, ..., Frame      NXdata per region (signal "data", see below), with
                            the full time series total/net/min/max/mean and
                            frame_index, and the ROI geometry in "roi"
                            (NXcollection; not for Frame)
      max_intensity         NXdata of the per-frame maxima
      instrument/detector   NXdetector: "data" external link to the raw frames
      process               NXprocess: program, version, date, NOTE (ioc.yaml)

The signal ``data`` of each NXdata depends on the scan:

* 2-D map (rows > 1 and cols > 1): the (rows, cols) map, axes
  ``scan_row``, ``scan_col``;
* line (one of rows, cols is 1, the other > 1): the map's single row (axis
  ``scan_col``) or single column (axis ``scan_row``);
* point series (``scan_shape`` None, i.e. no scan geometry configured, or a
  1x1 scan): the time series itself, axis ``frame_index``; ``data`` is a hard
  link to ``total`` and ``net``/``min``/``max``/``mean`` are its
  ``auxiliary_signals`` (NeXus wants auxiliary signals shaped like the signal,
  so a map's NXdata does not list the (n,) series as auxiliary signals).
  ``max_intensity`` then plots the per-frame maxima series (the Frame region's
  ``max``, or the largest ``max`` of all regions when there is no Frame region).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeAlias

import h5py
import numpy as np
import numpy.typing as npt

from swmr_roi_ioc import __version__

from ._nexus_model import NexusAcquisition, NexusError, NexusRegion, nexus_path

__all__ = ["NexusAcquisition", "NexusError", "NexusRegion", "nexus_path", "write_nexus"]

logger = logging.getLogger(__name__)

PROGRAM = "swmr-roi-ioc"
#: The statistics of every region's time series, in the order they are written.
SERIES_KEYS = ("total", "net", "min", "max", "mean")
#: The ROI geometry fields written under ``<region>/roi``.
GEOMETRY_KEYS = ("x", "y", "width", "height", "background_width")
#: The name of the whole-frame region (it has no geometry).
FRAME_REGION = "Frame"
MAX_INTENSITY = "max_intensity"
_RESERVED = frozenset({MAX_INTENSITY, "instrument", "process"})

_Floats: TypeAlias = npt.NDArray[np.float64]
_Layout: TypeAlias = Literal["map", "row", "column", "points"]


def write_nexus(acq: NexusAcquisition, path: Path) -> Path:
    """Write ``acq`` to ``path`` atomically and return ``path``.

    Builds ``<path>.tmp`` in the same directory, then renames it onto ``path``
    (replacing an existing file). On any error the ``.tmp`` is removed and
    :class:`NexusError` is raised, chained to the cause; ``path`` is then
    untouched. Never creates directories: a missing parent is an error.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp")
    _check_target(path, tmp)
    layout = _check_acquisition(acq)
    logger.debug("writing NeXus file %s (via %s)", path, tmp.name)
    try:
        with h5py.File(tmp, "w", libver="latest", track_order=True) as f:
            _write_file(f, acq, layout, path)
            f.flush()
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, Exception):
            raise NexusError(f"cannot write NeXus file {path}: {exc}") from exc
        raise
    _fsync_directory(path.parent)
    logger.info("wrote NeXus file %s (%d frames, %d regions)", path, acq.frames, len(acq.regions))
    return path


# -- checks, before anything is created ------------------------------------------------------


def _check_target(path: Path, tmp: Path) -> None:
    if path.name in ("", ".", ".."):
        raise NexusError(f"not a file name: {path}")
    if not path.parent.is_dir():
        raise NexusError(f"cannot write NeXus file {path}: directory {path.parent} does not exist")
    if path.is_dir():
        raise NexusError(f"cannot write NeXus file {path}: it is a directory")
    if tmp.is_symlink() or (tmp.exists() and not tmp.is_file()):
        raise NexusError(f"cannot write NeXus file {path}: {tmp} exists and is not a file")


def _check_acquisition(acq: NexusAcquisition) -> _Layout:
    n = acq.frames
    if not _is_int(n) or n < 0:
        raise NexusError(f"frames must be a non-negative integer, got {n!r}")
    layout = _layout(acq.scan_shape)
    names: set[str] = set()
    for region in acq.regions:
        name = region.name
        if not name or "/" in name or name in (".", "..") or name in _RESERVED:
            raise NexusError(f"region name {name!r} cannot name an NXdata group")
        if name in names:
            raise NexusError(f"region name {name!r} appears twice")
        names.add(name)
        if set(region.series) != set(SERIES_KEYS):
            raise NexusError(
                f"region {name}: series keys must be {list(SERIES_KEYS)}, "
                f"got {sorted(region.series)}"
            )
        for key in SERIES_KEYS:
            _floats(region.series[key], (n,), f"region {name} series {key!r}")
        if layout != "points":
            _floats(region.map, acq.scan_shape, f"region {name} map")
        if region.geometry is not None:
            if set(region.geometry) != set(GEOMETRY_KEYS):
                raise NexusError(
                    f"region {name}: geometry keys must be {list(GEOMETRY_KEYS)}, "
                    f"got {sorted(region.geometry)}"
                )
            for key, value in region.geometry.items():
                if not _is_int(value):
                    raise NexusError(f"region {name}: geometry {key} must be an integer")
    if layout != "points":
        _floats(acq.max_map, acq.scan_shape, "max_map")
    if len(acq.frame_shape) != 2:
        raise NexusError(f"frame_shape must be (H, W), got {acq.frame_shape!r}")
    return layout


def _layout(scan_shape: tuple[int, int] | None) -> _Layout:
    if scan_shape is None:
        return "points"
    if len(scan_shape) != 2 or any(not _is_int(v) or v < 1 for v in scan_shape):
        raise NexusError(f"scan_shape must be (rows, cols) of positive integers: {scan_shape!r}")
    rows, cols = scan_shape
    if rows > 1 and cols > 1:
        return "map"
    if cols > 1:
        return "row"
    if rows > 1:
        return "column"
    return "points"


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _floats(value: object, shape: Sequence[int] | None, what: str) -> _Floats:
    """``value`` as float64 of ``shape``, or NexusError."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise NexusError(f"{what} is not an array of numbers: {exc}") from exc
    if shape is not None and array.shape != tuple(shape):
        raise NexusError(f"{what} has shape {array.shape}, expected {tuple(shape)}")
    return array


# -- the tree --------------------------------------------------------------------------------


def _write_file(f: h5py.File, acq: NexusAcquisition, layout: _Layout, final: Path) -> None:
    f.attrs["NX_class"] = "NXroot"
    f.attrs["default"] = "entry"
    f.attrs["file_name"] = final.name
    f.attrs["file_time"] = datetime.now(UTC).isoformat()
    f.attrs["creator"] = PROGRAM
    f.attrs["creator_version"] = __version__
    f.attrs["HDF5_Version"] = h5py.version.hdf5_version
    f.attrs["h5py_version"] = h5py.version.version

    entry = _group(f, "entry", "NXentry")
    entry.attrs["default"] = _default_region(acq)
    entry["title"] = acq.source_file.stem
    entry["start_time"] = acq.started
    entry["end_time"] = acq.finished
    entry["program_name"] = PROGRAM
    entry["program_name"].attrs["version"] = __version__

    for region in acq.regions:
        _write_region(entry, acq, region, layout)
    _write_max_intensity(entry, acq, layout)
    _write_detector(entry, acq, final)
    _write_process(entry, acq)


def _default_region(acq: NexusAcquisition) -> str:
    names = [r.name for r in acq.regions]
    rois = [name for name in names if name != FRAME_REGION]
    if rois:
        return rois[0]
    return names[0] if names else MAX_INTENSITY


def _group(parent: h5py.Group, name: str, nx_class: str) -> h5py.Group:
    group = parent.create_group(name, track_order=True)
    group.attrs["NX_class"] = nx_class
    return group


def _strings(values: Sequence[str]) -> npt.NDArray[np.object_]:
    return np.array(list(values), dtype=h5py.string_dtype())


def _write_region(
    entry: h5py.Group, acq: NexusAcquisition, region: NexusRegion, layout: _Layout
) -> None:
    n = acq.frames
    data = _group(entry, region.name, "NXdata")
    data.attrs["signal"] = "data"
    series = {key: _floats(region.series[key], (n,), key) for key in SERIES_KEYS}
    if layout == "points":
        for key in SERIES_KEYS:
            _dataset(data, key, series[key], f"{region.name} {key}")
        data["data"] = data["total"]  # hard link: the signal is the total series
        data.attrs["auxiliary_signals"] = _strings([k for k in SERIES_KEYS if k != "total"])
        _axes(data, layout, acq.scan_shape, n)
    else:
        signal = _signal(_floats(region.map, acq.scan_shape, "map"), layout)
        _dataset(data, "data", signal, f"{region.name} total")
        _axes(data, layout, acq.scan_shape, n)
        for key in SERIES_KEYS:
            _dataset(data, key, series[key], f"{region.name} {key}")
    if "frame_index" not in data:
        data["frame_index"] = np.arange(n, dtype=np.int64)
    if region.geometry is not None:
        roi = _group(data, "roi", "NXcollection")
        for key in GEOMETRY_KEYS:
            roi[key] = np.int64(region.geometry[key])
            roi[key].attrs["units"] = "pixel"


def _write_max_intensity(entry: h5py.Group, acq: NexusAcquisition, layout: _Layout) -> None:
    data = _group(entry, MAX_INTENSITY, "NXdata")
    data.attrs["signal"] = "data"
    if layout == "points":
        signal = _max_series(acq)
    else:
        signal = _signal(_floats(acq.max_map, acq.scan_shape, "max_map"), layout)
    _dataset(data, "data", signal, "maximum intensity")
    _axes(data, layout, acq.scan_shape, acq.frames)


def _max_series(acq: NexusAcquisition) -> _Floats:
    """Per-frame maxima: the Frame region's ``max``, else the largest ``max`` of all regions."""
    n = acq.frames
    for region in acq.regions:
        if region.name == FRAME_REGION:
            return _floats(region.series["max"], (n,), "Frame max")
    maxima = [_floats(r.series["max"], (n,), "max") for r in acq.regions]
    if not maxima:
        return np.full(n, np.nan)
    return np.fmax.reduce(np.stack(maxima), axis=0)


def _signal(map_: _Floats, layout: _Layout) -> _Floats:
    if layout == "row":
        return map_[0, :]
    if layout == "column":
        return map_[:, 0]
    return map_


def _dataset(group: h5py.Group, name: str, value: _Floats, long_name: str) -> None:
    group[name] = value
    group[name].attrs["long_name"] = long_name


def _axes(data: h5py.Group, layout: _Layout, scan_shape: tuple[int, int] | None, n: int) -> None:
    if layout == "points" or scan_shape is None:
        axes = {"frame_index": n}
    elif layout == "map":
        axes = {"scan_row": scan_shape[0], "scan_col": scan_shape[1]}
    elif layout == "row":
        axes = {"scan_col": scan_shape[1]}
    else:
        axes = {"scan_row": scan_shape[0]}
    data.attrs["axes"] = _strings(list(axes))
    for dim, (name, length) in enumerate(axes.items()):
        data[name] = np.arange(length, dtype=np.int64)
        data[name].attrs["long_name"] = name.replace("_", " ")
        data.attrs[f"{name}_indices"] = np.int64(dim)


def _write_detector(entry: h5py.Group, acq: NexusAcquisition, final: Path) -> None:
    instrument = _group(entry, "instrument", "NXinstrument")
    detector = _group(instrument, "detector", "NXdetector")
    detector["data"] = h5py.ExternalLink(_link_target(acq.source_file, final), acq.dataset)
    detector["frame_shape"] = np.array(acq.frame_shape, dtype=np.int64)
    detector["frame_shape"].attrs["units"] = "pixel"


def _link_target(source: Path, final: Path) -> str:
    """The source's bare name when it sits beside the output, else its absolute path."""
    source = Path(source).absolute()
    with contextlib.suppress(OSError):
        if source.parent.resolve() == final.parent.resolve():
            return source.name
    return str(source)


def _write_process(entry: h5py.Group, acq: NexusAcquisition) -> None:
    process = _group(entry, "process", "NXprocess")
    process["program"] = PROGRAM
    process["version"] = __version__
    process["date"] = acq.finished
    process["ioc_name"] = acq.ioc_name
    process["source_file"] = str(Path(acq.source_file).absolute())
    process["source_dataset"] = acq.dataset
    process["frames"] = np.int64(acq.frames)
    if acq.scan_shape is not None:
        process["scan_shape"] = np.array(acq.scan_shape, dtype=np.int64)
    process["snake"] = np.bool_(acq.snake)
    note = _group(process, "NOTE", "NXnote")
    note["type"] = "text/x-yaml"
    note["file_name"] = "ioc.yaml"
    note["description"] = "the ioc.yaml configuration the IOC ran with"
    note["data"] = acq.config_yaml


# -- files -----------------------------------------------------------------------------------


def _fsync(file: Path) -> None:
    fd = os.open(file, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; best effort (not every filesystem allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(tmp: Path) -> None:
    if tmp.is_symlink() or not tmp.is_file():
        return
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        logger.warning("could not remove %s", tmp, exc_info=True)
