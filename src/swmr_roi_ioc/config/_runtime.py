"""Where a running instance leaves its process id, for ``swmr-roi-ioc probe``.

The probe finds the IOC's Channel Access TCP server from that process's
listening sockets, not by a UDP name search: several IOCs sharing one host's
network (epics-containers with hostNetwork) all take UDP 5064, and a unicast
search reaches only one of them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: Environment variable naming the directory of the pid files.
RUNTIME_DIR_ENV = "SWMR_ROI_RUNTIME_DIR"


def pid_file(ioc_name: str) -> Path:
    """``$SWMR_ROI_RUNTIME_DIR/<ioc_name>.pid`` (default: the temp directory)."""
    directory = os.environ.get(RUNTIME_DIR_ENV) or tempfile.gettempdir()
    return Path(directory) / f"swmr-roi-ioc-{ioc_name}.pid"
