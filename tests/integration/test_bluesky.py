"""The IOC following bluesky runs: documents over STOMP (RabbitMQ) or 0MQ.

Separate processes on loopback: a real RabbitMQ broker with its STOMP plugin
(from a temporary directory), the simulated dcam, the IOC with
``source.bluesky``; in the test process a RunEngine with ophyd-async's
AravisDetector publishing every document as blueapi does (a DataEvent per
document through bluesky-stomp), or through bluesky's 0MQ Publisher and
Proxy. Ground truth comes from the file with numpy; values are read with
EPICS base's caget.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bluesky import RunEngine
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from bluesky import preprocessors as bpp
from bluesky.run_engine import call_in_bluesky_event_loop
from bluesky.utils import RunEngineInterrupted
from bluesky_stomp.messaging import StompClient
from bluesky_stomp.models import Broker, MessageTopic
from ophyd_async.core import (
    AutoIncrementFilenameProvider,
    StaticPathProvider,
    TriggerInfo,
    init_devices,
)
from ophyd_async.epics.adaravis import AravisDetector
from ophyd_async.sim import SimMotor
from scanspec.specs import Line

from tests.conftest import Process, _free_port, camera_env, swmr_roi_ioc
from tests.integration.broker import RabbitMQ
from tests.integration.helpers import caget_program, read_frames, snake_map, truth

pytestmark = [pytest.mark.integration]

ROI = {"x": 5, "y": 6, "width": 20, "height": 15, "background_width": 2}
SHAPE = (32, 40)  # small frames: the runs are about documents, not speed
TOPIC = "public.worker.event"
SERIES = {"total": "TSTotal", "net": "TSNet", "min": "TSMinValue", "max": "TSMaxValue",
          "mean": "TSMeanValue"}  # fmt: skip
Docs = list[tuple[str, dict[str, Any]]]
STATES = ("Idle", "Waiting", "Following", "Finished", "Error")


# -- fixtures ------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQ]:
    """One RabbitMQ for the module (it takes 10-30 s to start)."""
    server = RabbitMQ(tmp_path_factory.mktemp("rabbitmq"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cam(tmp_path: Path, processes: list[Process], prefix: str) -> tuple[str, Path]:
    """The simulated dcam with small frames: (its PV prefix, data directory)."""
    data = tmp_path / "data"
    data.mkdir()
    camera = prefix.replace(":ROI:", ":DCAM:")
    args = ["sim-camera", "--prefix", camera, "--dir", str(data)]
    args += ["--shape", str(SHAPE[0]), str(SHAPE[1])]
    processes.append(Process(swmr_roi_ioc(*args), env=camera_env()))
    return camera, data


def _ioc(tmp_path: Path, prefix: str, data: Path, transport: str) -> list[str]:
    config = tmp_path / "ioc.yaml"
    config.write_text(
        "\n".join(
            [
                "ioc_name: test-ioc",
                f'prefix: "{prefix}"',
                f"data_root: {data}",
                "source:",
                "  timeout: 2.0",
                f"  bluesky: {transport}",
                "rois:",
                "  - {name: ROI1, " + ", ".join(f"{k}: {v}" for k, v in ROI.items()) + "}",
                "publish: {rate_hz: 10, time_series_length: 1024}",
                "pva: false",
            ]
        )
        + "\n"
    )
    return swmr_roi_ioc("--log-level", "INFO", "run", str(config))


def _detector(camera: str, data: Path) -> AravisDetector:
    from ophyd_async.epics.adcore import ADWriterFactory

    provider = StaticPathProvider(AutoIncrementFilenameProvider("scan"), data)
    with init_devices(timeout=30):
        det = AravisDetector(camera, ADWriterFactory.hdf(provider))
    return det


class StompPublisher:
    """What blueapi does with a RunEngine's documents: one DataEvent each."""

    def __init__(self, port: int) -> None:
        self.client = StompClient.for_broker(Broker(host="localhost", port=port))
        self.client.connect()
        self.topic = MessageTopic(name=TOPIC)

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        self.client.send(self.topic, {"name": name, "doc": doc, "task_id": "test-task"})

    def close(self) -> None:
        self.client.disconnect()


# -- plans ---------------------------------------------------------------------


def fly(
    det: AravisDetector,
    frames: int,
    md: dict[str, Any],
    period: float = 0.01,
    after_start: Callable[[], Any] | None = None,
) -> Any:
    """A fly scan of ``frames`` frames (stream datums in batches), as at Diamond;
    ``after_start``, a plan, runs right after the start document."""
    info = TriggerInfo(number_of_events=frames, livetime=period * 0.4, deadtime=period * 0.6)

    @bpp.stage_decorator([det])
    @bpp.run_decorator(md=md)
    def inner() -> Any:
        if after_start is not None:
            yield from after_start()
        yield from bps.prepare(det, info, wait=True)
        yield from bps.declare_stream(det, name="primary", collect=True)
        yield from bps.kickoff(det, wait=True)
        yield from bps.collect_while_completing(flyers=[det], dets=[det], flush_period=0.2)

    return inner()


