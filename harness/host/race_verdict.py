"""What a race came to: one verdict and its reason, from the race's record.

The exit status, KTAP, JUnit, validate's comparison and the history row all
ask the same question of a race; they ask it here. The rules are rows, tried
in order, so the first that applies wins: a kernel report first (it is the
verdict, whatever else went wrong), then how the guest ended, then what the
agent's own numbers say. A race that exercised nothing (no disruption cycle,
no worker iteration) never passes: its silence is not evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.host.targets.run import Outcome
from harness.pure.scenarios.verdicts import Verdict


@dataclass(frozen=True)
class RaceFacts:
    """The parts of a race's results.json a verdict rests on."""

    stats: Mapping[str, Any]
    findings: list[str]  # titles of the kernel reports after the race began
    outcome: Outcome
    message: str = ""  # why the guest ended, when it did not finish

    @classmethod
    def of_doc(cls, doc: Mapping[str, Any]) -> RaceFacts:
        return cls(doc.get("stats") or {}, [f.get("title", "") for f in doc.get("findings", [])],
                   Outcome(doc.get("outcome") or Outcome.DONE), doc.get("message", ""))

    @property
    def iterations(self) -> int:
        return sum(int(w.get("iterations") or 0) for w in self.stats.get("workers") or [])


@dataclass(frozen=True)
class Rule:
    verdict: Verdict
    applies: Callable[[RaceFacts], bool]
    reason: Callable[[RaceFacts], str]


RULES: tuple[Rule, ...] = (
    Rule(Verdict.FAIL, lambda f: bool(f.findings), lambda f: "; ".join(f.findings)),
    Rule(Verdict.INTERRUPTED, lambda f: f.outcome == Outcome.INTERRUPTED,
         lambda f: f"{f.message} after {f.stats.get('cycles', 0)} cycles, "
                   f"{f.iterations} worker iterations"),
    Rule(Verdict.HANG, lambda f: f.outcome == Outcome.HANG,
         lambda f: f"guest hang: {f.message}"),
    # The guest went away mid-race (a panic ends QEMU): the kernel's doing.
    Rule(Verdict.FAIL, lambda f: f.outcome == Outcome.CRASHED,
         lambda f: f"guest crashed: {f.message}"),
    Rule(Verdict.ERROR, lambda f: f.outcome != Outcome.DONE,
         lambda f: f"guest {f.outcome}: {f.message}"),
    Rule(Verdict.ERROR, lambda f: "error" in f.stats,
         lambda f: f"the race could not run: {f.stats['error']}"),
    Rule(Verdict.FAIL, lambda f: bool(f.stats.get("stuck_disruption")),
         lambda f: f"disruption stuck: {f.stats['stuck_disruption']}"),
    Rule(Verdict.FAIL, lambda f: bool(f.stats.get("stuck_workers")),
         lambda f: f"workers stuck in the kernel: {f.stats['stuck_workers']}"),
    Rule(Verdict.ERROR, lambda f: not f.stats.get("cycles"),
         lambda f: "nothing exercised: the disruptor made no cycle"),
    Rule(Verdict.ERROR, lambda f: f.iterations == 0,
         lambda f: "nothing exercised: the workers made no iteration"),
)


def judge(facts: RaceFacts) -> tuple[Verdict, str]:
    """The verdict of the first rule that applies (PASS when none does), and why."""
    for rule in RULES:
        if rule.applies(facts):
            return rule.verdict, rule.reason(facts)
    return Verdict.PASS, ""


def judge_doc(doc: Mapping[str, Any]) -> tuple[Verdict, str]:
    return judge(RaceFacts.of_doc(doc))
