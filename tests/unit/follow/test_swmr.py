"""Opening files under construction, transient errors, one Dataset per object."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import h5py.h5o as h5o
import numpy as np
import pytest

from swmr_roi_ioc.follow import (
    FollowError,
    KeyFollower,
    NotSwmrError,
    SwmrOpenError,
    is_transient,
    open_swmr,
    shared_dataset,
)
from swmr_roi_ioc.follow._swmr import METADATA_READ_ATTEMPTS, metadata_read_attempts


def _small_file(path: Path, frames: int = 5) -> None:
    with h5py.File(path, "w", libver="latest") as f:
        d = f.create_dataset(
            "d", shape=(frames, 4, 4), maxshape=(None, 4, 4), chunks=(1, 4, 4), dtype=np.uint16
        )
        for i in range(frames):
            d[i] = i + 1
        f["/entry/data/data"] = h5py.SoftLink("/d")


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (
            BlockingIOError(
                11,
                "Unable to synchronously open file (unable to lock file, "
                "errno = 11, error message = 'Resource temporarily unavailable')",
            ),
            True,
        ),
        (OSError("Unable to synchronously open file (file signature not found)"), True),
        (OSError("Unable to open file (truncated file: eof = 60, stored_eof = 2088)"), True),
        (
            OSError(
                "Unable to synchronously open file (file is already open for write "
                "(may use <h5clear file> to clear file consistency flags))"
            ),
            True,
        ),
        (
            OSError(
                "Unable to synchronously open file (file is not already open for SWMR writing)"
            ),
            True,
        ),
        (OSError("Can't read data (incorrect metadata checksum after all read attempts)"), True),
        (OSError("Unable to open file (open for writing but not in SWMR mode (...))"), True),
        (FileNotFoundError(2, "Unable to synchronously open file (No such file)"), False),
        (PermissionError(13, "Permission denied"), False),
        (OSError("Unable to synchronously open file (not a directory)"), False),
        (KeyError("x"), False),
        (ValueError("file signature not found"), False),
    ],
)
def test_is_transient(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_open_swmr_reads_and_wraps_errors(tmp_path: Path) -> None:
    path = tmp_path / "ok.h5"
    _small_file(path)
    with open_swmr(path, rdcc_nbytes=2**20) as f:
        assert f.swmr_mode
        assert f["d"].shape == (5, 4, 4)
    start = time.monotonic()
    with pytest.raises(SwmrOpenError) as info:
        open_swmr(tmp_path / "missing.h5", retries=5)
    assert time.monotonic() - start < 0.2  # a missing file is not retried
    assert isinstance(info.value, OSError) and isinstance(info.value, FollowError)
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert not is_transient(info.value)


def test_truncated_closed_file_fails_fast_instead_of_hanging(tmp_path: Path) -> None:
    """In SWMR-read mode HDF5 would retry for many minutes on this file."""
    path = tmp_path / "cut.h5"
    _small_file(path)
    (tmp_path / "cut60.h5").write_bytes(path.read_bytes()[:60])
    (tmp_path / "empty.h5").write_bytes(b"")
    start = time.monotonic()
    for name in ("cut60.h5", "empty.h5"):
        with pytest.raises(SwmrOpenError) as info:
            open_swmr(tmp_path / name, retries=2, backoff=0.01)
        assert is_transient(info.value)
    assert time.monotonic() - start < 2


_LOCKER = """
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "w", libver="latest")
f.create_dataset("d", shape=(0,), maxshape=(None,), dtype=np.int32)
f.flush()
print("open", flush=True)
sys.stdin.readline()
f.swmr_mode = True
print("swmr", flush=True)
sys.stdin.read()
"""


def test_open_swmr_retries_until_the_writer_starts_swmr(tmp_path: Path) -> None:
    path = tmp_path / "locked.h5"
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOCKER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "open"
        with pytest.raises(SwmrOpenError) as info:
            open_swmr(path)  # writer not in SWMR mode yet: locked
        assert is_transient(info.value)
        proc.stdin.write("\n")
        proc.stdin.flush()
        with open_swmr(path, retries=40, backoff=0.01) as f:
            assert "d" in f
        assert proc.stdout.readline().strip() == "swmr"
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
        proc.stdout.close()


def test_hdf5_breaks_a_dataset_open_twice_and_refreshed(tmp_path: Path) -> None:
    """Why shared_dataset exists (HDF5 2.0.0 / h5py 3.16): if this starts to
    fail, upstream fixed it and shared_dataset is a mere optimisation."""
    path = tmp_path / "twice.h5"
    _small_file(path)
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        a, b = f["d"], f["d"]
        a.refresh()
        firsts = [int(a[i][0, 0]) for i in range(5)]
        del b
    if h5py.version.hdf5_version_tuple[:2] != (2, 0):
        pytest.skip("checked on HDF5 2.0 only")
    assert firsts == [1, 1, 1, 1, 1]  # wrong: should be [1, 2, 3, 4, 5]


def test_shared_dataset_is_one_object_per_hdf5_object(tmp_path: Path) -> None:
    path = tmp_path / "shared.h5"
    _small_file(path)
    with open_swmr(path) as f:
        d = shared_dataset(f, "/d")
        assert shared_dataset(f, "d") is d
        assert shared_dataset(f, "/entry/data/data") is d  # another name, same object
        kf = KeyFollower(f, [], dataset_paths=["/entry/data/data"], timeout=0.05)
        assert kf.poll() == 5
        d.refresh()
        assert [int(d[i][0, 0]) for i in range(5)] == [1, 2, 3, 4, 5]
        with pytest.raises(KeyError):
            shared_dataset(f, "/nope")
        with pytest.raises(TypeError):
            shared_dataset(f, "/entry")


def _late_object_file(path: Path) -> int:
    """The group "late" is written last; its object header is not read at open.
    Returns a length that cuts the file inside that header (signature kept)."""
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("d", data=np.ones((32, 128, 128), np.uint32), chunks=(1, 128, 128))
        f.create_dataset("late/x", data=np.arange(10))
        return int(h5o.get_info(f.id, b"late").addr) + 8


_DEFAULT_ATTEMPTS = """
import os, sys, h5py
f = h5py.File(sys.argv[1], "r", libver="latest", swmr=True)
os.truncate(sys.argv[1], int(sys.argv[2]))
try:
    f["late/x"]
