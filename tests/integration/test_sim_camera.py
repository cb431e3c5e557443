"""The simulated dcam (ADAravis + NDFileHDF5 over CA), driven by real clients.

ophyd-async's AravisDetector under a bluesky RunEngine, nothing patched, and
plain aioca puts for what ophyd-async does not exercise (NumCapture,
FileNumber in the template, SWMR reading while capturing, errors). The
camera runs in its own process; the file is checked with h5py and numpy.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from aioca import DBR_CHAR, DBR_CHAR_STR, DBR_ENUM, DBR_LONG, FORMAT_CTRL, caget, caput
from bluesky import RunEngine
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from bluesky import preprocessors as bpp
from bluesky.run_engine import call_in_bluesky_event_loop
from ophyd_async.core import (
    AutoIncrementFilenameProvider,
    StaticFilenameProvider,
    StaticPathProvider,
    TriggerInfo,
    init_devices,
)
from ophyd_async.epics.adaravis import AravisDetector
from ophyd_async.epics.adcore import ADWriterFactory

from swmr_roi_ioc.sim import camera_frame_options, frame_pattern
from tests.conftest import epics_bin, epics_run_env

pytestmark = [pytest.mark.integration]

OPTIONS = camera_frame_options()  # what run_sim_camera uses by default
UNIQUE_ID = "/entry/instrument/NDAttributes/NDArrayUniqueId"


def _read_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(frames (n, H, W), NDArrayUniqueId (n,)) of a closed NDFileHDF5 file."""
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        data = f["/entry/data/data"]
        ids = f[UNIQUE_ID]
        assert isinstance(data, h5py.Dataset) and isinstance(ids, h5py.Dataset)
        return data[()], ids[()].ravel()


def _assert_frames(path: Path, first_id: int, count: int) -> None:
    frames, ids = _read_file(path)
    np.testing.assert_array_equal(ids, np.arange(first_id, first_id + count))
    assert frames.shape == (count, *OPTIONS.shape)
    assert frames.dtype == np.dtype(OPTIONS.dtype)
    for frame, unique_id in zip(frames, ids, strict=True):
        np.testing.assert_array_equal(frame, frame_pattern(int(unique_id) - 1, OPTIONS))


def _count(RE: RunEngine, det: AravisDetector, num: int) -> list[tuple[str, dict[str, Any]]]:  # noqa: N803
    docs: list[tuple[str, dict[str, Any]]] = []
    token = RE.subscribe(lambda name, doc: docs.append((name, doc)))
    try:
        result = RE(bp.count([det], num=num))
    finally:
        RE.unsubscribe(token)
    assert result.exit_status == "success", result
    return docs


def _stream_docs(docs: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, Any], list[Any]]:
    resources = [doc for name, doc in docs if name == "stream_resource"]
    data = [doc for doc in resources if doc["data_key"] == "det"]
    assert len(data) == 1, resources
    datums = [doc for name, doc in docs if name == "stream_datum"]
    assert {d["stream_resource"] for d in datums} == {data[0]["uid"]}
    return data[0], datums


def test_count_writes_an_adcore_file_ophyd_async_describes(
    camera: tuple[str, Path],
    RE: RunEngine,  # noqa: N803
) -> None:
    prefix, data = camera
    path_provider = StaticPathProvider(StaticFilenameProvider("scan"), data)
    with init_devices(timeout=30):
        det = AravisDetector(prefix, ADWriterFactory.hdf(path_provider))

    docs = _count(RE, det, 20)

    h5 = data / "scan.h5"
    _assert_frames(h5, 1, 20)
    resource, datums = _stream_docs(docs)
    assert resource["uri"] == f"file://localhost{h5}"
    assert resource["mimetype"] == "application/x-hdf5"
    assert resource["parameters"]["dataset"] == "/entry/data/data"
    assert resource["parameters"]["chunk_shape"] == (1, *OPTIONS.shape)
    indices = [(d["indices"]["start"], d["indices"]["stop"]) for d in datums]
    assert indices == [(i, i + 1) for i in range(20)]
    descriptor = next(doc for name, doc in docs if name == "descriptor")
    assert descriptor["data_keys"]["det"]["shape"] == [1, *OPTIONS.shape]
    assert descriptor["data_keys"]["det"]["dtype_numpy"] == np.dtype(OPTIONS.dtype).str

    hdf = det.hdf
    assert call_in_bluesky_event_loop(hdf.num_captured.get_value(), timeout=10) == 20
    assert call_in_bluesky_event_loop(hdf.capture.get_value(), timeout=10) is False
    assert call_in_bluesky_event_loop(hdf.full_file_name.get_value(), timeout=10) == str(h5)


