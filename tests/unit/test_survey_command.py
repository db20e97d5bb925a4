"""`v4l2-unplug survey` end to end with recorded consoles in place of the VM
(the stand-in of tests/unit/test_results_schema.py): its exit status says
whether the harness did its job, not what it found, and its table holds the
matrix's and the race's findings with their reproducers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.host import cli
from harness.host.commands import survey
from tests.unit.test_results_schema import ALL_NODES, BLOCKED, OPENED, RecordedGuest, kernel


def run_survey(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenarios: list[str],
               **guest: Any) -> tuple[int, list[dict[str, Any]], str]:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the history database
    k = kernel(tmp_path)
    monkeypatch.setattr(survey, "qemu_from_args", lambda args: (RecordedGuest(k, **guest), k))
    report = tmp_path / "survey"
    words = ["survey", "--kernel", "debug", "--race-seconds", "30", "--report", str(report)]
    for name in scenarios:
        words += ["--scenario", name]
    status = cli.main(words)
    rows = json.loads((report / "findings.json").read_text())
    return status, rows, (report / "findings.txt").read_text()


def test_findings_of_matrix_and_race_in_one_table_and_exit_0(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    status, rows, text = run_survey(tmp_path, monkeypatch, [OPENED, BLOCKED])
    assert status == 0  # kernel reports are what it found, not a failure of the survey
    by_sig = {r["signature"]: r for r in rows}
    uaf = next(r for r in rows if r["found_by"] == f"scenario {OPENED}")
    assert uaf["reproduce"] == f"v4l2-unplug run --driver vimc --kernel debug --scenario {OPENED}"
    race = by_sig["BUG:null-ptr-deref:subdev_open"]
    # The recorded race oops is also in the second matrix boot's console, before
    # any scenario: the boot saw it first, the race is counted beside it.
    assert race["found_by"] == "boot, before any scenario"
    assert race["reproduce"] == "v4l2-unplug topology --driver vimc --kernel debug"
    assert race["also"] == ["race seed 7, cycle 3"]  # the stand-in's count
    out = capsys.readouterr().out
    assert out.strip() == text.strip()
    assert "matrix: 2 scenarios on debug 6.1.192" in text
    assert "race seed 7: " in text and "Could not run" not in text


def test_a_race_alone_gives_the_race_reproducer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A clean matrix: the race is the only one to see subdev_open.
    status, rows, _ = run_survey(tmp_path, monkeypatch, [OPENED])
    race = next(r for r in rows if r["signature"] == "BUG:null-ptr-deref:subdev_open")
    assert status == 0
    assert race["found_by"].startswith("race seed 7")
    assert race["reproduce"] == ("v4l2-unplug run --driver vimc --kernel debug --race --seed 7 "
                                 "--duration 30")


def test_exit_1_when_a_scenario_could_not_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status, _, text = run_survey(tmp_path, monkeypatch, [OPENED, ALL_NODES])
    assert status == 1
    assert f"Could not run:\n  scenario {ALL_NODES}: error" in text


def test_exit_1_when_the_race_could_not_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status, _, text = run_survey(tmp_path, monkeypatch, [OPENED], race_error=True)
    assert status == 1
    assert "race seed 7: " in text and "lacks Sensor A" in text
