"""Command line: run / demo / check / schema / screens / simulate / sim-camera.

Exit codes: 0 ok, 2 bad config or arguments, 1 other failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from swmr_roi_ioc import __version__
from swmr_roi_ioc.config import ConfigError, load_config
from swmr_roi_ioc.config._schema import config_schema_json

DEFAULT_CONFIG = "ioc/ioc.yaml"
log = logging.getLogger("swmr_roi_ioc")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swmr-roi-ioc",
        description="Live ROI statistics of an areaDetector SWMR HDF5 file as EPICS PVs.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default INFO)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the IOC")
    run.add_argument("config", nargs="?", default=DEFAULT_CONFIG, help="ioc.yaml")

    demo = sub.add_parser("demo", help="simulated writer + IOC on the default config")
    demo.add_argument("--frames", type=int, default=None, help="frames per acquisition")
    demo.add_argument("--rate", type=float, default=10.0, help="frames per second")
    demo.add_argument("--dir", default=None, help="data directory (default: a temp dir)")
    demo.add_argument("--config", default=None, help="config (default: ioc/ioc.yaml)")
    demo.add_argument("--web-port", type=int, default=None, help="port of the live page")
    demo.add_argument(
        "--bluesky",
        action="store_true",
        help="a RunEngine scans the simulated camera; the IOC follows its documents (0MQ)",
    )

    check = sub.add_parser("check", help="validate a config and print its PVs")
    check.add_argument("config")

    sub.add_parser("schema", help="print the JSON Schema of ioc.yaml")

    screens = sub.add_parser("screens", help="write the Phoebus .bob screens for a config")
    screens.add_argument("config")
    screens.add_argument("-o", "--output", required=True, type=Path, help="directory")

    sim = sub.add_parser("simulate", help="the simulated NDFileHDF5 SWMR writer alone")
    sim.add_argument("out", help="HDF5 file to write")
    sim.add_argument("--frames", type=int, default=100)
    sim.add_argument("--rate", type=float, default=10.0, help="Hz; 0 = flat out")
    sim.add_argument("--shape", type=int, nargs=2, metavar=("H", "W"), default=(256, 320))
    sim.add_argument("--scan", type=int, nargs=2, metavar=("R", "C"), default=None)
    sim.add_argument("--raster", action="store_true", help="raster, not snake")
    sim.add_argument("--compression", choices=["none", "lz4", "bslz4", "blosc"], default="none")
    sim.add_argument(
        "--dtype",
        choices=["uint8", "uint16", "uint32", "int32", "float32", "float64"],
        default="uint16",
    )
    sim.add_argument("--extra-dims", action="store_true", help="scan-shaped dataset")
    sim.add_argument("--flush", type=int, default=1, help="NumFramesFlush")
    sim.add_argument("--attribute-chunk", type=int, default=None, help="NDAttributeChunk")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument(
        "--flush-log",
        type=Path,
        default=None,
        metavar="FILE",
        help="write one line per flush of the data: frames visible, POSIX time of the flush",
    )

    cam = sub.add_parser(
        "sim-camera", help="a simulated dcam IOC: ADAravis + NDFileHDF5 (SWMR) over CA"
    )
    cam.add_argument("--prefix", required=True, help="PV prefix, e.g. BL01C-DI-DCAM-01:")
    cam.add_argument("--dir", required=True, help="starting FilePath of the HDF5 plugin")
    cam.add_argument("--cam", default="cam1:", help="driver suffix (default cam1:)")
    cam.add_argument("--hdf", default="HDF1:", help="HDF5 plugin suffix (default HDF1:)")
    cam.add_argument("--shape", type=int, nargs=2, metavar=("H", "W"), default=(256, 320))
    cam.add_argument(
        "--dtype",
        choices=["uint8", "uint16", "uint32", "int32", "float32", "float64"],
        default="uint16",
    )
    cam.add_argument("--scan", type=int, nargs=2, metavar=("R", "C"), default=None)
    return parser


def _check(path: str) -> int:
    from swmr_roi_ioc.publish import pv_names

    config = load_config(path)
    # building the PV groups makes caproto warn about large waveforms; not news here
    logging.getLogger("caproto").setLevel(logging.ERROR)
    names = pv_names(config)
    print(f"{path}: ok, {len(config.rois)} ROIs, {len(names)} PVs")
    for name in names:
        print(name)
    return 0


def _screens(config_path: str, directory: Path) -> int:
    from swmr_roi_ioc.publish import write_screens

    logging.getLogger("caproto").setLevel(logging.ERROR)
    for path in write_screens(load_config(config_path), directory):
        print(path)
    return 0


def _run(path: str) -> int:
    from swmr_roi_ioc.app import serve

    config = load_config(path)
    log.info("IOC %s serving prefix %s", config.ioc_name, config.prefix)
    asyncio.run(serve(config))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from swmr_roi_ioc.sim import SimError, SimOptions, write_file

    try:
        options = SimOptions(
            frames=args.frames,
            rate_hz=args.rate,
            shape=(args.shape[0], args.shape[1]),
            dtype=args.dtype,
            scan=None if args.scan is None else (args.scan[0], args.scan[1]),
            snake=not args.raster,
            compression=args.compression,
            extra_dims=args.extra_dims,
            num_frames_flush=args.flush,
            attribute_chunk=args.attribute_chunk,
            seed=args.seed,
        )
    except SimError as exc:
        print(f"swmr-roi-ioc simulate: {exc}", file=sys.stderr)
        return 2
    if args.flush_log is None:
        written = write_file(args.out, options)
    else:
        with args.flush_log.open("w") as flush_log:

            def on_flush(frames: int, when: float) -> None:
                flush_log.write(f"{frames} {when:.6f}\n")

            written = write_file(args.out, options, on_flush=on_flush)
    log.info("wrote %d frames to %s", written, args.out)
    return 0


def _sim_camera(args: argparse.Namespace) -> int:
    from swmr_roi_ioc.sim import run_sim_camera

    log.info("simulated dcam: %s%s and %s%s", args.prefix, args.cam, args.prefix, args.hdf)
    coro = run_sim_camera(
        args.prefix,
        args.dir,
        cam=args.cam,
        hdf=args.hdf,
        shape=(args.shape[0], args.shape[1]),
        dtype=args.dtype,
        scan=None if args.scan is None else (args.scan[0], args.scan[1]),
    )
    _run_until_signal(coro)
    return 0


def _run_until_signal(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro``; SIGINT/SIGTERM cancel it cleanly."""

    async def main() -> None:
        task = asyncio.create_task(coro)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())


