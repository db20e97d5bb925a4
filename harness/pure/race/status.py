"""A signature's status, baseline against patched, from the exposure of each side.

Each side is a list of stretches: races (exposure in disruption cycles,
censored where a report stopped them) or scenario runs (one run each). A
signature's hits on a side are the stretches it appeared in; its rate is
hits over the side's summed exposure (a Poisson count, as in rates.py).

The two rates are compared with the exact conditional test of two Poisson
means: given n = k_base + k_patched hits in all, k_patched is binomial with
p = r·E_patched / (E_base + r·E_patched) when the patched rate is r times the
baseline's. Three one-sided tests, each at alpha = 1 - confidence:

    fell          H0: rate_patched >= rate_base      P(X <= k_patched | r = 1)
    fell by F     H0: rate_patched >= rate_base / F  P(X <= k_patched | r = 1/F)
    rose          H0: rate_patched <= rate_base      P(X >= k_patched | r = 1)

For races each test is made on cycles and again on seconds of racing, and
the larger P counts (an intersection-union test: a claim must hold per
cycle and per second, so a change in pace is not taken for the patch's);
and the decision table (docs/race-statistics.md, "Verdicts"):

    seen base  seen patched
    no         yes  unmasked      every baseline race was stopped by another report
                                  before the exposure at which the patched side first saw it
                    introduced    rose
                    inconclusive  otherwise
    yes        no   narrowed      fell, and a race on the same code remains
                    fixed         fell by F, and nothing remains
                    inconclusive  otherwise
    yes        yes  narrowed      fell (the crash itself remains)
                    still-present otherwise

"A race on the same code remains" is read from the patched side: a data-race
report (KCSAN) naming the signature's function, or the signature itself in a
stretch run only as evidence (a KCSAN build's race beside the KASAN one).

Inconclusive says how much more exposure would decide it, assuming the side
that has not seen the signature goes on not seeing it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.pure.race.rates import CONFIDENCE, number, poisson_interval
from harness.pure.scenarios.verdicts import SignatureStatus


@dataclass(frozen=True)
class Unit:
    """What exposure is counted in, and how far a rate must fall to call it fixed."""

    name: str  # "cycles", "runs"
    per: int  # rates are hits per this many units
    fix_factor: float  # fixed: the patched rate is shown below the baseline's / fix_factor
    # Every test must also pass on seconds of racing (an intersection-union
    # test: no less valid at alpha). A race's cycles come faster or slower with
    # the host's load and the kernel's pace, and so do its chances per cycle:
    # a change seen per cycle and not per second (or the other way) is the pace's.
    by_seconds: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "per": self.per, "fix_factor": self.fix_factor,
                "by_seconds": self.by_seconds}


# A race's window can be narrowed by luck of timing: "fixed" claims a tenfold
# fall at least, so a patch that only halves the window is not called fixed.
CYCLES = Unit("cycles", 1000, 10.0, by_seconds=True)
# A scenario is one fixed sequence of steps: it hits its bug or does not, so a
# fall is a fall; each run is one unit.
RUNS = Unit("runs", 1, 1.0)


@dataclass(frozen=True)
class Stretch:
    """One race (or scenario run) on one side: its exposure and what it showed."""

    exposure: float  # in the unit's terms (cycles of a race; 1 for a run)
    seconds: float = 0.0
    censored: bool = False  # a report stopped it: its exposure ends there
    # signature -> exposure within this stretch at its first hit (None: not known)
    hits: Mapping[str, float | None] = field(default_factory=dict)
    # signature -> seconds into this stretch of its first hit (None or absent: not known)
    hit_seconds: Mapping[str, float | None] = field(default_factory=dict)
    # functions named by each data-race report (KCSAN's "data-race in f / g")
    data_races: tuple[frozenset[str], ...] = ()
    # run beside the compared ones (another build, another condition): its
    # reports are evidence of a remaining race, its exposure is not in the rates
    evidence_only: bool = False


@dataclass(frozen=True)
class SideNumbers:
    """One side's figures for one signature."""

    hits: int
    exposure: float
    seconds: float
    stretches: int
    censored: int
    rate: float | None  # per unit.per units; None without exposure
    low: float | None
    high: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"hits": self.hits, "exposure": self.exposure, "seconds": self.seconds,
                "stretches": self.stretches, "censored": self.censored,
                "rate": self.rate, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Needed:
    """More exposure that would decide an inconclusive signature."""

    side: str  # "base" or "head"
    exposure: float  # more units on that side
    stretches: int  # about this many more races (or runs) of the kind that side ran
    seconds: float | None  # about this long, at that side's pace

    def to_dict(self) -> dict[str, Any]:
        return {"side": self.side, "exposure": self.exposure, "stretches": self.stretches,
                "seconds": self.seconds}


