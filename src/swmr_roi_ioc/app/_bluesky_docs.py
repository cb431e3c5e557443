"""bluesky documents -> what one run says about one detector's file.

:class:`RunTracker` takes ``(name, doc)`` pairs in the order they arrive
(from any transport) and turns the documents of the run it follows into
:data:`RunEvent` values: the run started (with its map geometry), the file
and dataset of the detector (its StreamResource), frames ``[0, stop)`` are
complete (its StreamDatum documents), the run stopped. Documents of other
runs are ignored by run UID; a document that does not validate against
event-model's schema is logged and ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import event_model
from jsonschema.exceptions import ValidationError

from swmr_roi_ioc.stats import ScanGeometry, ScanSpecError, grid_geometry, spec_geometry

log = logging.getLogger(__name__)

HDF5_MIMETYPE = "application/x-hdf5"
#: The documents a run is followed by (others are not even validated).
_USED = {"start", "descriptor", "stream_resource", "stream_datum", "stop"}


@dataclass(frozen=True)
class RunStart:
    """A run started: its uid, plan and map geometry (None: none described)."""

    uid: str
    plan_name: str
    geometry: ScanGeometry | None
    #: where the geometry came from: "scan_spec", "shape", "num_points" or ""
    geometry_from: str
    #: frames the run expects (None: not known)
    expected: int | None
    #: why a scan_spec in the start document was not used ("" if none)
    problem: str = ""


@dataclass(frozen=True)
class RunFile:
    """The detector's StreamResource: the file (its URI) and dataset."""

    uri: str
    dataset: str
    data_key: str
    #: (H, W) from the descriptor or the chunk shape; None if not told
    frame_shape: tuple[int, int] | None


@dataclass(frozen=True)
class RunFrames:
    """Frames [0, stop) of the detector's dataset are complete."""

    stop: int


@dataclass(frozen=True)
class RunStop:
    """The run ended; ``exit_status`` is success, abort or fail."""

    uid: str
    exit_status: str
    reason: str


@dataclass(frozen=True)
class RunMissed:
    """Documents of a run whose start was not seen (started before we listened)."""

    uid: str


RunEvent = RunStart | RunFile | RunFrames | RunStop | RunMissed


def _invalid(name: str, doc: Mapping[str, Any]) -> str | None:
    """Why ``doc`` is not a valid ``name`` document (None: it is)."""
    try:
        event_model.schema_validators[event_model.DocumentNames[name]].validate(doc)
    except ValidationError as exc:
        return exc.message
    return None


def _frame_shape(shape: object) -> tuple[int, int] | None:
    """(H, W) of a data key's shape ([1, H, W] or [H, W]); None if not 2-D frames."""
    if not isinstance(shape, Sequence) or isinstance(shape, str):
        return None
    dims = list(cast(Sequence[object], shape))
    if not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        return None
    sizes = [int(cast(int, d)) for d in dims]
    while len(sizes) > 2 and sizes[0] == 1:
        sizes = sizes[1:]
    if len(sizes) != 2 or min(sizes) < 1:
        return None
    return (sizes[0], sizes[1])


def start_geometry(doc: Mapping[str, Any]) -> RunStart:
    """The map of a run from its start document: ``scan_spec`` (a scanspec
    ``Spec.serialize()``), else ``shape`` + ``snaking`` (bluesky's grid_scan),
    else ``num_points`` (one row)."""
    uid = str(doc["uid"])
    plan = str(doc.get("plan_name", ""))
    problem = ""
    if "scan_spec" in doc:
        try:
            geometry = spec_geometry(doc["scan_spec"])
            return RunStart(uid, plan, geometry, "scan_spec", geometry.size)
        except ScanSpecError as exc:
            problem = str(exc)
            log.warning("run %s: %s", uid, problem)
    shape = doc.get("shape")
    if isinstance(shape, list) and shape:
        snaking = doc.get("snaking")
        try:
            geometry = grid_geometry(
                cast(list[int], shape),
                cast(list[bool], snaking) if isinstance(snaking, list) else None,
            )
            return RunStart(uid, plan, geometry, "shape", geometry.size, problem)
        except ScanSpecError as exc:
            log.warning("run %s: %s", uid, exc)
    points = doc.get("num_points")
    if isinstance(points, int) and not isinstance(points, bool) and points >= 1:
        return RunStart(uid, plan, ScanGeometry((1, points), False), "num_points", points, problem)
    return RunStart(uid, plan, None, "", None, problem)


