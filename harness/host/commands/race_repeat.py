"""`v4l2-unplug run --race --repeat N`: N races, one seed and one boot each, and
each signature's rate with its exact interval (docs/race-statistics.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from harness.host.commands import delay_plan, report_dir, target_from_args


def repeat(args: argparse.Namespace, profile: Any) -> int:
    from harness.host.commands.run import exit_status
    from harness.host.race_series import run_series, seeds
    from harness.host.report import results

    delays = delay_plan(args, profile)
    target, kernel = target_from_args(args)
    out = report_dir(args, "race")
    chosen = seeds(args.seed, args.repeat)
    print(f"{args.repeat} races on {profile.name}, {kernel.describe()}: seeds "
          f"{chosen[0]}-{chosen[-1]}, {args.workers} workers, {args.race_mode} cycles, "
          f"{args.duration:.0f} s each; report: {out}", file=sys.stderr)

    def progress(p: dict[str, Any]) -> None:
        print(f"  {p['elapsed']:6.1f} s  cycles {p['cycles']:5}  iterations {p['iterations']}",
              file=sys.stderr, flush=True)

    started = time.time()
    series = run_series(target, kernel, profile.name, args.duration, args.seed, args.repeat,
                        args.workers, args.race_mode, out, kinds=args.race_nodes,
                        progress=progress, each=lambda r: print(r.line(), flush=True),
                        expected=args.signature or (), delays=delays)
    doc = results.race_series_doc(series, kernel, profile.name, started)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=1, default=str))
    tally = series.tally
    lines = [*(r.line() for r in series.races), "", *tally.lines()]
    print("\n".join(lines[len(series.races):]))
    failed = series.failed
    # A clean series passes with the bound it supports, never on its own.
    lines.append(f"FAIL: {sum(r.result.failed for r in series.races)} of {len(series.races)} "
                 "races saw a kernel report, a stuck step, an interrupt or could not run"
                 if failed else f"PASS: {tally.any_report.line()}")
    print(lines[-1])
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    print(f"report: {out}/results.json, {out}/summary.txt; each race in {out}/race-*/",
          file=sys.stderr)
    return exit_status(failed, series.interrupted)
