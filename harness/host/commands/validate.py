"""`v4l2-unplug validate`: a patch's effect, baseline kernel against patched kernel.

Each signature gets one status, from its hits over each side's exposure
(docs/race-statistics.md, "Verdicts"): introduced, unmasked, narrowed,
inconclusive, fixed or still-present. A race's exposure is its disruption
cycles; a scenario run counts as one run.

Exit status (also in validate.json as exit_status), the first that applies:
  1  introduced: a signature the baseline had enough exposure to show, at a
     higher rate on the patched kernel
  5  unmasked: a signature only the patched kernel showed, after every baseline
     race had been stopped by another report before it could get there
  6  narrowed: a crash's rate fell (or it went) but a race on its code remains
  4  inconclusive: too little exposure to tell; the summary says how much more
     (raise --repeat or give --budget)
  3  fixed: at least one signature fixed, every other still present
  0  unchanged: nothing fixed, nothing introduced (signatures on both may remain)
  2  error: bad input, a patch that does not apply, a build that fails, no guest
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness.host.commands import PROG, add_driver_option
from harness.host.commands.inputs import at_least_one, time_budget
from harness.host.commands.race_options import add_race_options, race_plan
from harness.host.kernels.flavours import FLAVOURS

# A flavour the harness fetches or builds itself ("path" needs an image of the user's).
BUILT_FLAVOURS = [f for f in FLAVOURS if f != "path"]


def run(args: argparse.Namespace) -> int:
    from harness.host.validate.validation import Options, validate

    opts = Options(
        tree=args.tree, kernel=args.kernel, base=args.base, head=args.head,
        base_patches=args.base_patch, patches=args.patch, scenarios=args.scenario,
        race=race_plan(args), repeat=args.repeat, driver=args.driver, budget=args.budget,
    )
    out = args.report or Path("reports") / f"{time.strftime('%Y%m%d-%H%M%S')}-validate"
    doc = validate(opts, out, build_only=args.build_only)
    if args.build_only:
        print(f"built in {doc['build_s']} s: baseline {doc['base']}, patched {doc['head']}")
        return 0
    print((out / "summary.txt").read_text(), end="")
    print(f"report: {out}/report.html, {out}/validate.json, {out}/validate.junit.xml",
          file=sys.stderr)
    return int(doc["exit_status"])


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate", help="build a baseline and a patched kernel, run the same scenarios on both",
        description="Build a baseline and a patched kernel from one tree (tinyconfig + "
        "vm/debug.config), or patch only the driver's modules on a kernel flavour, run the "
        "same scenarios or races on both, and give each signature a status with the rates "
        "and exact intervals it rests on.",
        epilog=__doc__.split("\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kernels = p.add_mutually_exclusive_group(required=True)
    kernels.add_argument("--tree", type=Path,
                         help="kernel source: a git repository or an unpacked source directory")
    kernels.add_argument("--kernel", metavar="FLAVOUR", choices=BUILT_FLAVOURS,
                         help="boot this flavour on both sides, the patches applied to the "
                         f"driver's modules built out of tree: {', '.join(BUILT_FLAVOURS)}")
    p.add_argument("--base", metavar="REV", help="baseline commit (git trees; default HEAD)")
    p.add_argument("--head", metavar="REV", help="patched commit (git trees; default --base)")
    p.add_argument("--base-patch", action="append", type=Path, default=[], metavar="FILE",
                   help="patch or mailbox applied to both kernels (repeatable)")
    p.add_argument("--patch", action="append", type=Path, default=[], metavar="FILE",
                   help="patch or mailbox of a series, applied to the patched kernel only "
                   "(repeatable)")
    p.add_argument("--scenario", action="append", metavar="NAME",
                   help="run only this scenario (repeatable; default: the whole matrix, or "
                   f"none with --race); see '{PROG} run --list'")
    p.add_argument("--repeat", type=at_least_one, default=1, metavar="N",
                   help="runs (and races, seeds --seed, --seed + 1, ...) per kernel")
    add_driver_option(p)
    p.add_argument("--report", type=Path, help="report directory")
    p.add_argument("--build-only", action="store_true",
                   help="build (or find) both kernels, print where they are, run nothing")
    race = add_race_options(p, "race mode (the same seeds on both kernels)")
    race.add_argument("--budget", type=time_budget, metavar="TIME",
                      help="after --repeat rounds, race on (a round: one race per kernel) "
                      "until every signature is decided or TIME (600, 10m, 1h) of running "
                      "is spent")
    p.set_defaults(func=run)
