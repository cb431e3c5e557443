"""Command line: run / demo / check / schema / config / screens / probe / simulate /
sim-camera.

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
from importlib.resources import files
from pathlib import Path
from typing import Any

from swmr_roi_ioc import __version__
from swmr_roi_ioc.config import ConfigError, load_config
from swmr_roi_ioc.config._schema import config_schema_json

DEFAULT_CONFIG = "ioc/ioc.yaml"
DTYPES = ["uint8", "uint16", "uint32", "int32", "float32", "float64"]
log = logging.getLogger("swmr_roi_ioc")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Help with '(default: X)' where a default says something (not None/False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action) or text


def _sub(sub: Any, name: str, text: str, description: str | None = None) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=text, description=description or text, formatter_class=_Help
    )
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swmr-roi-ioc",
        description="Live ROI statistics of an areaDetector SWMR HDF5 file as EPICS PVs.",
        formatter_class=_Help,
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = _sub(sub, "run", "run the IOC")
    run.add_argument(
        "config",
        nargs="?",
        default=None,
        help=f"the instance's ioc.yaml (default: ./{DEFAULT_CONFIG}, relative to the "
        "working directory; `swmr-roi-ioc config > ioc.yaml` writes one to start from)",
    )

    demo = _sub(
        sub,
        "demo",
        "a simulated camera writing acquisitions in a loop, and the IOC following them",
    )
    demo.add_argument(
        "--frames",
        type=int,
        default=None,
        help="frames per acquisition (default: the scan's rows x cols, else 100)",
    )
    demo.add_argument("--rate", type=float, default=10.0, help="frames per second")
    demo.add_argument(
        "--dir",
        default=None,
        help="data directory, becomes data_root (default: a temporary "
        "directory, removed at the end)",
    )
    demo.add_argument(
        "--config",
        default=None,
        help=f"config (default: ./{DEFAULT_CONFIG} if there, else "
        "the packaged default that `swmr-roi-ioc config` prints)",
    )
    demo.add_argument(
        "--keep", type=int, default=3, help="acquisitions kept on disk (older files deleted)"
    )
    demo.add_argument("--pause", type=float, default=3.0, help="seconds between acquisitions")
    demo.add_argument(
        "--web-port",
        type=int,
        default=None,
        help="port of the live page (default: the config's web.port)",
    )
    demo.add_argument(
        "--bluesky",
        action="store_true",
        help="a RunEngine scans the simulated camera; the IOC follows its documents (0MQ)",
    )

    check = _sub(
        sub,
        "check",
        "validate a config against the schema, this machine and a data file; print its PVs",
        "Validate a config: the schema, then what it needs here (data_root, the fixed "
        "source.file under it, nexus.directory writable), then a data file if one is "
        "given or the fixed file exists (dataset, dtype, ROIs inside the frame, keys). "
        "Exit 2 on errors, 0 with warnings.",
    )
    check.add_argument("config", help="the ioc.yaml to check")
    check.add_argument(
        "--file",
        default=None,
        metavar="FILE",
        help="an HDF5 file as the camera writes it, "
        "to check the dataset, dtype, ROIs and keys against (default: the fixed source.file "
        "if it exists)",
    )

    _sub(sub, "schema", "print the JSON Schema of ioc.yaml")
    _sub(sub, "config", "print the documented default ioc.yaml (start a new instance from it)")

    screens = _sub(sub, "screens", "write the Phoebus .bob screens for a config")
    screens.add_argument("config", help="the ioc.yaml the screens are for")
    screens.add_argument(
        "-o", "--output", required=True, type=Path, help="directory to write them to"
    )

    probe = _sub(
        sub,
        "probe",
        "exit 0 if the IOC of this config answers Channel Access, else 1",
        "Liveness probe: reads the IOC's Uptime PV over Channel Access from its own TCP "
        "server (found from the port it records, not by a UDP search), so it works for "
        "several IOCs sharing one host's network.",
    )
    probe.add_argument(
        "config",
        nargs="?",
        default=None,
        help=f"the instance's ioc.yaml (default: ./{DEFAULT_CONFIG})",
    )
    probe.add_argument("--timeout", type=float, default=5.0, help="seconds to wait")

    sim = _sub(sub, "simulate", "the simulated NDFileHDF5 SWMR writer alone")
    sim.add_argument("out", help="HDF5 file to write")
    sim.add_argument(
        "--frames",
        type=int,
        default=None,
        help="frames to write (default: rows x cols of --scan, else 100)",
    )
    sim.add_argument("--rate", type=float, default=10.0, help="frames per second; 0 = flat out")
    sim.add_argument(
        "--burst", type=int, default=0, metavar="N",
        help="write the first N frames flat out, then the rest at --rate",
    )  # fmt: skip
    sim.add_argument(
        "--shape", type=int, nargs=2, metavar=("H", "W"), default=(256, 320), help="frame size"
    )
    sim.add_argument(
        "--scan", type=int, nargs=2, metavar=("R", "C"), default=None,
        help="rows and columns of the snake scan the pattern follows (default: one row)",
    )  # fmt: skip
    sim.add_argument("--raster", action="store_true", help="raster scan: every row forwards")
    sim.add_argument(
        "--compression", choices=["none", "lz4", "bslz4", "blosc"], default="none",
        help="HDF5 filter of the frames",
    )  # fmt: skip
    sim.add_argument("--dtype", choices=DTYPES, default="uint16", help="pixel type")
    sim.add_argument(
        "--extra-dims", action="store_true",
        help="a scan-shaped dataset (rows, cols, H, W), as NumExtraDims writes it",
    )  # fmt: skip
    sim.add_argument("--flush", type=int, default=1, help="NumFramesFlush: frames per flush")
    sim.add_argument(
        "--attribute-chunk",
        type=int,
        default=None,
        help="NDAttributeChunk: frames per flush "
        "of the attribute datasets (default: the frame count, at most 16384)",
    )
    sim.add_argument("--seed", type=int, default=0, help="seed of the pattern's noise")
    sim.add_argument(
        "--flush-log", type=Path, default=None, metavar="FILE",
        help="write one line per flush of the data: frames visible, POSIX time of the flush",
    )  # fmt: skip

    cam = _sub(sub, "sim-camera", "a simulated dcam IOC: ADAravis + NDFileHDF5 (SWMR) over CA")
    cam.add_argument("--prefix", required=True, help="PV prefix, e.g. BL01C-DI-DCAM-01:")
    cam.add_argument("--dir", required=True, help="starting FilePath of the HDF5 plugin")
    cam.add_argument("--cam", default="cam1:", help="driver suffix")
    cam.add_argument("--hdf", default="HDF1:", help="HDF5 plugin suffix")
    cam.add_argument(
        "--shape", type=int, nargs=2, metavar=("H", "W"), default=(256, 320), help="frame size"
    )
    cam.add_argument("--dtype", choices=DTYPES, default="uint16", help="pixel type")
    cam.add_argument(
        "--scan", type=int, nargs=2, metavar=("R", "C"), default=None,
        help="rows and columns of the snake scan the pattern follows (default: one row)",
    )  # fmt: skip
    return parser


class UsageError(Exception):
    """A command line that cannot be run as given (exit 2, one message)."""


def _config_path(given: str | None) -> str:
    """The config to run: the one given, else ./ioc/ioc.yaml, else how to get one."""
    if given is not None:
        return given
    if Path(DEFAULT_CONFIG).is_file():
        return DEFAULT_CONFIG
    raise UsageError(
        f"no config given and ./{DEFAULT_CONFIG} is not here ({Path.cwd()}); "
        "start from the documented default: `swmr-roi-ioc config > ioc.yaml`, edit it, "
        "then `swmr-roi-ioc run ioc.yaml`"
    )


def _print_default_config() -> int:
    text = files("swmr_roi_ioc").joinpath("_data/ioc.yaml").read_text(encoding="utf-8")
    sys.stdout.write(text)
    return 0


def _check(path: str, data_file: str | None) -> int:
    from swmr_roi_ioc._check import run_check

    return run_check(path, data_file)


def _screens(config_path: str, directory: Path) -> int:
    from swmr_roi_ioc.publish import write_screens

    for path in write_screens(load_config(config_path), directory):
        print(path)
    return 0


def _run(given: str | None) -> int:
    from swmr_roi_ioc.app import serve

    path = _config_path(given)
    config = load_config(path)
    log.info("IOC %s serving prefix %s", config.ioc_name, config.prefix)
    asyncio.run(serve(config))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from swmr_roi_ioc.sim import SimError, SimOptions, write_file

    try:
        scan = None if args.scan is None else (args.scan[0], args.scan[1])
        frames = args.frames or (scan[0] * scan[1] if scan else SimOptions.frames)
        options = SimOptions(
            frames=frames,
            rate_hz=args.rate,
            burst=args.burst,
            shape=(args.shape[0], args.shape[1]),
            dtype=args.dtype,
            scan=scan,
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

    config = args.config or (DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else None)
    if args.bluesky:
        from swmr_roi_ioc._demo_bluesky import run_bluesky_demo

        return run_bluesky_demo(config, frames=args.frames, rate_hz=args.rate, directory=args.dir)
    if args.keep < 1:
        raise UsageError(f"--keep must be at least 1 (got {args.keep})")
    return run_demo(
        config,
        frames=args.frames,
        rate_hz=args.rate,
        directory=args.dir,
        web_port=args.web_port,
        keep=args.keep,
        pause_s=args.pause,
    )


def _probe(args: argparse.Namespace) -> int:
    from swmr_roi_ioc._probe import probe

    config = load_config(_config_path(args.config))
    ok, message = probe(config, timeout=args.timeout)
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of ``swmr-roi-ioc`` and ``python -m swmr_roi_ioc``."""
    ns = _parser().parse_args(args)
    logging.basicConfig(
        level=getattr(logging, ns.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if ns.command == "schema":
            sys.stdout.write(config_schema_json())
            return 0
        if ns.command == "config":
            return _print_default_config()
        if ns.command == "check":
            return _check(ns.config, ns.file)
        if ns.command == "probe":
            return _probe(ns)
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
    except UsageError as exc:
        print(f"swmr-roi-ioc {ns.command}: {exc}", file=sys.stderr)
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
