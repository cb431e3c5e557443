"""The running service's pid file (``config.pid_file``), removed on the way out."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Generator

from swmr_roi_ioc.config import IocConfig, pid_file

log = logging.getLogger(__name__)


@contextlib.contextmanager
def pid_file_written(config: IocConfig) -> Generator[None]:
    """Write this process's pid for the probe while the body runs."""
    path = pid_file(config.ioc_name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{os.getpid()}\n")
    except OSError as exc:  # the probe then says why; the IOC runs regardless
        log.warning("cannot write %s (swmr-roi-ioc probe will not find this IOC): %s", path, exc)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if path.read_text().strip() == str(os.getpid()):
                path.unlink()
