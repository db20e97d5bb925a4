"""Crash turnaround: the emulated rcar-vin matrix on debian-arm64, where most
scenarios crash the kernel and each crash costs a boot.

Targets on a 2-core TCG machine: the whole matrix in <= 12 minutes, and
<= 10 s per boot that ended in a kernel report, boot included. Printed per
run: the wall time, the boots (those that ended after a report, with their
median and longest), and every signature found, with the scenarios that
found it, so two runs (before and after a change) can be compared line by
line. Alone: `.venv/bin/python -m tests.bench rcar [SCENARIO...]`.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.host.runner import run_scenarios
from harness.host.targets.emulated import provision
from harness.host.targets.qemu import QemuTarget
from harness.host.targets.run import DEADLINES, Deadlines, EventHook, GuestRun
from harness.pure.kmsg.report import parse_log
from harness.pure.profiles import get_profile
from harness.pure.scenarios.matrix import build_matrix

FLAVOUR = "debian-arm64"
MATRIX_TARGET = 12 * 60.0
CRASH_BOOT_TARGET = 10.0


class TimedTarget:
    """The target, with each boot's wall time noted beside its run."""

    def __init__(self, target: QemuTarget):
        self.target = target
        self.walls: list[tuple[float, GuestRun]] = []

    def run(self, tasks: list[dict[str, Any]], run_dir: Path, deadlines: Deadlines = DEADLINES,
            on_event: EventHook | None = None) -> GuestRun:
        start = time.monotonic()
        run = self.target.run(tasks, run_dir, deadlines, on_event)
        self.walls.append((time.monotonic() - start, run))
        return run


def main() -> None:
    names = sys.argv[2:]  # scenario names: a part of the matrix
    profile = get_profile("rcar-vin")
    target, kernel = provision(FLAVOUR, profile)
    matrix = [s for s in build_matrix(profile) if not names or s.name in names]
    timed = TimedTarget(target)
    # Kept: the consoles are what to read when two runs' signatures differ.
    out = Path(tempfile.mkdtemp(prefix="v4l2-unplug-bench-rcar-"))
    start = time.monotonic()
    result = run_scenarios(timed, profile.name, matrix, out)
    wall = time.monotonic() - start
    verdicts = {v: sum(o.verdict == v for o in result.outcomes)
                for v in ("pass", "fail", "hang", "error")}
    crashed = [w for w, run in timed.walls if parse_log(run.console())]
    spread = (f"median {statistics.median(crashed):.1f} s, longest {max(crashed):.1f} s"
              if crashed else "none")
    print(f"rcar-vin on {FLAVOUR} ({kernel.release}): {len(matrix)} scenarios in {wall:.0f} s, "
          f"{len(timed.walls)} boots {verdicts}  target <= {MATRIX_TARGET:.0f} s; consoles in "
          f"{out}", flush=True)
    print(f"boots that ended after a kernel report: {len(crashed)}, {spread}  "
          f"target <= {CRASH_BOOT_TARGET:.0f} s each", flush=True)
    found: dict[str, list[str]] = defaultdict(list)
    for o in result.outcomes:
        for f in o.findings:
            if o.scenario.name not in found[f.signature]:
                found[f.signature].append(o.scenario.name)
    for signature in sorted(found):
        scenarios = found[signature]
        print(f"  {signature}  ({len(scenarios)}: {', '.join(scenarios)})", flush=True)


if __name__ == "__main__":
    main()
