"""Building blocks of the simulated areaDetector IOC: PV helpers, NDArray, NDArrayBase.

The PV types follow ADCore's databases, because ophyd-async checks them on
connect: enums (``bo``/``mbbo``) carry ADCore's exact choice strings, paths
and messages are ``CHAR`` waveforms (ophyd-async reads them as ``str``),
short identifiers are ``DBR_STRING`` (``stringin``/``stringout``), and every
setpoint ``X`` has its readback ``X_RBV``.
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
from caproto import ChannelType
from caproto.server import PVGroup, PvpropertyChar, PvpropertyCharRO, pvproperty

T = TypeVar("T")

#: Length of the CHAR waveforms that carry paths, templates and messages.
LONG_STRING = 1024
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

    async def on_array(self, source_port: str, array: NDArray) -> None:
        """Take ``array`` (queue it); must not wait for it to be processed."""

    async def wait_idle(self) -> None:
        """Return once every array received so far is processed."""


def pv(**kwargs: Any) -> Any:
    """pvproperty(...); caproto's annotations reject ChannelType dtypes it accepts."""
    return pvproperty(**kwargs)


def number(name: str, value: float, *, read_only: bool = False, **kwargs: Any) -> Any:
    """A LONG (int ``value``) or DOUBLE (float ``value``) scalar PV."""
    return pv(name=name, value=value, read_only=read_only, **kwargs)


class LongStringRO(PvpropertyCharRO):
    """A read-only CHAR waveform that is never zero elements long.

    caproto serves ``""`` as a zero-length array, and CA monitors of it never
    deliver a value (libca/aioca subscribers wait forever); ADCore's string
    waveforms always hold at least the NUL terminator. So ``""`` is kept as
    one NUL, which every client reads as the empty string.
    """

    async def write(self, value: Any, **kwargs: Any) -> None:
        await super().write(value if value != "" else "\0", **kwargs)


class LongStringData(PvpropertyChar):
    """A writable CHAR waveform that also takes an empty string.

    ophyd-async writes ``"" + NUL`` (e.g. ``XMLFileName``); caproto 1.3.0 fails
    to convert a CHAR put holding only a NUL terminator, so that case is
    written as ``""`` here.
    """

    async def write_from_dbr(
        self, data: Any, data_type: Any, metadata: Any, *, flags: int = 0
    ) -> None:
        if data_type == ChannelType.CHAR:
            raw = data.tobytes() if hasattr(data, "tobytes") else bytes(data)
            if not raw.split(b"\0", 1)[0]:
                await self.write("")
                return
        await super().write_from_dbr(data, data_type, metadata, flags=flags)

    async def write(self, value: Any, **kwargs: Any) -> None:
        """Never zero elements long (see LongStringRO)."""
        await super().write(value if value != "" else "\0", **kwargs)


def text(name: str, value: str = "", *, read_only: bool = False, **kwargs: Any) -> Any:
    """A long string served as a CHAR waveform (``caget -S``), as ADCore's paths."""
    return pv(
        name=name,
        value=value or "\0",
        dtype=LongStringRO if read_only else LongStringData,
        max_length=LONG_STRING,
        read_only=read_only,
        **kwargs,
    )


def string(name: str, value: str = "", *, read_only: bool = False, **kwargs: Any) -> Any:
    """A DBR_STRING (40 characters) PV, as ``stringin``/``stringout`` records."""
    return pv(name=name, value=value, dtype=ChannelType.STRING, read_only=read_only, **kwargs)


def choice(
    name: str,
    choices: list[str],
    value: str | None = None,
    *,
    read_only: bool = False,
    **kwargs: Any,
) -> Any:
    """An ENUM PV with ``choices``; starts at ``value`` or the first choice."""
    return pv(
        name=name,
        value=choices[0] if value is None else value,
        dtype=ChannelType.ENUM,
        enum_strings=choices,
        read_only=read_only,
        **kwargs,
    )


async def mirror_to_readback(group: PVGroup, instance: Any, value: Any) -> Any:
    """Default putter of a setpoint: the readback ``<name>_RBV`` follows it."""
    readback = group.pvdb.get(f"{instance.pvname}_RBV")
    if readback is not None:
        await readback.write(value)
    return value


def pair(factory: Callable[..., Any], name: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """Setpoint ``name`` and read-only readback ``name_RBV``, the setpoint mirrored.

    A putter attached later replaces the mirroring; it calls
    :meth:`AreaDetectorGroup.readback` itself.
    """
    setpoint = factory(name, *args, put=mirror_to_readback, **kwargs)
    readback = factory(f"{name}_RBV", *args, read_only=True, **kwargs)
    return setpoint, readback


def is_set(instance: Any, value: Any) -> bool:
    """A two-state (bo/busy) put: True for the second state (index 1)."""
    if isinstance(value, str):
        return value == instance.enum_strings[1]
    return bool(value)


async def run_in(executor: Executor, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` in ``executor``, awaited from the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, functools.partial(func, *args, **kwargs))


class AreaDetectorGroup(PVGroup):
    """What every areaDetector port serves (ADCore ``NDArrayBase.template``)."""

    port_name = string("PortName_RBV", read_only=True)
    unique_id = number("UniqueId_RBV", 0, read_only=True)
    nd_attributes_file = text("NDAttributesFile")
    array_size_x = number("ArraySizeX_RBV", 0, read_only=True)
    array_size_y = number("ArraySizeY_RBV", 0, read_only=True)
    array_size_z = number("ArraySizeZ_RBV", 0, read_only=True)
    array_size0 = number("ArraySize0_RBV", 0, read_only=True)
    array_size1 = number("ArraySize1_RBV", 0, read_only=True)
    array_size2 = number("ArraySize2_RBV", 0, read_only=True)
    color_mode = choice("ColorMode_RBV", COLOR_MODES, read_only=True)
    data_type = choice("DataType_RBV", DATA_TYPES, "UInt16", read_only=True)
    array_counter, array_counter_rbv = pair(number, "ArrayCounter", 0)
    ad_core_version = string("ADCoreVersion_RBV", ADCORE_VERSION, read_only=True)
    driver_version = string("DriverVersion_RBV", ADCORE_VERSION, read_only=True)

    def __init__(self, prefix: str, *, port: str, **kwargs: Any) -> None:
        super().__init__(prefix, **kwargs)
        #: The asyn port name (PortName_RBV); plugins route arrays by it.
        self.port = port

    async def initialise(self) -> None:
        """Set the values that depend on the instance; call before serving."""
        await self.port_name.write(self.port)

    async def readback(self, setpoint: Any, value: Any) -> None:
        """Write ``value`` to the readback of ``setpoint`` (``<name>_RBV``)."""
        await mirror_to_readback(self, setpoint, value)

    async def set_both(self, setpoint: Any, value: Any) -> None:
        """Change a setpoint and its readback from inside the IOC."""
        await setpoint.write(value, verify_value=False)
        await self.readback(setpoint, value)

    async def describe_array(self, height: int, width: int, dtype: npt.DTypeLike) -> None:
        """Array size, data type and colour mode of the arrays this port handles."""
        for prop, value in (
            (self.array_size_x, width),
            (self.array_size_y, height),
            (self.array_size_z, 0),
            (self.array_size0, width),
            (self.array_size1, height),
            (self.array_size2, 0),
        ):
            if prop.value != value:
                await prop.write(value)
        name = data_type_name(dtype)
        if self.data_type.value != name:
            await self.data_type.write(name)
        if self.color_mode.value != "Mono":
            await self.color_mode.write("Mono")
