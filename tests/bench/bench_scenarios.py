"""Scenario throughput: the full vimc matrix per flavour, and race-mode rates.

Target: the full vimc matrix on the debug flavour in <= 10 minutes on a
2-core TCG machine. Race rates are per second of the race actually run (a
race ends at the first kernel report).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from harness.host.runner import RunResult, run_race, run_scenarios
from harness.host.targets.emulated import provision
from harness.host.targets.qemu import QemuTarget
from harness.pure.profiles import DriverProfile, get_profile
from harness.pure.scenarios.matrix import build_matrix

RACE_SECONDS = 30.0


def matrix_run(target: QemuTarget, profile: DriverProfile, out: Path) -> tuple[float, RunResult]:
    """The whole matrix of `profile` on `target`: (wall seconds, result)."""
    start = time.monotonic()
    result = run_scenarios(target, profile.name, build_matrix(profile), out)
    return time.monotonic() - start, result


def main() -> None:
    flavours = sys.argv[2:] or ["debian", "debug"]
    profile = get_profile("vimc")
    matrix = build_matrix(profile)
    for flavour in flavours:
        target, _ = provision(flavour, profile)
        with tempfile.TemporaryDirectory() as tmp:
            wall, result = matrix_run(target, profile, Path(tmp) / "matrix")
            verdicts = {v: sum(o.verdict == v for o in result.outcomes)
                        for v in ("pass", "fail", "hang", "error")}
            print(f"{flavour:7} matrix: {len(matrix)} scenarios in {wall:.0f} s "
                  f"({len(matrix) / wall * 60:.1f}/min, {len(result.boots)} boots) {verdicts}"
                  f"{'  target <= 600 s' if flavour == 'debug' else ''}", flush=True)
            race = run_race(target, profile.name, RACE_SECONDS, seed=1, workers=3,
                            mode="unbind", report_dir=Path(tmp) / "race")
        s = race.stats
        if "workers" not in s:
            print(f"{flavour:7} race: {s.get('error', 'no result')}")
            continue
        rates = ", ".join(f"{w['per_second']}/s" for w in s["workers"])
        ended = "first kernel report" if s.get("stopped_early") else "duration"
        print(f"{flavour:7} race: {s['duration']} s (ended by {ended}); worker iterations "
              f"{rates}; disruptor {s['cycles_per_second']} cycles/s", flush=True)


if __name__ == "__main__":
    main()
