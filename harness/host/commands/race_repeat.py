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
    from harness.host.progress import RaceProgress
    from harness.host.race_series import SeriesRace, run_series, seeds
    from harness.host.report import html, results

    delays = delay_plan(args, profile)
    target, kernel = target_from_args(args)
    out = report_dir(args, "race")
    chosen = seeds(args.seed, args.repeat)
    print(f"{args.repeat} races on {profile.name}, {kernel.describe()}: seeds "
          f"{chosen[0]}-{chosen[-1]}, {args.workers} workers, {args.race_mode} cycles, "
          f"{args.duration:.0f} s each; report: {out}", file=sys.stderr)

    # One bar per race: opened by its first progress event, closed as it ends.
    bars: list[RaceProgress] = []
    finished: list[SeriesRace] = []

    def progress(p: dict[str, Any]) -> None:
        if not bars:
            bars.append(RaceProgress(args.duration, f"race seed {chosen[len(finished)]}"))
        bars[0].update(p)

    def each(race: SeriesRace) -> None:
        if bars:
            bars.pop().close()
        finished.append(race)
        print(race.line(), flush=True)

    started = time.time()
    try:
        series = run_series(target, kernel, profile.name, args.duration, args.seed,
                            args.repeat, args.workers, args.race_mode, out,
                            kinds=args.race_nodes, progress=progress, each=each,
                            expected=args.signature or (), delays=delays)
    finally:
        for bar in bars:
            bar.close()
    doc = results.race_series_doc(series, kernel, profile.name, started)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=1, default=str))
    (out / "report.html").write_text(html.run_page(doc, out))
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
    print(f"report: {out}/report.html, {out}/results.json, {out}/summary.txt; each race in "
          f"{out}/race-*/",
          file=sys.stderr)
    return exit_status(failed, series.interrupted)
