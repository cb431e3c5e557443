"""The simulated ADAravis driver (``cam1:``): frames of ``frame_pattern`` at AcquirePeriod.

``Acquire`` is a busy record, as in ADCore: a put of 1 completes when the
acquisition ends (after ``NumImages`` frames in Multiple mode, one in Single
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
from typing import Any

from caproto import SkipWrite

from swmr_roi_ioc.sim._camera_pvs import (
    DISABLE_ENABLE,
    NO_YES,
    OFF_ON,
    AreaDetectorGroup,
    ArrayConsumer,
    NDArray,
    choice,
    is_set,
    number,
    pair,
    string,
    text,
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
    """The PVs of ADAravis (``ADBase.template`` + ``aravisCamera.template``)."""

    driver_version = string("DriverVersion_RBV", ADARAVIS_VERSION, read_only=True)
    acquire_time, acquire_time_rbv = pair(number, "AcquireTime", 0.01, units="s", precision=4)
    acquire_period, acquire_period_rbv = pair(number, "AcquirePeriod", 0.02, units="s", precision=4)
    num_images, num_images_rbv = pair(number, "NumImages", 1)
    num_images_counter = number("NumImagesCounter_RBV", 0, read_only=True)
    image_mode, image_mode_rbv = pair(choice, "ImageMode", IMAGE_MODES, "Multiple")
    trigger_mode, trigger_mode_rbv = pair(choice, "TriggerMode", OFF_ON)
    trigger_source, trigger_source_rbv = pair(choice, "TriggerSource", TRIGGER_SOURCES)
    acquire = choice("Acquire", ["Done", "Acquire"])
    acquire_rbv = choice("Acquire_RBV", ["Done", "Acquiring"], read_only=True)
    detector_state = choice("DetectorState_RBV", DETECTOR_STATES, read_only=True)
    status_message = text("StatusMessage_RBV", "Idle", read_only=True)
    time_stamp = number("TimeStamp_RBV", 0.0, read_only=True, units="s", precision=3)
    wait_for_plugins = choice("WaitForPlugins", NO_YES)
    array_callbacks, array_callbacks_rbv = pair(choice, "ArrayCallbacks", DISABLE_ENABLE, "Enable")
    manufacturer = string("Manufacturer_RBV", MANUFACTURER, read_only=True)
    model = string("Model_RBV", MODEL, read_only=True)
    serial_number = string("SerialNumber_RBV", "SIM-0001", read_only=True)
    sdk_version = string("SDKVersion_RBV", "aravis 0.8 (sim)", read_only=True)
    firmware_version = string("FirmwareVersion_RBV", "sim", read_only=True)
    max_size_x = number("MaxSizeX_RBV", 0, read_only=True)
    max_size_y = number("MaxSizeY_RBV", 0, read_only=True)

    def __init__(self, prefix: str, *, options: SimOptions, port: str = "ARV1", **kwargs: Any):
        super().__init__(prefix, port=port, **kwargs)
        #: Shape, dtype and pattern of the frames.
        self.options = options
        #: Plugins fed with every frame while ArrayCallbacks is Enable.
        self.plugins: list[ArrayConsumer] = []
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def initialise(self) -> None:
        await super().initialise()
        height, width = self.options.shape
        await self.describe_array(height, width, self.options.dtype)
        await self.max_size_x.write(width)
        await self.max_size_y.write(height)

    @acquire.putter  # pyright: ignore[reportGeneralTypeIssues]
    async def acquire(self, instance: Any, value: Any) -> str:
        if not is_set(instance, value):
            await self.stop()
            return "Done"
        task = self._task
        if task is None or task.done():
            # busy record: 1 now; the acquisition writes 0 as it ends, then the put completes
            await instance.write("Acquire", verify_value=False)
            self._stop = asyncio.Event()
            task = asyncio.create_task(self._acquire(), name=f"{self.prefix}acquire")
            self._task = task
        await asyncio.wait([task])
        raise SkipWrite

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

    async def _state(self, state: str, message: str, acquiring: bool) -> None:
        await self.detector_state.write(state)
        await self.status_message.write(message)
        await self.acquire_rbv.write("Acquiring" if acquiring else "Done")
        if not acquiring:
            await self.acquire.write("Done", verify_value=False)

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
        mode = str(self.image_mode.value)
        if mode == "Single":
            total: int | None = 1
        elif mode == "Multiple":
            total = max(1, int(self.num_images.value))
        else:
            total = None
        await self.num_images_counter.write(0)
        await self._state("Acquire", "Acquiring", True)
        taken = 0
        try:
            if self.trigger_mode.value == "On":
                source = self.trigger_source.value
                await self._state("Waiting", f"Waiting for triggers on {source}", True)
                await self._stop.wait()
            else:
                taken = await self._frames(total)
            if self.wait_for_plugins.value == "Yes":
                for plugin in self.plugins:
                    await plugin.wait_idle()
        except Exception as exc:  # reported as the driver does, not raised into caproto
            logger.exception("%s: acquisition failed", self.prefix)
            await self._state("Error", f"Acquisition failed: {exc}", False)
            return
        logger.debug("%s: acquisition ended after %d frames", self.prefix, taken)
        complete = total is not None and taken >= total
        await self._state("Idle", "Done" if complete else "Stopped", False)

    async def _frames(self, total: int | None) -> int:
        """Read out ``total`` frames (None: until stopped); how many were."""
        taken = 0
        ready_at = time.monotonic() + max(0.0, float(self.acquire_time.value))
        while total is None or taken < total:
            unique_id = int(self.array_counter_rbv.value) + 1
            data = await asyncio.to_thread(frame_pattern, unique_id - 1, self.options)
            if not await self._until(ready_at):
                break
            await self._emit(NDArray(unique_id=unique_id, timestamp=time.time(), data=data))
            taken += 1
            await self.num_images_counter.write(taken)
            exposure = max(0.0, float(self.acquire_time.value))
            period = max(exposure, float(self.acquire_period.value))
            now = time.monotonic()
            # next deadline one period on; re-anchored if more than a period behind
            ready_at = ready_at + period if ready_at + period > now - period else now
        return taken

    async def _emit(self, array: NDArray) -> None:
        """Count the frame and hand it to the plugins."""
        await self.array_counter_rbv.write(array.unique_id)
        await self.unique_id.write(array.unique_id)
        await self.time_stamp.write(array.timestamp - EPICS_EPOCH_OFFSET)
        if self.array_callbacks.value == "Enable":
            for plugin in self.plugins:
                await plugin.on_array(self.port, array)
