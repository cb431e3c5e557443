"""A real RabbitMQ broker with its STOMP plugin, run from a temporary directory.

Debian's ``rabbitmq-server`` started as a plain process (no service manager,
no system state touched): its config, plugins file, database and logs live
under the test's directory, its STOMP listener, Erlang distribution port and
epmd port are free ports on loopback.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import _free_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


def rabbitmq_available() -> bool:
    return (RABBITMQ_BIN / "rabbitmq-server").exists() and shutil.which("erl") is not None


class RabbitMQ:
    """One broker; :meth:`start` / :meth:`stop` may be called again (same ports)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.stomp_port = _free_port()
        self._dist_port = _free_port()
        self._epmd_port = _free_port()
        self.node = f"swmrtest{self.stomp_port}@localhost"
        self.proc: subprocess.Popen[bytes] | None = None
        for sub in ("mnesia", "log"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        (directory / "rabbitmq.conf").write_text(
            "\n".join(
                [
                    "listeners.tcp = none",
                    f"stomp.listeners.tcp.1 = 127.0.0.1:{self.stomp_port}",
                    "stomp.default_user = guest",
                    "stomp.default_pass = guest",
                    "loopback_users = none",
                    "log.console = false",
                    "log.file.level = warning",
                ]
            )
            + "\n"
        )
        (directory / "enabled_plugins").write_text("[rabbitmq_stomp].\n")

    @property
    def env(self) -> dict[str, str]:
        d = self.directory
        return {
            **os.environ,
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq"),  # .conf is appended
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_DIST_PORT": str(self._dist_port),
            "ERL_EPMD_PORT": str(self._epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "HOME": str(d),  # the Erlang cookie
        }

    def start(self, timeout: float = 90.0) -> None:
        log = (self.directory / "server.out").open("ab")
        self.proc = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited: {self.output()}")
            if self._stomp_answers():
                return
            time.sleep(0.25)
        raise RuntimeError(f"RabbitMQ STOMP not up after {timeout} s: {self.output()}")

    def _stomp_answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.stomp_port), timeout=1) as s:
                s.sendall(b"CONNECT\naccept-version:1.1\nhost:/\n\n\x00")
                s.settimeout(5)
                return s.recv(9).startswith(b"CONNECTED")
        except OSError:
            return False

    def output(self) -> str:
        out = self.directory / "server.out"
        return out.read_text(errors="replace")[-3000:] if out.exists() else ""

    def stop(self) -> None:
        """Stop the node (rabbitmqctl, then its process group by its own pid)."""
        if self.proc is None:
            return
        subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, "stop"],
            env=self.env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        self.proc = None
        self._stop_epmd()

    def _stop_epmd(self) -> None:
        """The epmd the node started on our port (it outlives the node)."""
        subprocess.run(
            ["epmd", "-port", str(self._epmd_port), "-kill"],
            env=self.env,
            capture_output=True,
            timeout=10,
            check=False,
        )
