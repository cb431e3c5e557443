"""The compiled one-pass kernel for integer frames: bit for bit the numbers of
the line-by-line NDPluginROIStat port, and of the numpy path, for any ROIs
(clamped, overlapping, background borders counted twice), any integer dtype
and layout; it releases the GIL, and finds a cache directory when the
package directory is read-only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import swmr_roi_ioc
from swmr_roi_ioc.stats import FrameStats, Roi, _kernel, _numba_cache, _roi, compute_stats

from .test_stats_roi import check_against_naive, rois

INTEGER_DTYPES = [
    np.dtype(t)
    for t in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64)
]


@st.composite
def integer_batches(draw: st.DrawFn, max_side: int = 12) -> np.ndarray:
    dtype = draw(st.sampled_from(INTEGER_DTYPES))
    shape = (
        draw(st.integers(1, 3)),
        draw(st.integers(1, max_side)),
        draw(st.integers(1, max_side)),
    )
    info = np.iinfo(dtype.name)
    # 64-bit frames: values whose sums a double (the C++ port) holds exactly
    low, high = max(int(info.min), -(2**40)), min(int(info.max), 2**40)
    extremes = st.sampled_from([low, high, 0])
    elements = st.one_of(st.integers(low, high), extremes)
    return draw(hnp.arrays(dtype, shape, elements=elements))


def _fields(stats: FrameStats) -> list[bytes]:
    return [getattr(stats, k).tobytes() for k in ("total", "net", "min", "max", "mean")]


def _numpy(frames: np.ndarray, roi_list: list[Roi]) -> tuple[list[FrameStats], FrameStats]:
    with mock.patch.object(_roi, "USE_KERNEL", False):
        return compute_stats(frames, roi_list)


def _narrow_bands(rows: int) -> Any:
    """Cut the kernel's bands at ``rows`` rows (normally 257 for uint8)."""
    return mock.patch.object(
        _kernel,
        "_NARROW",
        {np.dtype(np.uint8): (np.uint16, rows), np.dtype(np.uint16): (np.uint32, rows)},
    )


@settings(max_examples=300, deadline=None)
@given(
    frames=integer_batches(),
    roi_list=st.lists(rois(), max_size=70),
    rows=st.sampled_from([1, 2, 3, 257]),
)
def test_kernel_matches_the_port_and_numpy(
    frames: np.ndarray, roi_list: list[Roi], rows: int
) -> None:
    with _narrow_bands(rows):
        per_roi, whole = compute_stats(frames, roi_list)
    want_rois, want_whole = _numpy(frames, roi_list)
    for roi, got, want in zip(roi_list, per_roi, want_rois, strict=True):
        check_against_naive(frames, roi, got)
        assert _fields(got) == _fields(want)
    assert _fields(whole) == _fields(want_whole)
    check_against_naive(frames, Roi(0, 0, frames.shape[2], frames.shape[1]), whole)


@settings(max_examples=40, deadline=None)
@given(
    frames=hnp.arrays(
        st.sampled_from([np.dtype(np.uint8), np.dtype(np.uint16)]),
        st.tuples(st.integers(1, 2), st.integers(250, 600), st.integers(1, 70)),
    ),
    roi_list=st.lists(
        st.builds(
            Roi,
            st.integers(0, 60),
            st.integers(0, 600),
            st.integers(1, 70),
            st.integers(1, 600),
            st.integers(0, 300),
        ),
        max_size=8,
    ),  # fmt: skip
)
def test_kernel_on_tall_frames_cut_into_bands(frames: np.ndarray, roi_list: list[Roi]) -> None:
    """Frames taller than one uint16 column accumulator's 257 rows."""
    per_roi, whole = compute_stats(frames, roi_list)
    want_rois, want_whole = _numpy(frames, roi_list)
    for got, want in zip([*per_roi, whole], [*want_rois, want_whole], strict=True):
        assert _fields(got) == _fields(want)


