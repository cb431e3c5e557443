"""deploy/helm/swmr-roi-ioc, offline: a real helm lints and renders it,
kubernetes-validate checks the manifests, and the liveness probe it renders
asks a real IOC."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
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
    assert mounts["data"]["readOnly"] is False  # NeXus files beside the data by default
    assert volumes["data"]["hostPath"]["path"] == config["data_root"]
    assert mounts["opi"]["mountPath"] == "/epics/opi"
    assert mounts["tmp"]["mountPath"] == "/tmp"
    assert "nexus" not in mounts

    # no address in the probe: it finds the IOC from its pid (IOCs sharing a
    # node's network all bind UDP 5064; a search would reach one of them)
    command = container["livenessProbe"]["exec"]["command"]
    assert command[:3] == ["swmr-roi-ioc", "probe", "/epics/ioc/config/ioc.yaml"]
    assert "127.0.0.1" not in " ".join(command)

    # the config is checked before the IOC starts, with the IOC's env and mounts
    (check,) = spec["initContainers"]
    assert check["name"] == "check-config"
    assert check["image"] == container["image"]
    assert check["args"] == ["check", "/epics/ioc/config/ioc.yaml"]
    assert check["env"] == container["env"]
    check_mounts = {m["name"]: m for m in check["volumeMounts"]}
    assert check_mounts["config"] == mounts["config"] and check_mounts["data"] == mounts["data"]

    # epics-containers' labels, on the pod and every object
    every = [pod["metadata"]["labels"], *(m["metadata"]["labels"] for m in manifests.values())]
    for labels in every:
        assert labels["is_ioc"] == "true"
        assert (labels["location"], labels["domain"], labels["ioc_group"]) == ("ioc", "ioc", "ioc")
    assert container["image"].endswith(":" + _chart()["appVersion"])


def _chart() -> dict[str, Any]:
    return _yaml_load((CHART / "Chart.yaml").read_text())


def test_app_version_is_the_package_release() -> None:
    """The image tag defaults to appVersion: the release the package is at, or
    (a development version) the release it is heading to."""
    from importlib.metadata import version

    from packaging.version import Version

    package = Version(version("swmr-roi-ioc"))
    chart = Version(_chart()["appVersion"])
    assert package.base_version == str(chart) or (package.is_devrelease and package < chart), (
        f"Chart.yaml appVersion {chart} does not match the package version {package}"
    )
    assert _chart()["version"] == _chart()["appVersion"]


def test_notes_name_the_prefix_and_warn_about_nexus() -> None:
    result = run([helm_binary(), "install", "ioc-test", CHART, "--dry-run=client"])
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert f"caget {_config()['prefix']}Status_RBV" in notes
    assert "WARNING" not in notes  # the defaults work together
    result = run([helm_binary(), "install", "ioc-test", CHART, "--dry-run=client",
                  "--set", "dataVolume.readOnly=true"])  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "NeXus files cannot be written" in result.stdout.split("NOTES:", 1)[1]


def test_claims_and_values_override() -> None:
    manifests = _manifests(_template(CHART, *_values_args("claims-values.yaml")))
    spec = manifests["Deployment"]["spec"]["template"]["spec"]
    assert "hostNetwork" not in spec
    # without the node's network a Service fronts the pod: CA and PVA, TCP and UDP
    service = manifests["Service"]["spec"]
    assert service["selector"] == manifests["Deployment"]["spec"]["selector"]["matchLabels"]
    ports = {(p["port"], p["protocol"]) for p in service["ports"]}
    assert ports == {(5064, "TCP"), (5064, "UDP"), (5075, "TCP"), (5076, "UDP")}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "bl01c-data", "readOnly": True}
    (container,) = spec["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["opi"]["subPath"] == "dcam1-roi"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["EPICS_CA_SERVER_PORT"] == "5064"

    manifests = _manifests(_template(CHART, *_values_args("hostpath-values.yaml")))
    deployment = manifests["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    # the instance's location; podLabels add labels but do not change the chart's
    assert (labels["location"], labels["team"]) == ("bl01c-ws", "controls")
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
    rendered = _template(
        chart, "--set", "nexusVolume.enabled=true", "--set", "dataVolume.readOnly=true"
    )
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
        (
            "readOnly: {{ .Values.dataVolume.readOnly }}\n  {{- if not",
            'readOnly: "yes"\n  {{- if not',
        ),
    ]:
        assert old in good
        deployment.write_text(good.replace(old, new, 1))
        result = _validate(_template(chart), tmp_path, "1.30")
        assert result.returncode != 0, f"kubernetes-validate accepted {new!r}"
    deployment.write_text(good)
    assert _validate(_template(chart), tmp_path, "1.30").returncode == 0


def _probe_command(rendered: str, config: Path) -> list[str]:
    """The chart's liveness command, run from this checkout on ``config``."""
    (container,) = _manifests(rendered)["Deployment"]["spec"]["template"]["spec"]["containers"]
    command = container["livenessProbe"]["exec"]["command"]
    assert command[0] == "swmr-roi-ioc"
    args = [str(config) if a == "/epics/ioc/config/ioc.yaml" else a for a in command[1:]]
    return [sys.executable, "-m", "swmr_roi_ioc", *args]