@dataclass(frozen=True)
class Decision:
    signature: str
    status: SignatureStatus
    reason: str
    unit: Unit
    confidence: float  # of the rate intervals
    alpha: float  # of the tests
    base: SideNumbers
    head: SideNumbers
    p_fell: float  # the largest over the measures (cycles, and seconds for races)
    p_fell_by_factor: float
    p_rose: float
    remains: tuple[str, ...] = ()  # evidence that a race on the same code remains
    needed: Needed | None = None
    by_measure: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"signature": self.signature, "status": self.status, "reason": self.reason,
                "unit": self.unit.to_dict(), "confidence": self.confidence,
                "base": self.base.to_dict(), "head": self.head.to_dict(),
                "tests": {"fell": self.p_fell, "fell_by_factor": self.p_fell_by_factor,
                          "rose": self.p_rose, "alpha": self.alpha,
                          "by": {m: dict(t) for m, t in self.by_measure.items()}},
                "remains": list(self.remains),
                "needed": self.needed.to_dict() if self.needed else None}

    def lines(self) -> list[str]:
        """The text summary's lines for this signature, after its status line."""
        u = self.unit
        rows = [f"{label} {_side_line(n, u)}" for label, n in
                (("baseline", self.base), ("patched ", self.head))]
        rows.append(self.reason)
        if self.by_measure:
            # A unit whose fix is any fall (runs) has no second test to show.
            tests = (("fell", "fell"), ("fell_by_factor", f"fell {u.fix_factor:g}-fold"),
                     ("rose", "rose"))
            shown = [t for t in tests if u.fix_factor != 1 or t[0] != "fell_by_factor"]
            rows.append(f"P ({', '.join(label for _, label in shown)}) " + "; ".join(
                f"per {m}: " + ", ".join(f"{t[k]:.3g}" for k, _ in shown)
                for m, t in self.by_measure.items()))
        rows += [f"remains: {r}" for r in self.remains]
        if self.needed:
            n = self.needed
            side = {"base": "baseline", "head": "patched"}[n.side]
            pace = f", about {n.seconds:.0f} s" if n.seconds is not None else ""
            stretch = _count(n.stretches, "race" if u is CYCLES else "run")
            rows.append(f"to decide: about {n.exposure:g} more {side} {u.name} "
                        f"({stretch}{pace}) with no hit")
        return rows


def _side_line(n: SideNumbers, unit: Unit) -> str:
    stretch = "race" if unit is CYCLES else "run"
    where = (f"{n.exposure:g} {unit.name} ({n.seconds:.1f} s, {_count(n.stretches, stretch)}, "
             f"{n.censored} stopped by a report)" if unit is CYCLES
             else f"{_count(n.stretches, stretch)} ({n.seconds:.1f} s)")
    per = f"per {unit.per:,} {unit.name}" if unit.per != 1 else f"per {stretch}"
    hits = _count(n.hits, "hit")
    if n.rate is None or n.high is None or n.low is None:
        return f"{hits} in no exposure: no rate"
    if not n.hits:
        return f"0 hits in {where}: rate < {number(n.high)} {per}"
    return (f"{hits} in {where}: {number(n.rate)} {per}, "
            f"interval {number(n.low)} to {number(n.high)}")


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' * (n != 1)}"


def numbers(signature: str, stretches: Sequence[Stretch], unit: Unit,
            confidence: float = CONFIDENCE) -> SideNumbers:
    """One side's hits, exposure and rate interval for `signature` (compared stretches only)."""
    counted = [s for s in stretches if not s.evidence_only]
    hits = sum(signature in s.hits for s in counted)
    exposure = sum(s.exposure for s in counted)
    seconds = round(sum(s.seconds for s in counted), 3)
    count = poisson_interval(hits, confidence)
    per = (lambda x: x / exposure * unit.per) if exposure else (lambda x: None)
    return SideNumbers(hits, exposure, seconds, len(counted), sum(s.censored for s in counted),
                       per(hits), per(count.low), per(count.high))


def _binom_le(k: int, n: int, p: float) -> float:
    from scipy.stats import binom

    return float(binom.cdf(k, n, p)) if n else 1.0


def _binom_ge(k: int, n: int, p: float) -> float:
    from scipy.stats import binom

    return float(binom.sf(k - 1, n, p)) if n else 1.0