def test_saturated_frames_and_full_range() -> None:
    rois_ = [Roi(0, 0, 600, 300, 40), Roi(-5, 250, 10_000, 10_000, 3), Roi(7, 9, 1, 1)]
    for dtype in ("uint8", "uint16", "int16", "uint32"):
        info = np.iinfo(dtype)
        saturated = np.full((2, 600, 700), info.max, dtype=dtype)
        lowest = np.full((1, 600, 700), info.min, dtype=dtype)
        for frames in (saturated, lowest):
            per_roi, whole = compute_stats(frames, rois_)
            want_rois, want_whole = _numpy(frames, rois_)
            for got, want in zip([*per_roi, whole], [*want_rois, want_whole], strict=True):
                assert _fields(got) == _fields(want)
        assert per_roi[0].total[0] == float(info.min) * 600 * 300


def test_big_endian_and_strided_frames() -> None:
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 65536, (3, 50, 60), dtype=np.uint16)
    rois_ = [Roi(3, 4, 20, 30, 2), Roi(40, 10, 30, 30)]
    want_rois, want_whole = _numpy(frames, rois_)
    for variant in (frames.astype(">u2"), frames[:, ::1, :].copy(order="F"), frames[::1]):
        per_roi, whole = compute_stats(variant, rois_)
        for got, want in zip([*per_roi, whole], [*want_rois, want_whole], strict=True):
            assert _fields(got) == _fields(want)
    strided = frames[:, ::2, 1::3]
    per_roi, whole = compute_stats(strided, rois_)
    want = _numpy(np.ascontiguousarray(strided), rois_)
    for got, expected in zip([*per_roi, whole], [*want[0], want[1]], strict=True):
        assert _fields(got) == _fields(expected)


def test_float_frames_keep_numpy() -> None:
    frames = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6)
    with mock.patch.object(_kernel, "kernel_stats", side_effect=AssertionError("kernel used")):
        compute_stats(frames, [Roi(1, 1, 3, 3, 1)])
        with pytest.raises(AssertionError, match="kernel used"):
            compute_stats(frames.astype(np.uint16), [Roi(1, 1, 3, 3, 1)])


def test_kernel_releases_the_gil_and_is_cached() -> None:
    assert _kernel._kernel.targetoptions["nogil"] is True
    assert type(_kernel._kernel._cache).__name__ == "FunctionCache"  # not NullCache


# -- where numba caches ------------------------------------------------------


def test_cache_dir_left_alone_when_set_or_writable(tmp_path: Path) -> None:
    assert _numba_cache.choose_cache_dir({"NUMBA_CACHE_DIR": "/x"}, tmp_path) is None
    assert _numba_cache.choose_cache_dir({}, tmp_path) is None  # __pycache__ can be made


def test_cache_dir_when_the_package_is_read_only(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")  # __pycache__ cannot be made under a file
    xdg = tmp_path / "xdg"
    chosen = _numba_cache.choose_cache_dir({"XDG_CACHE_HOME": str(xdg)}, blocker)
    assert chosen == str(xdg / "swmr-roi-ioc" / "numba")
    chosen = _numba_cache.choose_cache_dir({"XDG_CACHE_HOME": str(blocker / "x")}, blocker)
    assert chosen is not None and Path(chosen).parent == Path(_numba_cache.tempfile.gettempdir())


def test_import_and_compute_from_a_read_only_install(tmp_path: Path) -> None:
    """The package where no __pycache__ can be made and HOME is unusable (a
    service account): numba alone refuses to decorate the kernel; with the
    fallback it compiles and caches in the temporary directory."""
    package = tmp_path / "site" / "swmr_roi_ioc"
    shutil.copytree(Path(swmr_roi_ioc.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    (package / "stats" / "__pycache__").write_text("read-only install")
    home = tmp_path / "home-is-a-file"
    home.write_text("")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "XDG_"))}
    env.update(PYTHONPATH=str(package.parent), HOME=str(home), TMPDIR=str(tmp),
               PYTHONDONTWRITEBYTECODE="1")  # fmt: skip
    script = textwrap.dedent(f"""
        import numpy as np, swmr_roi_ioc.stats as s
        assert s.__file__.startswith({str(package)!r}), s.__file__
        _, whole = s.compute_stats(np.full((1, 4, 5), 3, np.uint8), [])
        print(whole.total[0])
    """)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["60.0"]
    cached = list((tmp / f"swmr-roi-ioc-numba-{os.getuid()}").rglob("*.nbi"))
    assert cached, "nothing cached"
