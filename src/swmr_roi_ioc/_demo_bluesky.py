"""``swmr-roi-ioc demo --bluesky``: the IOC following bluesky runs.

Three child processes and this one, on loopback:

- the simulated dcam (ADAravis + NDFileHDF5, SWMR) on its own CA port;
- bluesky's 0MQ proxy (no broker needed);
- a RunEngine with ophyd-async's ``AravisDetector`` on that camera, running
  a snake fly scan with its scanspec ``Spec`` in the start document's
  ``scan_spec``, run after run, publishing every document (JSON) to the proxy;

and this process: the IOC with ``source.bluesky.zmq`` on the proxy's output,
which takes the file, the complete frames and the map's shape from the
documents alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from swmr_roi_ioc._demo import _camera_port, _camera_process, _default_config
from swmr_roi_ioc.app import serve
from swmr_roi_ioc.config import DATA_ROOT_ENV, BlueskyConfig, load_config

log = logging.getLogger(__name__)

CAMERA = "BL01C-DI-DCAM-01:"
#: Pause between two runs.
PAUSE_S = 3.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proxy_process(in_port: int, out_port: int) -> None:
    """Child process: bluesky's 0MQ proxy until terminated."""
    from bluesky.callbacks.zmq import Proxy

    with contextlib.suppress(KeyboardInterrupt):
        Proxy(in_address=f"127.0.0.1:{in_port}", out_address=f"127.0.0.1:{out_port}").start()


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(
        doc, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)
    ).encode()


def _engine_process(directory: str, in_port: int, scan: tuple[int, int], rate_hz: float) -> None:
    """Child process: a RunEngine running snake fly scans with scan_spec, forever."""
    logging.basicConfig(level=logging.WARNING)
    from bluesky import RunEngine
    from bluesky import plan_stubs as bps
    from bluesky import preprocessors as bpp
    from bluesky.callbacks.zmq import Publisher
    from ophyd_async.core import (
        AutoIncrementFilenameProvider,
        StaticPathProvider,
        TriggerInfo,
        init_devices,
    )
    from ophyd_async.epics.adaravis import AravisDetector
    from ophyd_async.epics.adcore import ADWriterFactory
    from scanspec.specs import Line

    rows, cols = scan
    engine = RunEngine({})
    engine.subscribe(Publisher(f"127.0.0.1:{in_port}", serializer=_json))
    provider = StaticPathProvider(AutoIncrementFilenameProvider("demo"), Path(directory))
    with init_devices(timeout=60):
        det = AravisDetector(CAMERA, ADWriterFactory.hdf(provider))
    spec = Line("y", 0, 1, rows) * ~Line("x", 0, 1, cols)
    info = TriggerInfo(number_of_events=rows * cols, livetime=0.5 / rate_hz, deadtime=0.5 / rate_hz)

    @bpp.stage_decorator([det])
    @bpp.run_decorator(md={"scan_spec": spec.serialize(), "plan_name": "demo_snake_fly"})
    def snake_fly() -> Any:
        yield from bps.prepare(det, info, wait=True)
        yield from bps.declare_stream(det, name="primary", collect=True)
        yield from bps.kickoff(det, wait=True)
        yield from bps.collect_while_completing(flyers=[det], dets=[det], flush_period=0.5)

    time.sleep(1.0)  # 0MQ: let the publisher's connection to the proxy settle
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            engine(snake_fly())
            time.sleep(PAUSE_S)


def run_bluesky_demo(
    config_path: str | None, *, frames: int | None, rate_hz: float, directory: str | None
) -> int:
    """Run until Ctrl-C. ``directory`` becomes data_root."""
    with tempfile.TemporaryDirectory(prefix="swmr-roi-demo-") as tmp:
        root = Path(directory or tmp).resolve()
        root.mkdir(parents=True, exist_ok=True)
        os.environ[DATA_ROOT_ENV] = str(root)
        config = load_config(config_path) if config_path else _default_config()
        scan = config.scan.shape or (20, 30)
        if frames is not None:
            scan = (max(1, frames // scan[1]), scan[1])
        in_port, out_port = _free_port(), _free_port()
        source = config.source.model_copy(
            update={
                "file": None,
                "plugin_prefix": None,
                "bluesky": BlueskyConfig(zmq=f"127.0.0.1:{out_port}"),
            }
        )
        # the map's shape comes from each run's scan_spec
        config = config.model_copy(
            update={"source": source, "scan": config.scan.model_copy(update={"shape": None})}
        )
        port = _camera_port()
        ctx = multiprocessing.get_context("spawn")
        children = [
            ctx.Process(
                target=_camera_process, args=(CAMERA, "HDF1:", str(root), scan, port),
                name="sim-camera",
            ),
            ctx.Process(target=_proxy_process, args=(in_port, out_port), name="0mq-proxy"),
            ctx.Process(
                target=_engine_process, args=(str(root), in_port, scan, rate_hz),
                name="run-engine",
            ),
        ]  # fmt: skip
        for child in children:
            child.start()
        prefix = config.prefix
        print(
            f"demo: a RunEngine scanning a simulated dcam {CAMERA} (CA port {port}): "
            f"{scan[0]} x {scan[1]} snake fly scans with scan_spec at {rate_hz:g} Hz, "
            f"documents over bluesky's 0MQ proxy 127.0.0.1:{out_port}, files in {root}"
        )
        print(f"demo: IOC prefix {prefix}")
        print(f"demo: try   caget -S {prefix}RunUid_RBV {prefix}PlanName_RBV")
        print(f"demo:       caget {prefix}ArrayCounter_RBV {prefix}RunProgress_RBV")
        print(f"demo:       caget -S {prefix}StatusMessage_RBV    (Ctrl-C to stop)", flush=True)
        try:
            asyncio.run(serve(config))
        except KeyboardInterrupt:
            pass
        finally:
            for child in reversed(children):
                child.terminate()
            for child in reversed(children):
                child.join(timeout=10)
                if child.is_alive():
                    child.kill()
                    child.join()
    return 0
