"""``swmr-roi-ioc demo``: a simulated dcam writer and the IOC following it.

The writer runs in a child process (a SWMR writer and reader must not share
one HDF5 library instance) and loops acquisitions into the same path, so the
IOC shows a file being followed, finished, replaced and followed again.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import tempfile
import time
from importlib.resources import files
from multiprocessing.synchronize import Event
from pathlib import Path

from swmr_roi_ioc.app import resolve_under, serve
from swmr_roi_ioc.config import DATA_ROOT_ENV, IocConfig, load_config, parse_config
from swmr_roi_ioc.sim import SimOptions, write_file

log = logging.getLogger(__name__)

#: Pause between two simulated acquisitions.
PAUSE_S = 3.0


def _writer_loop(path: str, options: SimOptions, stop: Event) -> None:
    """Child process: write, pause, replace the file, forever."""
    logging.basicConfig(level=logging.INFO)
    target = Path(path)
    acquisition = 0
    while not stop.is_set():
        acquisition += 1
        target.unlink(missing_ok=True)  # a new inode: the IOC starts over
        log.info("demo writer: acquisition %d -> %s", acquisition, target)
        write_file(target, options)
        stop.wait(PAUSE_S)


def _default_config() -> IocConfig:
    text = files("swmr_roi_ioc").joinpath("_data/ioc.yaml").read_text(encoding="utf-8")
    return parse_config(text, "<packaged ioc.yaml>")


def run_demo(
    config_path: str | None,
    *,
    frames: int | None,
    rate_hz: float,
    directory: str | None,
) -> int:
    """Run until Ctrl-C. ``directory`` becomes data_root."""
    with tempfile.TemporaryDirectory(prefix="swmr-roi-demo-") as tmp:
        root = Path(directory or tmp).resolve()
        root.mkdir(parents=True, exist_ok=True)
        os.environ[DATA_ROOT_ENV] = str(root)
        config = load_config(config_path) if config_path else _default_config()
        source = config.source.file or "demo.h5"
        if config.source.file is None:
            config = config.model_copy(
                update={"source": config.source.model_copy(update={"file": source})}
            )
        path = resolve_under(root, source)
        path.parent.mkdir(parents=True, exist_ok=True)
        scan = config.scan.shape or (1, frames or 100)
        options = SimOptions(
            frames=frames or scan[0] * scan[1],
            rate_hz=rate_hz,
            scan=scan,
            snake=config.scan.snake,
        )
        ctx = multiprocessing.get_context("spawn")
        stop = ctx.Event()
        writer = ctx.Process(
            target=_writer_loop, args=(str(path), options, stop), name="demo-writer"
        )
        writer.start()
        prefix = config.prefix
        print(f"demo: writing {path} ({options.frames} frames at {rate_hz:g} Hz, loops)")
        print(f"demo: IOC prefix {prefix}")
        print(f"demo: try   caget {prefix}ArrayCounter_RBV {prefix}1:Total_RBV")
        print(f"demo:       caget -S {prefix}StatusMessage_RBV    (Ctrl-C to stop)")
        try:
            asyncio.run(serve(config))
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            writer.join(timeout=5)
            if writer.is_alive():
                writer.terminate()
                writer.join(timeout=5)
            time.sleep(0)
    return 0