def _share(base: float, head: float, ratio: float) -> float:
    """P(a hit is the patched side's) when its rate is `ratio` times the baseline's."""
    return ratio * head / (base + ratio * head)


def function_of(signature: str) -> str:
    """The function a signature blames: its last field (CLASS:kind:function)."""
    return signature.rsplit(":", 1)[-1]


def remaining(signature: str, head: Sequence[Stretch]) -> tuple[str, ...]:
    """Evidence on the patched side that a race on the signature's code remains."""
    func = function_of(signature)
    found: list[str] = []
    for s in head:
        for names in s.data_races:
            if func in names:
                found.append("data race in " + " / ".join(sorted(names)))
        if s.evidence_only and signature in s.hits:
            found.append(f"{signature} in a race run as evidence")
    return tuple(dict.fromkeys(found))


def _needed(side_name: str, side: SideNumbers, cycles: float,
            seconds: float | None = None) -> Needed:
    """More racing on one side until it has `cycles` units (and `seconds`, when
    given), at the pace that side raced so far."""
    more = max(cycles - side.exposure, 0.0)
    more_s = max(seconds - side.seconds, 0.0) if seconds is not None else 0.0
    per_stretch = side.exposure / side.stretches if side.stretches else 0.0
    per_stretch_s = side.seconds / side.stretches if side.stretches else 0.0
    # A side with no exposure yet gives no pace: one stretch is the least it needs.
    stretches = max(1, math.ceil(more / per_stretch) if per_stretch else 1,
                    math.ceil(more_s / per_stretch_s) if per_stretch_s else 1)
    if per_stretch and per_stretch_s:
        more = max(more, more_s * per_stretch / per_stretch_s)
        more_s = max(more_s, more * per_stretch_s / per_stretch)
        return Needed(side_name, round(more, 1), stretches, round(more_s, 1))
    return Needed(side_name, round(more, 1), stretches, None)


def _tests(b_hits: int, h_hits: int, e_b: float, e_h: float,
           fix_factor: float) -> dict[str, float]:
    """The three one-sided P-values on one measure of exposure."""
    n = b_hits + h_hits
    return {"fell": _binom_le(h_hits, n, _share(e_b, e_h, 1.0)),
            "fell_by_factor": _binom_le(h_hits, n, _share(e_b, e_h, 1 / fix_factor)),
            "rose": _binom_ge(h_hits, n, _share(e_b, e_h, 1.0))}


