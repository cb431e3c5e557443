"""What every port of the simulated areaDetector IOC has: NDArray, NDArrayBase.

The record types follow ADCore's databases, because ophyd-async checks them
on connect: enums (``bo``/``mbbo``) carry ADCore's exact choice strings,
paths and messages are ``CHAR`` waveforms (ophyd-async reads them as
``str``), short identifiers are ``DBR_STRING`` (``stringin``/``stringout``),
and every setpoint ``X`` has its readback ``X_RBV``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from swmr_roi_ioc.sim._camera_records import Pv, RecordBuilder

T = TypeVar("T")
#: ADCore's version this simulation follows (ADCoreVersion_RBV).
ADCORE_VERSION = "3.12.1"

NO_YES = ["No", "Yes"]
OFF_ON = ["Off", "On"]
DISABLE_ENABLE = ["Disable", "Enable"]
#: ADCore NDArrayBase.template ColorMode_RBV (ophyd-async ADBaseColorMode).
COLOR_MODES = ["Mono", "Bayer", "RGB1", "RGB2", "RGB3", "YUV444", "YUV422", "YUV421"]
#: ADCore NDArrayBase.template DataType_RBV (ophyd-async ADBaseDataType).
DATA_TYPES = [
    "Int8",
    "UInt8",
    "Int16",
    "UInt16",
    "Int32",
    "UInt32",
    "Int64",
    "UInt64",
    "Float32",
    "Float64",
]


def data_type_name(dtype: npt.DTypeLike) -> str:
    """ADCore's DataType string for a numpy dtype ("uint16" -> "UInt16")."""
    name = np.dtype(dtype).name
    if name.startswith("uint"):
        return "UInt" + name[4:]
    return name.capitalize()


@dataclass(frozen=True)
class NDArray:
    """One frame as areaDetector passes it from the driver to its plugins."""

    unique_id: int
    #: POSIX seconds when the frame was read out.
    timestamp: float
    #: (H, W) pixels; never modified once made.
    data: npt.NDArray[Any]

    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        return int(self.data.shape[1])


class ArrayConsumer(Protocol):
    """A plugin the driver hands its frames to (``NDArrayPort`` = driver port)."""

    def on_array(self, source_port: str, array: NDArray) -> None:
        """Take ``array`` (queue it); must not wait for it to be processed."""

    async def wait_idle(self) -> None:
        """Return once every array received so far is processed."""


async def run_in(executor: Executor, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` in ``executor``, awaited from the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, functools.partial(func, *args, **kwargs))


class AreaDetectorGroup:
    """What every areaDetector port serves (ADCore ``NDArrayBase.template``).

    The records are made when the group is; the IOC must not be started yet.
    """

    def __init__(self, prefix: str, *, port: str, driver_version: str = ADCORE_VERSION) -> None:
        self.prefix = prefix
        #: The asyn port name (PortName_RBV); plugins route arrays by it.
        self.port = port
        r = self.records = RecordBuilder(prefix)
        self.port_name = r.string("PortName_RBV", port)
        self.unique_id = r.number("UniqueId_RBV", 0)
        self.nd_attributes_file = r.text("NDAttributesFile", writable=True)
        self.array_size_x = r.number("ArraySizeX_RBV", 0)
        self.array_size_y = r.number("ArraySizeY_RBV", 0)
        self.array_size_z = r.number("ArraySizeZ_RBV", 0)
        self.array_size0 = r.number("ArraySize0_RBV", 0)
        self.array_size1 = r.number("ArraySize1_RBV", 0)
        self.array_size2 = r.number("ArraySize2_RBV", 0)
        self.color_mode = r.choice("ColorMode_RBV", COLOR_MODES)
        self.data_type = r.choice("DataType_RBV", DATA_TYPES, "UInt16")
        self.array_counter, self.array_counter_rbv = r.pair(r.number, "ArrayCounter", 0)
        self.ad_core_version = r.string("ADCoreVersion_RBV", ADCORE_VERSION)
        self.driver_version = r.string("DriverVersion_RBV", driver_version)

    def describe_array(self, height: int, width: int, dtype: npt.DTypeLike) -> None:
        """Array size, data type and colour mode of the arrays this port handles."""
        for pv, value in (
            (self.array_size_x, width),
            (self.array_size_y, height),
            (self.array_size_z, 0),
            (self.array_size0, width),
            (self.array_size1, height),
            (self.array_size2, 0),
        ):
            _change(pv, value)
        _change(self.data_type, data_type_name(dtype))
        _change(self.color_mode, "Mono")


def _change(pv: Pv, value: Any) -> None:
    """``pv.set(value)`` unless it holds that value already."""
    if pv.value != value:
        pv.set(value)
