"""`python -m benchmarks` fails (exit 1) when a part fails to run, and says which."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks import live, run
from benchmarks.report import Row, Target


def _ok(group: str):  # noqa: ANN202 - a stand-in part
    def part(*_args: object) -> tuple[list[Row], list[Target]]:
        return [Row(group, group, group, "live", text="measured")], []

    return part


def _broken(*_args: object) -> tuple[list[Row], list[Target]]:
    raise TimeoutError("50 clients did not connect within 30 s")


@pytest.mark.parametrize("failing", [None, "_clients50", "_live100"])
def test_a_part_that_fails_to_run_fails_the_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    failing: str | None,
) -> None:
    # the real live.run loop (caRepeater, its error handling), cheap parts
    for name, group in [("_live100", "live 100 Hz"), ("_livemax", "live max rate"),
                        ("_clients50", "50 clients")]:  # fmt: skip
        monkeypatch.setattr(live, name, _broken if name == failing else _ok(group))
    code = run.main(["--live-only", "--quick", "--dir", str(tmp_path)])
    err = capsys.readouterr().err
    if failing is None:
        assert code == 0, err
        assert "FAILED" not in err
    else:
        assert code == 1
        assert "FAILED to run:" in err and "did not connect within 30 s" in err
