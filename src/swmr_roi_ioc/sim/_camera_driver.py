"""The simulated ADAravis driver (``cam1:``): frames of ``frame_pattern`` at AcquirePeriod.

``Acquire`` is a busy record, as in ADCore (see :class:`Busy`): a put of 1
completes when the acquisition ends (after ``NumImages`` frames in Multiple mode, one in Single
mode, never by itself in Continuous mode), a put of 0 stops it. Frame ``k``
is read out ``AcquireTime`` after the start plus ``k`` periods of
``max(AcquirePeriod, AcquireTime)`` on ``time.monotonic`` deadlines. Its
``uniqueId`` is ``ArrayCounter_RBV + 1`` and its pixels are
``frame_pattern(uniqueId - 1, options)``, computed in a worker thread.

``TriggerMode`` On waits for triggers on ``TriggerSource``; nothing sends
them here, so no frame comes until ``Acquire`` is written 0.
"""

from __future__ import annotations

import asyncio
import logging
import time

from swmr_roi_ioc.sim._camera_pvs import (
    DISABLE_ENABLE,
    NO_YES,
    OFF_ON,
    AreaDetectorGroup,
    ArrayConsumer,
    NDArray,
)
from swmr_roi_ioc.sim._options import SimOptions
from swmr_roi_ioc.sim._pattern import frame_pattern
from swmr_roi_ioc.sim._writer import EPICS_EPOCH_OFFSET

logger = logging.getLogger(__name__)

#: ADCore ADBase.template DetectorState_RBV (ophyd-async ADState, a StrictEnum).
DETECTOR_STATES = [
    "Idle",
    "Acquire",
    "Readout",
    "Correct",
    "Saving",
    "Aborting",
    "Error",
    "Waiting",
    "Initializing",
    "Disconnected",
    "Aborted",
]
IMAGE_MODES = ["Single", "Multiple", "Continuous"]
TRIGGER_SOURCES = ["Line1", "Line2", "Line3", "Software"]
#: A GigE camera model whose deadtime ophyd-async's AravisDetector knows.
MODEL = "Mako G-125"
MANUFACTURER = "Allied Vision"
ADARAVIS_VERSION = "2.3.0"


