"""Clear errors for missing or vanished paths; transient errors are retried."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from swmr_roi_ioc.follow import FollowError, KeyFollower, open_swmr


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "k.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("keys/k", data=np.ones(1000, dtype=np.int32), maxshape=(None,))
        f["keys/k"][600:] = 0
        f.create_group("empty")
        f["scalar"] = 3
        f["done"] = np.zeros(1, dtype=np.int8)
    return path


def test_construction_errors_name_the_path(keys_file: Path) -> None:
    with open_swmr(keys_file) as f:
        with pytest.raises(FollowError, match="nothing to follow"):
            KeyFollower(f, [])
        with pytest.raises(FollowError, match=r"key path '/nope' not found in"):
            KeyFollower(f, ["/nope"])
        with pytest.raises(FollowError, match="holds no dataset"):
            KeyFollower(f, ["/empty"])
        with pytest.raises(FollowError, match="scalar"):
            KeyFollower(f, ["/scalar"])
        with pytest.raises(FollowError, match=r"finished dataset '/gone' not found"):
            KeyFollower(f, ["/keys"], finished_dataset="/gone")
        with pytest.raises(FollowError, match="dataset '/keys' is a group"):
            KeyFollower(f, [], dataset_paths=["/keys"])


class _Flaky:
    """Stands in for an h5py.Dataset whose refresh fails ``failures`` times."""

    def __init__(self, dset: h5py.Dataset, failures: int) -> None:
        self._dset = dset
        self.failures = failures

    def refresh(self) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("Unable to refresh (bad object header version number)")
        self._dset.refresh()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dset, name)

    def __getitem__(self, key: Any) -> Any:
        return self._dset[key]


def test_transient_errors_in_poll_are_retried(keys_file: Path) -> None:
    with open_swmr(keys_file) as f:
        kf = KeyFollower(f, ["/keys/k"], timeout=0.05)
        tracker = kf._keys[0]
        tracker.dset = _Flaky(tracker.dset, failures=2)  # type: ignore[assignment]
        assert kf.poll() == 600


def test_a_vanished_key_raises_follow_error(keys_file: Path) -> None:
    with h5py.File(keys_file, "a") as f:
        kf = KeyFollower(f, ["/keys/k"], timeout=0.05)
        assert kf.poll() == 600
        del f["keys/k"]
        tracker = kf._keys[0]
        tracker.dset = _Flaky(tracker.dset, failures=100)  # type: ignore[assignment]
        with pytest.raises(FollowError, match=r"'/keys/k' vanished from") as info:
            kf.poll()
        assert isinstance(info.value.__cause__, OSError)


class _Recording(_Flaky):
    def __init__(self, dset: h5py.Dataset) -> None:
        super().__init__(dset, 0)
        self.reads: list[Any] = []

    def __getitem__(self, key: Any) -> Any:
        self.reads.append(key)
        return super().__getitem__(key)


def test_poll_reads_only_keys_past_the_complete_prefix(keys_file: Path) -> None:
    with h5py.File(keys_file, "a") as f:
        kf = KeyFollower(f, ["/keys/k"], timeout=0.05)
        tracker = kf._keys[0]
        recording = _Recording(tracker.dset)
        tracker.dset = recording  # type: ignore[assignment]
        assert kf.poll() == 600
        assert recording.reads == [slice(0, 1000)]
        recording.reads.clear()
        f["keys/k"][600:605] = 7
        assert kf.poll() == 605
        assert kf.poll() == 605
        assert recording.reads == [slice(600, 1000), slice(605, 1000)]
