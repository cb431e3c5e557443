"""The seed documents' examples (swmr_tools, multitables) run on the compat modules.

Only the import lines differ from the documents; the 1-based ``next()``
example of the swmr_tools tutorial is the documented exception (indices are
0-based, as swmr_tools itself counts).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from swmr_roi_ioc.compat import multitables
from swmr_roi_ioc.compat.swmr_tools import KeyFollower
from swmr_roi_ioc.compat.swmr_tools.KeyFollower import Follower


@pytest.fixture
def seed_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    complete_key_array = np.arange(8).reshape(2, 4, 1, 1) + 1
    with h5py.File("test_file.h5", "w", libver="latest") as f:
        f.create_group("keys")
        f["/keys"].create_dataset("key_1", data=complete_key_array)
    return tmp_path / "test_file.h5"


def test_000_key_follower_for_loop(seed_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with h5py.File("test_file.h5", "r", swmr=True) as f:
        kf = KeyFollower(f, ["/keys"])
        for key in kf:
            print(key)
    assert capsys.readouterr().out == "0\n1\n2\n3\n4\n5\n6\n7\n"


def test_001_follower_module_and_zero_row_timeout(
    seed_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with h5py.File("test_file.h5", "r", swmr=True) as f:
        kf = Follower(f, ["keys"])
        for key in kf:
            print(key)
    assert capsys.readouterr().out == "0\n1\n2\n3\n4\n5\n6\n7\n"

    with h5py.File("test_file.h5", "r+") as f:
        # set all values in the second row to zero
        f["keys/key_1"][1, :, :, :] = 0

    start = time.monotonic()
    with h5py.File("test_file.h5", "r", swmr=True) as f:
        kf = Follower(f, ["keys"], timeout=1)
        for key in kf:
            print(key)
    elapsed = time.monotonic() - start
    assert capsys.readouterr().out == "0\n1\n2\n3\n"
    assert 0.9 <= elapsed < 3.0
    assert kf.timed_out and not kf.finished_set


def test_001_single_path_string_and_0_based_next(seed_file: Path) -> None:
    # the document opens with swmr_mode=True, which h5py does not accept: swmr=True
    with h5py.File("test_file.h5", "r", swmr=True) as f:
        kf = Follower(f, "keys")
        # the document prints 1..8 here: indices are 0-based (documented difference)
        assert [next(kf) for _ in range(8)] == list(range(8))


@pytest.fixture
def stream_file(tmp_path: Path) -> tuple[str, np.ndarray]:
    path = str(tmp_path / "stream.h5")
    data = np.arange(100 * 4 * 3, dtype=np.int32).reshape(100, 4, 3)
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=data, chunks=(8, 4, 3))
    return path, data


def test_002_streamer_examples(stream_file: tuple[str, np.ndarray]) -> None:
    path, data = stream_file
    seen: list[np.ndarray] = []

    def do_something(block: np.ndarray) -> None:
        seen.append(block.copy())

    stream = multitables.Streamer(filename=path)
    queue = stream.get_queue(
        path="/data", n_procs=4, read_ahead=5, cyclic=False, block_size=32, ordered=False
    )
    while True:
        guard = queue.get()
        if guard is multitables.QueueClosed:
            break
        with guard as block:
            do_something(block)
    for guard in queue.iter():  # the stream has ended: nothing more
        with guard as block:
            do_something(block)
    last_block = stream.get_remainder("/data", queue.block_size)
    queue.close()
    assert len(seen) == 3 and all(len(b) == 32 for b in seen)
    got = np.concatenate(sorted(seen, key=lambda b: int(b.flat[0])) + [last_block])
    np.testing.assert_array_equal(got, data)

    queue = stream.get_queue(path="/data", n_procs=2, read_ahead=5, cyclic=True)
    blocks = []
    for _ in range(30):
        with queue.get() as block:
            blocks.append(block.copy())
    queue.close()
    flat = np.concatenate(blocks)
    np.testing.assert_array_equal(flat, data[np.arange(len(flat)) % len(data)])

    gen = stream.get_generator("/data", 4, 9, False, 32)
    rows = list(gen)
    np.testing.assert_array_equal(sorted(rows, key=lambda r: int(r.flat[0])), data)


def test_002_reader_examples(stream_file: tuple[str, np.ndarray]) -> None:
    path, data = stream_file
    reader = multitables.Reader(filename=path)
    assert len(reader.pids) == 4
    dataset = reader.get_dataset(path="/data")
    stage = dataset.create_stage(shape=10)
    req = dataset[30:35]
    future = reader.request(req, stage)
    got = future.get()  # the document names the future "request" here
    np.testing.assert_array_equal(got, data[30:35])
    direct = future.get_direct(lambda d: d.sum())
    assert direct == data[30:35].sum()
    with future.get_unsafe() as view:
        np.testing.assert_array_equal(view, data[30:35])
    view = None

    stage_pool = dataset.create_stage_pool(1, 10)
    reqs = multitables.RequestPool()
    table_len = dataset.shape[0]

    def loader() -> None:
        for idx in range(table_len):
            reqs.add(reader.request(dataset[idx : idx + 1], stage_pool))

    loader_thread = threading.Thread(target=loader)
    loader_thread.start()
    rows = [reqs.next().get() for _ in range(table_len)]
    loader_thread.join()
    np.testing.assert_array_equal(np.concatenate(rows), data)
    reader.close(wait=True)
