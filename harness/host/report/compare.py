"""Baseline against patched: every signature's hits and exposure on each side,
and the status they support (harness.pure.race.status decides it).

Input is the documents the runs wrote (results.json of a scenario run,
or of a race), so a comparison can be redone from a report directory.
A *hit* is a run (one repetition) in which the signature appeared in any
scenario, or a race it appeared in.

Exposure: a race counts its disruption cycles, censored where a report
stopped it (its `exposure`; a race without one is not counted); a scenario
run counts as one run. A signature seen in any race is decided on the races'
cycles; one seen only in scenario runs, on the runs. Status of a signature:
introduced, unmasked, narrowed, inconclusive, fixed or still-present, as
docs/race-statistics.md ("Verdicts") defines them.

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
from harness.pure.race.rates import CONFIDENCE
from harness.pure.race.status import CYCLES, RUNS, Decision, Stretch, Unit, decide
from harness.pure.scenarios.verdicts import PatchResult, SignatureStatus, Verdict

SIDES = ("base", "head")
SIDE_LABELS = {"base": "baseline", "head": "patched"}
# How a race's guest may end that is the kernel's doing, and so a signature of
# its own when no report says more (a lost or interrupted run is not).
KERNEL_ENDINGS = (RunOutcome.HANG, RunOutcome.CRASHED)
# In the order validate.json lists signatures: introduced first.
STATUSES = tuple(SignatureStatus)

# What the patch did: the first of these statuses any signature has (else unchanged).
RESULTS = ((SignatureStatus.INTRODUCED, PatchResult.INTRODUCED),
           (SignatureStatus.UNMASKED, PatchResult.UNMASKED),
           (SignatureStatus.NARROWED, PatchResult.NARROWED),
           (SignatureStatus.INCONCLUSIVE, PatchResult.INCONCLUSIVE),
           (SignatureStatus.FIXED, PatchResult.FIXED))

# Exit status of `validate`, by what the patch did (2 is any harness error).
EXIT = {PatchResult.UNCHANGED: 0, PatchResult.INTRODUCED: 1, PatchResult.FIXED: 3,
        PatchResult.INCONCLUSIVE: 4, PatchResult.UNMASKED: 5, PatchResult.NARROWED: 6}


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
    decision: Decision | None = None  # set by compare()

    @property
    def status(self) -> SignatureStatus:
        assert self.decision is not None
        return self.decision.status

    def rate(self, side: str) -> str:
        """Its hits on a side over that side's exposure, in a few characters."""
        assert self.decision is not None
        n = self.decision.base if side == "base" else self.decision.head
        return f"{n.hits}/{n.exposure:g} {self.decision.unit.name}"

    def to_dict(self) -> dict[str, Any]:
        assert self.decision is not None
        d = self.decision.to_dict()
        return {
            "signature": self.signature,
            "title": self.title,
            "class": self.cls,
            "status": self.status,
            "reason": d["reason"],
            **{side: {**d[side], "runs": self.runs,
                      "runs_hit": len(self.hits[side])} for side in SIDES},
            "unit": d["unit"],
            "confidence": d["confidence"],
            "tests": d["tests"],
            "remains": d["remains"],
            "needed": d["needed"],
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
    # races per side that recorded no exposure (the guest died first): not counted
    unmeasured: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIDES, 0))
    confidence: float = CONFIDENCE
    alpha: float = 1 - CONFIDENCE

    def by_status(self, status: SignatureStatus) -> list[SignatureDiff]:
        return [s for s in self.signatures if s.status == status]

    @property
    def counts(self) -> dict[SignatureStatus, int]:
        return {status: len(self.by_status(status)) for status in STATUSES}

    @property
    def result(self) -> PatchResult:
        """What the patch did, most serious first: it is also the exit status. A
        clean "fixed" needs every other signature fixed or still present."""
        counts = self.counts
        for status, result in RESULTS:
            if counts[status]:
                return result
        return PatchResult.UNCHANGED

    @property
    def undecided(self) -> list[SignatureDiff]:
        return self.by_status(SignatureStatus.INCONCLUSIVE)

    @property
    def exit_status(self) -> int:
        return EXIT[self.result]

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "result": self.result,
            "exit_status": self.exit_status,
            "counts": self.counts,
            "confidence": self.confidence,
            "alpha": self.alpha,
            "unmeasured": self.unmeasured,
            "signatures": [s.to_dict() for s in self.signatures],
            "verdicts": [{"scenario": name, **sides} for name, sides in self.verdicts.items()],
        }


