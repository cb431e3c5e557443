"""ioc.yaml: the shipped config is valid; bad ones exit 2 naming FILE:LINE: key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from swmr_roi_ioc.__main__ import main
from swmr_roi_ioc.config import ConfigError, config_schema, load_config, parse_config

ROOT = Path(__file__).parents[3]
GOOD = """\
ioc_name: test-ioc
prefix: "T:"
data_root: /data
rois:
  - name: ROI1
    x: 1
    y: 2
    width: 3
    height: 4
"""


def test_shipped_config_is_valid_and_packaged_copy_is_identical() -> None:
    config = load_config(ROOT / "ioc" / "ioc.yaml")
    assert config.prefix.endswith(":")
    packaged = ROOT / "src" / "swmr_roi_ioc" / "_data" / "ioc.yaml"
    assert packaged.read_text() == (ROOT / "ioc" / "ioc.yaml").read_text()


def test_defaults_follow_design() -> None:
    config = parse_config(GOOD)
    assert config.source.dataset == "/entry/data/data"
    assert config.source.timeout == 5.0
    assert config.publish.rate_hz == 10
    assert config.publish.time_series_length == 2048
    assert config.rois[0].background_width == 0
    assert config.scan.snake is True


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        (GOOD + "colour: red\n", 10, "colour", "unknown key"),
        (GOOD.replace("width: 3", "width: -3"), 8, "rois[0].width", "greater than"),
        (GOOD.replace("x: 1", "x: one"), 6, "rois[0].x", "integer"),
        (GOOD.replace('prefix: "T:"', 'prefix: "T"'), 2, "prefix", ""),
        (
            GOOD.replace('prefix: "T:"', 'prefix: "TT"'),
            2,
            "prefix",
            "must end with ':'",
        ),
        (
            GOOD.replace("data_root: /data", "data_root: data"),
            3,
            "data_root",
            "absolute",
        ),
        (GOOD.replace("data_root: /data\n", ""), 1, "data_root", "missing"),
        (
            GOOD.replace("  - name: ROI1", "  - name: ROI1\n    colour: 3"),
            6,
            "rois[0].colour",
            "unknown",
        ),
        (
            GOOD.replace("ioc_name: test-ioc", "ioc_name: Test IOC"),
            1,
            "ioc_name",
            "lower-case letters, digits and '-'",
        ),
        (GOOD + "source:\n  timeout: -1\n", 11, "source.timeout", "greater than"),
        (GOOD + "source:\n  dataset: entry/data\n", 11, "source.dataset", "absolute"),
        (GOOD + "scan:\n  shape: [0, 5]\n", 11, "scan.shape[0]", "greater than"),
        (GOOD + "publish:\n  rate_hz: 0\n", 11, "publish.rate_hz", "greater than"),
        (
            GOOD + "publish:\n  histogram: {bins: 4, min: 5, max: 1}\n",
            11,
            "publish.histogram",
            "greater than min",
        ),
        (GOOD + "pva: maybe\n", 10, "pva", "boolean"),
        (
            GOOD + "  - name: ROI1\n    x: 0\n    y: 0\n    width: 1\n    height: 1\n",
            4,
            "rois",
            "unique",
        ),
        (GOOD + "prefix: again\n", 10, "", "duplicate"),
        (GOOD + "\tpva: true\n", 10, "", "YAML syntax"),
        (GOOD + "rois: [\n", 11, "", "YAML syntax"),
        ("- a\n- b\n", 1, "", "mapping"),
        (GOOD + "source:\n  plugin_prefix: 'T:HDF1:'\n", 2, "prefix", "overlaps"),
        (GOOD.replace("x: 1", "x: 1000000"), 6, "rois[0].x", "less than or equal"),
        (GOOD.replace("height: 4", "height: 0"), 9, "rois[0].height", "greater than"),
        (GOOD + "source:\n  file: a.h5\n  plugin_prefix: 'X:HDF1:'\n", 10, "source", "either"),
        (GOOD + "access: {write_hosts: host1}\n", 10, "access.write_hosts", "list"),
        ("", 1, "", "empty"),
    ],
)
def test_bad_config_names_line_and_key(text: str, line: int, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "ioc.yaml")
    issue = info.value.issues[0]
    assert (issue.file, issue.line, issue.key) == ("ioc.yaml", line, key), str(info.value)
    assert words.lower() in str(issue).lower()
    assert str(issue).startswith(f"ioc.yaml:{line}:")


def test_check_exits_2_with_location_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "ioc.yaml"
    bad.write_text(GOOD.replace("width: 3", "width: -3") + "extra: 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "swmr_roi_ioc", "check", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert f"{bad}:8: rois[0].width:" in result.stderr
    assert f"{bad}:10: extra: unknown key" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_check_prints_pv_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "ioc.yaml"
    good.write_text(GOOD.replace("data_root: /data", f"data_root: {tmp_path}"))
    assert main(["check", str(good)]) == 0
    out = capsys.readouterr().out.split()
    for pv in [
        "T:Status_RBV",
        "T:1:Total_RBV",
        "T:1:MinX",
        "T:1:MinX_RBV",
        "T:Frame:Map",
        "T:1:TSTotal",
        "T:Reset",
        "T:StatusMessage_RBV",
    ]:
        assert pv in out


def test_data_root_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWMR_ROI_DATA_ROOT", "/elsewhere")
    assert parse_config(GOOD).data_root == "/elsewhere"


def test_schema_is_json_with_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema == json.loads(json.dumps(config_schema()))
    assert schema["additionalProperties"] is False

    def walk(node: dict) -> None:  # every property documented
        for name, prop in node.get("properties", {}).items():
            assert "description" in prop, name
        for sub in node.get("$defs", {}).values():
            walk(sub)

    walk(schema)


def test_committed_schema_matches_the_models() -> None:
    """docs/ioc.schema.json is what `swmr-roi-ioc schema` prints; regenerate it with
    `swmr-roi-ioc schema > docs/ioc.schema.json` when the models change."""
    from swmr_roi_ioc.config._schema import config_schema_json

    committed = (ROOT / "docs" / "ioc.schema.json").read_text()
    assert committed == config_schema_json(), "docs/ioc.schema.json drifted from the models"
    first = (ROOT / "ioc" / "ioc.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../docs/ioc.schema.json"