except Exception:
    pass
print("returned", flush=True)
"""


def test_truncated_file_fails_fast_once_open(tmp_path: Path) -> None:
    """A file cut while open: HDF5 retries each metadata read whose checksum
    fails with a doubling sleep, 100 times by default (a read was still
    blocked after 10 min here). open_swmr lowers the attempts, so the read
    fails in well under a second."""
    path = tmp_path / "late.h5"
    cut = _late_object_file(path)
    with open_swmr(path) as f:
        assert metadata_read_attempts(f) == METADATA_READ_ATTEMPTS
        os.truncate(path, cut)
        start = time.monotonic()
        with pytest.raises((KeyError, OSError, RuntimeError), match="checksum"):
            f["late/x"]
        assert time.monotonic() - start < 2.0
    # h5py's defaults on the same cut: still blocked after 5 s
    _late_object_file(path)
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(
            [sys.executable, "-c", _DEFAULT_ATTEMPTS, str(path), str(cut)],
            capture_output=True,
            timeout=5,
            check=False,
        )


_NOT_SWMR_WRITER = """
import sys, h5py, numpy as np
libver = None if sys.argv[2] == "default" else sys.argv[2]
f = h5py.File(sys.argv[1], "w", libver=libver)
f.create_dataset("d", data=np.ones((3, 4, 4)), maxshape=(None, 4, 4), chunks=(1, 4, 4))
f.flush()
print("open", flush=True)
sys.stdin.readline()
f.close()
"""


@pytest.mark.parametrize("libver", ["default", "latest"])
def test_file_open_without_swmr_is_refused_until_closed(tmp_path: Path, libver: str) -> None:
    path = tmp_path / f"noswmr_{libver}.h5"
    proc = subprocess.Popen(
        [sys.executable, "-c", _NOT_SWMR_WRITER, str(path), libver],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "open"
        with pytest.raises(NotSwmrError, match="not in SWMR mode") as info:
            open_swmr(path)
        assert is_transient(info.value)  # a SWMR writer is like this briefly
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=10) == 0
        with open_swmr(path) as f:  # closed: read whole
            assert f["d"].shape == (3, 4, 4)
    finally:
        proc.stdin.close()
        proc.stdout.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


_RECREATE = """
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w", libver="latest") as f:  # H5F_ACC_TRUNC, HDF5's locking on
    f.create_dataset("d", data=np.full((2, 4, 4), 9, np.uint16))
"""


def test_open_reader_does_not_stop_a_writer_recreating_the_file(tmp_path: Path) -> None:
    """A writer in another process (file locking on, as NDFileHDF5) recreates
    the path while our reader has it open: it must succeed."""
    path = tmp_path / "f.h5"
    _small_file(path)
    with open_swmr(path) as f:
        assert f["d"].shape == (5, 4, 4)
        done = subprocess.run(
            [sys.executable, "-c", _RECREATE, str(path)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    with h5py.File(path, "r") as f:
        assert f["d"].shape == (2, 4, 4)
