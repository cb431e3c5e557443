"""The simulated NDFileHDF5 plugin (``HDF1:``): captures the driver's frames into files.

As ADCore's ``NDPluginFile`` + ``NDFileHDF5``:

- arrays come from the port named by ``NDArrayPort`` while ``EnableCallbacks``
  is Enable, through a queue of ``QueueSize`` (``DroppedArrays`` when full);
- ``Capture`` is a busy record. In Stream mode a put of 1 opens the file
  (at the first frame if ``LazyOpen``), writes each frame, and ends when
  ``NumCapture`` frames are captured (0 = until ``Capture`` is written 0):
  the file is flushed and closed, ``SWMRActive_RBV`` goes Off, ``FileNumber``
  is incremented if ``AutoIncrement``, and the put completes. Capture mode
  buffers the frames and writes them at the end; Single mode writes one file
  per frame with ``AutoSave`` (or on ``WriteFile``);
- ``NumCaptured_RBV`` counts frames, ``SWMRCbCounter_RBV`` counts flushes,
  ``FlushNow`` (busy) flushes data and attributes now;
- errors (directory missing, bad template, ...) set ``WriteStatus`` to
  "Write error" and ``WriteMessage``, and end the capture.

Every HDF5 call runs in one worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from caproto import SkipWrite

from swmr_roi_ioc.sim._camera_files import (
    COMPRESSIONS,
    FileSettings,
    create_directory,
    directory_usable,
    full_file_name,
    with_separator,
)
from swmr_roi_ioc.sim._camera_pvs import (
    DISABLE_ENABLE,
    NO_YES,
    OFF_ON,
    AreaDetectorGroup,
    NDArray,
    choice,
    is_set,
    number,
    pair,
    run_in,
    text,
)
from swmr_roi_ioc.sim._camera_pvs import string as string_pv
from swmr_roi_ioc.sim._options import SimError
from swmr_roi_ioc.sim._writer import Hdf5Writer

logger = logging.getLogger(__name__)

WRITE_MODES = ["Single", "Capture", "Stream"]


@dataclass(eq=False)
class _Capture:
    """One capture: Capture=1 until it ends (or one AutoSave file in Single mode)."""

    mode: str
    settings: FileSettings
    done: asyncio.Event = field(default_factory=asyncio.Event)
    writer: Hdf5Writer | None = None
    buffer: list[NDArray] = field(default_factory=list)
    captured: int = 0


def _write_all(writer: Hdf5Writer, arrays: list[NDArray]) -> None:
    """Capture mode: the buffered frames into one file (worker thread)."""
    writer.open()
    try:
        for array in arrays:
            writer.write_frame(array.data, unique_id=array.unique_id, timestamp=array.timestamp)
    finally:
        writer.close()


class NDFileHDF5Group(AreaDetectorGroup):
    """The PVs of ``NDPluginBase`` + ``NDFile`` + ``NDFileHDF5`` templates."""

    # NDPluginBase
    nd_array_port, nd_array_port_rbv = pair(string_pv, "NDArrayPort", "ARV1")
    enable_callbacks, enable_callbacks_rbv = pair(
        choice, "EnableCallbacks", DISABLE_ENABLE, "Enable"
    )
    nd_array_address, nd_array_address_rbv = pair(number, "NDArrayAddress", 0)
    queue_size, queue_size_rbv = pair(number, "QueueSize", 20)
    queue_free = number("QueueFree_RBV", 20, read_only=True)
    dropped_arrays, dropped_arrays_rbv = pair(number, "DroppedArrays", 0)
    # NDFile
    file_path, file_path_rbv = pair(text, "FilePath")
    file_name, file_name_rbv = pair(text, "FileName", "dcam")
    file_path_exists = choice("FilePathExists_RBV", NO_YES, read_only=True)
    file_template, file_template_rbv = pair(text, "FileTemplate", "%s%s_%6.6d.h5")
    full_file_name = text("FullFileName_RBV", read_only=True)
    file_number, file_number_rbv = pair(number, "FileNumber", 0)
    auto_increment, auto_increment_rbv = pair(choice, "AutoIncrement", NO_YES, "Yes")
    auto_save, auto_save_rbv = pair(choice, "AutoSave", NO_YES)
    file_write_mode, file_write_mode_rbv = pair(choice, "FileWriteMode", WRITE_MODES, "Stream")
    num_capture, num_capture_rbv = pair(number, "NumCapture", 0)
    num_captured = number("NumCaptured_RBV", 0, read_only=True)
    capture = choice("Capture", ["Done", "Capture"])
    capture_rbv = choice("Capture_RBV", ["Done", "Capturing"], read_only=True)
    write_file = choice("WriteFile", ["Done", "Write"])
    write_file_rbv = choice("WriteFile_RBV", ["Done", "Writing"], read_only=True)
    file_array_size0 = number("ArraySize0", 0, read_only=True)  # NDFileIO reads these names
    file_array_size1 = number("ArraySize1", 0, read_only=True)
    create_directory, create_directory_rbv = pair(number, "CreateDirectory", 0)
    write_status = choice("WriteStatus", ["Write OK", "Write error"])
    write_message = text("WriteMessage")
    lazy_open, lazy_open_rbv = pair(choice, "LazyOpen", NO_YES)
    # NDFileHDF5
    swmr_mode, swmr_mode_rbv = pair(choice, "SWMRMode", OFF_ON, "On")
    swmr_active = choice("SWMRActive_RBV", ["Off", "Active"], read_only=True)
    swmr_cb_counter = number("SWMRCbCounter_RBV", 0, read_only=True)
    swmr_supported = choice(
        "SWMRSupported_RBV", ["Not Supported", "Supported"], "Supported", read_only=True
    )
    flush_now = choice("FlushNow", ["Done", "Flush"])
    num_frames_flush, num_frames_flush_rbv = pair(number, "NumFramesFlush", 1)
    nd_attribute_chunk, nd_attribute_chunk_rbv = pair(number, "NDAttributeChunk", 0)
    num_extra_dims, num_extra_dims_rbv = pair(number, "NumExtraDims", 0)
    extra_dim_size_n, extra_dim_size_n_rbv = pair(number, "ExtraDimSizeN", 1)
    extra_dim_size_x, extra_dim_size_x_rbv = pair(number, "ExtraDimSizeX", 1)
    extra_dim_size_y, extra_dim_size_y_rbv = pair(number, "ExtraDimSizeY", 1)
    dim_att_datasets, dim_att_datasets_rbv = pair(choice, "DimAttDatasets", NO_YES)
    position_mode, position_mode_rbv = pair(choice, "PositionMode", OFF_ON)
    compression, compression_rbv = pair(choice, "Compression", COMPRESSIONS)
    xml_file_name, xml_file_name_rbv = pair(text, "XMLFileName")
    num_frames_chunks, num_frames_chunks_rbv = pair(number, "NumFramesChunks", 0)
    chunk_size_auto, chunk_size_auto_rbv = pair(choice, "ChunkSizeAuto", NO_YES, "Yes")

    def __init__(self, prefix: str, *, directory: str, port: str = "HDF1", **kwargs: Any):
        super().__init__(prefix, port=port, **kwargs)
        self.directory = with_separator(os.fspath(directory))
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sim-hdf5")
        self._queue: asyncio.Queue[NDArray] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._capture: _Capture | None = None
        self._last: NDArray | None = None

    async def initialise(self) -> None:
        await super().initialise()
        await self.set_both(self.file_path, self.directory)
        await self._check_path(self.directory)

    # -- arrays in --------------------------------------------------------------

    async def on_array(self, source_port: str, array: NDArray) -> None:
        if self.enable_callbacks.value != "Enable" or self.nd_array_port.value != source_port:
            return
        size = max(1, int(self.queue_size.value))
        if self._queue.qsize() >= size:
            await self.set_both(self.dropped_arrays, int(self.dropped_arrays_rbv.value) + 1)
            return
        self._queue.put_nowait(array)
        await self._queue_free()

    async def wait_idle(self) -> None:
        await self._queue.join()

    async def run(self) -> None:
        """Process the queued arrays, in order, until cancelled."""
        while True:
            array = await self._queue.get()
            try:
                async with self._lock:
                    await self._process(array)
            except Exception:  # one bad frame must not stop the plugin
                logger.exception("%s: processing array %d failed", self.prefix, array.unique_id)
            finally:
                self._queue.task_done()
                await self._queue_free()

    async def _queue_free(self) -> None:
        free = max(0, max(1, int(self.queue_size.value)) - self._queue.qsize())
        if self.queue_free.value != free:
            await self.queue_free.write(free)

    async def close(self) -> None:
        """Close any open file and stop the worker thread; for shutdown."""
        async with self._lock:
            if self._capture is not None:
                await self._finish(self._capture)
        await asyncio.to_thread(self._executor.shutdown, wait=True)

    async def _process(self, array: NDArray) -> None:
        self._last = array
        await self.array_counter_rbv.write(int(self.array_counter_rbv.value) + 1)
        await self.unique_id.write(array.unique_id)
        await self.describe_array(array.height, array.width, array.data.dtype)
        if self.file_array_size0.value != array.width:
            await self.file_array_size0.write(array.width)
            await self.file_array_size1.write(array.height)
        capture = self._capture
        if capture is None and self.file_write_mode.value == "Single":
            if self.auto_save.value == "Yes":
                await self._write_single(array)
            return
        if capture is not None:
            await self._add(capture, array)

    # -- capture ----------------------------------------------------------------

    def _settings(self) -> FileSettings:
        return FileSettings(
            num_capture=int(self.num_capture.value),
            num_frames_flush=int(self.num_frames_flush.value),
            nd_attribute_chunk=int(self.nd_attribute_chunk.value),
            num_extra_dims=int(self.num_extra_dims.value),
            extra_dim_size_n=int(self.extra_dim_size_n.value),
            extra_dim_size_x=int(self.extra_dim_size_x.value),
            compression=str(self.compression.value),
            swmr=self.swmr_mode.value == "On",
        )

    async def _fail(self, message: str) -> None:
        logger.warning("%s: %s", self.prefix, message)
        await self.write_status.write("Write error")
        await self.write_message.write(message)

    async def _start(self) -> _Capture | None:
        """Capture=1: a new capture, its file open unless LazyOpen; None on error."""
        if self._capture is not None:
            return self._capture
        mode = str(self.file_write_mode.value)
        if mode == "Single":
            await self._fail("ERROR: capture not supported in Single mode")
            return None
        await self.write_status.write("Write OK")
        await self.write_message.write("")
        await self.num_captured.write(0)
        capture = _Capture(mode=mode, settings=self._settings())
        if mode == "Stream" and self.lazy_open.value != "Yes":
            if self._last is None:
                await self._fail("ERROR: must collect an array to get dimensions first")
                return None
            if not await self._open(capture, self._last):
                return None
        self._capture = capture
        # busy record: 1 now; _finish writes 0, then the put completes
        await self.capture.write("Capture", verify_value=False)
        await self.capture_rbv.write("Capturing")
        return capture

    async def _open(self, capture: _Capture, array: NDArray) -> bool:
        """Name and create the file of ``capture`` for frames like ``array``."""
        path = str(self.file_path.value)
        try:
            name = full_file_name(
                str(self.file_template.value),
                path,
                str(self.file_name.value),
                int(self.file_number.value),
            )
            await self.full_file_name.write(name)
            if not await asyncio.to_thread(directory_usable, path):
                await self.file_path_exists.write("No")
                raise SimError(f"ERROR: directory {path!r} does not exist or is not writable")
            options = capture.settings.options(array.data.shape, array.data.dtype.name)
            writer = Hdf5Writer(name, options, swmr=capture.settings.swmr)
            if capture.mode != "Capture":  # Capture mode opens it at the end
                await run_in(self._executor, writer.open)
                await self.swmr_active.write("Active" if writer.swmr else "Off")
        except SimError as exc:
            await self._fail(str(exc))
            return False
        capture.writer = writer
        logger.info("%s: writing %s", self.prefix, name)
        return True

    async def _add(self, capture: _Capture, array: NDArray) -> None:
        """One frame into ``capture``; ends it when NumCapture frames are in."""
        if capture.mode == "Capture":
            capture.buffer.append(array)
        else:
            if capture.writer is None and not await self._open(capture, array):
                await self._finish(capture)
                return
            writer = capture.writer
            assert writer is not None
            try:
                await run_in(
                    self._executor,
                    writer.write_frame,
                    array.data,
                    unique_id=array.unique_id,
                    timestamp=array.timestamp,
                )
            except SimError as exc:
                await self._fail(str(exc))
                await self._finish(capture)
                return
            await self.swmr_cb_counter.write(writer.flushes)
        capture.captured += 1
        if capture.mode != "Single":
            await self.num_captured.write(capture.captured)
        limit = capture.settings.num_capture
        full = capture.writer is not None and capture.writer.written == capture.writer.capacity
        if (0 < limit <= capture.captured) or full:
            await self._finish(capture)

    async def _finish(self, capture: _Capture) -> None:
        """End ``capture``: write (Capture mode) or close its file, then Capture=0."""
        try:
            if capture.mode == "Capture" and capture.buffer:
                if await self._open(capture, capture.buffer[0]):
                    assert capture.writer is not None
                    await run_in(self._executor, _write_all, capture.writer, capture.buffer)
            elif capture.writer is not None:
                await run_in(self._executor, capture.writer.close)
                await self.swmr_cb_counter.write(capture.writer.flushes)
        except SimError as exc:
            await self._fail(str(exc))
        finally:
            capture.buffer.clear()
            if self._capture is capture:
                self._capture = None
            await self.swmr_active.write("Off")
            if capture.writer is not None and self.auto_increment.value == "Yes":
                await self.set_both(self.file_number, int(self.file_number.value) + 1)
            if capture.mode != "Single":
                await self.capture.write("Done", verify_value=False)
                await self.capture_rbv.write("Done")
            capture.done.set()

    async def _write_single(self, array: NDArray) -> None:
        """Single mode: one file holding ``array``."""
        settings = replace(self._settings(), num_capture=1, num_extra_dims=0)
        capture = _Capture(mode="Single", settings=settings)
        await self._add(capture, array)

    # -- putters ----------------------------------------------------------------

    @capture.putter  # pyright: ignore[reportGeneralTypeIssues]
    async def capture(self, instance: Any, value: Any) -> str:
        if not is_set(instance, value):
            async with self._lock:
                if self._capture is not None:
                    await self._finish(self._capture)
            return "Done"
        async with self._lock:
            capture = await self._start()
        if capture is None:
            return "Done"
        await capture.done.wait()
        raise SkipWrite

    @flush_now.putter  # pyright: ignore[reportGeneralTypeIssues]
    async def flush_now(self, instance: Any, value: Any) -> str:
        if is_set(instance, value):
            async with self._lock:
                capture = self._capture
                writer = None if capture is None else capture.writer
                if writer is not None and writer.is_open:
                    try:
                        await run_in(self._executor, writer.flush)
                    except SimError as exc:
                        await self._fail(str(exc))
                    await self.swmr_cb_counter.write(writer.flushes)
        return "Done"

    @write_file.putter  # pyright: ignore[reportGeneralTypeIssues]
    async def write_file(self, instance: Any, value: Any) -> str:
        if is_set(instance, value) and self.file_write_mode.value == "Single":
            await self.write_file_rbv.write("Writing")
            async with self._lock:
                if self._last is None:
                    await self._fail("ERROR: no array to write")
                else:
                    await self._write_single(self._last)
            await self.write_file_rbv.write("Done")
        return "Done"

    @file_path.putter  # pyright: ignore[reportGeneralTypeIssues]
    async def file_path(self, instance: Any, value: Any) -> str:
        path = with_separator(str(value))
        await self.readback(instance, path)
        await self._check_path(path)
        return path

    async def _check_path(self, path: str) -> None:
        """Create the directory as CreateDirectory says; FilePathExists_RBV."""
        try:
            await asyncio.to_thread(create_directory, path, int(self.create_directory.value))
        except SimError as exc:
            await self._fail(str(exc))
        exists = await asyncio.to_thread(directory_usable, path)
        await self.file_path_exists.write("Yes" if exists else "No")
