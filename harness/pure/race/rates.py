"""Per-signature rates over several races, with exact Poisson intervals.

Each race is a stretch of exposure (disruption cycles, seconds); a signature
is counted once per race it appeared in (its first hit), and its hits are
treated as a Poisson count over the summed exposure of every race. The
interval is Garwood's exact (central) one, from the chi-square quantiles:

    low  = chi2.ppf(a/2,     2k)     / 2     (0 when k = 0)
    high = chi2.ppf(1 - a/2, 2k + 2) / 2

with a = 1 - confidence, on the count k, divided by the exposure in cycles.
A signature that never appeared gets only its upper end: "not seen in N
cycles" bounds its rate, it never calls it gone. docs/race-statistics.md
works an example by hand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.pure.race.exposure import Exposure

CONFIDENCE = 0.95
PER_CYCLES = 1000  # rates are hits per this many disruption cycles

# The row that counts a race once whatever report it saw: the bound a clean
# series of races supports for every signature at once.
ANY_REPORT = "any kernel report"


@dataclass(frozen=True)
class Interval:
    """Bounds on a Poisson mean (a count), at `confidence`, two-sided."""

    low: float
    high: float
    confidence: float


def poisson_interval(hits: int, confidence: float = CONFIDENCE) -> Interval:
    """Garwood's exact interval for the mean of a Poisson count that came out `hits`."""
    if hits < 0 or not 0 < confidence < 1:
        raise ValueError(f"no Poisson interval for {hits} hits at {confidence}")
    # scipy is imported here, not at the top: the guest imports harness.pure
    # and never needs it.
    from scipy.stats import chi2

    alpha = 1 - confidence
    low = 0.0 if hits == 0 else float(chi2.ppf(alpha / 2, 2 * hits)) / 2
    high = float(chi2.ppf(1 - alpha / 2, 2 * hits + 2)) / 2
    return Interval(low, high, confidence)


@dataclass(frozen=True)
class Total:
    """Exposure summed over races."""

    races: int
    seconds: float
    cycles: int
    iterations: int
    censored: int  # races a kernel report stopped

    @classmethod
    def of(cls, exposures: Sequence[Exposure]) -> Total:
        return cls(len(exposures), round(sum(e.seconds for e in exposures), 3),
                   sum(e.cycles for e in exposures), sum(e.iterations for e in exposures),
                   sum(e.censored for e in exposures))

    def to_dict(self) -> dict[str, Any]:
        return {"races": self.races, "seconds": self.seconds, "cycles": self.cycles,
                "iterations": self.iterations, "censored": self.censored}


@dataclass(frozen=True)
class SignatureRate:
    """One signature's hits over a total exposure, and what they say about its rate."""

    signature: str
    hits: int  # races it appeared in
    exposure: Total
    count: Interval  # on the number of hits; rates divide it by the cycles

    def _per(self, hits: float) -> float | None:
        if not self.exposure.cycles:
            return None
        return hits / self.exposure.cycles * PER_CYCLES

    @property
    def rate(self) -> float | None:
        """Hits per PER_CYCLES cycles (None without a cycle of exposure)."""
        return self._per(self.hits)

    @property
    def low(self) -> float | None:
        return self._per(self.count.low)

    @property
    def high(self) -> float | None:
        return self._per(self.count.high)

    def line(self) -> str:
        """One line of the text summary."""
        e = self.exposure
        where = f"{e.cycles} cycles ({e.seconds:.1f} s, {e.races} race{'s' * (e.races != 1)})"
        conf = f"{self.count.confidence:.0%}"
        if self.high is None:
            return f"{self.signature}: {self.hits} hits with no cycle of exposure: no rate"
        if not self.hits:
            return (f"{self.signature}: not seen in {where}: "
                    f"rate < {number(self.high)} per {PER_CYCLES:,} cycles, {conf}")
        assert self.rate is not None and self.low is not None
        return (f"{self.signature}: {self.hits} hit{'s' * (self.hits != 1)} in {where}: "
                f"{number(self.rate)} per {PER_CYCLES:,} cycles, "
                f"{conf} interval {number(self.low)} to {number(self.high)}")

    def to_dict(self) -> dict[str, Any]:
        return {"signature": self.signature, "hits": self.hits, "seen": self.hits > 0,
                "rate": self.rate, "low": self.low, "high": self.high,
                "count_low": self.count.low, "count_high": self.count.high}


@dataclass(frozen=True)
class Tally:
    """Every signature's rate over a series of races."""

    exposure: Total
    signatures: tuple[SignatureRate, ...]  # by hits, most first
    any_report: SignatureRate
    unmeasured: int  # races that ran without counts: not in the exposure
    confidence: float

    def lines(self) -> list[str]:
        e = self.exposure
        head = (f"exposure: {e.races} race{'s' * (e.races != 1)}, {e.cycles} cycles, "
                f"{e.seconds:.1f} s, {e.iterations} worker iterations"
                f" ({e.censored} stopped at a kernel report)")
        rows = [head, *(s.line() for s in self.signatures), self.any_report.line()]
        if self.unmeasured:
            rows.append(f"not counted: {self.unmeasured} race{'s' * (self.unmeasured != 1)}"
                        " that recorded no exposure (the race did not run, or the guest died)")
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"confidence": self.confidence, "per_cycles": PER_CYCLES,
                "method": "garwood", "exposure": self.exposure.to_dict(),
                "signatures": [s.to_dict() for s in self.signatures],
                "any_report": self.any_report.to_dict(),
                "unmeasured": self.unmeasured}


def tally(exposures: Sequence[Exposure], expected: Iterable[str] = (),
          unmeasured: int = 0, confidence: float = CONFIDENCE) -> Tally:
    """Rates of every signature seen in `exposures`, and of each `expected` one
    even when unseen (its upper bound). `unmeasured` counts the races that ran
    without counts, reported as such and left out."""
    total = Total.of(exposures)
    hits: dict[str, int] = dict.fromkeys(expected, 0)
    for e in exposures:
        for sig in sorted(e.signatures):
            hits[sig] = hits.get(sig, 0) + 1

    def rate(signature: str, n: int) -> SignatureRate:
        return SignatureRate(signature, n, total, poisson_interval(n, confidence))

    rows = sorted((rate(sig, n) for sig, n in hits.items()), key=lambda r: (-r.hits, r.signature))
    anything = rate(ANY_REPORT, sum(1 for e in exposures if e.first_hits))
    return Tally(total, tuple(rows), anything, unmeasured, confidence)


def number(x: float) -> str:
    """Three significant figures, without an exponent (1,252 not 1.25e+03)."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    decimals = max(0, 2 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"
