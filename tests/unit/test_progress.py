"""Live progress: plain lines when the stream is not a terminal, a tqdm bar when it is."""

from __future__ import annotations

import io
import re

from harness.host.progress import MatrixProgress, RaceProgress, clock, eta
from harness.host.runner import Outcome
from harness.pure.profiles.vimc import VIMC
from harness.pure.scenarios.matrix import build_matrix
from harness.pure.scenarios.verdicts import Verdict

SCENARIOS = build_matrix(VIMC)[:3]


def outcome(i: int, verdict: Verdict, reason: str = "") -> Outcome:
    return Outcome(SCENARIOS[i], verdict, reason=reason)


def test_eta_is_the_pace_so_far() -> None:
    assert eta(30.0, 0, 10) is None
    assert eta(30.0, 3, 10) == 70.0
    assert eta(30.0, 10, 10) == 0.0
    assert clock(185) == "03:05"


def test_matrix_without_a_terminal_prints_a_line_per_scenario() -> None:
    out = io.StringIO()  # not a terminal: as in CI
    with MatrixProgress(3, "matrix", stream=out) as p:
        p.update(outcome(0, Verdict.PASS), 1, 3)
        p.update(outcome(1, Verdict.FAIL, "BUG: kernel NULL pointer dereference"), 2, 3)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(rf"\[matrix\] \[  1/3\] pass    {re.escape(SCENARIOS[0].name)}  "
                        r"\(\d\d:\d\d elapsed, \d\d:\d\d left\)", lines[0])
    assert lines[1].startswith(f"[matrix] [  2/3] fail    {SCENARIOS[1].name}  (")
    assert lines[1].endswith("  BUG: kernel NULL pointer dereference")
    assert "\r" not in out.getvalue()


def test_matrix_bar_keeps_the_scenarios_that_did_not_pass_above_it() -> None:
    out = io.StringIO()
    with MatrixProgress(3, "matrix", stream=out, bar=True) as p:
        p.update(outcome(0, Verdict.PASS), 1, 3)
        p.update(outcome(1, Verdict.HANG, "guest hang"), 2, 3)
        p.update(outcome(2, Verdict.PASS), 3, 3)
        assert p.counts == {"pass": 2, "hang": 1}
    text = out.getvalue()
    assert f"hang    {SCENARIOS[1].name}  guest hang\n" in text
    assert f"{SCENARIOS[0].name}" not in text  # a pass only moves the bar
    final = text.rsplit("\r", 1)[-1]
    assert "3/3" in final and "2 pass" in final and "1 hang" in final


def test_matrix_bar_does_not_move_back_when_a_verdict_is_revised() -> None:
    out = io.StringIO()
    with MatrixProgress(2, stream=out, bar=True) as p:
        p.update(outcome(0, Verdict.PASS), 1, 2)
        p.update(outcome(0, Verdict.FAIL, "a report printed after it ended"), 1, 2)
        assert p._bar is not None and p._bar.n == 1


def test_race_without_a_terminal_prints_cycles_iterations_and_reports() -> None:
    out = io.StringIO()
    with RaceProgress(120, "race seed 7", stream=out) as p:
        p.update({"elapsed": 5.1, "cycles": 3, "iterations": [10, 2, 6], "reports": 0})
        p.update({"elapsed": 10.2, "cycles": 4, "iterations": [20, 4, 9], "reports": 1})
    assert out.getvalue().splitlines() == [
        "  [race seed 7]    5.1 s  cycles 3, iterations 18, reports 0",
        "  [race seed 7]   10.2 s  cycles 4, iterations 33, reports 1",
    ]


def test_race_bar_counts_seconds_of_the_duration() -> None:
    out = io.StringIO()
    with RaceProgress(20, "race seed 7", stream=out, bar=True) as p:
        p.update({"elapsed": 5.0, "cycles": 3, "iterations": [1, 2, 3], "reports": 0})
        p.update({"elapsed": 25.0, "cycles": 9, "iterations": [4, 5, 6], "reports": 1})
        assert p._bar is not None and p._bar.n == 20  # never past the duration
    final = out.getvalue().rsplit("\r", 1)[-1]
    assert "20/20 s" in final and "cycles 9, iterations 15, reports 1" in final
