"""`v4l2-unplug validate`: a patch's effect, baseline kernel against patched kernel.

Exit status (also in validate.json as exit_status):
  0  unchanged: nothing fixed, nothing introduced (findings present on both may remain)
  1  the patch introduced at least one signature (whatever else it did)
  2  error: bad input, a patch that does not apply, a build that fails, no guest
  3  the patch fixed at least one signature and introduced none
  4  only flaky differences: a signature came and went; raise --repeat
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness.host.commands import PROG, add_driver_option
from harness.host.commands.inputs import at_least_one, positive_seconds


def run(args: argparse.Namespace) -> int:
    from harness.host.validate.validation import Options, Race, validate

    race = (Race(args.duration, args.seed, args.workers, args.race_mode) if args.race else None)
    opts = Options(
        tree=args.tree, base=args.base, head=args.head, base_patches=args.base_patch,
        patches=args.patch, scenarios=args.scenario, race=race, repeat=args.repeat,
        driver=args.driver,
    )
    out = args.report or Path("reports") / f"{time.strftime('%Y%m%d-%H%M%S')}-validate"
    doc = validate(opts, out, build_only=args.build_only)
    if args.build_only:
        print(f"built in {doc['build_s']} s: baseline {doc['base']}, patched {doc['head']}")
        return 0
    print((out / "summary.txt").read_text(), end="")
    print(f"report: {out}/report.html, {out}/validate.json, {out}/validate.junit.xml",
          file=sys.stderr)
    return doc["exit_status"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate", help="build a baseline and a patched kernel, run the same scenarios on both",
        description="Build a baseline and a patched kernel from one tree (tinyconfig + "
        "vm/debug.config), run the same scenarios on both, and report each signature as "
        "fixed, introduced, still present or flaky.",
        epilog=__doc__.split("\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--tree", type=Path, required=True,
                   help="kernel source: a git repository or an unpacked source directory")
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
                   help="runs per kernel; hit rates tell a flaky race from a fixed bug")
    add_driver_option(p)
    p.add_argument("--report", type=Path, help="report directory")
    p.add_argument("--build-only", action="store_true",
                   help="build (or find) both kernels, print where they are, run nothing")
    race = p.add_argument_group("race mode (the same seed on both kernels)")
    race.add_argument("--race", action="store_true", help="run the race on both kernels")
    race.add_argument("--duration", type=positive_seconds, default=60.0,
                      help="seconds (default 60)")
    race.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    race.add_argument("--workers", type=at_least_one, default=3,
                      help="worker processes (default 3)")
    race.add_argument("--race-mode", choices=("unbind", "rmmod"), default="unbind",
                      help="disruptor: unbind/bind or rmmod/modprobe cycles")
    p.set_defaults(func=run)
