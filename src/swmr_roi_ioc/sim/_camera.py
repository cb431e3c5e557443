"""A simulated dcam: ADAravis + NDFileHDF5 as a caproto IOC.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from caproto import get_server_address_list
from caproto.asyncio.server import Context

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
    """The driver and the HDF5 plugin PV groups, wired, and their server.

    ``pvdb`` may be served by any caproto server; then :meth:`initialise`
    must be awaited before and ``hdf.run()`` kept running beside it.
    :meth:`run` does all that with its own server.
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
        self.pvdb: dict[str, Any] = {**self.driver.pvdb, **self.hdf.pvdb}

    async def initialise(self) -> None:
        """Values that depend on the options (sizes, FilePath); before serving."""
        await self.driver.initialise()
        await self.hdf.initialise()

    async def close(self) -> None:
        """Stop acquiring, close any open file, stop the writer thread."""
        await self.driver.close()
        await self.hdf.close()

    async def run(self, ready: asyncio.Event | None = None) -> None:
        """Serve until cancelled; ``ready`` is set once clients can connect."""
        await self.initialise()
        context = Context(self.pvdb, get_server_address_list())

        async def started(async_lib: Any) -> None:
            logger.info(
                "simulated camera serving %s and %s",
                self.driver.prefix,
                self.hdf.prefix,
            )
            if ready is not None:
                ready.set()

        tasks = [
            asyncio.create_task(context.run(startup_hook=started), name="sim-camera-ca"),
            asyncio.create_task(self.hdf.run(), name="sim-camera-hdf"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a task that ended by itself is an error: raise it
            raise SimError("the simulated camera's server stopped")
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.close()


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
    once the server accepts clients. ``scan`` is the snake scan the frames'
    picture is drawn for.
    """
    camera = SimCamera(prefix, directory, cam=cam, hdf=hdf, shape=shape, dtype=dtype, scan=scan)
    await camera.run(ready)