def test_two_counts_write_two_files(
    camera: tuple[str, Path],
    RE: RunEngine,  # noqa: N803
) -> None:
    prefix, data = camera
    path_provider = StaticPathProvider(AutoIncrementFilenameProvider("scan"), data)
    with init_devices(timeout=30):
        det = AravisDetector(prefix, ADWriterFactory.hdf(path_provider))

    uris = []
    for _ in range(2):
        resource, datums = _stream_docs(_count(RE, det, 10))
        uris.append(resource["uri"])
        assert len(datums) == 10
        # ophyd-async sets FileNumber 0 at prepare; AutoIncrement makes it 1 at close
        assert call_in_bluesky_event_loop(det.hdf.file_number.get_value(), timeout=10) == 1

    first, second = data / "scan_00000.h5", data / "scan_00001.h5"
    assert uris == [f"file://localhost{first}", f"file://localhost{second}"]
    _assert_frames(first, 1, 10)
    _assert_frames(second, 11, 10)  # the driver's ArrayCounter runs on


def test_fly_scan_prepare_kickoff_complete(
    camera: tuple[str, Path],
    RE: RunEngine,  # noqa: N803
) -> None:
    prefix, data = camera
    path_provider = StaticPathProvider(StaticFilenameProvider("fly"), data)
    with init_devices(timeout=30):
        det = AravisDetector(prefix, ADWriterFactory.hdf(path_provider))
    info = TriggerInfo(number_of_events=30, livetime=0.004, deadtime=0.006)

    @bpp.stage_decorator([det])
    @bpp.run_decorator()
    def fly() -> Any:
        yield from bps.prepare(det, info, wait=True)
        yield from bps.declare_stream(det, name="primary", collect=True)
        yield from bps.kickoff(det, wait=True)
        yield from bps.collect_while_completing(flyers=[det], dets=[det], flush_period=0.1)

    docs: list[tuple[str, dict[str, Any]]] = []
    token = RE.subscribe(lambda name, doc: docs.append((name, doc)))
    try:
        assert RE(fly()).exit_status == "success"
    finally:
        RE.unsubscribe(token)

    _assert_frames(data / "fly.h5", 1, 30)
    _, datums = _stream_docs(docs)
    assert datums[0]["indices"]["start"] == 0 and datums[-1]["indices"]["stop"] == 30
    driver = det.driver
    assert call_in_bluesky_event_loop(driver.acquire_time.get_value(), timeout=10) == 0.004
    assert call_in_bluesky_event_loop(driver.acquire_period.get_value(), timeout=10) == 0.01
    assert call_in_bluesky_event_loop(driver.num_images.get_value(), timeout=10) == 30


async def _stop(pv: str) -> None:
    """A put of 0 to a busy record whose put of 1 (with callback) is pending here.

    Without callback, as ophyd-async's ``stop_busy_record`` (``wait=non_zero``):
    an EPICS IOC queues a channel's put callbacks one behind the other, so a
    stop with callback on the channel of the pending start would wait for it.
    """
    await caput(pv, 0, wait=False)
    await _wait_for(pv, 0)


async def _wait_for(pv: str, expected: Any, timeout: float = 20.0, **kw: Any) -> Any:
    deadline = time.monotonic() + timeout
    value: Any = None
    while time.monotonic() < deadline:
        try:
            value = await caget(pv, timeout=2.0, **kw)
        except Exception:  # noqa: BLE001 - not serving yet
            value = None
        if value == expected:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"{pv} never became {expected!r}; last {value!r}")


