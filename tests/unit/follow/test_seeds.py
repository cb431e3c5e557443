"""The swmr_tools documents in shared/seeds, run literally (0-based indices)."""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from swmr_roi_ioc.follow import KeyFollower


@pytest.fixture
def seed_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    # create a sequential array of the numbers 1-8 and reshape them into an array
    # of shape (2,4,1,1)
    complete_key_array = np.arange(8).reshape(2, 4, 1, 1) + 1
    with h5py.File("test_file.h5", "w", libver="latest") as f:
        f.create_group("keys")
        f["/keys"].create_dataset("key_1", data=complete_key_array)
    return tmp_path / "test_file.h5"


def test_all_keys_complete_prints_0_to_7_and_stops_at_once(
    seed_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = time.monotonic()
    # using an instance of Follower in a for loop
    with h5py.File("test_file.h5", "r", swmr=True) as f:
        kf = KeyFollower(f, ["/keys"])
        for key in kf:
            print(key)
    assert capsys.readouterr().out == "0\n1\n2\n3\n4\n5\n6\n7\n"
    assert time.monotonic() - start < 0.5  # fixed-size keys, all complete: no timeout
    assert kf.finished


def test_zero_row_prints_first_row_then_times_out(
    seed_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with h5py.File("test_file.h5", "r+") as f:
        # set all values in the second row to zero
        f["keys/key_1"][1, :, :, :] = 0

    start = time.monotonic()
    with h5py.File("test_file.h5", "r", swmr=True) as f:
        kf = KeyFollower(f, ["keys"], timeout=1)
        for key in kf:
            print(key)
    elapsed = time.monotonic() - start
    assert capsys.readouterr().out == "0\n1\n2\n3\n"
    assert 0.9 <= elapsed < 2.0
    assert not kf.finished


def test_next_and_a_single_path_string(seed_file: Path) -> None:
    # 001 shows next(kf) printing 1..8: a documented mistake; indices are 0-based
    with h5py.File("test_file.h5", "r", swmr=True) as f:
        kf = KeyFollower(f, "keys")
        assert [next(kf) for _ in range(8)] == list(range(8))
        with pytest.raises(StopIteration):
            next(kf)
        kf.reset()
        assert list(kf) == list(range(8))


async def test_async_for_over_the_seed_keys(seed_file: Path) -> None:
    with h5py.File("test_file.h5", "r", swmr=True) as f:
        kf = KeyFollower(f, ["/keys"])
        assert [key async for key in kf] == list(range(8))


def test_two_key_datasets_complete_where_both_are_non_zero(tmp_path: Path) -> None:
    path = tmp_path / "two.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f["keys/a"] = np.array([1, 2, 3, 4, 5, 0])
        f["keys/b"] = np.array([1, 1, 0, 1, 1, 1])
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        kf = KeyFollower(f, ["/keys"], timeout=0.1)
        assert kf.poll() == 2
        assert list(kf) == [0, 1]
        kf2 = KeyFollower(f, ["/keys/a"], timeout=0.1)
        assert kf2.poll() == 5
