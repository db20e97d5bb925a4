"""One race's exposure: how much racing it did, and when each signature first hit.

A race ends at its duration or at the first kernel report. A race that a
report stopped was still exposed up to that report: its exposure is
censored there, not thrown away, and not counted to the end of the race
either (the cycles after the report raced nothing: the kernel had already
spoken). Times are taken on the kernel's printk clock, from the agent's
"race begin" marker to each report's first line, so the guest's monotonic
clock is used only for the offsets of disruption cycles within the race.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.pure.kmsg.lines import parse_line
from harness.pure.kmsg.report import Finding
from harness.pure.markers import RACE_BEGIN

# What the agent writes to /dev/kmsg as the workers start.
BEGIN_MARKER = RACE_BEGIN


@dataclass(frozen=True)
class FirstHit:
    """Where in the race a signature's first report came."""

    signature: str
    seconds: float | None  # after the race began; None when the console lacks the times
    cycle: int | None  # the disruption cycle under way (1 = the first); 0: none had begun

    def to_dict(self) -> dict[str, Any]:
        return {"signature": self.signature, "seconds": self.seconds, "cycle": self.cycle}


@dataclass(frozen=True)
class Exposure:
    """What one race (one seed, one boot) was exposed to, up to where it stopped."""

    seed: int
    seconds: float
    cycles: int  # disruption cycles begun, the one a stopping report came in included
    iterations: int  # worker iterations, all workers together
    censored: bool  # a kernel report stopped the race: the counts end there
    first_hits: tuple[FirstHit, ...] = ()

    @property
    def signatures(self) -> frozenset[str]:
        return frozenset(h.signature for h in self.first_hits)

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "seconds": self.seconds, "cycles": self.cycles,
                "iterations": self.iterations, "censored": self.censored,
                "first_hits": [h.to_dict() for h in self.first_hits]}


def begin_time(console: str) -> float | None:
    """printk time of the race's begin marker in a console log (None if absent)."""
    for index, raw in enumerate(console.splitlines()):
        if BEGIN_MARKER in raw:
            return parse_line(raw, index).timestamp
    return None


def measure(stats: Mapping[str, Any], findings: Sequence[Finding],
            begin: float | None) -> Exposure | None:
    """The exposure of a race from the agent's result (`stats`), the kernel
    reports after the race began, and the printk time of its begin marker.

    None when the agent sent no counts (the race failed to start, or the guest
    died before it reported): such a race's exposure is unknown, and a
    guess would move every rate computed from it.
    """
    if "seed" not in stats:
        return None
    # Offsets of each cycle's start from the race's start; older agents did
    # not send them, and then only the agent's own cycle of the first report is known.
    starts: list[float] | None = stats.get("cycle_starts")

    def offset(timestamp: float | None) -> float | None:
        if timestamp is None or begin is None:
            return None
        return round(timestamp - begin, 3)

    def cycle_at(seconds: float | None) -> int | None:
        if seconds is None or starts is None:
            return None
        return bisect_right(starts, seconds)

    hits: dict[str, FirstHit] = {}
    for f in sorted(findings, key=lambda f: f.line):
        if f.signature not in hits:
            at = offset(f.timestamp)
            hits[f.signature] = FirstHit(f.signature, at, cycle_at(at))

    workers = stats.get("workers") or []
    first = stats.get("first_report")
    if stats.get("stopped_early") and first is not None:
        # The stop is the kernel's first word: the watch's first report line, or
        # an earlier line of the same report (KASAN's rule above its BUG line).
        stop = min((t for t in (offset(first.get("kernel_time")),
                                *(h.seconds for h in hits.values())) if t is not None),
                   default=None)
        # Without the begin marker the stop cannot be placed; the whole race
        # stands in, which overstates the exposure by the agent's wind-down only.
        seconds = stop if stop is not None else float(stats.get("duration", 0.0))
        cycle = cycle_at(stop)
        cycles = cycle if cycle is not None else int(first.get("cycle", stats.get("cycles", 0)))
        at_stop = first.get("iterations")
        iterations = sum(at_stop) if at_stop else sum(int(w["iterations"]) for w in workers)
        return Exposure(int(stats["seed"]), max(seconds, 0.0), cycles, iterations, True,
                        tuple(hits.values()))
    return Exposure(int(stats["seed"]), float(stats.get("duration", 0.0)),
                    int(stats.get("cycles", 0)), sum(int(w["iterations"]) for w in workers),
                    False, tuple(hits.values()))