def _demo(args: argparse.Namespace) -> int:
    from swmr_roi_ioc._demo import run_demo

    config = args.config or (DEFAULT_CONFIG if Path(DEFAULT_CONFIG).exists() else None)
    if args.bluesky:
        from swmr_roi_ioc._demo_bluesky import run_bluesky_demo

        return run_bluesky_demo(config, frames=args.frames, rate_hz=args.rate, directory=args.dir)
    return run_demo(
        config, frames=args.frames, rate_hz=args.rate, directory=args.dir, web_port=args.web_port
    )


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of ``swmr-roi-ioc`` and ``python -m swmr_roi_ioc``."""
    ns = _parser().parse_args(args)
    logging.basicConfig(
        level=getattr(logging, ns.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # caproto logs every beacon failure; keep its chatter out of an operator's log
    logging.getLogger("caproto").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        if ns.command == "schema":
            sys.stdout.write(config_schema_json())
            return 0
        if ns.command == "check":
            return _check(ns.config)
        if ns.command == "screens":
            return _screens(ns.config, ns.output)
        if ns.command == "run":
            return _run(ns.config)
        if ns.command == "simulate":
            return _simulate(ns)
        if ns.command == "demo":
            return _demo(ns)
        if ns.command == "sim-camera":
            return _sim_camera(ns)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `... | head`: the reader left; not a failure
        sys.stderr.close()
        return 0
    except Exception as exc:  # noqa: BLE001 - last resort: a message, exit 1
        log.exception("failed: %s", exc)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