class RunTracker:
    """Follows one run at a time through its documents."""

    def __init__(self, data_key: str | None = None) -> None:
        self._data_key = data_key
        self._run: str | None = None
        #: the run followed may have ended unseen (the transport was down)
        self._maybe_over = False
        #: descriptor uid -> {data_key: its description}
        self._keys: dict[str, dict[str, Mapping[str, Any]]] = {}
        self._resource: str | None = None
        self._declared = 0
        #: runs known not to be ours (their stop seen, or reported missed)
        self._ignored: set[str] = set()
        #: StreamResource uid -> run uid, of runs not followed
        self._others: dict[str, str] = {}
        self.started_any = False

    @property
    def run_uid(self) -> str | None:
        """The run followed now."""
        return self._run

    def link_lost(self) -> None:
        """The transport was down: the run's stop may never come, so the next
        start replaces it."""
        if self._run is not None:
            self._maybe_over = True

    def feed(self, name: str, doc: object) -> list[RunEvent]:
        """One document; the events it means for the run followed."""
        if name not in _USED:
            return []
        if not isinstance(doc, Mapping):
            log.warning("ignoring a %s document that is not a mapping: %.200r", name, doc)
            return []
        body = cast(Mapping[str, Any], doc)
        if (why := _invalid(name, body)) is not None:
            log.warning("ignoring an invalid %s document: %s", name, why)
            return []
        handler = getattr(self, f"_on_{name}")
        return handler(body)

    def _on_start(self, doc: Mapping[str, Any]) -> list[RunEvent]:
        uid = str(doc["uid"])
        if self._run is not None and not self._maybe_over:
            log.info("ignoring run %s: run %s is still being followed", uid, self._run)
            self._ignored.add(uid)
            return []
        self._run, self._maybe_over = uid, False
        self._keys.clear()
        self._resource, self._declared = None, 0
        self.started_any = True
        return [start_geometry(doc)]

    def _foreign(self, run_start: object) -> list[RunEvent]:
        """A document of a run not followed: a missed start if none is followed."""
        uid = str(run_start)
        if self._run is None and uid not in self._ignored:
            self._ignored.add(uid)
            return [RunMissed(uid)]
        return []

    def _on_descriptor(self, doc: Mapping[str, Any]) -> list[RunEvent]:
        if doc["run_start"] != self._run:
            return self._foreign(doc["run_start"])
        self._keys[str(doc["uid"])] = dict(doc["data_keys"])
        return []

    def _describe(self, data_key: str) -> Mapping[str, Any] | None:
        for keys in self._keys.values():
            if data_key in keys:
                return keys[data_key]
        return None

    def _on_stream_resource(self, doc: Mapping[str, Any]) -> list[RunEvent]:
        run = doc.get("run_start", self._run)
        if run != self._run or self._run is None:
            self._others[str(doc["uid"])] = str(run)
            return self._foreign(run or "?")
        key = str(doc["data_key"])
        params = cast(Mapping[str, Any], doc.get("parameters") or {})
        described = self._describe(key)
        shape = _frame_shape(described.get("shape")) if described is not None else None
        if shape is None:
            chunks = params.get("chunk_shape")
            if isinstance(chunks, list):
                shape = _frame_shape(cast(list[object], chunks)[1:])
        if self._data_key is not None:
            if key != self._data_key:
                return []
        elif doc["mimetype"] != HDF5_MIMETYPE or shape is None:
            return []
        if self._resource is not None:
            log.warning("run %s: a second StreamResource for %s is not followed", self._run, key)
            return []
        dataset = params.get("dataset")
        if not isinstance(dataset, str) or not dataset.startswith("/"):
            log.warning("run %s: StreamResource of %s names no dataset; ignored", self._run, key)
            return []
        self._resource = str(doc["uid"])
        return [RunFile(str(doc["uri"]), dataset, key, shape)]

    def _on_stream_datum(self, doc: Mapping[str, Any]) -> list[RunEvent]:
        if self._run is None:
            resource = str(doc["stream_resource"])
            return self._foreign(self._others.get(resource, f"resource {resource}"))
        if doc["stream_resource"] != self._resource:
            return []
        stop = int(doc["indices"]["stop"])
        if stop <= self._declared:
            return []
        self._declared = stop
        return [RunFrames(stop)]

    def _on_stop(self, doc: Mapping[str, Any]) -> list[RunEvent]:
        uid = str(doc["run_start"])
        if uid != self._run:
            self._ignored.add(uid)
            return []
        self._run = None
        return [RunStop(uid, str(doc.get("exit_status", "")), str(doc.get("reason", "") or ""))]