def compare(base: Sequence[Sequence[dict[str, Any]]],
            head: Sequence[Sequence[dict[str, Any]]], confidence: float = CONFIDENCE,
            alpha: float | None = None) -> Comparison:
    """Compare both sides: for each repetition (in order), the run documents it wrote
    (a scenario run, a race, or both). `alpha` is the tests' (default 1 - confidence)."""
    if len(base) != len(head):
        raise ValueError("both sides need the same number of runs")
    runs = len(base)
    sigs: dict[str, SignatureDiff] = {}
    verdicts: dict[str, dict[str, list[Verdict]]] = {}
    raced: set[str] = set()
    stretches: dict[Unit, dict[str, list[Stretch]]] = {u: {x: [] for x in SIDES}
                                                      for u in (CYCLES, RUNS)}
    unmeasured = dict.fromkeys(SIDES, 0)
    for side, repetitions in (("base", base), ("head", head)):
        for run, docs in enumerate(repetitions, start=1):
            seen: dict[str, float | None] = {}  # in this repetition's scenario runs
            ran_scenarios = False
            seconds = 0.0
            for doc in docs:
                for name, verdict in _verdicts(doc):
                    verdicts.setdefault(name, {x: [] for x in SIDES})[side].append(verdict)
                doc_hits = list(hits(doc, side, run))
                evidence = doc.get("role") == "evidence"
                for hit in [] if evidence else doc_hits:
                    f = hit.finding
                    d = sigs.get(f["signature"])
                    if d is None:
                        d = sigs[f["signature"]] = SignatureDiff(
                            f["signature"], f.get("title", f["signature"]), f.get("class", "?"),
                            runs)
                    d.hits[side].add(run)
                    d.scenarios.setdefault(hit.scenario, {x: set() for x in SIDES})[side].add(run)
                    d.examples.setdefault(side, hit)
                if doc.get("mode") == "race":
                    shown = {h.finding["signature"] for h in doc_hits}
                    stretch = race_stretch(doc, shown)
                    if stretch is None:
                        unmeasured[side] += 1
                    else:
                        stretches[CYCLES][side].append(stretch)
                    if not evidence:
                        raced |= shown
                else:
                    ran_scenarios = True
                    seconds += float(doc.get("duration_s", 0.0))
                    seen.update(dict.fromkeys(h.finding["signature"] for h in doc_hits))
            if ran_scenarios:
                stretches[RUNS][side].append(Stretch(1, seconds, hits=seen))
    for sig, d in sigs.items():
        unit = CYCLES if sig in raced else RUNS
        d.decision = decide(sig, stretches[unit]["base"], stretches[unit]["head"], unit,
                            confidence, alpha)
    order = {status: i for i, status in enumerate(STATUSES)}
    ordered = sorted(sigs.values(), key=lambda d: (order[d.status], d.signature))
    return Comparison(runs, ordered, verdicts, unmeasured, confidence,
                      1 - confidence if alpha is None else alpha)


def race_stretch(doc: dict[str, Any], signatures: set[str]) -> Stretch | None:
    """A race document as a stretch of exposure (None when the race recorded none).

    Read from results.json alone, so that races written by any build feed it:
    its `exposure` (cycles, censored at a stopping report, the cycle of each
    first hit), its KCSAN findings (the functions each data race names), and
    `role`: "evidence" for a race run beside the compared ones (a KCSAN build
    beside the KASAN one), whose reports show a race remains but whose
    exposure is not in the rates.
    """
    e = doc.get("exposure")
    if not e:
        return None
    first = {h["signature"]: h for h in e.get("first_hits", [])}
    data_races = tuple(frozenset(_data_race_functions(f["title"]))
                       for f in doc.get("findings", []) if f.get("class") == "KCSAN")
    return Stretch(float(e["cycles"]), float(e["seconds"]), bool(e["censored"]),
                   hits={sig: first.get(sig, {}).get("cycle") for sig in signatures},
                   hit_seconds={sig: first.get(sig, {}).get("seconds") for sig in signatures},
                   data_races=data_races, evidence_only=doc.get("role") == "evidence")


def _data_race_functions(title: str) -> list[str]:
    """The functions of a KCSAN title ("KCSAN: data-race in f / g")."""
    _, _, where = title.partition(" in ")
    return [name.strip() for name in where.split(" / ") if name.strip()]


def _verdicts(doc: dict[str, Any]) -> Iterator[tuple[str, Verdict]]:
    for s in doc.get("scenarios", []):
        yield s["name"], Verdict(s["verdict"])
    if doc.get("mode") == "race":
        yield "race", judge_doc(doc)[0]