async def test_stream_capture_over_ca_numcapture_filenumber_swmr(
    camera: tuple[str, Path], aioca_cleanup: None
) -> None:
    prefix, data = camera
    cam, hdf = f"{prefix}cam1:", f"{prefix}HDF1:"
    await _wait_for(f"{hdf}PortName_RBV", "HDF1")
    await caput(f"{hdf}FileTemplate", "%s%s_%6.6d.h5", datatype=DBR_CHAR_STR, wait=True)
    await caput(f"{hdf}FileName", "live", datatype=DBR_CHAR_STR, wait=True)
    for name, value in [
        ("FileNumber", 7),
        ("NumCapture", 15),
        ("LazyOpen", "Yes"),
        ("ArrayCounter", 0),
        ("AcquirePeriod", 0.05),
        ("ImageMode", "Continuous"),
    ]:
        pv = f"{hdf}{name}" if name in ("FileNumber", "NumCapture", "LazyOpen") else f"{cam}{name}"
        await caput(pv, value, wait=True)

    for number in (7, 8):
        capture = asyncio.create_task(caput(f"{hdf}Capture", 1, wait=True, timeout=30))
        await _wait_for(f"{hdf}Capture_RBV", 1)
        if number == 7:
            acquire = asyncio.create_task(caput(f"{cam}Acquire", 1, wait=True, timeout=60))
        # the file is readable while it is written (SWMR), frames complete as they come
        await _wait_for(f"{hdf}SWMRActive_RBV", 1)
        name = await caget(f"{hdf}FullFileName_RBV", datatype=DBR_CHAR_STR)
        assert name == f"{data}/live_{number:06d}.h5"
        with h5py.File(name, "r", libver="latest", swmr=True) as f:
            dset = f["/entry/data/data"]
            assert isinstance(dset, h5py.Dataset)
            while dset.shape[0] < 3:
                await asyncio.sleep(0.02)
                dset.refresh()
            assert not capture.done()
        await asyncio.wait_for(capture, 30)  # busy: completes at NumCapture
        assert await caget(f"{hdf}NumCaptured_RBV") == 15
        assert await caget(f"{hdf}Capture") == 0
        assert await caget(f"{hdf}SWMRActive_RBV") == 0
        assert await caget(f"{hdf}FileNumber") == number + 1
        assert await caget(f"{hdf}SWMRCbCounter_RBV") >= 15
        frames, ids = _read_file(Path(name))
        assert len(ids) == 15 and list(np.diff(ids)) == [1] * 14
        with h5py.File(name, "r") as f:
            stamps = f["/entry/instrument/NDAttributes/NDArrayTimeStamp"][()].ravel()
        assert float(np.median(np.diff(stamps))) == pytest.approx(0.05, rel=0.2)  # AcquirePeriod
        for frame, unique_id in zip(frames, ids, strict=True):
            np.testing.assert_array_equal(frame, frame_pattern(int(unique_id) - 1, OPTIONS))

    assert await caget(f"{cam}Acquire_RBV") == 1  # Continuous: still acquiring
    await _stop(f"{cam}Acquire")
    await asyncio.wait_for(acquire, 10)
    assert await caget(f"{cam}DetectorState_RBV", datatype=str) == "Idle"


async def test_missing_directory_is_a_write_error(
    camera: tuple[str, Path], aioca_cleanup: None
) -> None:
    prefix, data = camera
    hdf = f"{prefix}HDF1:"
    await _wait_for(f"{hdf}FilePathExists_RBV", 1)
    missing = data / "not" / "there"
    await caput(f"{hdf}FilePath", str(missing), datatype=DBR_CHAR_STR, wait=True)
    assert await caget(f"{hdf}FilePath_RBV", datatype=DBR_CHAR_STR) == f"{missing}/"
    assert await caget(f"{hdf}FilePathExists_RBV") == 0
    await caput(f"{hdf}LazyOpen", "Yes", wait=True)
    await caput(f"{hdf}Capture", 1, wait=False)
    await _wait_for(f"{hdf}Capture_RBV", 1)
    await caput(f"{prefix}cam1:Acquire", 1, wait=True, timeout=10)  # one frame (Multiple, 1)
    await _wait_for(f"{hdf}WriteStatus", 1)
    assert "does not exist" in await caget(f"{hdf}WriteMessage", datatype=DBR_CHAR_STR)
    await _wait_for(f"{hdf}Capture_RBV", 0)
    assert not missing.exists()

    # CreateDirectory -2: the last two components may be created
    await caput(f"{hdf}CreateDirectory", -2, wait=True)
    await caput(f"{hdf}FilePath", str(missing), datatype=DBR_CHAR_STR, wait=True)
    assert await caget(f"{hdf}FilePathExists_RBV") == 1
    assert missing.is_dir()


