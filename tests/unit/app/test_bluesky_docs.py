"""RunTracker: a run's documents (composed by event-model) -> run events."""

from __future__ import annotations

import logging
from typing import Any

import event_model as em
import pytest
from scanspec.specs import Line

from swmr_roi_ioc.app._bluesky_docs import (
    RunFile,
    RunFrames,
    RunMissed,
    RunStart,
    RunStop,
    RunTracker,
    start_geometry,
)
from swmr_roi_ioc.app._bluesky_source import FileRefusedError, local_path
from swmr_roi_ioc.app._bluesky_transport import parse_data_event

Doc = tuple[str, dict[str, Any]]
URI = "file://localhost/data/scan_00000.h5"


def run_docs(
    md: dict[str, Any], frames: list[int], *, key: str = "det", exit_status: str = "success"
) -> list[Doc]:
    """start, descriptor, stream_resource, stream_datum per batch, stop."""
    run = em.compose_run(metadata={"plan_name": "fly", **md})
    data_keys: dict[str, Any] = {
        key: {"source": URI, "shape": [1, 8, 10], "dtype": "array",
              "dtype_numpy": "<u2", "external": "STREAM:"},
        "det-sum": {"source": "x", "shape": [], "dtype": "number", "external": "STREAM:"},
    }  # fmt: skip
    desc = run.compose_descriptor(name="primary", data_keys=data_keys)
    out: list[Doc] = [("start", dict(run.start_doc)), ("descriptor", dict(desc.descriptor_doc))]
    stats = run.compose_stream_resource(
        mimetype="application/x-hdf5", uri=URI, data_key="det-sum",
        parameters={"dataset": "/entry/sum", "chunk_shape": [1024]},
    )  # fmt: skip
    res = run.compose_stream_resource(
        mimetype="application/x-hdf5", uri=URI, data_key=key,
        parameters={"dataset": "/entry/data/data", "chunk_shape": [1, 8, 10]},
    )  # fmt: skip
    out += [("stream_resource", dict(stats.stream_resource_doc)),
            ("stream_resource", dict(res.stream_resource_doc))]  # fmt: skip
    start = 0
    for stop in frames:
        datum = res.compose_stream_datum(
            indices=em.StreamRange(start=start, stop=stop),
            seq_nums=em.StreamRange(start=start + 1, stop=stop + 1),
            descriptor=desc.descriptor_doc,
        )
        out.append(("stream_datum", dict(datum)))
        start = stop
    out.append(("stop", dict(run.compose_stop(exit_status=exit_status, reason="because"))))
    return out


def feed(tracker: RunTracker, docs: list[Doc]) -> list[Any]:
    return [event for name, doc in docs for event in tracker.feed(name, doc)]


def test_one_run_start_file_frames_stop() -> None:
    spec = (Line("y", 0, 1, 3) * ~Line("x", 0, 1, 4)).serialize()
    events = feed(RunTracker(), run_docs({"scan_spec": spec}, [3, 7, 12]))
    start, file, *frames, stop = events
    assert isinstance(start, RunStart) and start.plan_name == "fly"
    assert start.geometry_from == "scan_spec" and start.expected == 12
    assert start.geometry is not None and start.geometry.position(4) == (1, 3)
    assert file == RunFile(URI, "/entry/data/data", "det", (8, 10))
    assert frames == [RunFrames(3), RunFrames(7), RunFrames(12)]
    assert isinstance(stop, RunStop) and stop.uid == start.uid
    assert stop.exit_status == "success"


def test_data_key_picks_the_detector_and_ignores_others() -> None:
    events = feed(RunTracker("det-sum"), run_docs({}, [5]))
    assert [type(e) for e in events] == [RunStart, RunFile, RunStop]  # not det's datums
    assert events[1].dataset == "/entry/sum"


def test_interleaved_run_is_ignored_by_uid() -> None:
    tracker = RunTracker()
    ours, other = run_docs({"num_points": 5}, [2, 5]), run_docs({}, [4], exit_status="fail")
    mixed = [ours[0], other[0], ours[1], other[1], other[2], other[3], ours[2], ours[3],
             other[4], ours[4], other[5], ours[5], ours[6]]  # fmt: skip
    events = feed(tracker, mixed)
    assert [type(e) for e in events] == [RunStart, RunFile, RunFrames, RunFrames, RunStop]
    assert events[0].uid == ours[0][1]["uid"] == events[-1].uid
    assert events[0].geometry.rows == 1 and events[0].geometry.cols == 5


def test_late_join_reports_a_missed_run_once_then_follows_the_next() -> None:
    tracker = RunTracker()
    first, second = run_docs({}, [2, 4]), run_docs({}, [3])
    events = feed(tracker, first[1:])  # the IOC started after the start document
    assert [type(e) for e in events] == [RunMissed]
    events = feed(tracker, second)
    assert [type(e) for e in events] == [RunStart, RunFile, RunFrames, RunStop]


def test_after_a_link_loss_a_new_start_replaces_a_run_whose_stop_was_lost() -> None:
    tracker = RunTracker()
    first, second = run_docs({}, [2]), run_docs({}, [3])
    feed(tracker, first[:-1])
    assert feed(tracker, second[:1]) == []  # a second run while one runs: ignored
    tracker.link_lost()
    events = feed(tracker, second)
    assert isinstance(events[0], RunStart) and events[0].uid == second[0][1]["uid"]


def test_invalid_document_is_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    tracker = RunTracker()
    docs = run_docs({}, [2])
    broken = dict(docs[4][1])
    del broken["indices"]
    with caplog.at_level(logging.WARNING):
        events = feed(tracker, [*docs[:4], ("stream_datum", broken), ("start", {"no": 1})])
    assert [type(e) for e in events] == [RunStart, RunFile]
    assert "invalid stream_datum" in caplog.text and "invalid start" in caplog.text
    assert tracker.feed("stream_datum", "not a mapping") == []


def test_start_geometry_order_of_preference() -> None:
    base = {"uid": "u", "plan_name": "p", "time": 0}
    grid = start_geometry({**base, "shape": [3, 4], "snaking": [False, True], "num_points": 12})
    assert grid.geometry_from == "shape" and grid.geometry is not None and grid.geometry.snake
    bad = start_geometry({**base, "scan_spec": {"type": "?"}, "num_points": 7})
    assert bad.geometry_from == "num_points" and "scan_spec" in bad.problem
    assert start_geometry(base).geometry is None


def test_file_uri_checked_against_data_root(tmp_path: Any) -> None:
    root = tmp_path / "data"
    root.mkdir()
    assert local_path(f"file://localhost{root}/a.h5", str(root)) == root / "a.h5"
    with pytest.raises(FileRefusedError, match="on host 'elsewhere'"):
        local_path(f"file://elsewhere{root}/a.h5", str(root))
    with pytest.raises(Exception, match="outside data_root"):
        local_path("file://localhost/etc/passwd", str(root))


def test_blueapi_data_event_parsing() -> None:
    assert parse_data_event(b'{"name": "start", "doc": {"uid": "u"}, "task_id": "t"}') == (
        "start",
        {"uid": "u"},
    )
    assert parse_data_event('{"state": "RUNNING", "task_status": null}') is None
    assert parse_data_event("not json") is None