def _start_ioc(config: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "swmr_roi_ioc", "run", str(config)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(ioc: subprocess.Popen[bytes]) -> None:
    ioc.terminate()
    try:
        ioc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        ioc.kill()
        ioc.wait()


@pytest.mark.integration
def test_liveness_probe_asks_a_running_ioc(tmp_path: Path, prefix: str) -> None:
    """The probe command the chart renders, run against a real IOC on the
    chart's config: it succeeds while the IOC runs and fails once it stops."""
    rendered = _template(CHART)
    (container,) = _manifests(rendered)["Deployment"]["spec"]["template"]["spec"]["containers"]
    config = tmp_path / "ioc.yaml"
    config.write_text(set_prefix((CHART / "config" / "ioc.yaml").read_text(), prefix))
    probe = _probe_command(rendered, config)
    data = tmp_path / "data"
    data.mkdir()
    env = {**os.environ, "SWMR_ROI_DATA_ROOT": str(data), "SWMR_ROI_RUNTIME_DIR": str(tmp_path)}
    ioc = _start_ioc(config, env, tmp_path / "ioc.log")
    try:
        took = probe_until_ok(probe, env, timeout=45, log=tmp_path / "ioc.log")
        assert took < container["livenessProbe"]["initialDelaySeconds"]
    finally:
        _stop(ioc)
    assert run(probe, env=env, timeout=30).returncode != 0


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_probe_tells_two_iocs_sharing_the_ca_port_apart(tmp_path: Path) -> None:
    """Two IOCs on one host with the same EPICS_CA_SERVER_PORT (hostNetwork:
    both on UDP 5064; the second's TCP server on another port): the chart's
    probe command reaches each one, 10 times of 10, and fails for the one
    stopped while the other still passes."""
    env = {**os.environ, "SWMR_ROI_RUNTIME_DIR": str(tmp_path)}
    rendered = _template(CHART)
    iocs: dict[str, tuple[list[str], subprocess.Popen[bytes]]] = {}
    try:
        for name in ("bl01c-di-dcam-01-roi", "bl01c-di-dcam-02-roi"):
            data = tmp_path / name
            data.mkdir()
            text = set_prefix((CHART / "config" / "ioc.yaml").read_text(), f"{name.upper()}:")
            text = text.replace("ioc_name: bl01c-di-dcam-01-roi", f"ioc_name: {name}")
            text = text.replace("data_root: /dls/bl01c/data", f"data_root: {data}")
            config = tmp_path / f"{name}.yaml"
            config.write_text(text.replace("pva: true", "pva: false"))
            probe = _probe_command(rendered, config)
            iocs[name] = (probe, _start_ioc(config, env, tmp_path / f"{name}.log"))
        for name, (probe, _) in iocs.items():
            probe_until_ok(probe, env, timeout=60, log=tmp_path / f"{name}.log")

        def ten(probe: list[str]) -> list[int]:
            return [run(probe, env=env, timeout=60).returncode for _ in range(10)]

        with ThreadPoolExecutor(2) as pool:
            codes = dict(zip(iocs, pool.map(ten, [p for p, _ in iocs.values()]), strict=True))
        assert codes == {name: [0] * 10 for name in iocs}, codes

        first, second = iocs
        _stop(iocs[first][1])
        failed = run(iocs[first][0], env=env, timeout=60)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert first in failed.stderr
        assert run(iocs[second][0], env=env, timeout=60).returncode == 0
    finally:
        for _, ioc in iocs.values():
            _stop(ioc)


def _services_instance(tmp_path: Path) -> tuple[Path, str]:
    """An instance as an epics-containers services repository keeps it: a
    values file and config/ioc.yaml, nothing else."""
    instance = tmp_path / "services" / "bl01c-di-dcam-02-roi"
    (instance / "config").mkdir(parents=True)
    config = (REPO / "ioc" / "ioc.yaml").read_text()
    config = set_prefix(config, "BL01C-DI-DCAM-02:ROI:")
    config = config.replace("ioc_name: bl01c-di-dcam-01-roi", "ioc_name: bl01c-di-dcam-02-roi")
    (instance / "config" / "ioc.yaml").write_text(config)
    (instance / "values.yaml").write_text(
        "global:\n  location: bl01c\n  domain: bl01c\n  ioc_group: bl01c-detectors\n"
        "image:\n  tag: 0.1.1\n"
        "dataVolume:\n  hostPath: /dls/bl01c/data\n"
    )
    return instance, config


def _config_file(instance: Path) -> str:
    """--set-file's argument handing the instance's config/ioc.yaml over."""
    return f"global.files.ioc\\.yaml={instance / 'config' / 'ioc.yaml'}"


def _check_instance(rendered: str, config: str, tmp_path: Path) -> None:
    manifests = _manifests(rendered)
    assert manifests["ConfigMap"]["data"] == {"ioc.yaml": config}
    pod = manifests["Deployment"]["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert labels["is_ioc"] == "true" and labels["app"] == "bl01c-di-dcam-02-roi"
    assert (labels["location"], labels["domain"], labels["ioc_group"]) == (
        "bl01c", "bl01c", "bl01c-detectors",
    )  # fmt: skip
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["IOC_PREFIX"] == "BL01C-DI-DCAM-02:ROI:"
    assert container["image"].endswith(":0.1.1")
    assert _validate(rendered, tmp_path, "1.30").returncode == 0


def test_services_repo_instance_renders_with_the_shared_chart(tmp_path: Path) -> None:
    """ec's deploy: the shared chart, the instance's values, its config as global.files."""
    instance, config = _services_instance(tmp_path)
    args = ["-f", str(instance / "values.yaml"), "--set-file", _config_file(instance)]
    assert _lint(CHART, *args).returncode == 0
    result = run([helm_binary(), "template", instance.name, CHART, *args])
    assert result.returncode == 0, result.stderr
    _check_instance(result.stdout, config, tmp_path)


def test_services_repo_instance_renders_as_a_dependency(tmp_path: Path) -> None:
    """The chart as a dependency of an instance chart (its values under the
    chart's name; the config handed over as a global reaches the dependency)."""
    instance, config = _services_instance(tmp_path)
    values = _yaml_load((instance / "values.yaml").read_text())
    nested = {"global": values.pop("global"), "swmr-roi-ioc": values}
    out = io.StringIO()
    YAML().dump(nested, out)
    (instance / "values.yaml").write_text(out.getvalue())
    (instance / "Chart.yaml").write_text(
        f"apiVersion: v2\nname: {instance.name}\nversion: 1.0.0\ntype: application\n"
        "dependencies:\n  - name: swmr-roi-ioc\n"
        f"    version: {_chart()['version']}\n    repository: file://{CHART}\n"
    )
    (instance / "charts").mkdir()
    shutil.copytree(CHART, instance / "charts" / "swmr-roi-ioc")
    result = run(
        [helm_binary(), "template", instance.name, instance, "--set-file", _config_file(instance)]
    )
    assert result.returncode == 0, result.stderr
    _check_instance(result.stdout, config, tmp_path)


def test_a_config_missing_fails_the_render(tmp_path: Path) -> None:
    chart = _chart_copy(tmp_path)
    (chart / "config" / "ioc.yaml").unlink()
    result = run([helm_binary(), "template", "x", chart])
    assert result.returncode != 0 and "global.files" in result.stderr
