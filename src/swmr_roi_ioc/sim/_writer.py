"""The simulated NDFileHDF5 plugin: writes a SWMR file the way ADCore does.

What follows ADCore's source (``NDFileHDF5.cpp``, ``NDFileHDF5Dataset.cpp``,
``NDFileHDF5AttributeDataset.cpp`` and the default layout XML):

- the default layout, all objects created before SWMR mode starts;
- the data dataset is created with extent 1 in the frame dimension(s) and
  fill value 0: before the first frame is flushed a reader sees one frame
  of zeros (shape ``(1, H, W)``);
- uncompressed frames are written as direct chunk writes, one frame a chunk;
- every frame: ``H5Dset_extent`` then write, then the NDAttribute datasets
  (shape ``(n, 1, 1)``, or ``(rows, cols, 1, 1)`` with extra dimensions,
  as ADCore's attribute datasets have two trailing dimensions of 1);
- ``H5Dflush`` of the data every ``NumFramesFlush`` frames, of the attribute
  datasets only every ``NDAttributeChunk`` frames, ``NDArrayUniqueId`` last;
- extra dimensions grow one point at a time in acquisition order
  ((1, 1) -> (1, 2) ... (1, cols) -> (2, cols) ...), unlimited max shape;
  a half-filled row reads as fill value 0 (the snake is in the pattern, not
  in the storage order);
- ``/entry/instrument/performance/timestamp`` (n, 5) is filled at close.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin
import numpy as np

from swmr_roi_ioc.sim._options import SimError, SimOptions
from swmr_roi_ioc.sim._pattern import frame_pattern

logger = logging.getLogger(__name__)

#: POSIX time of the EPICS epoch, 1990-01-01 00:00:00 UTC.
EPICS_EPOCH_OFFSET = 631152000

DATA_PATH = "/entry/instrument/detector/data"
DATA_LINK_PATH = "/entry/data/data"
ATTRIBUTES_GROUP = "/entry/instrument/NDAttributes"
DETECTOR_ATTRIBUTES_GROUP = "/entry/instrument/detector/NDAttributes"
PERFORMANCE_PATH = "/entry/instrument/performance/timestamp"

#: (group, name, dtype, description) of the NDAttribute datasets, in the order
#: they are flushed: NDArrayUniqueId last.
_ATTRIBUTES: tuple[tuple[str, str, str, str], ...] = (
    (DETECTOR_ATTRIBUTES_GROUP, "ColorMode", "int32", "Color mode"),
    (ATTRIBUTES_GROUP, "NDArrayTimeStamp", "float64", "Timestamp"),
    (ATTRIBUTES_GROUP, "NDArrayEpicsTSSec", "uint32", "EPICS timestamp sec"),
    (ATTRIBUTES_GROUP, "NDArrayEpicsTSnSec", "uint32", "EPICS timestamp nsec"),
    (ATTRIBUTES_GROUP, "NDArrayUniqueId", "int32", "Unique ID"),
)


@dataclass
class _Layout:
    data: h5py.Dataset
    attributes: dict[str, h5py.Dataset]
    performance: h5py.Dataset
    perf_rows: list[tuple[float, float, float, float, float]] = field(default_factory=list)


def _set_str(obj: h5py.Group | h5py.Dataset, name: str, value: str) -> None:
    """A fixed-length ASCII string attribute, as ADCore's writeH5attrStr."""
    obj.attrs.create(name, np.bytes_(value.encode("ascii")))


def _compression(name: str) -> Mapping[str, Any]:
    if name == "lz4":
        return hdf5plugin.LZ4()
    if name == "bslz4":
        return hdf5plugin.Bitshuffle(cname="lz4")
    if name == "blosc":
        return hdf5plugin.Blosc(cname="lz4", shuffle=hdf5plugin.Blosc.BITSHUFFLE)
    return {}