class AravisDriverGroup(AreaDetectorGroup):
    """The records of ADAravis (``ADBase.template`` + ``aravisCamera.template``)."""

    def __init__(self, prefix: str, *, options: SimOptions, port: str = "ARV1") -> None:
        super().__init__(prefix, port=port, driver_version=ADARAVIS_VERSION)
        #: Shape, dtype and pattern of the frames.
        self.options = options
        #: Plugins fed with every frame while ArrayCallbacks is Enable.
        self.plugins: list[ArrayConsumer] = []
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        height, width = options.shape
        r = self.records
        self.acquire_time, _ = r.pair(r.number, "AcquireTime", 0.01, units="s", precision=4)
        self.acquire_period, _ = r.pair(r.number, "AcquirePeriod", 0.02, units="s", precision=4)
        self.num_images, _ = r.pair(r.number, "NumImages", 1)
        self.num_images_counter = r.number("NumImagesCounter_RBV", 0)
        self.image_mode, _ = r.pair(r.choice, "ImageMode", IMAGE_MODES, "Multiple")
        self.trigger_mode, _ = r.pair(r.choice, "TriggerMode", OFF_ON)
        self.trigger_source, _ = r.pair(r.choice, "TriggerSource", TRIGGER_SOURCES)
        self.acquire = r.busy("Acquire", ("Done", "Acquire"), self._start, self.stop)
        self.acquire_rbv = r.choice("Acquire_RBV", ["Done", "Acquiring"])
        self.detector_state = r.choice("DetectorState_RBV", DETECTOR_STATES)
        self.status_message = r.text("StatusMessage_RBV", "Idle")
        self.time_stamp = r.number("TimeStamp_RBV", 0.0, units="s", precision=3)
        self.wait_for_plugins = r.choice("WaitForPlugins", NO_YES, writable=True)
        self.array_callbacks, _ = r.pair(r.choice, "ArrayCallbacks", DISABLE_ENABLE, "Enable")
        self.manufacturer = r.string("Manufacturer_RBV", MANUFACTURER)
        self.model = r.string("Model_RBV", MODEL)
        self.serial_number = r.string("SerialNumber_RBV", "SIM-0001")
        self.sdk_version = r.string("SDKVersion_RBV", "aravis 0.8 (sim)")
        self.firmware_version = r.string("FirmwareVersion_RBV", "sim")
        self.max_size_x = r.number("MaxSizeX_RBV", width)
        self.max_size_y = r.number("MaxSizeY_RBV", height)
        self.describe_array(height, width, options.dtype)

    async def _start(self) -> None:
        """Acquire=1: start an acquisition (the busy record is not active)."""
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._acquire(), name=f"{self.prefix}acquire")

    async def stop(self) -> None:
        """Stop acquiring (as a put of Acquire=0) and wait for it to end."""
        self._stop.set()
        task = self._task
        if task is not None and not task.done():
            await asyncio.wait([task])

    async def close(self) -> None:
        """Cancel any acquisition; for shutdown."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        await self.acquire.close()

    def _state(self, state: str, message: str, acquiring: bool) -> None:
        self.detector_state.set(state)
        self.status_message.set(message)
        self.acquire_rbv.set("Acquiring" if acquiring else "Done")

    async def _until(self, deadline: float) -> bool:
        """Sleep until ``deadline`` (monotonic); False if stopped meanwhile."""
        delay = deadline - time.monotonic()
        if delay <= 0:
            return not self._stop.is_set()
        try:
            await asyncio.wait_for(self._stop.wait(), delay)
        except TimeoutError:
            return True
        return False

    async def _acquire(self) -> None:
        try:
            await self._run()
        finally:
            self.acquire.finish()  # Acquire back to 0; the put callback completes

    async def _run(self) -> None:
        mode = str(self.image_mode.value)
        if mode == "Single":
            total: int | None = 1
        elif mode == "Multiple":
            total = max(1, int(self.num_images.value))
        else:
            total = None
        self.num_images_counter.set(0)
        self._state("Acquire", "Acquiring", True)
        taken = 0
        try:
            if self.trigger_mode.value == "On":
                source = self.trigger_source.value
                self._state("Waiting", f"Waiting for triggers on {source}", True)
                await self._stop.wait()
            else:
                taken = await self._frames(total)
            if self.wait_for_plugins.value == "Yes":
                for plugin in self.plugins:
                    await plugin.wait_idle()
        except Exception as exc:  # reported as the driver does, not raised into the IOC
            logger.exception("%s: acquisition failed", self.prefix)
            self._state("Error", f"Acquisition failed: {exc}", False)
            return
        logger.debug("%s: acquisition ended after %d frames", self.prefix, taken)
        complete = total is not None and taken >= total
        self._state("Idle", "Done" if complete else "Stopped", False)

    async def _frames(self, total: int | None) -> int:
        """Read out ``total`` frames (None: until stopped); how many were."""
        taken = 0
        ready_at = time.monotonic() + max(0.0, float(self.acquire_time.value))
        while total is None or taken < total:
            unique_id = int(self.array_counter_rbv.value) + 1
            data = await asyncio.to_thread(frame_pattern, unique_id - 1, self.options)
            if not await self._until(ready_at):
                break
            self._emit(NDArray(unique_id=unique_id, timestamp=time.time(), data=data))
            taken += 1
            self.num_images_counter.set(taken)
            exposure = max(0.0, float(self.acquire_time.value))
            period = max(exposure, float(self.acquire_period.value))
            now = time.monotonic()
            # next deadline one period on; re-anchored if more than a period behind
            ready_at = ready_at + period if ready_at + period > now - period else now
        return taken

    def _emit(self, array: NDArray) -> None:
        """Count the frame and hand it to the plugins."""
        self.array_counter_rbv.set(array.unique_id)
        self.unique_id.set(array.unique_id)
        self.time_stamp.set(array.timestamp - EPICS_EPOCH_OFFSET)
        if self.array_callbacks.value == "Enable":
            for plugin in self.plugins:
                plugin.on_array(self.port, array)
