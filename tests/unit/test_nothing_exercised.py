"""A run that exercised nothing never passes, and input that would run
nothing is refused in one line before anything is fetched or booted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.host.race_verdict import judge_doc
from harness.host.report.history import connect, record
from harness.host.report.junit import run_xml
from harness.host.report.results import race_ktap
from harness.host.runner import RunResult
from harness.pure.errors import HarnessError
from harness.pure.profiles import get_profile
from harness.pure.scenarios.matrix import build_matrix, select
from harness.pure.scenarios.verdicts import Verdict

# A cache no test may fill: if a refused command got as far as fetching or
# building a kernel, it would fail on this path instead of in the parser.
NO_CACHE = {"XDG_CACHE_HOME": "/proc/no-such-dir", "PATH": "/usr/bin:/bin"}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.host.cli", *args],
                          capture_output=True, text=True, env=NO_CACHE, timeout=60)


@pytest.mark.parametrize(("args", "words"), [
    (["run", "--race", "--duration", "-5"], ["--duration", "-5 seconds would run nothing"]),
    (["run", "--race", "--duration", "0"], ["--duration", "above 0"]),
    (["run", "--race", "--duration", "nan"], ["--duration", "above 0"]),
    (["run", "--race", "--duration", "soon"], ["--duration", "not a number of seconds"]),
    (["run", "--race", "--workers", "0"], ["--workers", "0 would run nothing: give 1 or more"]),
    (["run", "--race", "--race-nodes", "radio"], ["--race-nodes", "'radio'", "subdev"]),
    (["validate", "--tree", "/nonexistent", "--repeat", "0"], ["--repeat", "1 or more"]),
    (["validate", "--tree", "/nonexistent", "--race", "--workers", "-1"], ["--workers"]),
    (["bisect", "--tree", "/x", "--good", "a", "--bad", "b", "--repeat", "0"], ["--repeat"]),
    (["stream", "--frames", "0"], ["--frames", "1 or more"]),
])
def test_bad_input_is_one_line_before_anything_boots(args: list[str], words: list[str]) -> None:
    proc = _cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("v4l2-unplug: error: argument ")
    assert lines[0].endswith("--help')")
    for word in words:
        assert word in lines[0]


def test_a_selection_of_nothing_is_an_error() -> None:
    with pytest.raises(HarnessError, match="admits no scenario"):
        select([], None)
    with pytest.raises(HarnessError, match="unknown scenario 'no-such'"):
        select(build_matrix(get_profile("vimc")), ["no-such"])


def test_a_run_of_no_scenario_does_not_pass() -> None:
    assert RunResult([], [], []).failed


def _race(iterations: list[int], cycles: int = 40, **extra: Any) -> dict[str, Any]:
    return {"mode": "race", "started": "2026-01-01T00:00:00Z", "driver": "vimc",
            "kernel": {"flavour": "debian", "release": "6.1", "image": ""},
            "stats": {"seed": 7, "mode": "unbind", "cycles": cycles, "duration": 20.0,
                      "cycles_per_second": cycles / 20,
                      "workers": [{"worker": i, "iterations": n, "per_second": n / 20}
                                  for i, n in enumerate(iterations)]},
            "findings": [], "outcome": "done", **extra}


def test_a_race_whose_workers_made_no_iteration_fails_everywhere(tmp_path: Path) -> None:
    """The --duration -5 of before: the disruptor alone, or nobody, and a PASS."""
    idle = _race([0, 0, 0])
    assert judge_doc(idle) == (Verdict.ERROR, "nothing exercised: the workers made no iteration")
    assert race_ktap(idle).endswith("not ok 1 race_seed_7_unbind\n")
    assert "# race_seed_7_unbind: nothing exercised" in race_ktap(idle)
    assert 'type="error"' in run_xml(idle)
    db = tmp_path / "h.sqlite3"
    run_id = record(idle, "run", path=db)
    with connect(db) as conn:
        verdict = conn.execute("SELECT verdict FROM results WHERE run_id = ?",
                               (run_id,)).fetchone()[0]
    assert verdict == Verdict.ERROR


def test_a_race_without_a_disruption_cycle_fails() -> None:
    assert judge_doc(_race([500, 480], cycles=0))[0] == Verdict.ERROR
    assert judge_doc(_race([500, 480]))[0] == Verdict.PASS


def test_a_kernel_report_is_the_verdict_whatever_else_happened() -> None:
    found = _race([0], cycles=0, outcome="hang",
                  findings=[{"title": "BUG: null-ptr-deref in subdev_open", "signature": "s"}])
    assert judge_doc(found) == (Verdict.FAIL, "BUG: null-ptr-deref in subdev_open")
