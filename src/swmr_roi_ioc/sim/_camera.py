"""A simulated dcam: ADAravis + NDFileHDF5 as an EPICS IOC (pythonSoftIOC).

It serves the PVs ophyd-async's ``AravisDetector`` reads and writes, with
ADCore's types and behaviour, so the detector, bluesky plans and this
project's follower run against it unpatched:

- ``<prefix><cam>`` (default ``cam1:``): :class:`AravisDriverGroup`, frames
  of :func:`frame_pattern` at ``AcquirePeriod``;
- ``<prefix><hdf>`` (default ``HDF1:``): :class:`NDFileHDF5Group`, the
  frames captured into NDFileHDF5 files (SWMR, ADCore's default layout).

The frame with ``NDArrayUniqueId`` u is ``frame_pattern(u - 1,
camera_frame_options(shape, dtype))``; u is the driver's ``ArrayCounter_RBV``
+ 1, so it restarts at 1 when ``ArrayCounter`` is written 0.

The records are EPICS base records served by its Channel Access server
(RSRV), like a real areaDetector IOC; as every EPICS IOC, one per process
(``swmr-roi-ioc sim-camera`` is that process). No PVAccess server is
started, so the camera never takes the PVA port of an IOC beside it.
"""

from __future__ import annotations

import asyncio
import logging
import os

from swmr_roi_ioc.sim._camera_driver import AravisDriverGroup
from swmr_roi_ioc.sim._camera_hdf import NDFileHDF5Group
from swmr_roi_ioc.sim._options import SimError, SimOptions

logger = logging.getLogger(__name__)


def camera_frame_options(
    shape: tuple[int, int] = (256, 320),
    dtype: str = "uint16",
    scan: tuple[int, int] | None = None,
) -> SimOptions:
    """The :func:`frame_pattern` options of the simulated camera's frames;
    ``scan`` (rows, cols) is the snake scan the picture is drawn for."""
    return SimOptions(shape=(int(shape[0]), int(shape[1])), dtype=dtype, scan=scan)


class SimCamera:
    """The driver and the HDF5 plugin record groups, wired, and their IOC.

    Making one makes its records, so one per process, before :meth:`run`
    starts the IOC.
    """

    def __init__(
        self,
        prefix: str,
        directory: str | os.PathLike[str],
        *,
        cam: str = "cam1:",
        hdf: str = "HDF1:",
        shape: tuple[int, int] = (256, 320),
        dtype: str = "uint16",
        scan: tuple[int, int] | None = None,
    ) -> None:
        self.options = camera_frame_options(shape, dtype, scan)
        self.driver = AravisDriverGroup(prefix + cam, options=self.options)
        self.hdf = NDFileHDF5Group(prefix + hdf, directory=os.fspath(directory))
        self.driver.plugins.append(self.hdf)

    async def close(self) -> None:
        """Stop acquiring, close any open file, stop the writer thread."""
        await self.driver.close()
        await self.hdf.close()

    async def run(self, ready: asyncio.Event | None = None) -> None:
        """Serve until cancelled; ``ready`` is set once clients can connect."""
        from softioc import asyncio_dispatcher, builder, softioc

        await self.hdf.initialise()
        builder.LoadDatabase()
        # on_update handlers run on this loop, as all the camera's code does
        dispatcher = asyncio_dispatcher.AsyncioDispatcher(loop=asyncio.get_running_loop())
        softioc.iocInit(dispatcher, enable_pva=False)
        logger.info("simulated camera serving %s and %s", self.driver.prefix, self.hdf.prefix)
        if ready is not None:
            ready.set()
        try:
            await self.hdf.run()
            raise SimError("the simulated camera's HDF5 plugin stopped")
        finally:
            await asyncio.shield(self.close())


async def run_sim_camera(
    prefix: str,
    directory: str,
    *,
    cam: str = "cam1:",
    hdf: str = "HDF1:",
    shape: tuple[int, int] = (256, 320),
    dtype: str = "uint16",
    scan: tuple[int, int] | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Serve a simulated ADAravis camera with an NDFileHDF5 plugin until cancelled.

    PVs are ``prefix + cam`` + ADAravis names and ``prefix + hdf`` +
    NDFileHDF5 names; ``FilePath`` starts at ``directory``. ``ready`` is set
    once the IOC accepts clients. ``scan`` is the snake scan the frames'
    picture is drawn for. An EPICS IOC runs once per process: call this
    once, in a process of its own.
    """
    camera = SimCamera(prefix, directory, cam=cam, hdf=hdf, shape=shape, dtype=dtype, scan=scan)
    await camera.run(ready)
