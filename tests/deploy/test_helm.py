"""deploy/helm/swmr-roi-ioc, offline: a real helm lints and renders it,
kubernetes-validate checks the manifests, and the liveness probe it renders
asks a real IOC."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.deploy.helpers import (
    CHART,
    REPO,
    helm_binary,
    probe_until_ok,
    run,
    set_prefix,
    venv_tool,
)

#: kubernetes-validate's schemas: the oldest version we promise, and its newest
K8S_VERSIONS = ["1.30", None]
VALUES_CASES = [None, *sorted(p.name for p in (CHART / "ci").glob("*-values.yaml"))]


def _yaml_load(text: str) -> Any:
    return YAML(typ="safe").load(text)


def _config() -> dict[str, Any]:
    return _yaml_load((CHART / "config" / "ioc.yaml").read_text())


def _values_args(case: str | None, chart: Path = CHART) -> list[str]:
    return [] if case is None else ["-f", str(chart / "ci" / case)]


def _lint(chart: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([helm_binary(), "lint", "--strict", chart, *args])


def _template(chart: Path, *args: str) -> str:
    result = run([helm_binary(), "template", "ioc-test", chart, *args])
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    return result.stdout


def _manifests(text: str) -> dict[str, dict[str, Any]]:
    docs = [d for d in YAML(typ="safe").load_all(io.StringIO(text)) if d]
    return {d["kind"]: d for d in docs}


def _validate(
    manifests: str, tmp_path: Path, version: str | None
) -> subprocess.CompletedProcess[str]:
    exe = venv_tool("kubernetes-validate", "pip install kubernetes-validate (a dev dependency)")
    path = tmp_path / "manifests.yaml"
    path.write_text(manifests)
    args = ["--strict", "--quiet", *(["--kubernetes-version", version] if version else []), path]
    return run([exe, *args])


def _chart_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "swmr-roi-ioc"
    shutil.copytree(CHART, copy)
    return copy


def test_chart_config_is_the_shipped_config() -> None:
    shipped = (REPO / "ioc" / "ioc.yaml").read_bytes()
    assert (CHART / "config" / "ioc.yaml").read_bytes() == shipped, (
        "deploy/helm/swmr-roi-ioc/config/ioc.yaml differs from ioc/ioc.yaml: "
        "cp ioc/ioc.yaml deploy/helm/swmr-roi-ioc/config/ioc.yaml"
    )


@pytest.mark.parametrize("case", VALUES_CASES)
def test_helm_lint_strict(case: str | None) -> None:
    result = _lint(CHART, *_values_args(case))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("version", K8S_VERSIONS, ids=lambda v: f"k8s-{v or 'newest'}")
@pytest.mark.parametrize("case", VALUES_CASES)
def test_rendered_manifests_validate(case: str | None, version: str | None, tmp_path: Path) -> None:
    result = _validate(_template(CHART, *_values_args(case)), tmp_path, version)
    assert result.returncode == 0, result.stdout + result.stderr


def test_deployment_as_promised() -> None:
    config = _config()
    manifests = _manifests(_template(CHART))
    assert set(manifests) == {"ConfigMap", "Deployment"}
    assert manifests["ConfigMap"]["data"]["ioc.yaml"] == (CHART / "config" / "ioc.yaml").read_text()

    pod = manifests["Deployment"]["spec"]["template"]
    spec = pod["spec"]
    assert spec["hostNetwork"] is True
    assert len(pod["metadata"]["labels"]["configHash"]) == 40
    assert spec["securityContext"]["runAsNonRoot"] is True
    (container,) = spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["args"] == ["run", "/epics/ioc/config/ioc.yaml"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SWMR_ROI_DATA_ROOT"] == config["data_root"]

    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert mounts["config"]["mountPath"] == "/epics/ioc/config"
    assert volumes["config"]["configMap"]["name"] == manifests["ConfigMap"]["metadata"]["name"]
    assert mounts["data"]["mountPath"] == config["data_root"]
    assert mounts["data"]["readOnly"] is True
    assert volumes["data"]["hostPath"]["path"] == config["data_root"]
    assert mounts["opi"]["mountPath"] == "/epics/opi"
    assert mounts["tmp"]["mountPath"] == "/tmp"
    assert "nexus" not in mounts

    command = container["livenessProbe"]["exec"]["command"]
    assert command[:2] == ["python", "-c"]
    assert f'"{config["prefix"]}Uptime_RBV"' in command[2]


def test_notes_name_the_prefix_and_warn_about_nexus() -> None:
    result = run([helm_binary(), "install", "ioc-test", CHART, "--dry-run=client"])
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert f"caget {_config()['prefix']}Status_RBV" in notes
    assert "NeXus files cannot be written" in notes


def test_claims_and_values_override() -> None:
    manifests = _manifests(_template(CHART, *_values_args("claims-values.yaml")))
    spec = manifests["Deployment"]["spec"]["template"]["spec"]
    assert "hostNetwork" not in spec
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "bl01c-data", "readOnly": True}
    (container,) = spec["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["opi"]["subPath"] == "dcam1-roi"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["EPICS_CA_SERVER_PORT"] == "5064"

    manifests = _manifests(_template(CHART, *_values_args("hostpath-values.yaml")))
    deployment = manifests["Deployment"]
    assert deployment["spec"]["replicas"] == 0
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert (mounts["data"]["mountPath"], mounts["data"]["readOnly"]) == ("/data", False)
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["data"]["hostPath"]["path"] == "/dls/bl01c/data"
    assert "livenessProbe" not in container


def test_config_change_rolls_the_pod(tmp_path: Path) -> None:
    def config_hash(chart: Path) -> str:
        deployment = _manifests(_template(chart))["Deployment"]
        return deployment["spec"]["template"]["metadata"]["labels"]["configHash"]

    before = config_hash(CHART)
    chart = _chart_copy(tmp_path)
    config = chart / "config" / "ioc.yaml"
    config.write_text(config.read_text().replace("rate_hz: 10", "rate_hz: 5"))
    assert config_hash(chart) != before


def test_nexus_volume_at_the_configured_directory(tmp_path: Path) -> None:
    chart = _chart_copy(tmp_path)
    failed = run([helm_binary(), "template", "x", chart, "--set", "nexusVolume.enabled=true"])
    assert failed.returncode != 0
    assert "nexus.directory" in failed.stderr

    config = chart / "config" / "ioc.yaml"
    text = config.read_text()
    assert "  directory: null" in text
    config.write_text(text.replace("  directory: null", "  directory: /dls/bl01c/processed"))
    rendered = _template(chart, "--set", "nexusVolume.enabled=true")
    spec = _manifests(rendered)["Deployment"]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["nexus"]["mountPath"] == "/dls/bl01c/processed"
    assert not mounts["nexus"].get("readOnly")
    assert mounts["data"]["readOnly"] is True
    assert _validate(rendered, tmp_path, "1.30").returncode == 0


def test_a_broken_chart_fails_the_checks(tmp_path: Path) -> None:
    """The checks are not vacuous: each kind of mistake is caught."""
    chart = _chart_copy(tmp_path)
    # a value the schema forbids
    result = _lint(chart, "--set", "dataVolume.readOnly=maybe")
    assert result.returncode != 0 and "readOnly" in result.stdout + result.stderr
    result = _lint(chart, "--set", "hostNetwrok=true")
    assert result.returncode != 0, "values.schema.json lets a misspelt key through"

    # a template that does not parse
    deployment = chart / "templates" / "deployment.yaml"
    good = deployment.read_text()
    deployment.write_text(good.replace("{{- end }}", "{{- end", 1))
    assert _lint(chart).returncode != 0

    # a manifest Kubernetes would reject: a misspelt field, a wrong type
    for old, new in [
        ("hostNetwork: true", "hostNetwrok: true"),
        ("readOnly: {{ .Values.dataVolume.readOnly }}", 'readOnly: "yes"'),
    ]:
        assert old in good
        deployment.write_text(good.replace(old, new, 1))
        result = _validate(_template(chart), tmp_path, "1.30")
        assert result.returncode != 0, f"kubernetes-validate accepted {new!r}"
    deployment.write_text(good)
    assert _validate(_template(chart), tmp_path, "1.30").returncode == 0


@pytest.mark.integration
def test_liveness_probe_asks_a_running_ioc(tmp_path: Path, prefix: str) -> None:
    """The probe command the chart renders, run against a real IOC on the
    chart's config: it succeeds while the IOC runs and fails once it stops."""
    rendered = _template(CHART, "--set", f"prefix={prefix}")
    (container,) = _manifests(rendered)["Deployment"]["spec"]["template"]["spec"]["containers"]
    command = container["livenessProbe"]["exec"]["command"]
    assert command[0] == "python"
    probe = [sys.executable, *command[1:]]

    config = tmp_path / "ioc.yaml"
    config.write_text(set_prefix((CHART / "config" / "ioc.yaml").read_text(), prefix))
    data = tmp_path / "data"
    data.mkdir()
    env = {**os.environ, "SWMR_ROI_DATA_ROOT": str(data)}
    with open(tmp_path / "ioc.log", "w") as log:
        ioc = subprocess.Popen(
            [sys.executable, "-m", "swmr_roi_ioc", "run", str(config)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        took = probe_until_ok(probe, env, timeout=45, log=tmp_path / "ioc.log")
        assert took < container["livenessProbe"]["initialDelaySeconds"]
    finally:
        ioc.terminate()
        try:
            ioc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            ioc.kill()
            ioc.wait()
    assert run(probe, env=env, timeout=30).returncode != 0
