"""`v4l2-unplug survey` (what `make run` shows), as a user runs it: its findings
table names the subdev_open NULL dereference the race hits, the survey exits
0 for having done its job, and the reproducer in the table, pasted, finds the
same signature again (and `run` exits 1 for it, as CI wants).

On the `debian` flavour, which boots in seconds, with one scenario of the
matrix: `make run` runs all 58 on debug-sid, which only takes longer.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

SIGNATURE = "BUG:null-ptr-deref:subdev_open"


def cli(words: list[str], data: Path) -> subprocess.CompletedProcess[str]:
    # Its own history database: the user's is no place for a test's runs.
    return subprocess.run([sys.executable, "-m", "harness.host.cli", *words],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "XDG_DATA_HOME": str(data)})


def test_survey_table_names_subdev_open_and_its_reproducer_reproduces(tmp_path: Path) -> None:
    survey = cli(["survey", "--kernel", "debian", "--scenario", "idle--unbind_bind",
                  "--race-seconds", "30", "--report", str(tmp_path / "survey")], tmp_path)
    assert survey.returncode == 0, survey.stderr[-2000:]
    assert "Traceback" not in survey.stderr
    rows = json.loads((tmp_path / "survey" / "findings.json").read_text())
    row = next((r for r in rows if r["signature"] == SIGNATURE), None)
    assert row is not None, (rows, survey.stdout)
    assert row["found_by"].startswith("race seed 7, cycle ")
    assert row["reproduce"] == ("v4l2-unplug run --driver vimc --kernel debian --race --seed 7 "
                                "--duration 30")
    # The table on stdout: the finding's line and its reproducer, whole.
    assert f"reproduce: {row['reproduce']}" in survey.stdout
    assert "matrix: 1 scenario on debian" in survey.stdout
    # Progress went to stderr, as plain lines (stderr is not a terminal here).
    assert "[matrix] [  1/1] pass    idle--unbind_bind" in survey.stderr
    assert "\r" not in survey.stderr

    words = shlex.split(row["reproduce"])
    assert words[0] == "v4l2-unplug"
    again = cli([*words[1:], "--report", str(tmp_path / "again")], tmp_path)
    assert again.returncode == 1, again.stderr[-2000:]
    doc = json.loads((tmp_path / "again" / "results.json").read_text())
    assert SIGNATURE in {f["signature"] for f in doc["findings"]}, doc["findings"]