def _create_layout(f: h5py.File, options: SimOptions) -> _Layout:
    height, width = options.shape
    entry = f.create_group("entry")
    _set_str(entry, "NX_class", "NXentry")
    instrument = entry.create_group("instrument")
    _set_str(instrument, "NX_class", "NXinstrument")
    detector = instrument.create_group("detector")
    _set_str(detector, "NX_class", "NXdetector")

    # frame dimensions: (n,) or (rows, cols); extent 1, unlimited, as ADCore
    ones: tuple[int, ...] = (1, 1) if options.extra_dims else (1,)
    unlimited: tuple[None, ...] = (None,) * len(ones)
    data = detector.create_dataset(
        "data",
        shape=(*ones, height, width),
        maxshape=(*unlimited, height, width),
        chunks=(*ones, height, width),
        dtype=options.dtype,
        fillvalue=0,
        **_compression(options.compression),
    )
    _set_str(data, "NX_class", "SDS")
    data.attrs.create("signal", 1, dtype="int32")

    det_attrs = detector.create_group("NDAttributes")
    _set_str(det_attrs, "NX_class", "NXcollection")
    nd_attrs = instrument.create_group("NDAttributes")
    _set_str(nd_attrs, "NX_class", "NXcollection")

    chunk = options.attribute_chunk_frames
    if options.extra_dims:
        a_chunks: tuple[int, ...] = (1, min(options.scan_shape[1], chunk), 1, 1)
    else:
        a_chunks = (chunk, 1, 1)
    groups = {ATTRIBUTES_GROUP: nd_attrs, DETECTOR_ATTRIBUTES_GROUP: det_attrs}
    attributes: dict[str, h5py.Dataset] = {}
    for group, name, dtype, description in _ATTRIBUTES:
        dset = groups[group].create_dataset(
            name,
            shape=(*ones, 1, 1),
            maxshape=(*unlimited, 1, 1),
            chunks=a_chunks,
            dtype=dtype,
            fillvalue=0,
        )
        _set_str(dset, "NDAttrName", name)
        _set_str(dset, "NDAttrDescription", description)
        _set_str(dset, "NDAttrSourceType", "NDAttrSourceDriver")
        _set_str(dset, "NDAttrSource", "Driver")
        attributes[name] = dset

    performance = instrument.create_group("performance")
    perf = performance.create_dataset(
        "timestamp",
        shape=(0, 5),
        maxshape=(None, 5),
        chunks=(min(options.frames, 1024), 5),
        dtype="float64",
    )

    data_group = entry.create_group("data")
    _set_str(data_group, "NX_class", "NXdata")
    data_group["data"] = data  # hard link, as the layout's <hardlink>
    return _Layout(data=data, attributes=attributes, performance=perf)


