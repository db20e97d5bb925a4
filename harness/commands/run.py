"""`v4l2-unplug run`: the scenario matrix (or some of it, or race mode) on a kernel."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness.commands import add_kernel_options, kernel_from_args, report_dir


def run(args: argparse.Namespace) -> int:
    from harness.profiles import get_profile
    from harness.report import results
    from harness.scenarios.matrix import build_matrix, select
    from harness.scenarios.runner import Outcome, run_scenarios
    from harness.targets.qemu import QemuTarget

    profile = get_profile(args.driver)
    matrix = build_matrix(profile)
    if args.list:
        print("\n".join(s.name for s in matrix))
        return 0
    chosen = select(matrix, args.scenario)
    kernel = kernel_from_args(args)
    out = report_dir(args, "run")
    started = time.time()
    print(f"{len(chosen)} scenarios of {profile.name} on {kernel.describe()}; report: {out}",
          file=sys.stderr)

    def progress(o: Outcome, done: int, total: int) -> None:
        print(f"[{done:3}/{total}] {o.verdict:7} {o.scenario.name}"
              f"{'  ' + o.reason[:120] if o.reason else ''}", file=sys.stderr, flush=True)

    result = run_scenarios(QemuTarget(kernel), profile.name, chosen, out, progress)
    results.write(result, kernel, profile.name, out, started)
    print(results.summary(result))
    print(f"report: {out}/results.json, {out}/results.ktap; consoles in {out}/boot-*/",
          file=sys.stderr)
    return 1 if result.failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run unplug scenarios and report what broke")
    add_kernel_options(p)
    p.add_argument("--driver", default="vimc", help="driver profile (default: vimc)")
    p.add_argument("--scenario", action="append", metavar="NAME",
                   help="run only this scenario (repeatable); see --list")
    p.add_argument("--list", action="store_true", help="list the scenario names and exit")
    p.add_argument("--report", type=Path, help="report directory")
    p.set_defaults(func=run)
