"""Tools for the deployment checks: the linters and helm, the Dockerfile read
as data, the Docker build context, and an IOC + probe run."""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
CHART = DEPLOY / "helm" / "swmr-roi-ioc"
GET_HELM = DEPLOY / "tools" / "get-helm.sh"
HELM_CACHE = REPO / ".cache" / "helm"

#: set to 1 (CI does) to make a missing tool a failure instead of a skip
REQUIRE_ENV = "SWMR_ROI_REQUIRE_DEPLOY_TOOLS"


def unavailable(reason: str) -> NoReturn:
    """Skip for want of a tool; fail instead where the tools are required."""
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"{reason} (and {REQUIRE_ENV} is set)")
    pytest.skip(reason)


def venv_tool(name: str, install_hint: str) -> Path:
    """A console script of the running venv (or on PATH)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} is not installed: {install_hint}")
    return Path(found)


@functools.cache
def _fetch_helm() -> tuple[Path | None, str]:
    if not shutil.which("bash"):
        return None, "bash is not installed"
    result = subprocess.run(
        ["bash", str(GET_HELM), str(HELM_CACHE)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode == 0:
        return Path(result.stdout.strip().splitlines()[-1]), ""
    if result.returncode == 3:
        return None, f"no helm binary to be had here: {result.stderr.strip()}"
    pytest.fail(f"deploy/tools/get-helm.sh failed ({result.returncode}):\n{result.stderr}")


def helm_binary() -> Path:
    """The pinned helm, fetched once into .cache/helm by deploy/tools/get-helm.sh."""
    path, reason = _fetch_helm()
    if path is None:
        unavailable(reason)
    return path


def run(args: list[str | Path], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False, **kw)


# ------------------------------------------------------------ Dockerfile ---


@dataclass(frozen=True)
class Instruction:
    stage: str
    keyword: str
    args: str


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions with their stage name ("" before the first FROM);
    continuation lines joined, comments and blank lines dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    stage = ""
    out: list[Instruction] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.search(r"\s+AS\s+(\S+)\s*$", args, re.IGNORECASE)
            stage = match.group(1) if match else args
        out.append(Instruction(stage, keyword, args.strip()))
    return out


def env_pairs(args: str) -> dict[str, str]:
    """`ENV A=1 B="x y"` as a dict (the key=value form only)."""
    pairs: dict[str, str] = {}
    for match in re.finditer(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)', args):
        pairs[match.group(1)] = match.group(2).strip('"')
    return pairs


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form CMD / ENTRYPOINT / HEALTHCHECK CMD."""
    start = args.index("[")
    value = json.loads(args[start:])
    assert isinstance(value, list)
    return [str(v) for v in value]


def copy_build_context(dest: Path) -> Path:
    """Copy the repository as `docker build -f deploy/Dockerfile .` would send
    it, filtered by deploy/Dockerfile.dockerignore (docker's patterns, with
    `*` also crossing `/`: close enough for the patterns used there)."""
    patterns = [
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns), "exceptions (!) are not handled here"

    def ignored(rel: str) -> bool:
        for pattern in patterns:
            forms = [pattern, pattern[3:]] if pattern.startswith("**/") else [pattern]
            if any(fnmatch.fnmatchcase(rel, form) for form in forms):
                return True
        return False

    for root, dirs, files in os.walk(REPO):
        rel_root = Path(root).relative_to(REPO)
        dirs[:] = [d for d in dirs if not ignored((rel_root / d).as_posix())]
        for name in files:
            rel = rel_root / name
            if ignored(rel.as_posix()):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, target)
    return dest


# ------------------------------------------------------ IOC and a probe ---


def set_prefix(config_text: str, prefix: str) -> str:
    """The config with its top-level `prefix:` replaced."""
    new, count = re.subn(r"(?m)^prefix:.*$", f'prefix: "{prefix}"', config_text)
    assert count == 1, "no top-level prefix: line in the config"
    return new


def probe_until_ok(probe: list[str], env: dict[str, str], timeout: float, log: Path) -> float:
    """Run the probe until it exits 0; seconds it took. Fails on timeout,
    showing the probe's last output and the end of the IOC's log."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < timeout:
        last = run(probe, env=env, timeout=30)
        if last.returncode == 0:
            return time.monotonic() - start
        time.sleep(0.5)
    detail = "" if last is None else last.stdout + last.stderr
    ioc_log = log.read_text()[-3000:] if log.exists() else "(no log)"
    pytest.fail(f"the probe never succeeded in {timeout} s:\n{detail[-2000:]}\nIOC log:\n{ioc_log}")
