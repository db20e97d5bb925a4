"""`v4l2-unplug bisect`: the first commit on which a scenario fails, by `git bisect run`.

Each step builds the commit (tinyconfig + vm/debug.config, derived from the
good commit's build) and runs the scenario; a commit that does not build is
skipped. `--test-command` replaces that step with any command, run in the
bisection's private clone: it reads the commit with `git rev-parse
BISECT_HEAD` and exits 0 (good), 125 (skip), 1-127 (bad) or 128+ (abort).

Exit status: 0 when a first bad commit was named, 1 when only skipped
commits were left (the candidates are printed), 2 on error.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from harness.host.commands import PROG, add_driver_option
from harness.host.commands.inputs import at_least_one


def run(args: argparse.Namespace) -> int:
    from harness.host.validate.bisect import BisectError, bisect

    if args.test_command:
        command = shlex.split(args.test_command)
        if not command:
            raise BisectError("--test-command is empty")
    else:
        from harness.host.kernels.tree import GitSource
        from harness.host.validate import step
        from harness.pure.profiles import get_profile
        from harness.pure.scenarios.matrix import build_matrix, select

        if not args.scenario:
            raise BisectError("give --scenario NAME (the test), or --test-command CMD")
        profile = get_profile(args.driver)
        select(build_matrix(profile), args.scenario)
        source = GitSource(args.tree)
        good = source.resolve(args.good)
        source.resolve(args.bad)
        out = args.report or Path("reports") / f"{time.strftime('%Y%m%d-%H%M%S')}-bisect"
        out.mkdir(parents=True, exist_ok=True)
        spec_file = out / "bisect-spec.json"
        spec_file.write_text(json.dumps(step.spec(
            source.path, good, args.scenario, args.driver, args.repeat, args.patch,
            args.signature, out), indent=1))
        command = [sys.executable, "-m", "harness.host.validate.step", str(spec_file.resolve())]
    result = bisect(args.tree, args.good, args.bad, command)
    if args.report:
        args.report.mkdir(parents=True, exist_ok=True)
        (args.report / "bisect.log").write_text(result.log)
    if result.first_bad:
        print(f"first bad commit: {result.first_bad} {result.subject}")
        print(f"{result.steps} steps; replay with 'git bisect replay' of:\n{result.log}",
              file=sys.stderr)
        return 0
    print("only skipped commits left; the first bad commit is one of:")
    print("\n".join(result.candidates))
    return 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bisect", help="find the first commit on which a scenario fails (git bisect run)",
        description=__doc__.split("\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--tree", type=Path, required=True, help="a git repository of the kernel")
    p.add_argument("--good", required=True, metavar="REV", help="a commit that passes")
    p.add_argument("--bad", required=True, metavar="REV", help="a later commit that fails")
    p.add_argument("--scenario", action="append", metavar="NAME",
                   help=f"the scenario that tells good from bad (repeatable); see "
                   f"'{PROG} run --list'")
    p.add_argument("--signature", help="bad only if this signature appears (e.g. "
                   "KASAN:use-after-free:media_gobj_destroy), not on any failure")
    p.add_argument("--repeat", type=at_least_one, default=1, metavar="N",
                   help="runs per step; bad if any run is bad (for flaky bugs)")
    p.add_argument("--patch", action="append", type=Path, default=[], metavar="FILE",
                   help="patch applied at every step (repeatable)")
    add_driver_option(p)
    p.add_argument("--report", type=Path, help="report directory (each step's runs, the log)")
    p.add_argument("--test-command", metavar="CMD",
                   help="test each commit with CMD instead of building and running a scenario")
    p.set_defaults(func=run)
