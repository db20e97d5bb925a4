"""Race mode's seeded choices and its KTAP page (the race itself is a VM test)."""

from __future__ import annotations

from itertools import islice
from typing import Any

from harness.host.race_verdict import judge_doc
from harness.host.report.results import race_ktap
from harness.pure.scenarios.verdicts import Verdict
from harness.target.scenarios.race import CALLS, plan


def _first(seed: int, index: int, kinds: list[str], n: int = 50) -> list:
    return list(islice(plan(seed, index, kinds), n))


def test_a_seed_replays_the_same_choices() -> None:
    kinds = ["video", "media", "subdev"]
    assert _first(7, 0, kinds) == _first(7, 0, kinds)
    assert _first(7, 0, kinds) != _first(8, 0, kinds)
    assert _first(7, 0, kinds) != _first(7, 1, kinds)  # workers differ from each other


def test_choices_stay_within_the_node_kinds_asked_for() -> None:
    for kind, calls, pick in _first(3, 2, ["media"], 200):
        assert kind == "media"
        assert 0 <= pick < 1
        assert calls and set(calls) <= {name for name, _ in CALLS["media"]}
        assert len(calls) == len(set(calls))


def _doc(findings: list[dict], **stats) -> dict:
    return {"stats": {"seed": 7, "mode": "unbind", "cycles": 40, "duration": 20.0,
                      "cycles_per_second": 2.0,
                      "workers": [{"worker": 0, "iterations": 6210, "per_second": 310.5},
                                  {"worker": 1, "iterations": 5960, "per_second": 298.0}],
                      **stats},
            "findings": findings, "outcome": "done"}


def test_race_ktap_passes_without_reports() -> None:
    assert race_ktap(_doc([])).splitlines() == [
        "KTAP version 1",
        "1..1",
        "# race_seed_7_unbind: 40 cycles in 20.0 s (2.0/s); workers 0: 310.5/s, 1: 298.0/s",
        "ok 1 race_seed_7_unbind",
    ]


def test_race_ktap_fails_on_a_report_or_a_stuck_worker() -> None:
    found = race_ktap(_doc([{"title": "general protection fault in subdev_open",
                             "signature": "GPF:general-protection-fault:subdev_open"}]))
    assert "# race_seed_7_unbind: general protection fault in subdev_open" in found
    assert found.endswith("not ok 1 race_seed_7_unbind\n")
    assert race_ktap(_doc([], stuck_workers=[1])).endswith("not ok 1 race_seed_7_unbind\n")


def test_a_race_that_could_not_run_fails_in_ktap_and_exit_status_alike() -> None:
    errored: dict[str, Any] = {"stats": {"error": "RuntimeError: vimc not loaded"}, "findings": [],
               "outcome": "done"}
    assert race_ktap(errored).endswith("not ok 1 race_seed_0_unbind\n")
    assert judge_doc(errored) == (Verdict.ERROR,
                                  "the race could not run: RuntimeError: vimc not loaded")
    assert judge_doc(_doc([])) == (Verdict.PASS, "")