def snake_spec(rows: int, cols: int) -> dict[str, Any]:
    return (Line("y", 0, 1, rows) * ~Line("x", 0, 1, cols)).serialize()


def run_recorded(
    engine: RunEngine, plan: Any, publish: Callable[[str, dict], None], *, aborted: bool = False
) -> Docs:
    """Run ``plan``, publishing its documents; the documents. With ``aborted``
    the RunEngine must have been interrupted (RE.abort from another thread)."""
    docs: Docs = []

    def both(name: str, doc: dict[str, Any]) -> None:
        docs.append((name, doc))
        publish(name, doc)

    token = engine.subscribe(both)
    try:
        if aborted:
            with pytest.raises(RunEngineInterrupted):
                engine(plan)
        else:
            engine(plan)
    finally:
        engine.unsubscribe(token)
    return docs


def cancel_orphans(engine: RunEngine) -> None:
    """Tasks an aborted fly scan leaves waiting in the RunEngine's loop (an
    ophyd-async status's observer): cancelled now, not destroyed pending with
    the loop (which warns in whatever test runs next)."""

    async def cancel() -> None:
        me = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not me]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    call_in_bluesky_event_loop(cancel(), timeout=10)


# -- reading the IOC -----------------------------------------------------------


def get(pv: str) -> str:
    return caget_program("-t", "-f", "0", pv).strip()


def get_str(pv: str) -> str:
    return caget_program("-t", "-S", pv).strip()


def wave(pv: str) -> np.ndarray:
    words = caget_program("-t", "-e", "17", pv).split()
    return np.array([float(w) for w in words[1:]])  # first word: element count


def wait_until(what: str, check: Callable[[], Any], timeout: float, prefix: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except AssertionError as exc:  # not serving yet
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    state = ""
    if prefix:
        state = caget_program("-S", f"{prefix}Status_RBV", f"{prefix}StatusMessage_RBV")
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}; {state}")


class StatusLog:
    """Every Status_RBV value the IOC posts (the EPICS base camonitor program)."""

    def __init__(self, prefix: str, processes: list[Process]) -> None:
        from tests.conftest import epics_bin, epics_run_env

        self.proc = Process([str(epics_bin("camonitor")), "-t", "n", f"{prefix}Status_RBV"],
                            env=epics_run_env())  # fmt: skip
        processes.append(self.proc)

    def values(self) -> list[str]:
        """The states seen, in order, repeats folded."""
        out: list[str] = []
        for line in self.proc.output:
            state = [w for w in line.split()[1:] if w in STATES]
            if state and (not out or out[-1] != state[0]):
                out.append(state[0])
        return out


def serving_without_alarm(prefix: str) -> Callable[[], bool]:
    """Waiting, and no alarm: the IOC is up and its transport connected."""
    return lambda: (
        get(f"{prefix}Status_RBV") == "Waiting"
        and "MAJOR" not in caget_program("-a", f"{prefix}Status_RBV")
    )


def finished(prefix: str, frames: int, uid: str) -> Callable[[], bool]:
    return lambda: (
        get(f"{prefix}Status_RBV") == "Finished"
        and get(f"{prefix}ArrayCounter_RBV") == str(frames)
        and get_str(f"{prefix}RunUid_RBV") == uid
    )


def stream_info(docs: Docs) -> tuple[str, Path, int]:
    """(start uid, the StreamResource's file, the last StreamDatum's stop)."""
    uid = next(d["uid"] for n, d in docs if n == "start")
    resource = next(d for n, d in docs if n == "stream_resource")
    assert resource["uri"].startswith("file://localhost/")
    stop = max(d["indices"]["stop"] for n, d in docs if n == "stream_datum")
    return uid, Path(resource["uri"].removeprefix("file://localhost")), stop