async def test_trigger_mode_on_waits_until_acquire_is_stopped(
    camera: tuple[str, Path], aioca_cleanup: None
) -> None:
    prefix, _ = camera
    cam = f"{prefix}cam1:"
    await _wait_for(f"{cam}DetectorState_RBV", "Idle", datatype=str)
    await caput(f"{cam}TriggerMode", "On", wait=True)
    acquire = asyncio.create_task(caput(f"{cam}Acquire", 1, wait=True, timeout=30))
    await _wait_for(f"{cam}DetectorState_RBV", "Waiting", datatype=str)
    await asyncio.sleep(0.3)
    assert await caget(f"{cam}ArrayCounter_RBV") == 0  # no trigger, no frame
    assert not acquire.done()
    await _stop(f"{cam}Acquire")
    await asyncio.wait_for(acquire, 10)
    assert await caget(f"{cam}DetectorState_RBV", datatype=str) == "Idle"
    assert await caget(f"{cam}Acquire_RBV") == 0
    assert await caget(f"{cam}Acquire") == 0


async def _capture_frames(cam: str, hdf: str) -> None:
    """One Stream capture of NumImages frames: Capture=1, Acquire=1, both complete."""
    capture = asyncio.create_task(caput(f"{hdf}Capture", 1, wait=True, timeout=30))
    await _wait_for(f"{hdf}Capture_RBV", 1)
    await caput(f"{cam}Acquire", 1, wait=True, timeout=30)
    await asyncio.wait_for(capture, 30)
    assert await caget(f"{hdf}Capture_RBV") == 0


async def test_autoincrement_off_recreates_the_same_path_and_a_locking_reader_blocks_it(
    camera: tuple[str, Path], aioca_cleanup: None
) -> None:
    """NDFileHDF5 with AutoIncrement off: every capture creates the same path again
    (H5F_ACC_TRUNC) with HDF5's default file locking, so a reader holding the file
    open with locking makes the capture fail (and loses the file), one opened with
    locking=False does not."""
    assert "HDF5_USE_FILE_LOCKING" not in os.environ, "the test needs HDF5's default locking"
    prefix, data = camera
    cam, hdf = f"{prefix}cam1:", f"{prefix}HDF1:"
    await _wait_for(f"{hdf}PortName_RBV", "HDF1")
    await caput(f"{hdf}FileTemplate", "%s%s.h5", datatype=DBR_CHAR_STR, wait=True)
    await caput(f"{hdf}FileName", "same", datatype=DBR_CHAR_STR, wait=True)
    for pv, value in [
        (f"{hdf}AutoIncrement", "No"),
        (f"{hdf}LazyOpen", "Yes"),
        (f"{hdf}NumCapture", 3),
        (f"{cam}ImageMode", "Multiple"),
        (f"{cam}NumImages", 3),
    ]:
        await caput(pv, value, wait=True)
    path = data / "same.h5"

    await _capture_frames(cam, hdf)
    _assert_frames(path, 1, 3)
    await _capture_frames(cam, hdf)  # the same name again, rewritten from scratch
    assert await caget(f"{hdf}FullFileName_RBV", datatype=DBR_CHAR_STR) == str(path)
    assert await caget(f"{hdf}FileNumber") == 0
    assert await caget(f"{hdf}WriteStatus") == 0
    _assert_frames(path, 4, 3)

    # a reader with locking=False does not stop it
    with h5py.File(path, "r", libver="latest", swmr=True, locking=False):
        await _capture_frames(cam, hdf)
        assert await caget(f"{hdf}WriteStatus") == 0, await caget(
            f"{hdf}WriteMessage", datatype=DBR_CHAR_STR
        )
    _assert_frames(path, 7, 3)

    # a reader with HDF5's default locking: the camera's create fails, after its
    # O_TRUNC has emptied the file (HDF5 locks once the file is open)
    with h5py.File(path, "r", libver="latest", swmr=True):
        await _capture_frames(cam, hdf)
        assert await caget(f"{hdf}WriteStatus") == 1
        message = await caget(f"{hdf}WriteMessage", datatype=DBR_CHAR_STR)
        assert "lock" in message and str(path) in message, message
    assert path.stat().st_size == 0


