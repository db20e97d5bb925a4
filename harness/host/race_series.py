"""Race mode repeated: one race per seed, each on a fresh boot, and their statistics.

A race is one draw of luck, so a rate needs several. Seeds run in order
(first, first + 1, ...): a series replays with the same first seed. Every
race keeps its own report directory (race-NN/, a complete race report) and
its own history row; the series adds the exposure summed over them and the
per-signature rates (harness.pure.race.rates).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.host.interrupts import Interrupted
from harness.host.kernels.kernel import Kernel
from harness.host.runner import RaceResult, run_race
from harness.host.targets.base import Target
from harness.pure.delays import DelayPlan
from harness.pure.race.exposure import Exposure
from harness.pure.race.rates import Tally

if TYPE_CHECKING:
    from harness.host.targets.base import BoardKernel


@dataclass(frozen=True)
class RacePlan:
    """What a race is asked to be: the options `run --race` and `validate --race` share."""

    duration: float
    seed: int  # the first race's; a series counts up from it
    workers: int
    mode: str  # "unbind" or "rmmod"
    kinds: tuple[str, ...] | None = None  # node kinds the workers use (None: all)

    def to_dict(self) -> dict[str, Any]:
        return {"duration": self.duration, "seed": self.seed, "workers": self.workers,
                "mode": self.mode, "nodes": list(self.kinds) if self.kinds else None}


def seeds(first: int, repeat: int) -> list[int]:
    """The seeds of a series: `repeat` of them, counting up from `first`."""
    return list(range(first, first + repeat))


@dataclass(frozen=True)
class SeriesRace:
    """One race of a series, as it was written to its directory."""

    seed: int
    dir: Path
    result: RaceResult
    exposure: Exposure | None  # None: the agent sent no counts

    def line(self) -> str:
        """How this race went, in one line of the text summary."""
        e = self.exposure
        if e is None:
            why = self.result.stats.get("error") or (
                f"guest {self.result.boot.outcome}: {self.result.boot.message}")
            return f"seed {self.seed}: no exposure recorded ({why}); not counted"
        counts = (f"{e.cycles} cycle{'s' * (e.cycles != 1)}, {e.seconds:.1f} s, "
                  f"{e.iterations} worker iterations")
        if not e.first_hits:
            return f"seed {self.seed}: {counts}, no kernel report"
        hits = "; ".join(f"{h.signature} at {h.seconds} s, cycle {h.cycle}"
                         for h in e.first_hits)
        stop = "stopped at a kernel report" if e.censored else "ran to its end"
        return f"seed {self.seed}: {counts} ({stop}): {hits}"

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "dir": str(self.dir), "outcome": self.result.boot.outcome,
                "failed": self.result.failed,
                "signatures": sorted({f.signature for f in self.result.findings}),
                "exposure": self.exposure.to_dict() if self.exposure else None}


@dataclass(frozen=True)
class Series:
    races: list[SeriesRace]
    expected: tuple[str, ...] = ()  # signatures whose bound is wanted even when unseen

    @property
    def tally(self) -> Tally:
        from harness.host.report.results import race_tally

        return race_tally([r.exposure for r in self.races], self.expected)

    @property
    def failed(self) -> bool:
        return any(r.result.failed for r in self.races)

    @property
    def interrupted(self) -> Interrupted | None:
        """The signal that ended the series (it stops at the race it cut short)."""
        return self.races[-1].result.interrupted if self.races else None


def run_series(target: Target, kernel: Kernel | BoardKernel, driver: str, duration: float,
               first_seed: int, repeat: int, workers: int, mode: str, out: Path,
               kinds: list[str] | None = None,
               progress: Callable[[dict[str, Any]], None] | None = None,
               each: Callable[[SeriesRace], None] | None = None,
               expected: Sequence[str] = (), delays: DelayPlan | None = None) -> Series:
    """Race `repeat` seeds one boot each; each race's report goes to out/race-NN/.
    `delays` (--amplify) is reseeded with each race's seed."""
    from harness.host.report import history, results

    group = uuid.uuid4().hex[:12]  # the history rows of one series belong together
    races: list[SeriesRace] = []
    for i, seed in enumerate(seeds(first_seed, repeat), start=1):
        run_dir = out / f"race-{i:02d}"
        started = time.time()
        result = run_race(target, driver, duration, seed, workers, mode, run_dir, progress,
                          kinds=kinds,
                          delays=dataclasses.replace(delays, seed=seed) if delays else None)
        doc = results.write_race(result, kernel, driver, run_dir, started, expected)
        history.record(doc, "race", "", run_dir, group)
        race = SeriesRace(seed, run_dir, result, results.race_exposure(result))
        races.append(race)
        if each is not None:
            each(race)
        if result.interrupted is not None:
            break  # the races so far are reported; the rest never began
    return Series(races, tuple(expected))