def assert_exact(prefix: str, path: Path, frames: int, rows: int, cols: int,
                 order: Callable[[np.ndarray], np.ndarray]) -> None:  # fmt: skip
    """Every series and map the IOC serves equals numpy on the file's frames."""
    data = read_frames(path)[:frames].astype(np.float64)
    assert len(data) == frames
    x, y, w, h, bgd = (ROI[k] for k in ("x", "y", "width", "height", "background_width"))
    expected = {
        "1": truth(data, x, y, w, h, bgd),
        "Frame": truth(data, 0, 0, SHAPE[1], SHAPE[0]),
    }
    assert get(f"{prefix}MapSizeX_RBV") == str(cols)
    assert get(f"{prefix}MapSizeY_RBV") == str(rows)
    for region, values in expected.items():
        for key, pv in SERIES.items():
            served = wave(f"{prefix}{region}:{pv}")[:frames]
            np.testing.assert_allclose(served, values[key], rtol=1e-12, err_msg=f"{region}:{pv}")
        served_map = wave(f"{prefix}{region}:Map")[: rows * cols].reshape(rows, cols)
        np.testing.assert_array_equal(served_map, order(values["total"]), err_msg=f"{region}:Map")
    max_map = wave(f"{prefix}Frame:MaxMap")[: rows * cols].reshape(rows, cols)
    np.testing.assert_array_equal(max_map, order(expected["Frame"]["max"]))


# -- the tests -----------------------------------------------------------------


def test_snake_scan_spec_then_grid_scan_over_stomp(
    tmp_path: Path,
    broker: RabbitMQ,
    cam: tuple[str, Path],
    prefix: str,
    processes: list[Process],
    RE: RunEngine,  # noqa: N803
) -> None:
    camera, data = cam
    transport = f"{{stomp: {{host: 127.0.0.1, port: {broker.stomp_port}, topic: {TOPIC}}}}}"
    processes.append(Process(_ioc(tmp_path, prefix, data, transport)))
    wait_until("IOC subscribed", serving_without_alarm(prefix), 60, prefix)
    status = StatusLog(prefix, processes)
    det = _detector(camera, data)
    publish = StompPublisher(broker.stomp_port)
    try:
        # a 20 x 30 snake described only by its scan_spec (no scan.shape in ioc.yaml)
        rows, cols = 20, 30
        md = {"scan_spec": snake_spec(rows, cols)}
        docs = run_recorded(RE, fly(det, rows * cols, md), publish)
        uid, path, stop = stream_info(docs)
        assert stop == rows * cols
        wait_until("the scan followed", finished(prefix, stop, uid), 60, prefix)
        assert status.values()[-3:] == ["Waiting", "Following", "Finished"], status.values()
        assert Path(get_str(f"{prefix}FilePath_RBV")) == path
        assert get_str(f"{prefix}PlanName_RBV") == "inner"
        assert float(get(f"{prefix}RunProgress_RBV")) == 100
        assert get(f"{prefix}FramesWritten_RBV") == str(stop)
        assert_exact(prefix, path, stop, rows, cols, lambda v: snake_map(v, rows, cols))

        # the next run: bluesky's grid_scan with snake_axes (its shape + snaking)
        motor_y, motor_x = SimMotor(name="y"), SimMotor(name="x")
        plan = bp.grid_scan([det], motor_y, 0, 1, 4, motor_x, 0, 1, 5, snake_axes=True)
        docs = run_recorded(RE, plan, publish)
        uid2, path2, stop2 = stream_info(docs)
        assert (stop2, uid2 != uid, path2 != path) == (20, True, True)
        wait_until("the grid scan followed", finished(prefix, 20, uid2), 60, prefix)
        assert get_str(f"{prefix}PlanName_RBV") == "grid_scan"
        assert Path(get_str(f"{prefix}FilePath_RBV")) == path2
        assert_exact(prefix, path2, 20, 4, 5, lambda v: snake_map(v, 4, 5))
        assert "Finished" in get_str(f"{prefix}StatusMessage_RBV")
    finally:
        publish.close()


def test_aborted_run_and_ioc_started_mid_run(
    tmp_path: Path,
    broker: RabbitMQ,
    cam: tuple[str, Path],
    prefix: str,
    processes: list[Process],
    RE: RunEngine,  # noqa: N803
) -> None:
    camera, data = cam
    det = _detector(camera, data)
    publish = StompPublisher(broker.stomp_port)
    transport = f"{{stomp: {{host: localhost, port: {broker.stomp_port}}}}}"
    try:
        # a run is under way before the IOC starts: it waits for the next start

        def start_ioc() -> Any:  # in the run, after its start document
            processes.append(Process(_ioc(tmp_path, prefix, data, transport)))
            up = serving_without_alarm(prefix)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if up():
                        return
                except AssertionError:  # not serving yet
                    pass
                yield from bps.sleep(0.5)

        plan = fly(det, 100, {"scan_spec": snake_spec(10, 10)}, after_start=start_ioc)
        run_recorded(RE, plan, publish)
        message = get_str(f"{prefix}StatusMessage_RBV")
        assert "run in progress before this IOC started" in message, message
        assert "waiting for the next start" in message
        assert get(f"{prefix}Status_RBV") == "Waiting"
        assert get(f"{prefix}ArrayCounter_RBV") == "0"

        # the next run is aborted half-way: Finished with the frames it declared
        plan = fly(det, 400, {"scan_spec": snake_spec(20, 20)}, period=0.02)
        threading.Timer(3.0, lambda: RE.abort("operator abort")).start()
        docs = run_recorded(RE, plan, publish, aborted=True)
        stop_doc = next(d for n, d in docs if n == "stop")
        assert stop_doc["exit_status"] == "abort"
        uid, path, declared = stream_info(docs)
        assert 0 < declared < 400
        wait_until("the aborted run finished", finished(prefix, declared, uid), 60, prefix)
        message = get_str(f"{prefix}StatusMessage_RBV")
        assert "the run was aborted" in message and stop_doc["reason"] in message, message
        assert_exact(prefix, path, declared, 20, 20, lambda v: snake_map(v, 20, 20))
        progress = float(caget_program("-t", "-f", "2", f"{prefix}RunProgress_RBV"))
        assert progress == pytest.approx(100 * declared / 400, abs=0.06)
    finally:
        publish.close()
        cancel_orphans(RE)