async def test_a_busy_capture_is_stopped_by_another_client_put_with_callback(
    camera: tuple[str, Path], aioca_cleanup: None
) -> None:
    """ADCore's busy record over real clients: aioca's put callback of Capture=1
    stays pending while capturing; EPICS base ``caput -c`` of 0 from another
    client completes at once and ends it, and then the first put completes."""
    prefix, _ = camera
    hdf = f"{prefix}HDF1:"
    await _wait_for(f"{hdf}PortName_RBV", "HDF1")
    await caput(f"{hdf}LazyOpen", "Yes", wait=True)
    start = asyncio.create_task(caput(f"{hdf}Capture", 1, wait=True, timeout=30))
    await _wait_for(f"{hdf}Capture_RBV", 1)
    await asyncio.sleep(0.5)
    assert not start.done()  # NumCapture 0: captures until stopped

    def caput_program(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(epics_bin("caput")), *args],
            env=epics_run_env(),
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )

    stop = await asyncio.to_thread(caput_program, "-c", "-w", "10", f"{hdf}Capture", "0")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert stop.stdout.split()[-1] == "Done", stop.stdout
    await asyncio.wait_for(start, 10)
    assert await caget(f"{hdf}Capture_RBV") == 0
    assert await caget(f"{hdf}Capture") == 0
    # the hidden record that holds the put callback is not for clients
    refused = await asyncio.to_thread(caput_program, "-w", "5", f"{hdf}Capture_Busy", "1")
    assert "write request failed" in refused.stdout + refused.stderr, refused


#: NDFileHDF5 PVs that clients (this project's plugin watcher, beamline scripts)
#: read beyond ophyd-async's device, with ADCore's record types:
#: (name, DBR type, element count, enum strings)
_PLUGIN_PVS = [
    ("FullFileName_RBV", DBR_CHAR, 1024, None),
    ("FilePath_RBV", DBR_CHAR, 1024, None),
    ("WriteMessage", DBR_CHAR, 1024, None),
    ("WriteStatus", DBR_ENUM, 1, ["Write OK", "Write error"]),
    ("Capture_RBV", DBR_ENUM, 1, ["Done", "Capturing"]),
    ("FlushNow", DBR_ENUM, 1, ["Done", "Flush"]),
    ("SWMRMode_RBV", DBR_ENUM, 1, ["Off", "On"]),
    ("SWMRActive_RBV", DBR_ENUM, 1, ["Off", "Active"]),
    ("FileWriteMode_RBV", DBR_ENUM, 1, ["Single", "Capture", "Stream"]),
    ("AutoIncrement_RBV", DBR_ENUM, 1, ["No", "Yes"]),
    ("Compression_RBV", DBR_ENUM, 1, "None N-bit szip zlib Blosc BSLZ4 LZ4 JPEG".split()),
    ("NumCaptured_RBV", DBR_LONG, 1, None),
    ("SWMRCbCounter_RBV", DBR_LONG, 1, None),
    ("ArrayCounter_RBV", DBR_LONG, 1, None),
    ("NumFramesFlush_RBV", DBR_LONG, 1, None),
    ("NDAttributeChunk_RBV", DBR_LONG, 1, None),
    ("NumExtraDims_RBV", DBR_LONG, 1, None),
    ("ExtraDimSizeN_RBV", DBR_LONG, 1, None),
    ("ExtraDimSizeX_RBV", DBR_LONG, 1, None),
]


async def test_plugin_pvs_have_adcore_record_types(
    camera: tuple[str, Path], aioca_cleanup: None
) -> None:
    prefix, _ = camera
    hdf = f"{prefix}HDF1:"
    await _wait_for(f"{hdf}PortName_RBV", "HDF1")
    for name, dbr, count, enums in _PLUGIN_PVS:
        value = await caget(f"{hdf}{name}", format=FORMAT_CTRL)
        assert (value.datatype, value.element_count) == (dbr, count), name
        assert getattr(value, "enums", None) == enums, name
