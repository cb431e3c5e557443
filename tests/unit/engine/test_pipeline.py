"""FramePipeline: the direct path and the BlockStream path give numpy's statistics."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pytest

from swmr_roi_ioc.app import ServiceState
from swmr_roi_ioc.config import parse_config
from swmr_roi_ioc.engine._pipeline import FramePipeline
from swmr_roi_ioc.follow import FrameReader, open_swmr
from swmr_roi_ioc.sim import DATA_PATH, SimOptions, write_file
from swmr_roi_ioc.stats import FrameStats, Roi

FRAMES = 300
SHAPE = (64, 80)  # 10 kB frames: batches of 64 frames, the stream from 129 on
CONFIG = """\
ioc_name: test-ioc
prefix: "T:"
data_root: /data
rois:
  - {name: A, x: 3, y: 5, width: 20, height: 17}
  - {name: B, x: 40, y: 30, width: 30, height: 30, background_width: 2}
"""


class _Sink:
    """The pipeline's sink: the results into a real ServiceState, and the
    newest frame of each call (what a worker hands to its live views)."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self.latest: list[np.ndarray] = []

    def rois_for_next_batch(self) -> list[Roi | None]:
        return self.state.rois_for_next_batch()

    def add_batch(
        self,
        start: int,
        rois: Sequence[FrameStats | None],
        frame: FrameStats,
        unique_id: int,
        last_frame: np.ndarray | None = None,
    ) -> None:
        self.state.add_batch(start, rois, frame, unique_id)
        if last_frame is not None:
            self.latest.append(last_frame)


def _expected(frames: np.ndarray, y: int, x: int, h: int, w: int) -> np.ndarray:
    return frames[:, y : y + h, x : x + w].astype(np.int64).sum(axis=(1, 2)).astype(np.float64)


@pytest.mark.parametrize("compression", ["none", "bslz4"])
@pytest.mark.parametrize("hops", [[(0, FRAMES)], [(0, 1), (1, 7), (7, 200), (200, FRAMES)]])
def test_pipeline_equals_numpy(
    tmp_path: Path, compression: str, hops: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    streamed: list[tuple[int, int]] = []
    original = FramePipeline.__dict__["_process_stream"]

    def spy(self: FramePipeline, start: int, stop: int) -> int:
        streamed.append((start, stop))
        return original(self, start, stop)

    monkeypatch.setattr(FramePipeline, "_process_stream", spy)
    path = tmp_path / "f.h5"
    options = SimOptions(
        frames=FRAMES, rate_hz=0, shape=SHAPE, dtype="uint16", compression=compression
    )
    write_file(path, options)
    with h5py.File(path, "r") as f:
        data = f[DATA_PATH]
        assert isinstance(data, h5py.Dataset)
        frames = np.asarray(data[()])
    state = ServiceState(parse_config(CONFIG))
    state.start_acquisition(str(path), SHAPE)
    sink = _Sink(state)
    with open_swmr(path) as h5file:
        pipeline = FramePipeline(sink, FrameReader(DATA_PATH, h5file), h5file)
        try:
            for start, stop in hops:
                assert pipeline.process(start, stop) == stop
                assert state.array_counter == stop
                # the newest frame of the call, for the live views
                np.testing.assert_array_equal(sink.latest[-1], frames[stop - 1])
            assert len(sink.latest) == len(hops)
            again = pipeline.read(17, 150)
            # a ROI moved: its frames read again, over several blocks
            moved = pipeline.roi_stats(17, 150, Roi(6, 9, 25, 12))
        finally:
            pipeline.close()
    # ranges longer than two batches went through the BlockStream
    assert streamed == [(a, b) for a, b in hops if b - a > 128]
    np.testing.assert_array_equal(again, frames[17:150])
    np.testing.assert_array_equal(moved.total, _expected(frames[17:150], 9, 6, 12, 25))
    window = frames[17:150, 9:21, 6:31]
    np.testing.assert_array_equal(moved.min, window.min(axis=(1, 2)).astype(np.float64))
    np.testing.assert_array_equal(moved.max, window.max(axis=(1, 2)).astype(np.float64))
    records, count = state.acquisition_record()
    assert count == FRAMES
    a, b, whole = records
    np.testing.assert_array_equal(a.series["total"], _expected(frames, 5, 3, 17, 20))
    np.testing.assert_array_equal(b.series["total"], _expected(frames, 30, 40, 30, 30))
    np.testing.assert_array_equal(whole.series["total"], _expected(frames, 0, 0, *SHAPE))
    np.testing.assert_array_equal(whole.series["max"], frames.max(axis=(1, 2)).astype(np.float64))
    np.testing.assert_array_equal(
        a.series["min"], frames[:, 5:22, 3:23].min(axis=(1, 2)).astype(np.float64)
    )
    snap = state.snapshot()
    assert snap.frame is not None
    assert snap.frame.stats.total == float(frames[-1].astype(np.int64).sum())


def test_read_error_is_the_readers_own(tmp_path: Path) -> None:
    """Reading past the extent raises an OSError, which the sources handle (they
    do not know the follow layer's exception types)."""
    path = tmp_path / "f.h5"
    write_file(path, SimOptions(frames=10, rate_hz=0, shape=SHAPE, dtype="uint16"))
    state = ServiceState(parse_config(CONFIG))
    state.start_acquisition(str(path), SHAPE)
    with open_swmr(path) as h5file:
        pipeline = FramePipeline(_Sink(state), FrameReader(DATA_PATH, h5file), h5file)
        try:
            with pytest.raises(OSError, match="frame"):
                pipeline.read(5, 20)
            with pytest.raises(OSError, match="frame"):
                pipeline.roi_stats(5, 20, Roi(1, 1, 4, 4))
        finally:
            pipeline.close()
