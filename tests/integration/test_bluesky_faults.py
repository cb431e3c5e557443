"""The bluesky source through the faults the fixed-file source is put through:
an engine worker SIGKILLed mid-run; the workers SIGSTOPped (stuck, as on a
hung read) for longer than engine.stall_timeout mid-run, and before the run's
file is opened, the run's stop document arriving while they are stuck. Each
run is followed to its end with every declared frame counted exactly once,
equal to numpy on the file.

Real processes on loopback: the simulated dcam, the IOC with
``source.bluesky.zmq``, bluesky's 0MQ proxy; a RunEngine with ophyd-async's
AravisDetector in the test process; the faults sent from a thread while the
RunEngine runs the plan.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from bluesky import RunEngine
from bluesky import plan_stubs as bps

from tests.conftest import Process
from tests.integration.helpers import caget_program, snake_map
from tests.integration.test_bluesky import (  # noqa: F401 - cam, zmq_proxy: fixtures
    _detector,
    _ioc,
    assert_exact,
    cam,
    finished,
    fly,
    get,
    get_str,
    run_recorded,
    serving_without_alarm,
    snake_spec,
    stream_info,
    wait_until,
    zmq_proxy,
)
from tests.integration.test_engine_faults import workers_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

#: engine.stall_timeout: a stuck worker is killed after this long. Longer than
#: what is left of the second run when its workers are stopped plus
#: source.timeout (2 s in ``_ioc``), so its stop document is older than
#: source.timeout when reading works again.
STALL = 12.0
SOURCE_TIMEOUT = 2.0


class Saboteur(threading.Thread):
    """Sends ``sig`` to every engine worker of the IOC once it has counted
    ``after`` frames of a file other than ``previous``."""

    def __init__(self, prefix: str, ioc: int, sig: signal.Signals, after: int,
                 previous: str = "") -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.prefix, self.ioc, self.sig = prefix, ioc, sig
        self.after, self.previous = after, previous
        self.workers: list[int] = []
        self.at = 0.0
        self.error: BaseException | None = None

    def _reached(self) -> bool:
        path = get_str(f"{self.prefix}FilePath_RBV")
        counter = int(get(f"{self.prefix}ArrayCounter_RBV"))
        return path != self.previous and counter >= self.after

    def run(self) -> None:
        try:
            if self.after:
                wait_until(f"{self.after} frames followed", self._reached, 120, self.prefix)
            self.workers = workers_of(self.ioc)
            for worker in self.workers:
                os.kill(worker, self.sig)
            self.at = time.monotonic()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def result(self) -> list[int]:
        if self.ident is not None:  # started as a thread (else run in the plan)
            self.join(150)
        assert not self.is_alive() and self.error is None, self.error
        assert len(self.workers) == 2, self.workers
        return self.workers

    def release(self) -> None:
        """Let stopped workers go (if the test failed before they were replaced)."""
        for worker in self.workers:
            try:
                os.kill(worker, signal.SIGCONT)
            except ProcessLookupError:
                pass


def replaced(ioc: int, old: list[int]) -> bool:
    now = workers_of(ioc)
    return len(now) == 2 and not set(now) & set(old)


def test_worker_killed_and_stopped_mid_run(
    tmp_path: Path,
    cam: tuple[str, Path],  # noqa: F811 - the fixture imported above
    zmq_proxy: tuple[int, int],  # noqa: F811
    prefix: str,
    processes: list[Process],
    RE: RunEngine,  # noqa: N803
) -> None:
    from bluesky.callbacks.zmq import Publisher

    camera, data = cam
    args = _ioc(tmp_path, prefix, data, f'{{zmq: "127.0.0.1:{zmq_proxy[1]}"}}')
    config = (tmp_path / "ioc.yaml").read_text()
    assert f"timeout: {SOURCE_TIMEOUT}" in config
    with (tmp_path / "ioc.yaml").open("a") as fh:
        fh.write(f"engine:\n  workers: 2\n  stall_timeout: {STALL}\n")
    ioc = Process(args)
    processes.append(ioc)
    wait_until("IOC connected to the proxy", serving_without_alarm(prefix), 60, prefix)
    publisher = Publisher(
        f"127.0.0.1:{zmq_proxy[0]}", serializer=lambda doc: json.dumps(doc).encode()
    )
    time.sleep(1.0)  # 0MQ's slow joiner: the publisher's connection to the proxy
    det = _detector(camera, data)
    saboteurs: list[Saboteur] = []
    try:
        # run 1: every worker SIGKILLed 40 frames in; replaced, the run followed on
        kill = Saboteur(prefix, ioc.proc.pid, signal.SIGKILL, 40)
        saboteurs.append(kill)
        kill.start()
        docs = run_recorded(RE, fly(det, 400, {"scan_spec": snake_spec(20, 20)}, 0.02), publisher)
        killed = kill.result()
        uid, path, declared = stream_info(docs)
        assert declared == 400
        wait_until("the run followed after the kill", finished(prefix, declared, uid), 180, prefix)
        wait_until("the killed workers replaced", lambda: replaced(ioc.proc.pid, killed), 60)
        message = get_str(f"{prefix}StatusMessage_RBV")
        assert f"run {uid}" in message and "never appeared" not in message, message
        assert_exact(prefix, path, declared, 20, 20, lambda v: snake_map(v, 20, 20))

        # run 2: every worker SIGSTOPped 40 frames in; the stop document comes
        # while they are stuck; killed after stall_timeout and replaced, the
        # declared frames still unread are read then
        stop = Saboteur(prefix, ioc.proc.pid, signal.SIGSTOP, 40, previous=str(path))
        saboteurs.append(stop)
        stop.start()
        docs = run_recorded(RE, fly(det, 200, {"scan_spec": snake_spec(10, 20)}, 0.02), publisher)
        run_ended = time.monotonic()
        stopped = stop.result()
        uid2, path2, declared2 = stream_info(docs)
        assert (declared2, path2 != path) == (200, True)
        # the stop came long enough before the stuck workers were killed
        assert run_ended - stop.at < STALL - SOURCE_TIMEOUT - 2.0, run_ended - stop.at
        assert int(get(f"{prefix}ArrayCounter_RBV")) < declared2  # stuck: frames unread
        wait_until("the run followed after the stall", finished(prefix, declared2, uid2), 180,
                   prefix)  # fmt: skip
        assert time.monotonic() - stop.at >= STALL - 0.5  # its last frames: a replacement's
        wait_until("the stopped workers replaced", lambda: replaced(ioc.proc.pid, stopped), 60)
        message = get_str(f"{prefix}StatusMessage_RBV")
        assert f"run {uid2}" in message and "never appeared" not in message, message
        assert "MAJOR" not in caget_program("-a", f"{prefix}Status_RBV")
        assert_exact(prefix, path2, declared2, 10, 20, lambda v: snake_map(v, 10, 20))

        # run 3: every worker SIGSTOPped right after the start document, so the
        # run's file is opened in a stuck worker; the run ends while it is
        # stuck; the open is tried again in the replacement, the run followed
        before_open = Saboteur(prefix, ioc.proc.pid, signal.SIGSTOP, 0)
        saboteurs.append(before_open)

        def stop_workers() -> Any:
            before_open.run()  # in the RunEngine's thread, before the StreamResource
            yield from bps.null()

        plan = fly(det, 150, {"scan_spec": snake_spec(10, 15)}, 0.02, after_start=stop_workers)
        docs = run_recorded(RE, plan, publisher)
        stuck = before_open.result()
        uid3, path3, declared3 = stream_info(docs)
        assert declared3 == 150
        wait_until("the run followed after the stuck open", finished(prefix, declared3, uid3),
                   180, prefix)  # fmt: skip
        assert time.monotonic() - before_open.at >= STALL - 0.5
        wait_until("the stuck workers replaced", lambda: replaced(ioc.proc.pid, stuck), 60)
        assert_exact(prefix, path3, declared3, 10, 15, lambda v: snake_map(v, 10, 15))
    finally:
        publisher.close()
        for saboteur in saboteurs:
            saboteur.release()
