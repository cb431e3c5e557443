"""The simulated NDFileHDF5 plugin (``HDF1:``): captures the driver's frames into files.

As ADCore's ``NDPluginFile`` + ``NDFileHDF5``:

- arrays come from the port named by ``NDArrayPort`` while ``EnableCallbacks``
  is Enable, through a queue of ``QueueSize`` (``DroppedArrays`` when full);
- ``Capture`` is a busy record (see :class:`Busy`). In Stream mode a put of 1 opens the file
  (at the first frame if ``LazyOpen``), writes each frame, and ends when
  ``NumCapture`` frames are captured (0 = until ``Capture`` is written 0):
  the file is flushed and closed, ``SWMRActive_RBV`` goes Off, ``FileNumber``
  is incremented if ``AutoIncrement``, and the put completes. Capture mode
  buffers the frames and writes them at the end; Single mode writes one file
  per frame with ``AutoSave`` (or on ``WriteFile``);
- ``NumCaptured_RBV`` counts frames, ``SWMRCbCounter_RBV`` counts flushes,
  ``FlushNow`` (busy) flushes data and attributes now;
- the file is created as ``H5Fcreate(H5F_ACC_TRUNC)`` with HDF5's default
  file locking, as NDFileHDF5 does: with ``AutoIncrement`` off each capture
  recreates the same path, and a reader that holds the file with locking
  on makes that create fail (a write error naming the lock) after its
  ``O_TRUNC`` has emptied the file;
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
    run_in,
)
from swmr_roi_ioc.sim._options import SimError
from swmr_roi_ioc.sim._writer import Hdf5Writer

logger = logging.getLogger(__name__)

WRITE_MODES = ["Single", "Capture", "Stream"]


@dataclass(eq=False)
class _Capture:
    """One capture: Capture=1 until it ends (or one AutoSave file in Single mode)."""

    mode: str
    settings: FileSettings
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
    """The records of the ``NDPluginBase`` + ``NDFile`` + ``NDFileHDF5`` templates."""

    def __init__(self, prefix: str, *, directory: str, port: str = "HDF1") -> None:
        super().__init__(prefix, port=port)
        self.directory = with_separator(os.fspath(directory))
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sim-hdf5")
        self._queue: asyncio.Queue[NDArray] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._capture: _Capture | None = None
        self._last: NDArray | None = None
        r = self.records
        # NDPluginBase
        self.nd_array_port, _ = r.pair(r.string, "NDArrayPort", "ARV1")
        self.enable_callbacks, _ = r.pair(r.choice, "EnableCallbacks", DISABLE_ENABLE, "Enable")
        self.nd_array_address, _ = r.pair(r.number, "NDArrayAddress", 0)
        self.queue_size, _ = r.pair(r.number, "QueueSize", 20)
        self.queue_free = r.number("QueueFree_RBV", 20)
        self.dropped_arrays, _ = r.pair(r.number, "DroppedArrays", 0)
        # NDFile
        self.file_path, self.file_path_rbv = r.pair(r.text, "FilePath", on_put=self._put_path)
        self.file_name, _ = r.pair(r.text, "FileName", "dcam")
        self.file_path_exists = r.choice("FilePathExists_RBV", NO_YES)
        self.file_template, _ = r.pair(r.text, "FileTemplate", "%s%s_%6.6d.h5")
        self.full_file_name = r.text("FullFileName_RBV")
        self.file_number, _ = r.pair(r.number, "FileNumber", 0)
        self.auto_increment, _ = r.pair(r.choice, "AutoIncrement", NO_YES, "Yes")
        self.auto_save, _ = r.pair(r.choice, "AutoSave", NO_YES)
        self.file_write_mode, _ = r.pair(r.choice, "FileWriteMode", WRITE_MODES, "Stream")
        self.num_capture, _ = r.pair(r.number, "NumCapture", 0)
        self.num_captured = r.number("NumCaptured_RBV", 0)
        self.capture = r.busy("Capture", ("Done", "Capture"), self._start_capture, self._stop)
        self.capture_rbv = r.choice("Capture_RBV", ["Done", "Capturing"])
        self.write_file = r.busy("WriteFile", ("Done", "Write"), self._write_file, _nothing)
        self.write_file_rbv = r.choice("WriteFile_RBV", ["Done", "Writing"])
        self.file_array_size0 = r.number("ArraySize0", 0)  # NDFileIO reads these names
        self.file_array_size1 = r.number("ArraySize1", 0)
        self.create_directory, _ = r.pair(r.number, "CreateDirectory", 0)
        self.write_status = r.choice("WriteStatus", ["Write OK", "Write error"], writable=True)
        self.write_message = r.text("WriteMessage", writable=True)
        self.lazy_open, _ = r.pair(r.choice, "LazyOpen", NO_YES)
        # NDFileHDF5
        self.swmr_mode, _ = r.pair(r.choice, "SWMRMode", OFF_ON, "On")
        self.swmr_active = r.choice("SWMRActive_RBV", ["Off", "Active"])
        self.swmr_cb_counter = r.number("SWMRCbCounter_RBV", 0)
        self.swmr_supported = r.choice(
            "SWMRSupported_RBV", ["Not Supported", "Supported"], "Supported"
        )
        self.flush_now = r.busy("FlushNow", ("Done", "Flush"), self._flush_now, _nothing)
        self.num_frames_flush, _ = r.pair(r.number, "NumFramesFlush", 1)
        self.nd_attribute_chunk, _ = r.pair(r.number, "NDAttributeChunk", 0)
        self.num_extra_dims, _ = r.pair(r.number, "NumExtraDims", 0)
        self.extra_dim_size_n, _ = r.pair(r.number, "ExtraDimSizeN", 1)
        self.extra_dim_size_x, _ = r.pair(r.number, "ExtraDimSizeX", 1)
        self.extra_dim_size_y, _ = r.pair(r.number, "ExtraDimSizeY", 1)
        self.dim_att_datasets, _ = r.pair(r.choice, "DimAttDatasets", NO_YES)
        self.position_mode, _ = r.pair(r.choice, "PositionMode", OFF_ON)
        self.compression, _ = r.pair(r.choice, "Compression", COMPRESSIONS)
        self.xml_file_name, _ = r.pair(r.text, "XMLFileName")
        self.num_frames_chunks, _ = r.pair(r.number, "NumFramesChunks", 0)
        self.chunk_size_auto, _ = r.pair(r.choice, "ChunkSizeAuto", NO_YES, "Yes")
        self.file_path.set_both(self.directory)

    async def initialise(self) -> None:
        """FilePathExists_RBV of the starting FilePath; before serving."""
        await self._check_path(self.directory)

    # -- arrays in --------------------------------------------------------------

    def on_array(self, source_port: str, array: NDArray) -> None:
        if self.enable_callbacks.value != "Enable" or self.nd_array_port.value != source_port:
            return
        size = max(1, int(self.queue_size.value))
        if self._queue.qsize() >= size:
            self.dropped_arrays.set_both(int(self.dropped_arrays.value) + 1)
            return
        self._queue.put_nowait(array)
        self._queue_free()

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
                self._queue_free()

    def _queue_free(self) -> None:
        free = max(0, max(1, int(self.queue_size.value)) - self._queue.qsize())
        if self.queue_free.value != free:
            self.queue_free.set(free)

    async def close(self) -> None:
        """Close any open file and stop the worker thread; for shutdown."""
        for busy in (self.capture, self.write_file, self.flush_now):
            await busy.close()
        async with self._lock:
            if self._capture is not None:
                await self._finish(self._capture)
        await asyncio.to_thread(self._executor.shutdown, wait=True)

    async def _process(self, array: NDArray) -> None:
        self._last = array
        self.array_counter_rbv.set(int(self.array_counter_rbv.value) + 1)
        self.unique_id.set(array.unique_id)
        self.describe_array(array.height, array.width, array.data.dtype)
        if self.file_array_size0.value != array.width:
            self.file_array_size0.set(array.width)
            self.file_array_size1.set(array.height)
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

    def _fail(self, message: str) -> None:
        logger.warning("%s: %s", self.prefix, message)
        self.write_status.set("Write error")
        self.write_message.set(message)

    async def _start_capture(self) -> None:
        """Capture=1 (the busy record was not active)."""
        async with self._lock:
            capture = await self._start()
        if capture is None:
            self.capture.finish()

    async def _start(self) -> _Capture | None:
        """A new capture, its file open unless LazyOpen; None on error."""
        if self._capture is not None:
            return self._capture
        mode = str(self.file_write_mode.value)
        if mode == "Single":
            self._fail("ERROR: capture not supported in Single mode")
            return None
        self.write_status.set("Write OK")
        self.write_message.set("")
        self.num_captured.set(0)
        capture = _Capture(mode=mode, settings=self._settings())
        if mode == "Stream" and self.lazy_open.value != "Yes":
            if self._last is None:
                self._fail("ERROR: must collect an array to get dimensions first")
                return None
            if not await self._open(capture, self._last):
                return None
        self._capture = capture
        self.capture_rbv.set("Capturing")
        return capture

    async def _open(self, capture: _Capture, array: NDArray) -> bool:
        """Name and create the file of ``capture`` for frames like ``array``."""
        path = str(self.file_path_rbv.value)
        try:
            name = full_file_name(
                str(self.file_template.value),
                path,
                str(self.file_name.value),
                int(self.file_number.value),
            )
            self.full_file_name.set(name)
            if not await asyncio.to_thread(directory_usable, path):
                self.file_path_exists.set("No")
                raise SimError(f"ERROR: directory {path!r} does not exist or is not writable")
            options = capture.settings.options(array.data.shape, array.data.dtype.name)
            writer = Hdf5Writer(name, options, swmr=capture.settings.swmr)
            if capture.mode != "Capture":  # Capture mode opens it at the end
                await run_in(self._executor, writer.open)
                self.swmr_active.set("Active" if writer.swmr else "Off")
        except SimError as exc:
            self._fail(str(exc))
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
                self._fail(str(exc))
                await self._finish(capture)
                return
            self.swmr_cb_counter.set(writer.flushes)
        capture.captured += 1
        if capture.mode != "Single":
            self.num_captured.set(capture.captured)
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
                self.swmr_cb_counter.set(capture.writer.flushes)
        except SimError as exc:
            self._fail(str(exc))
        finally:
            capture.buffer.clear()
            if self._capture is capture:
                self._capture = None
            self.swmr_active.set("Off")
            if capture.writer is not None and self.auto_increment.value == "Yes":
                self.file_number.set_both(int(self.file_number.value) + 1)
            if capture.mode != "Single":
                self.capture_rbv.set("Done")
                self.capture.finish()

    async def _write_single(self, array: NDArray) -> None:
        """Single mode: one file holding ``array``."""
        settings = replace(self._settings(), num_capture=1, num_extra_dims=0)
        capture = _Capture(mode="Single", settings=settings)
        await self._add(capture, array)

    # -- put handlers -----------------------------------------------------------

    async def _stop(self) -> None:
        """Capture=0: end the capture now."""
        async with self._lock:
            if self._capture is not None:
                await self._finish(self._capture)

    async def _flush_now(self) -> None:
        """FlushNow=1: flush data and attributes of the open file."""
        try:
            async with self._lock:
                capture = self._capture
                writer = None if capture is None else capture.writer
                if writer is not None and writer.is_open:
                    try:
                        await run_in(self._executor, writer.flush)
                    except SimError as exc:
                        self._fail(str(exc))
                    self.swmr_cb_counter.set(writer.flushes)
        finally:
            self.flush_now.finish()

    async def _write_file(self) -> None:
        """WriteFile=1: in Single mode, the last array into one file."""
        try:
            if self.file_write_mode.value == "Single":
                self.write_file_rbv.set("Writing")
                async with self._lock:
                    if self._last is None:
                        self._fail("ERROR: no array to write")
                    else:
                        await self._write_single(self._last)
                self.write_file_rbv.set("Done")
        finally:
            self.write_file.finish()

    async def _put_path(self, value: str) -> None:
        """FilePath: FilePath_RBV with a trailing separator, the directory checked."""
        path = with_separator(value)
        self.file_path_rbv.set(path)
        await self._check_path(path)

    async def _check_path(self, path: str) -> None:
        """Create the directory as CreateDirectory says; FilePathExists_RBV."""
        try:
            await asyncio.to_thread(create_directory, path, int(self.create_directory.value))
        except SimError as exc:
            self._fail(str(exc))
        exists = await asyncio.to_thread(directory_usable, path)
        self.file_path_exists.set("Yes" if exists else "No")


async def _nothing() -> None:
    """A put of 0 to a busy record whose operation cannot be stopped."""
