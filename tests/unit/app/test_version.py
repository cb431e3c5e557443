"""ServiceState.version: the publisher's cue that something visible changed."""

from __future__ import annotations

import numpy as np

from swmr_roi_ioc.app import ServiceState
from swmr_roi_ioc.config import parse_config
from swmr_roi_ioc.publish import Status
from swmr_roi_ioc.stats import compute_stats

CONFIG = """\
ioc_name: test-ioc
prefix: "T:"
data_root: /data
rois:
  - {name: A, x: 0, y: 0, width: 2, height: 2}
"""


def test_version_changes_only_with_what_is_shown() -> None:
    state = ServiceState(parse_config(CONFIG))
    state.start_acquisition("/data/x.h5", (8, 8))
    state.set_status(Status.FOLLOWING, "Following /data/x.h5")
    state.set_frames_written(3)
    seen = state.version
    # what a source repeats on every poll of a file that stopped growing
    for _ in range(5):
        state.set_status(Status.FOLLOWING, "Following /data/x.h5")
        state.set_frames_written(3)
        state.set_link(None)
    assert state.version == seen
    state.set_frames_written(4)
    assert state.version > seen
    seen = state.version
    frames = np.ones((2, 8, 8), dtype=np.uint16)
    per_roi, whole = compute_stats(frames, [r for r in state.rois_for_next_batch() if r])
    state.add_batch(0, list(per_roi), whole, unique_id=2)
    assert state.version > seen
    seen = state.version
    state.set_status(Status.ERROR, "gone")
    assert state.version > seen
    seen = state.version
    state.set_roi(0, x=1)
    assert state.version > seen
