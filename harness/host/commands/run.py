"""`v4l2-unplug run`: the scenario matrix (or some of it, or race mode) on a kernel."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness.host.commands import (
    PROG,
    add_amplify_options,
    add_driver_option,
    add_kernel_options,
    add_target_options,
    delay_plan,
    report_dir,
    target_from_args,
)
from harness.host.commands.inputs import at_least_one
from harness.host.commands.race_options import add_race_options
from harness.host.interrupts import Interrupted
from harness.host.progress import MatrixProgress, RaceProgress
from harness.pure.scenarios.verdicts import Verdict


def run(args: argparse.Namespace) -> int:
    from harness.host.report import history, results
    from harness.host.runner import run_scenarios
    from harness.pure.profiles import get_profile
    from harness.pure.scenarios.matrix import build_matrix, select

    profile = get_profile(args.driver)
    delay_plan(args, profile)  # a bad --amplify is an error before any boot
    if args.race and args.repeat > 1:
        from harness.host.commands.race_repeat import repeat

        return repeat(args, profile)
    if args.race:
        return _race(args, profile)
    matrix = build_matrix(profile)
    if args.list:
        print("\n".join(s.name for s in matrix))
        return 0
    chosen = select(matrix, args.scenario)
    target, kernel = target_from_args(args)
    out = report_dir(args, "run")
    started = time.time()
    print(f"{len(chosen)} scenarios of {profile.name} on {kernel.describe()}; report: {out}",
          file=sys.stderr)

    with MatrixProgress(len(chosen)) as bar:
        result = run_scenarios(target, profile.name, chosen, out, bar.update)
    history.record(results.write(result, kernel, profile.name, out, started), "run", "", out)
    print(results.summary(result))
    print(f"report: {out}/results.json, {out}/results.ktap; consoles in {out}/boot-*/",
          file=sys.stderr)
    return exit_status(result.failed, result.interrupted)


def exit_status(failed: bool, interrupted: Interrupted | None) -> int:
    """0 all passed, 1 something did not; 128 + the signal's number when one
    stopped the run (130 SIGINT, 143 SIGTERM, 129 SIGHUP), as a shell says it."""
    if interrupted is not None:
        print(f"{PROG}: interrupted by {interrupted.name}; the report holds what finished",
              file=sys.stderr)
        return interrupted.exit_status
    return 1 if failed else 0


def _race(args: argparse.Namespace, profile) -> int:
    from harness.host.report import history, results
    from harness.host.runner import run_race

    delays = delay_plan(args, profile)
    target, kernel = target_from_args(args)
    out = report_dir(args, "race")
    print(f"race on {profile.name}, {kernel.describe()}: {args.workers} workers, "
          f"{args.race_mode} cycles, {args.duration:.0f} s, seed {args.seed}; report: {out}",
          file=sys.stderr)
    if delays is not None:
        print(f"delays at {', '.join(delays.symbols)}: {delays.min_us}-{delays.max_us} us, "
              f"{delays.permille}/1000 of calls", file=sys.stderr)

    started = time.time()
    with RaceProgress(args.duration, f"race seed {args.seed}") as bar:
        result = run_race(target, profile.name, args.duration, args.seed, args.workers,
                          args.race_mode, out, bar.update, kinds=args.race_nodes,
                          delays=delays)
    s = result.stats
    expected = args.signature or ()
    doc = results.write_race(result, kernel, profile.name, out, started, expected)
    history.record(doc, "race", "", out)
    if "error" in s:
        print(f"race failed in the guest: {s['error']}")
    elif "seed" not in s:
        # Interrupted before the agent's own count: the last progress event's.
        print(f"{s.get('cycles', 0)} cycles in {s.get('duration', 0)} s before the interrupt")
    else:
        print(f"seed {s['seed']}: {s['cycles']} {s['mode']} cycles in {s['duration']} s "
              f"({s['cycles_per_second']}/s)")
        for w in s["workers"]:
            print(f"  worker {w['worker']}: {w['iterations']} iterations ({w['per_second']}/s)"
                  f"{'  ' + w['ended'] if w.get('ended') else ''}")
        for point in (s.get("delays") or {}).get("points", []):
            print(f"  delay at {point['symbol']}: {point['delays']} of {point['calls']} calls, "
                  f"{point['delayed_us'] / 1e6:.1f} s in all")
        if s.get("stuck_disruption"):
            print(f"  disruption stuck: {s['stuck_disruption']}")
        if s.get("first_report"):
            fr = s["first_report"]
            print(f"  first kernel report at {fr['kernel_time']:.3f} s, cycle {fr.get('cycle')}")
    from harness.pure.kmsg.report import dedup

    for group in dedup(result.findings):
        times = f" (x{group.count})" if group.count > 1 else ""
        print(f"FINDING {group.first.title}{times}  [{group.signature}]")
    if result.boot.outcome != "done":
        print(f"guest {result.boot.outcome}: {result.boot.message}")
    print("\n".join(results.race_tally([results.race_exposure(result)], expected).lines()))
    verdict, reason = result.verdict
    print("PASS: no kernel report in the race" if verdict == Verdict.PASS
          else f"{verdict.upper()}: {reason}")
    return exit_status(result.failed, result.interrupted)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run unplug scenarios and report what broke")
    add_kernel_options(p)
    add_target_options(p)
    add_driver_option(p)
    p.add_argument("--scenario", action="append", metavar="NAME",
                   help="run only this scenario (repeatable); see --list")
    p.add_argument("--list", action="store_true", help="list the scenario names and exit")
    p.add_argument("--report", type=Path, help="report directory")
    race = add_race_options(p)
    race.add_argument("--repeat", type=at_least_one, default=1, metavar="N",
                      help="N races, seeds --seed, --seed + 1, ..., one boot each, and each "
                           "signature's rate per 1,000 cycles with its 95%% interval")
    race.add_argument("--signature", action="append", metavar="SIG",
                      help="give this signature's rate even when no race saw it: its upper "
                           "bound (repeatable; e.g. BUG:null-ptr-deref:media_device_get_info)")
    add_amplify_options(race)
    p.set_defaults(func=run)
