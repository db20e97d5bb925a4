"""`v4l2-unplug survey`: what `make run` shows. The whole scenario matrix and
a bounded race on one kernel, then one table of what they found, each finding
with the command that reproduces it.

Its exit status says whether the harness did its job, not what it found (the
findings are its output): 0 when every scenario reached a verdict and the race
exercised the driver, 1 when something could not run. `run` keeps the exit
statuses CI gates on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from harness.host.commands import PROG, add_driver_option, qemu_from_args, report_dir
from harness.host.commands.inputs import positive_seconds
from harness.host.progress import MatrixProgress, RaceProgress, clock
from harness.host.report.findings_table import RaceAsked

# The kernel of `make run`: the debug build (KASAN, lockdep) of the newest
# stable kernel the harness has. debian-sid's 7.2 oopses at boot under TCG
# about once in fifteen boots (an int3 left in text being patched, in
# ktime_get_update_offsets_now); its debug build has no jump labels and was
# not seen to (README, "Quick start").
KERNEL = "debug-sid"
# Seed 7 makes an open() of a subdev node meet vimc's unbind in the first
# cycle or two on 6.1, 6.12 and 7.2 (README, "What it finds").
SEED = 7
RACE_SECONDS = 120.0
WORKERS = 3
MODE = "unbind"


def run(args: argparse.Namespace) -> int:
    from harness.host.commands.run import exit_status
    from harness.host.report import findings_table, history, results
    from harness.host.runner import run_race, run_scenarios
    from harness.pure.profiles import get_profile
    from harness.pure.scenarios.matrix import build_matrix, select

    profile = get_profile(args.driver)
    matrix = select(build_matrix(profile), args.scenario)
    target, kernel = qemu_from_args(args)
    out = report_dir(args, "survey")
    print(f"{PROG} survey: {len(matrix)} unplug scenario{'s' * (len(matrix) != 1)} of "
          f"{profile.name}, then a race of at most {args.race_seconds:g} s (seed {args.seed}), "
          f"on {kernel.describe()}; report: {out}", file=sys.stderr, flush=True)

    started = time.time()
    with MatrixProgress(len(matrix), "matrix") as bar:
        result = run_scenarios(target, profile.name, matrix, out / "matrix", bar.update)
    matrix_doc = results.write(result, kernel, profile.name, out / "matrix", started)
    history.record(matrix_doc, "run", "", out / "matrix")
    races: list[dict[str, Any]] = []
    interrupted = result.interrupted
    if interrupted is None:
        race_started = time.time()
        with RaceProgress(args.race_seconds, f"race seed {args.seed}") as race_bar:
            race = run_race(target, profile.name, args.race_seconds, args.seed, WORKERS,
                            MODE, out / "race", race_bar.update)
        race_doc = results.write_race(race, kernel, profile.name, out / "race", race_started)
        history.record(race_doc, "race", "", out / "race")
        races.append(race_doc)
        interrupted = race.interrupted

    asked = RaceAsked(args.seed, args.race_seconds)
    rows = findings_table.findings(matrix_doc, [(d, asked) for d in races])
    missing = findings_table.shortfalls(matrix_doc, races)
    lines = [_matrix_line(matrix_doc), *(_race_line(d, asked) for d in races), "",
             f"Findings: {len(rows)}", findings_table.render(rows)]
    if missing:
        lines += ["", "Could not run:", *(f"  {m}" for m in missing)]
    lines += ["", f"{clock(time.time() - started)} in all"]
    text = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    (out / "findings.txt").write_text(text + "\n")
    (out / "findings.json").write_text(json.dumps(findings_table.to_dicts(rows), indent=1))
    print(text)
    print(f"report: {out}/findings.txt; the matrix in {out}/matrix/, the race in {out}/race/ "
          f"(report.html, results.json, consoles)", file=sys.stderr)
    return exit_status(bool(missing), interrupted)


def _matrix_line(doc: dict[str, Any]) -> str:
    counts = ", ".join(f"{n} {v}" for v, n in doc["summary"].items() if n)
    total = len(doc["scenarios"])
    return (f"matrix: {total} scenario{'s' * (total != 1)} on {doc['kernel']['flavour']} "
            f"{doc['kernel']['release']} in {clock(doc['duration_s'])}: {counts}")


def _race_line(doc: dict[str, Any], asked: RaceAsked) -> str:
    s = doc.get("stats", {})
    where = f"race seed {asked.seed}"
    if "error" in s:
        return f"{where}: could not run: {s['error']}"
    if doc.get("verdict") == "error" or "seed" not in s:
        return f"{where}: {doc.get('reason') or 'no count from the guest'}"
    iterations = sum(int(w.get("iterations") or 0) for w in s.get("workers", []))
    cycles = s.get("cycles", 0)
    ran = (f"{cycles} unbind cycle{'s' * (cycles != 1)} and {iterations} worker iterations "
           f"in {s.get('duration', 0)} s")
    first = s.get("first_report")
    if first:
        return f"{where}: {ran}, stopped by a kernel report in cycle {first.get('cycle')}"
    return f"{where}: {ran}, no kernel report"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "survey", help="the scenario matrix and a bounded race on one kernel, and a table of "
                       "what they found (what `make run` shows)",
        description="The whole unplug matrix and a race of at most --race-seconds on one "
                    "kernel, then one table of their findings, each with the command that "
                    "reproduces it. Exit status: 0 when the harness did its job, whatever it "
                    "found (every scenario reached a verdict, the race exercised the driver); "
                    "1 when something could not run (listed under the table); 2 bad input or "
                    "setup; 130, 143, 129 stopped by SIGINT, SIGTERM, SIGHUP. `run` keeps the "
                    "exit statuses CI gates on.")
    p.add_argument("--kernel", default=KERNEL, metavar="FLAVOUR",
                   help=f"kernel flavour (default: {KERNEL}; see `{PROG} kernel --list`)")
    add_driver_option(p)
    p.add_argument("--scenario", action="append", metavar="NAME",
                   help="only this scenario of the matrix (repeatable; default: all of them, "
                        "see `run --list`)")
    p.add_argument("--race-seconds", type=positive_seconds, default=RACE_SECONDS,
                   metavar="S", help=f"longest the race runs (default {RACE_SECONDS:g}); it "
                                     "stops at the first kernel report")
    p.add_argument("--seed", type=int, default=SEED,
                   help=f"seed of the race's choices (default {SEED})")
    p.add_argument("--report", type=Path, help="report directory")
    p.set_defaults(func=run, kernel_image=None, modules=None, patch=[])