def test_broker_stopped_and_started_again(
    tmp_path: Path,
    broker: RabbitMQ,
    cam: tuple[str, Path],
    prefix: str,
    processes: list[Process],
    RE: RunEngine,  # noqa: N803
) -> None:
    camera, data = cam
    det = _detector(camera, data)
    transport = f"{{stomp: {{host: 127.0.0.1, port: {broker.stomp_port}}}}}"
    processes.append(Process(_ioc(tmp_path, prefix, data, transport)))
    wait_until("IOC subscribed", serving_without_alarm(prefix), 60, prefix)

    broker.stop()
    alarm = wait_until(
        "LINK/MAJOR alarm",
        lambda: (out := caget_program("-a", f"{prefix}Status_RBV")) and "MAJOR" in out and out,
        30, prefix,
    )  # fmt: skip
    assert "LINK" in alarm
    assert "STOMP broker" in get_str(f"{prefix}StatusMessage_RBV")
    assert get(f"{prefix}Uptime_RBV")  # still serving

    broker.start()
    wait_until("alarm cleared", lambda: "MAJOR" not in caget_program("-a", f"{prefix}Status_RBV"),
               60, prefix)  # fmt: skip
    publish = StompPublisher(broker.stomp_port)
    try:
        docs = run_recorded(RE, fly(det, 50, {"scan_spec": snake_spec(5, 10)}), publish)
    finally:
        publish.close()
    uid, path, stop = stream_info(docs)
    wait_until("the run after the outage followed", finished(prefix, stop, uid), 60, prefix)
    assert_exact(prefix, path, stop, 5, 10, lambda v: snake_map(v, 5, 10))


@pytest.fixture
def zmq_proxy(processes: list[Process]) -> tuple[int, int]:
    """bluesky's 0MQ proxy in its own process: (in port, out port)."""
    ports = (_free_port(), _free_port())
    code = (
        "from bluesky.callbacks.zmq import Proxy; "
        f"Proxy(in_address={ports[0]}, out_address={ports[1]}).start()"
    )
    processes.append(Process([sys.executable, "-c", code]))
    return ports


def test_snake_scan_spec_over_zmq(
    tmp_path: Path,
    cam: tuple[str, Path],
    zmq_proxy: tuple[int, int],
    prefix: str,
    processes: list[Process],
    RE: RunEngine,  # noqa: N803
) -> None:
    from bluesky.callbacks.zmq import Publisher

    camera, data = cam
    processes.append(Process(_ioc(tmp_path, prefix, data, f'{{zmq: "127.0.0.1:{zmq_proxy[1]}"}}')))
    wait_until("IOC connected to the proxy", serving_without_alarm(prefix), 60, prefix)
    publisher = Publisher(
        f"127.0.0.1:{zmq_proxy[0]}", serializer=lambda doc: json.dumps(doc).encode()
    )
    time.sleep(1.0)  # 0MQ's slow joiner: the publisher's connection to the proxy
    det = _detector(camera, data)
    rows, cols = 20, 30
    try:
        docs = run_recorded(RE, fly(det, rows * cols, {"scan_spec": snake_spec(rows, cols)}),
                            publisher)  # fmt: skip
    finally:
        publisher.close()
    uid, path, stop = stream_info(docs)
    assert stop == rows * cols
    wait_until("the scan followed over 0MQ", finished(prefix, stop, uid), 60, prefix)
    assert Path(get_str(f"{prefix}FilePath_RBV")) == path
    assert_exact(prefix, path, stop, rows, cols, lambda v: snake_map(v, rows, cols))
