"""Baseline against patched: every signature's hit rate on each side, and what that means.

Input is the documents the runs wrote (results.json of a scenario run,
or of a race), so a comparison can be redone from a report directory.
A *hit* is a run (one repetition) in which the signature appeared in any
scenario; with `--repeat N` each side has N runs and a signature's rate
on a side is hits/N.

Status of a signature (see README, "validate"):

- introduced:    never on the baseline, in every patched run
- fixed:         in every baseline run, never patched
- still-present: in every run on both sides
- flaky:         anything else: it came and went on at least one side, so
                 one side's absence proves nothing (raise --repeat)

Besides kernel reports, a broken contract ("CONTRACT:<id>") and a scenario
that hung or errored without any kernel report ("VERDICT:<verdict>") are
signatures too: a patch that keeps vimc from probing shows up as one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.host.race_verdict import judge_doc
from harness.host.targets.run import Outcome as RunOutcome
from harness.pure.scenarios.verdicts import PatchResult, SignatureStatus, Verdict

SIDES = ("base", "head")
SIDE_LABELS = {"base": "baseline", "head": "patched"}
# How a race's guest may end that is the kernel's doing, and so a signature of
# its own when no report says more (a lost or interrupted run is not).
KERNEL_ENDINGS = (RunOutcome.HANG, RunOutcome.CRASHED)
# In the order validate.json lists signatures: introduced first.
STATUSES = tuple(SignatureStatus)

# Exit status of `validate`, by what the patch did (2 is any harness error).
EXIT = {PatchResult.UNCHANGED: 0, PatchResult.INTRODUCED: 1, PatchResult.FIXED: 3,
        PatchResult.FLAKY: 4}


@dataclass(frozen=True)
class Hit:
    """One signature in one scenario of one run."""

    side: str
    run: int  # 1-based repetition
    scenario: str
    finding: dict[str, Any]  # a finding as results.json holds it (Finding.to_dict)
    console: str | None  # the console log the finding was read from
    kernel_report: bool = True  # False: a broken contract, a hang, an error


def hits(doc: dict[str, Any], side: str, run: int) -> Iterator[Hit]:
    """Every signature a run document shows, as hits."""
    if doc.get("mode") == "race":
        for f in doc.get("findings", []):
            yield Hit(side, run, "race", f, doc.get("console"))
        if doc.get("outcome") in KERNEL_ENDINGS and not doc.get("findings"):
            yield Hit(side, run, "race", _pseudo("VERDICT", doc["outcome"],
                                                 f"the race's guest {doc['outcome']}"), None,
                      kernel_report=False)
        return
    for f in doc.get("boot_findings", []):
        yield Hit(side, run, "(boot)", f, None)
    for s in doc.get("scenarios", []):
        for f in s.get("findings", []):
            yield Hit(side, run, s["name"], f, s.get("console"))
        for c in s.get("contracts", []):
            if not c.get("passed", True):
                yield Hit(side, run, s["name"],
                          _pseudo("CONTRACT", c["contract"], c.get("detail", "")),
                          s.get("console"), kernel_report=False)
        # A target lost from outside (QEMU killed, ssh dropped) is no signature:
        # it says nothing of either kernel.
        if (s["verdict"] in (Verdict.HANG, Verdict.ERROR) and not s.get("findings")
                and not s.get("lost")):
            yield Hit(side, run, s["name"],
                      _pseudo("VERDICT", s["verdict"], s.get("reason", "")), s.get("console"),
                      kernel_report=False)


def _pseudo(cls: str, what: str, detail: str) -> dict[str, Any]:
    title = {"CONTRACT": f"contract broken: {what}", "VERDICT": f"scenario {what}"}[cls]
    return {"signature": f"{cls}:{what}", "title": title, "class": cls, "text": detail}


@dataclass
class SignatureDiff:
    signature: str
    title: str
    cls: str
    runs: int
    hits: dict[str, set[int]] = field(default_factory=lambda: {s: set() for s in SIDES})
    # scenario -> side -> runs in which it showed there
    scenarios: dict[str, dict[str, set[int]]] = field(default_factory=dict)
    examples: dict[str, Hit] = field(default_factory=dict)  # first hit on each side

    def rate(self, side: str) -> float:
        return len(self.hits[side]) / self.runs if self.runs else 0.0

    @property
    def status(self) -> SignatureStatus:
        b, h, n = len(self.hits["base"]), len(self.hits["head"]), self.runs
        return {(0, n): SignatureStatus.INTRODUCED, (n, 0): SignatureStatus.FIXED,
                (n, n): SignatureStatus.STILL_PRESENT}.get((b, h), SignatureStatus.FLAKY)

    def to_dict(self) -> dict[str, Any]:
        return {
            "signature": self.signature,
            "title": self.title,
            "class": self.cls,
            "status": self.status,
            **{side: {"hits": len(self.hits[side]), "runs": self.runs,
                      "rate": round(self.rate(side), 3)} for side in SIDES},
            "scenarios": [
                {"name": name, **{side: len(runs[side]) for side in SIDES}}
                for name, runs in self.scenarios.items()
            ],
            "examples": {
                side: {"run": ex.run, "scenario": ex.scenario, "console": ex.console,
                       "line": ex.finding.get("line"), "text": ex.finding.get("text", ""),
                       # the whole report, as results.json holds it: what the kernel
                       # said on each side (KASAN's allocation and free frames, ...)
                       "finding": ex.finding if ex.kernel_report else None}
                for side, ex in self.examples.items()
            },
        }


@dataclass
class Comparison:
    runs: int
    signatures: list[SignatureDiff]
    verdicts: dict[str, dict[str, list[Verdict]]]  # scenario -> side -> verdict of each run

    def by_status(self, status: SignatureStatus) -> list[SignatureDiff]:
        return [s for s in self.signatures if s.status == status]

    @property
    def counts(self) -> dict[SignatureStatus, int]:
        return {status: len(self.by_status(status)) for status in STATUSES}

    @property
    def result(self) -> PatchResult:
        """What the patch did, most serious first: it is also the exit status."""
        counts = self.counts
        for status, result in ((SignatureStatus.INTRODUCED, PatchResult.INTRODUCED),
                               (SignatureStatus.FIXED, PatchResult.FIXED),
                               (SignatureStatus.FLAKY, PatchResult.FLAKY)):
            if counts[status]:
                return result
        return PatchResult.UNCHANGED

    @property
    def exit_status(self) -> int:
        return EXIT[self.result]

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "result": self.result,
            "exit_status": self.exit_status,
            "counts": self.counts,
            "signatures": [s.to_dict() for s in self.signatures],
            "verdicts": [{"scenario": name, **sides} for name, sides in self.verdicts.items()],
        }


def compare(base: Sequence[Sequence[dict[str, Any]]],
            head: Sequence[Sequence[dict[str, Any]]]) -> Comparison:
    """Compare both sides: for each repetition (in order), the run documents it wrote
    (a scenario run, a race, or both)."""
    if len(base) != len(head):
        raise ValueError("both sides need the same number of runs")
    runs = len(base)
    sigs: dict[str, SignatureDiff] = {}
    verdicts: dict[str, dict[str, list[Verdict]]] = {}
    for side, repetitions in (("base", base), ("head", head)):
        for run, docs in enumerate(repetitions, start=1):
            for doc in docs:
                for name, verdict in _verdicts(doc):
                    verdicts.setdefault(name, {x: [] for x in SIDES})[side].append(verdict)
                for hit in hits(doc, side, run):
                    f = hit.finding
                    d = sigs.get(f["signature"])
                    if d is None:
                        d = sigs[f["signature"]] = SignatureDiff(
                            f["signature"], f.get("title", f["signature"]), f.get("class", "?"),
                            runs)
                    d.hits[side].add(run)
                    d.scenarios.setdefault(hit.scenario, {x: set() for x in SIDES})[side].add(run)
                    d.examples.setdefault(side, hit)
    order = {status: i for i, status in enumerate(STATUSES)}
    ordered = sorted(sigs.values(), key=lambda d: (order[d.status], d.signature))
    return Comparison(runs, ordered, verdicts)


def _verdicts(doc: dict[str, Any]) -> Iterator[tuple[str, Verdict]]:
    for s in doc.get("scenarios", []):
        yield s["name"], Verdict(s["verdict"])
    if doc.get("mode") == "race":
        yield "race", judge_doc(doc)[0]