def decide(signature: str, base: Sequence[Stretch], head: Sequence[Stretch],
           unit: Unit = CYCLES, confidence: float = CONFIDENCE,
           alpha: float | None = None) -> Decision:
    """The status of one signature, with every number it rests on. The rate
    intervals are at `confidence`; the tests at `alpha` (default 1 - confidence;
    less when the series looks more than once, see look_alpha)."""
    if alpha is None:
        alpha = 1 - confidence
    b = numbers(signature, base, unit, confidence)
    h = numbers(signature, head, unit, confidence)
    measures = {unit.name: (b.exposure, h.exposure)}
    if unit.by_seconds:
        measures["seconds"] = (b.seconds, h.seconds)
    have = all(e_b > 0 and e_h > 0 for e_b, e_h in measures.values())
    by = ({m: _tests(b.hits, h.hits, e_b, e_h, unit.fix_factor)
           for m, (e_b, e_h) in measures.items()} if have else {})
    # Intersection-union: a claim stands only where every measure makes it.
    p_fell, p_factor, p_rose = (max((t[k] for t in by.values()), default=1.0)
                                for k in ("fell", "fell_by_factor", "rose"))
    remains = remaining(signature, head)
    conf = f"alpha {alpha:.3g}"

    def made(status: SignatureStatus, reason: str, needed: Needed | None = None) -> Decision:
        return Decision(signature, status, reason, unit, confidence, alpha, b, h, p_fell,
                        p_factor, p_rose, remains, needed, by)

    def target(side: SideNumbers, factor: float, other_hits: int, other: str) -> Needed:
        """The exposure `side` needs, seeing nothing more, for the other side's
        `other_hits` to be significant: E ≥ factor·E_other·(1 - a)/a, a = alpha^(1/k)."""
        a = alpha ** (1 / other_hits)
        e_other = b if side is h else h
        cycles = factor * e_other.exposure * (1 - a) / a
        seconds = factor * e_other.seconds * (1 - a) / a if unit.by_seconds else None
        return _needed(other, side, cycles, seconds)

    if not have:
        side, numbers_ = ("base", b) if not (b.exposure and b.seconds) else ("head", h)
        return made(SignatureStatus.INCONCLUSIVE,
                    f"the {'baseline' if side == 'base' else 'patched'} side recorded no "
                    "exposure: nothing to compare", _needed(side, numbers_, 1.0))
    if b.hits == 0 and h.hits == 0:
        return made(SignatureStatus.INCONCLUSIVE,
                    "not seen in the compared races of either side", None)
    if b.hits == 0 and h.hits > 0:
        reach = _unreached(signature, base, head)
        if reach is not None:
            return made(SignatureStatus.UNMASKED,
                        f"every baseline race was stopped by another report by {reach[0]:g} "
                        f"{unit.name}; the patched side first saw it at {reach[1]:g}")
        if p_rose <= alpha:
            return made(SignatureStatus.INTRODUCED,
                        f"rate rose ({conf}: P = {p_rose:.3g} under equal rates)")
        return made(SignatureStatus.INCONCLUSIVE,
                    f"seen only on the patched side, not often enough to say the patch "
                    f"brought it (P = {p_rose:.3g} under equal rates)",
                    target(b, 1.0, h.hits, "base"))
    if b.hits > 0 and h.hits == 0:
        if remains and p_fell <= alpha:
            return made(SignatureStatus.NARROWED,
                        f"its crash is gone ({conf}: P = {p_fell:.3g} under equal rates) but "
                        "a race on its code remains")
        if p_factor <= alpha and not remains:
            return made(SignatureStatus.FIXED,
                        f"rate fell more than {unit.fix_factor:g}-fold ({conf}: P = "
                        f"{p_factor:.3g} at a {unit.fix_factor:g}-fold fall)")
        why = ("not seen on the patched side, but a race on its code remains there"
               if remains else
               f"not seen on the patched side in too little exposure to say it fell "
               f"{unit.fix_factor:g}-fold (P = {p_factor:.3g})")
        return made(SignatureStatus.INCONCLUSIVE, why,
                    target(h, 1.0 if remains else unit.fix_factor, b.hits, "head"))
    if p_fell <= alpha:
        return made(SignatureStatus.NARROWED,
                    f"rate fell ({conf}: P = {p_fell:.3g} under equal rates), "
                    "but the crash remains")
    rose = f"; its rate rose (P = {p_rose:.3g})" if p_rose <= alpha else ""
    return made(SignatureStatus.STILL_PRESENT, f"seen on both sides, rate not shown to "
                f"fall (P = {p_fell:.3g}){rose}")


def _unreached(signature: str, base: Sequence[Stretch],
               head: Sequence[Stretch]) -> tuple[float, float] | None:
    """(longest baseline race, earliest patched first hit), in cycles, when every
    baseline race was stopped by another report before the patched side's first
    hit, in cycles and, where the hit's time is known, in seconds too."""
    compared = [s for s in base if not s.evidence_only]
    if not compared or not all(s.censored for s in compared):
        return None
    hit = [s for s in head if not s.evidence_only and signature in s.hits]
    firsts = [s.hits[signature] for s in hit]
    known = [f for f in firsts if f is not None]
    if not known or len(known) != len(firsts):
        return None
    longest, earliest = max(s.exposure for s in compared), min(known)
    seconds = [t for s in hit if (t := s.hit_seconds.get(signature)) is not None]
    if seconds and max(s.seconds for s in compared) >= min(seconds):
        return None
    return (longest, earliest) if longest < earliest else None


def decide_all(base: Sequence[Stretch], head: Sequence[Stretch], unit: Unit = CYCLES,
               confidence: float = CONFIDENCE, alpha: float | None = None,
               signatures: Iterable[str] | None = None) -> list[Decision]:
    """Every signature either side's compared stretches showed (or `signatures`)."""
    if signatures is None:
        signatures = sorted({sig for s in (*base, *head) if not s.evidence_only
                             for sig in s.hits})
    return [decide(sig, base, head, unit, confidence, alpha) for sig in signatures]


def look_alpha(confidence: float, look: int) -> float:
    """The tests' alpha at the `look`-th decision (1-based) of a series that
    races on until it decides (--budget): alpha / (look·(look+1)), so that all
    the looks together spend no more than alpha (1/2 + 1/6 + 1/12 + ... = 1)
    and stopping at the first decision does not inflate the error rates."""
    if look < 1:
        raise ValueError("looks count from 1")
    return (1 - confidence) / (look * (look + 1))
