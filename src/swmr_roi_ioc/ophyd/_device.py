"""The IOC as ophyd-async devices: per-ROI statistics readable, geometry
settable, maps and counters. The per-ROI PVs are NDPluginROIStat's, so
ophyd-async's own ``NDROIStatNIO(f"{P}{n}:")`` reads them too."""

from __future__ import annotations

import numpy as np
from ophyd_async.core import (
    Array1D,
    DeviceVector,
    SignalR,
    StandardReadable,
    StrictEnum,
)
from ophyd_async.core import StandardReadableFormat as Format
from ophyd_async.epics.core import (
    epics_signal_r,
    epics_signal_rw,
    epics_signal_rw_rbv,
    epics_triggerable_command,
)

from ._geometry import SettledSignalRW, clamp_offset, clamp_size, current


class IocStatus(StrictEnum):
    """P:Status_RBV."""

    IDLE = "Idle"
    WAITING = "Waiting"
    FOLLOWING = "Following"
    FINISHED = "Finished"
    ERROR = "Error"


class _Stats(StandardReadable):
    """Statistics of the latest frame, time series and map of one region."""

    def _add_stats(self, prefix: str) -> None:
        with self.add_children_as_readables(Format.HINTED_SIGNAL):
            self.total = epics_signal_r(float, prefix + "Total_RBV")
        with self.add_children_as_readables():
            self.net = epics_signal_r(float, prefix + "Net_RBV")
            self.min_value = epics_signal_r(float, prefix + "MinValue_RBV")
            self.max_value = epics_signal_r(float, prefix + "MaxValue_RBV")
            self.mean_value = epics_signal_r(float, prefix + "MeanValue_RBV")
        self.ts_total = epics_signal_r(Array1D[np.float64], prefix + "TSTotal")
        self.ts_net = epics_signal_r(Array1D[np.float64], prefix + "TSNet")
        self.map = epics_signal_r(Array1D[np.float64], prefix + "Map")
        self.map_min = epics_signal_r(float, prefix + "MapMin_RBV")
        self.map_max = epics_signal_r(float, prefix + "MapMax_RBV")


class SwmrRoiRegion(_Stats):
    """ROI n under ``f"{P}{n}:"``: geometry settable, statistics readable.

    Setting a geometry signal (``min_x``, ``min_y``, ``size_x``, ``size_y``,
    ``bgd_width``) completes when its readback shows the value, clamped to the
    frame as the IOC applies it: ``bps.mv(roi.min_x, 107)`` then a count reads
    the new geometry. The statistics of frames already taken follow once
    ``RecomputeProgress_RBV`` is back at 100.
    """

    def __init__(self, prefix: str, name: str = "") -> None:
        self.max_size_x = epics_signal_r(int, prefix + "MaxSizeX_RBV")
        self.max_size_y = epics_signal_r(int, prefix + "MaxSizeY_RBV")

        async def offset_x(value: int) -> int:
            return clamp_offset(value, await current(self.max_size_x))

        async def offset_y(value: int) -> int:
            return clamp_offset(value, await current(self.max_size_y))

        async def size_x(value: int) -> int:
            width = await current(self.max_size_x)
            return clamp_size(value, await current(self.min_x), width)

        async def size_y(value: int) -> int:
            height = await current(self.max_size_y)
            return clamp_size(value, await current(self.min_y), height)

        async def bgd(value: int) -> int:
            return max(value, 0)

        with self.add_children_as_readables(Format.CONFIG_SIGNAL):
            self.label = epics_signal_rw(str, prefix + "Name")
            self.use = epics_signal_rw_rbv(bool, prefix + "Use")
            self.min_x = SettledSignalRW(prefix + "MinX", offset_x)
            self.min_y = SettledSignalRW(prefix + "MinY", offset_y)
            self.size_x = SettledSignalRW(prefix + "SizeX", size_x)
            self.size_y = SettledSignalRW(prefix + "SizeY", size_y)
            self.bgd_width = SettledSignalRW(prefix + "BgdWidth", bgd)
        self._add_stats(prefix)
        super().__init__(name=name)


class SwmrRoiFrame(_Stats):
    """The whole frame under ``f"{P}Frame:"``, plus the map of per-frame maxima."""

    def __init__(self, prefix: str, name: str = "") -> None:
        self._add_stats(prefix)
        self.max_map = epics_signal_r(Array1D[np.float64], prefix + "MaxMap")
        super().__init__(name=name)


class SwmrRoiIoc(StandardReadable):
    """One swmr-roi-ioc instance: counters and status, ROIs 1..N, the frame."""

    def __init__(self, prefix: str, num_rois: int, name: str = "") -> None:
        with self.add_children_as_readables():
            self.array_counter = epics_signal_r(int, prefix + "ArrayCounter_RBV")
            self.rois = DeviceVector(
                {n: SwmrRoiRegion(f"{prefix}{n}:") for n in range(1, num_rois + 1)}
            )
            self.frame = SwmrRoiFrame(prefix + "Frame:")
        with self.add_children_as_readables(Format.CONFIG_SIGNAL):
            self.file_path = epics_signal_r(str, prefix + "FilePath_RBV")
        self.status: SignalR[IocStatus] = epics_signal_r(IocStatus, prefix + "Status_RBV")
        self.status_message = epics_signal_r(str, prefix + "StatusMessage_RBV")
        self.frames_written = epics_signal_r(int, prefix + "FramesWritten_RBV")
        self.unique_id = epics_signal_r(int, prefix + "UniqueId_RBV")
        self.array_rate = epics_signal_r(float, prefix + "ArrayRate_RBV")
        self.map_size_x = epics_signal_r(int, prefix + "MapSizeX_RBV")
        self.map_size_y = epics_signal_r(int, prefix + "MapSizeY_RBV")
        self.recompute_progress = epics_signal_r(float, prefix + "RecomputeProgress_RBV")
        self.reset = epics_triggerable_command(prefix + "Reset")
        super().__init__(name=name)
