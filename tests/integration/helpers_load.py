"""A storm of Channel Access clients that monitor everything and never read.

Each client speaks CA over a plain TCP socket (caproto's sans-io classes build
the messages): it connects, creates a channel to every PV, adds `subs`
monitors to each, then stops reading, so the server's sends to it block and
its subscription queue fills. All clients of a cycle then drop at once with
a TCP reset (SO_LINGER 0), and the next cycle starts.

Run as a program (the load comes from another process than the test's own
clients): ``python -m tests.integration.helpers_load PORT CYCLES CLIENTS
SUBS HOLD PVFILE`` (PVFILE: one PV name a line); it prints one line per cycle
and ``done`` at the end.
"""

from __future__ import annotations

import getpass
import socket
import struct
import sys
import time

import caproto as ca

#: a small receive buffer: the server's sends block after a few kB
RCVBUF = 4096


class RawClient:
    """One CA client on a raw TCP socket."""

    def __init__(self, port: int, pvs: list[str]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        self.sock.settimeout(20.0)
        self.sock.connect(("127.0.0.1", port))
        self.circuit = ca.VirtualCircuit(ca.CLIENT, ("127.0.0.1", port), 0)
        self.channels = [ca.ClientChannel(pv, self.circuit) for pv in pvs]
        self._send(
            ca.VersionRequest(priority=0, version=ca.DEFAULT_PROTOCOL_VERSION),
            ca.HostNameRequest("localhost"),
            ca.ClientNameRequest(getpass.getuser()),
            *(chan.create() for chan in self.channels),
        )

    def _send(self, *commands: ca.Message) -> None:
        self.sock.sendall(b"".join(self.circuit.send(*commands)))

    def wait_connected(self) -> None:
        """Read until every channel is created (the last reads of this client)."""
        while any(chan.states[ca.CLIENT] is not ca.CONNECTED for chan in self.channels):
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the circuit")
            commands, _ = self.circuit.recv(data)
            for command in commands:
                self.circuit.process_command(command)

    def subscribe(self, subs: int) -> None:
        """subs monitors of every channel, full length; replies are never read."""
        self._send(*(chan.subscribe() for _ in range(subs) for chan in self.channels))

    def reset(self) -> None:
        """Drop the connection with a TCP reset, as a killed client does."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def storm(port: int, pvs: list[str], *, cycles: int, clients: int, subs: int, hold: float) -> None:
    for cycle in range(cycles):
        started = time.monotonic()
        crowd = [RawClient(port, pvs) for _ in range(clients)]
        for client in crowd:
            client.wait_connected()
        for client in crowd:
            client.subscribe(subs)
        time.sleep(hold)
        for client in crowd:
            client.reset()
        print(f"cycle {cycle} {time.monotonic() - started:.3f}s", flush=True)
    print("done", flush=True)


def main(argv: list[str]) -> None:
    port, cycles, clients, subs, hold, pvfile = argv
    with open(pvfile) as names:
        pvs = names.read().split()
    storm(
        int(port), pvs, cycles=int(cycles), clients=int(clients), subs=int(subs), hold=float(hold)
    )


if __name__ == "__main__":
    main(sys.argv[1:])