def _position(index: int, options: SimOptions) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(extent, offset) of the frame dimensions after writing frame ``index``."""
    if not options.extra_dims:
        return (index + 1,), (index,)
    cols = options.scan_shape[1]
    row, col = divmod(index, cols)
    extent = (1, index + 1) if row == 0 else (row + 1, cols)
    return extent, (row, col)


def _write_frame(
    layout: _Layout,
    index: int,
    frame: np.ndarray[Any, Any],
    options: SimOptions,
    unique_id: int,
    wall: float,
) -> None:
    extent, offset = _position(index, options)
    data = layout.data
    data.resize((*extent, *options.shape))
    if options.compression == "none":
        data.id.write_direct_chunk((*offset, 0, 0), np.ascontiguousarray(frame))
    else:
        data[offset] = frame

    stamp = wall - EPICS_EPOCH_OFFSET
    sec = int(stamp)
    values: dict[str, float | int] = {
        "ColorMode": 0,  # NDColorModeMono
        "NDArrayTimeStamp": stamp,
        "NDArrayEpicsTSSec": sec,
        "NDArrayEpicsTSnSec": min(int((stamp - sec) * 1e9), 999_999_999),
        "NDArrayUniqueId": unique_id,
    }
    for name, dset in layout.attributes.items():
        dset.resize((*extent, 1, 1))
        dset[(*offset, 0, 0)] = values[name]


def _flush_attributes(layout: _Layout) -> None:
    for dset in layout.attributes.values():  # NDArrayUniqueId is last
        dset.flush()


def _write_performance(layout: _Layout) -> None:
    rows = layout.perf_rows
    if rows:
        perf = layout.performance
        perf.resize((len(rows), 5))
        perf[...] = np.asarray(rows, dtype=np.float64)
        perf.flush()


class Hdf5Writer:
    """One NDFileHDF5 file written frame by frame, in SWMR mode, as ADCore does.

    ``open()`` creates the file and every object of the layout, then starts
    SWMR mode (unless ``swmr`` is False); ``write_frame()`` appends one frame
    (extent, write, attributes) and flushes the data every
    ``options.num_frames_flush`` frames and the attribute datasets every
    ``options.attribute_chunk_frames`` frames;
    ``flush()`` flushes everything now (the plugin's ``FlushNow``); ``close()``
    flushes, writes the performance dataset and closes. Not thread-safe: call
    it from one thread (HDF5 is serialised anyway). The parent directory must
    exist, as for the plugin.
    """

    def __init__(
        self, path: str | os.PathLike[str], options: SimOptions, *, swmr: bool = True
    ) -> None:
        self.path = Path(path)
        self.options = options
        #: Start SWMR mode once the layout exists (the plugin's ``SWMRMode``).
        self.swmr = swmr
        self._file: h5py.File | None = None
        self._layout: _Layout | None = None
        self._frame_mbit = 8.0 * np.dtype(options.dtype).itemsize * np.prod(options.shape) / 2**20
        self._t0 = 0.0
        self._previous = 0.0
        #: Frames written so far.
        self.written = 0
        #: Flushes of the data dataset so far (the plugin's ``SWMRCbCounter``).
        self.flushes = 0
        #: POSIX time (``time.time()``) right after the last flush of the data,
        #: when readers could first see the frames written so far; 0 before.
        self.flushed_at = 0.0

    @property
    def is_open(self) -> bool:
        return self._file is not None

    @property
    def capacity(self) -> int | None:
        """How many frames fit (``rows * cols`` with extra dims), None if unlimited."""
        if not self.options.extra_dims:
            return None
        rows, cols = self.options.scan_shape
        return rows * cols

    def open(self) -> None:
        """Create the file and its layout, then start SWMR mode."""
        if self._file is not None:
            raise SimError(f"{self.path} is already open")
        try:
            f = h5py.File(self.path, "w", libver="latest")
        except OSError as exc:
            raise SimError(f"cannot create {self.path}: {exc}") from exc
        try:
            self._layout = _create_layout(f, self.options)
            if self.swmr:
                f.swmr_mode = True
        except (OSError, ValueError) as exc:
            f.close()
            raise SimError(f"cannot set up {self.path}: {exc}") from exc
        self._file = f
        self._t0 = self._previous = time.monotonic()

    def _require_layout(self) -> _Layout:
        if self._layout is None:
            raise SimError(f"{self.path} is not open")
        return self._layout

    def write_frame(
        self,
        frame: np.ndarray[Any, Any],
        *,
        unique_id: int | None = None,
        timestamp: float | None = None,
    ) -> bool:
        """Append ``frame``; True if the data was flushed after it.

        ``unique_id`` defaults to the frame's index + 1, ``timestamp`` (POSIX
        seconds) to now.
        """
        layout = self._require_layout()
        limit = self.capacity
        if limit is not None and self.written >= limit:
            raise SimError(f"{self.path}: the extra dimensions hold only {limit} frames")
        start = time.monotonic()
        index = self.written
        try:
            _write_frame(
                layout,
                index,
                frame,
                self.options,
                index + 1 if unique_id is None else unique_id,
                time.time() if timestamp is None else timestamp,
            )
            self.written = index + 1
            flushed = self.written % self.options.num_frames_flush == 0
            if flushed:
                layout.data.flush()
                self.flushed_at = time.time()
                self.flushes += 1
            if self.written % self.options.attribute_chunk_frames == 0:
                _flush_attributes(layout)
        except (OSError, ValueError) as exc:
            raise SimError(f"writing {self.path} failed after {index} frames: {exc}") from exc
        end = time.monotonic()
        runtime = max(end - self._t0, 1e-9)
        layout.perf_rows.append(
            (
                end - start,
                end - self._previous,
                runtime,
                self._frame_mbit / max(end - self._previous, 1e-9),
                self.written * self._frame_mbit / runtime,
            )
        )
        self._previous = end
        return flushed

    def flush(self) -> None:
        """Flush the data, then the attribute datasets (``NDArrayUniqueId`` last)."""
        layout = self._require_layout()
        try:
            layout.data.flush()
            self.flushed_at = time.time()
            _flush_attributes(layout)
        except (OSError, ValueError) as exc:
            raise SimError(f"flushing {self.path} failed: {exc}") from exc
        self.flushes += 1

    def close(self) -> None:
        """Flush everything, write the performance dataset and close; idempotent."""
        f, layout = self._file, self._layout
        if f is None or layout is None:
            return
        self._file = self._layout = None
        try:
            with f:
                layout.data.flush()
                self.flushed_at = time.time()
                _flush_attributes(layout)
                _write_performance(layout)
        except (OSError, ValueError) as exc:
            raise SimError(
                f"closing {self.path} failed after {self.written} frames: {exc}"
            ) from exc
        logger.debug("closed %s after %d frames", self.path, self.written)


def _wait_until(deadline: float, stop: threading.Event | None) -> bool:
    """Sleep until ``deadline`` (monotonic); False if ``stop`` was set."""
    delay = deadline - time.monotonic()
    if stop is not None:
        return not (stop.wait(delay) if delay > 0 else stop.is_set())
    if delay > 0:
        time.sleep(delay)
    return True


def write_file(
    path: str | os.PathLike[str],
    options: SimOptions,
    stop: threading.Event | None = None,
    on_frame: Callable[[int], None] | None = None,
    on_flush: Callable[[int, float], None] | None = None,
) -> int:
    """Write a whole simulated acquisition to ``path`` as NDFileHDF5 does (SWMR).

    The file is written in place (a follower may open it as soon as SWMR mode
    is on); its parent directory is created if needed. ``stop`` ends the
    acquisition early, the file is still flushed and closed cleanly.
    ``on_frame(i)`` is called once frame ``i`` has been flushed.
    ``on_flush(n, t)`` is called after each flush of the data: ``n`` frames
    are visible to readers since POSIX time ``t`` (taken right after the flush;
    the latency benchmark measures from it).

    Returns the number of frames written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    period = 1.0 / options.rate_hz if options.rate_hz > 0 else 0.0
    logger.info(
        "simulating %d frames %s %s at %s Hz into %s",
        options.frames,
        options.shape,
        options.dtype,
        options.rate_hz if period else "max",
        target,
    )
    writer = Hdf5Writer(target, options)
    writer.open()
    pending: list[int] = []
    try:
        t0 = time.monotonic()
        for index in range(options.frames):
            if index == options.burst:
                t0 = time.monotonic() - index * period  # the rate from here on
            if index >= options.burst and not _wait_until(t0 + index * period, stop):
                break
            if stop is not None and stop.is_set():
                break
            pending.append(index)
            if writer.write_frame(frame_pattern(index, options)):
                if on_flush is not None:
                    on_flush(writer.written, writer.flushed_at)
                _notify(pending, on_frame)
    finally:
        writer.close()
    if pending and on_flush is not None:  # the frames flushed by close()
        on_flush(writer.written, writer.flushed_at)
    _notify(pending, on_frame)
    logger.info("simulated writer closed %s after %d frames", target, writer.written)
    return writer.written


def _notify(pending: list[int], on_frame: Callable[[int], None] | None) -> None:
    if on_frame is not None:
        for index in pending:
            on_frame(index)
    pending.clear()
