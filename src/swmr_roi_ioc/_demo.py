"""``swmr-roi-ioc demo``: a simulated dcam and the IOC attached to it.

The simulated ADAravis + NDFileHDF5 camera runs in a child process (a SWMR
writer and reader must not share one HDF5 library instance). This process
runs the IOC, attached to the camera's HDF5 plugin over Channel Access, and a
small driver that starts one acquisition after another over CA, so a
newcomer sees file after file followed. With a config that names a fixed
``source.file`` instead, the simulated writer rewrites that file in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import tempfile
from importlib.resources import files
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from aioca import DBR_CHAR_STR, caget, caput, purge_channel_caches

from swmr_roi_ioc.app import serve
from swmr_roi_ioc.config import DATA_ROOT_ENV, IocConfig, load_config, parse_config, resolve_under
from swmr_roi_ioc.engine import nexus_path
from swmr_roi_ioc.sim import SimOptions, run_sim_camera, write_file

log = logging.getLogger(__name__)

#: Pause between two simulated acquisitions.
PAUSE_S = 3.0
#: Acquisitions kept on disk (a 30 x 40 scan of 256 x 320 uint16 is ~200 MB,
#: in RAM where /tmp is tmpfs); older raw and NeXus files are deleted.
KEEP = 3


def _camera_process(
    prefix: str, hdf: str, directory: str, scan: tuple[int, int], port: int
) -> None:
    """Child process: the simulated dcam IOC until terminated, on its own CA port."""
    logging.basicConfig(level=logging.WARNING)
    os.environ["EPICS_CA_SERVER_PORT"] = str(port)

    async def main() -> None:
        task = asyncio.create_task(run_sim_camera(prefix, directory, hdf=hdf, scan=scan))
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def _writer_loop(path: str, options: SimOptions, stop: Event, pause_s: float) -> None:
    """Child process (fixed-file configs): write, pause, replace the file, forever."""
    logging.basicConfig(level=logging.WARNING)
    target = Path(path)
    with contextlib.suppress(KeyboardInterrupt):
        while not stop.is_set():
            target.unlink(missing_ok=True)  # a new inode: the IOC starts over
            write_file(target, options)
            stop.wait(pause_s)


def prune(directory: Path, keep: int, pattern: str = "demo_*.h5") -> list[Path]:
    """Delete all but the newest ``keep`` acquisitions in ``directory`` (the raw
    file and its NeXus file, ``<stem>_roi.nxs``); returns what was deleted."""
    raws = sorted(directory.glob(pattern), key=lambda p: (p.stat().st_mtime, p.name))
    gone: list[Path] = []
    for raw in raws[: max(0, len(raws) - keep)]:
        for path in (raw, nexus_path(raw, None)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                gone.append(path)
    return gone


async def drive_camera(
    camera: str,
    hdf: str,
    directory: Path,
    frames: int,
    rate_hz: float,
    *,
    keep: int = KEEP,
    pause_s: float = PAUSE_S,
) -> None:
    """Acquisition after acquisition on the simulated camera, over CA."""
    cam, plugin = camera + "cam1:", camera + hdf
    await caget(plugin + "Capture_RBV", timeout=30)  # wait for the camera IOC
    await caput(plugin + "FilePath", str(directory), datatype=DBR_CHAR_STR, wait=True)
    await caput(plugin + "FileName", "demo", datatype=DBR_CHAR_STR, wait=True)
    await caput(plugin + "FileTemplate", "%s%s_%3.3d.h5", datatype=DBR_CHAR_STR, wait=True)
    for pv, value in [
        ("AutoIncrement", 1),
        ("FileWriteMode", "Stream"),
        ("SWMRMode", 1),
        ("LazyOpen", 1),
        ("NumFramesFlush", 1),
        ("NumCapture", frames),
    ]:
        await caput(plugin + pv, value, wait=True)
    for pv, value in [
        ("ImageMode", "Multiple"),
        ("NumImages", frames),
        ("AcquirePeriod", 1.0 / rate_hz),
        ("AcquireTime", 0.5 / rate_hz),
    ]:
        await caput(cam + pv, value, wait=True)
    count = 0
    while True:
        await caput(cam + "ArrayCounter", 0, wait=True)  # the picture starts over
        await caput(plugin + "Capture", 1)
        await asyncio.sleep(0.2)
        await caput(cam + "Acquire", 1)
        await asyncio.sleep(1.0)
        while await _capturing(plugin):
            await asyncio.sleep(0.5)
        name = await caget(plugin + "FullFileName_RBV", datatype=DBR_CHAR_STR)
        count += 1
        # the IOC is done with all but the newest files (it reads the last one
        # until the next acquisition replaces it)
        gone = await asyncio.to_thread(prune, directory, keep)
        log.info(
            "demo: acquisition %d written to %s (%d frames); %d kept, %d old files "
            "deleted; next in %g s",
            count, name, frames, keep, len(gone), pause_s,
        )  # fmt: skip
        await asyncio.sleep(pause_s)


async def _capturing(plugin: str) -> bool:
    value: Any = await caget(plugin + "Capture_RBV", timeout=10)
    return bool(int(value))


def _camera_port() -> int:
    """A CA port for the simulated camera, added to this process's address list.

    Two CA servers on one host cannot share a UDP port for unicast searches
    (Linux hands each datagram to one socket), so the camera gets its own, as
    a camera IOC on another host would have."""
    port = int(os.environ.get("EPICS_CA_SERVER_PORT", "5064")) + 2
    listed = os.environ.get("EPICS_CA_ADDR_LIST", "")
    os.environ["EPICS_CA_ADDR_LIST"] = f"{listed} 127.0.0.1:{port}".strip()
    return port


def _default_config() -> IocConfig:
    text = files("swmr_roi_ioc").joinpath("_data/ioc.yaml").read_text(encoding="utf-8")
    return parse_config(text, "<packaged ioc.yaml>")


def _split_plugin(plugin_prefix: str) -> tuple[str, str]:
    """'BL01C-DI-DCAM-01:HDF5:' -> ('BL01C-DI-DCAM-01:', 'HDF5:')."""
    head, _, tail = plugin_prefix.rstrip(":").rpartition(":")
    return (head + ":" if head else ""), tail + ":"


async def _run_with_camera(
    config: IocConfig, root: Path, frames: int, rate_hz: float, keep: int, pause_s: float
) -> None:
    assert config.source.plugin_prefix is not None
    camera, hdf = _split_plugin(config.source.plugin_prefix)
    driver = drive_camera(camera, hdf, root, frames, rate_hz, keep=keep, pause_s=pause_s)
    # the camera serves first, so the IOC starts attached: no "camera IOC not
    # reachable" alarm (a WARNING in the log) at every demo start
    await caget(config.source.plugin_prefix + "Capture_RBV", timeout=30)
    tasks = [
        asyncio.create_task(serve(config), name="ioc"),
        asyncio.create_task(driver, name="driver"),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        purge_channel_caches()


def run_demo(
    config_path: str | None,
    *,
    frames: int | None,
    rate_hz: float,
    directory: str | None,
    web_port: int | None = None,
    keep: int = KEEP,
    pause_s: float = PAUSE_S,
) -> int:
    """Run until Ctrl-C. ``directory`` becomes data_root. The live page is on,
    with editing."""
    with tempfile.TemporaryDirectory(prefix="swmr-roi-demo-") as tmp:
        root = Path(directory or tmp).resolve()
        root.mkdir(parents=True, exist_ok=True)
        os.environ[DATA_ROOT_ENV] = str(root)
        config = load_config(config_path) if config_path else _default_config()
        web = {"enabled": True, "allow_edit": True, "port": web_port or config.web.port}
        config = config.model_copy(update={"web": config.web.model_copy(update=web)})
        scan = config.scan.shape or (1, frames or 100)
        count = frames or scan[0] * scan[1]
        ctx = multiprocessing.get_context("spawn")
        stop = ctx.Event()
        if config.source.file is not None:
            path = resolve_under(root, config.source.file)
            path.parent.mkdir(parents=True, exist_ok=True)
            options = SimOptions(frames=count, rate_hz=rate_hz, scan=scan, snake=config.scan.snake)
            child = ctx.Process(target=_writer_loop, args=(str(path), options, stop, pause_s))
            what = f"a simulated writer rewriting {path}"
        else:
            if config.source.plugin_prefix is None:
                config = config.model_copy(
                    update={
                        "source": config.source.model_copy(
                            update={"plugin_prefix": "BL01C-DI-DCAM-01:HDF5:"}
                        )
                    }
                )
            assert config.source.plugin_prefix is not None
            camera, hdf = _split_plugin(config.source.plugin_prefix)
            port = _camera_port()
            child = ctx.Process(
                target=_camera_process,
                args=(camera, hdf, str(root), scan, port),
                name="sim-camera",
            )
            what = (
                f"a simulated dcam {camera}cam1: / {camera}{hdf} (CA port {port}) "
                f"writing into {root}"
            )
        child.start()
        prefix = config.prefix
        print(f"demo: {what}: {count} frames at {rate_hz:g} Hz, acquisitions in a loop")
        print(f"demo: IOC prefix {prefix}; the last {keep} acquisitions are kept in {root}")
        print(f"demo: try   caget {prefix}ArrayCounter_RBV {prefix}1:Total_RBV")
        print(f"demo:       caget -S {prefix}StatusMessage_RBV")
        print(f"demo:       camonitor {prefix}1:Total_RBV {prefix}Status_RBV")
        if config.pva:
            print(f"demo:       pvget {prefix}1:Map    (an NTNDArray over PVAccess)")
        from swmr_roi_ioc.publish.web import page_url  # bokeh: not in the camera's process

        print(f"demo: live page {page_url(config)}   (Ctrl-C to stop)", flush=True)
        try:
            if config.source.file is not None:
                asyncio.run(serve(config))
            else:
                asyncio.run(_run_with_camera(config, root, count, rate_hz, keep, pause_s))
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            child.terminate()
            child.join(timeout=10)
            if child.is_alive():
                child.kill()
                child.join()
    return 0
