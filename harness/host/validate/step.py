"""One bisection step with the harness as the test: build BISECT_HEAD, run the scenario.

    python -m harness.host.validate.step SPEC.json      (cwd: the bisection's clone)

`v4l2-unplug bisect` writes SPEC and hands this command to `git bisect
run`. The commit is built like `validate` builds (tinyconfig + the debug
fragment, patches on top), derived from the good commit's build so a step
compiles only what differs from it. Exit status, as git bisect reads it:

    0    the scenario passed (or the signature was absent) in every repetition
    1    it failed (or the signature appeared) in at least one
    125  this commit cannot be tested: the build failed or the guest never came up
    128  the harness itself failed: stop the bisection
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

GOOD, BAD, SKIP, ABORT = 0, 1, 125, 128


def spec(tree: Path, good: str, scenarios: list[str], driver: str, repeat: int,
         patches: list[Path], signature: str | None, report: Path) -> dict[str, Any]:
    return {"tree": str(tree), "good": good, "scenarios": scenarios, "driver": driver,
            "repeat": repeat, "patches": [str(Path(p).resolve()) for p in patches],
            "signature": signature, "report": str(Path(report).resolve())}


def judge(docs: list[dict[str, Any]], signature: str | None) -> bool:
    """True (bad) if any run failed its scenarios, or showed `signature` when one is given."""
    from harness.host.report.compare import hits
    from harness.pure.scenarios.verdicts import Verdict

    for run, doc in enumerate(docs, start=1):
        if signature is None:
            if any(s["verdict"] != Verdict.PASS for s in doc.get("scenarios", [])):
                return True
        elif any(h.finding["signature"] == signature for h in hits(doc, "head", run)):
            return True
    return False


def step(s: dict[str, Any], rev: str) -> int:
    from harness.host.kernels import debug, tree
    from harness.host.kernels.emulation import guest_arch
    from harness.host.kernels.series import read_series
    from harness.host.report import history, results
    from harness.host.runner import run_scenarios
    from harness.host.targets.emulated import provision
    from harness.pure.errors import GuestError, KernelError
    from harness.pure.profiles import get_profile
    from harness.pure.scenarios.matrix import build_matrix, select

    source = tree.GitSource(Path(s["tree"]))
    patches = tuple(read_series([Path(p) for p in s["patches"]]))
    profile = get_profile(s["driver"])
    arch = guest_arch(profile)
    fragment = debug.fragment_for(source.path, arch=arch)
    try:
        good = tree.build(tree.Recipe(source, s["good"], patches, arch), fragment)
        state = tree.build(tree.Recipe(source, rev, patches, arch), fragment, parent=good)
        # The profile's out-of-tree modules build against this commit too.
        target, kernel = provision(tree.install(state, "tree"), profile)
    except KernelError as e:
        print(f"step {rev[:12]}: cannot build, skipping: {e}", file=sys.stderr)
        return SKIP
    chosen = select(build_matrix(profile), s["scenarios"])
    out = Path(s["report"]) / rev[:12]
    docs = []
    for i in range(1, s["repeat"] + 1):
        run_dir = out / f"run-{i:02d}"
        started = time.time()
        try:
            result = run_scenarios(target, profile.name, chosen, run_dir)
        except GuestError as e:
            print(f"step {rev[:12]}: the guest did not come up, skipping: {e}", file=sys.stderr)
            return SKIP
        doc = results.write(result, kernel, profile.name, run_dir, started)
        history.record(doc, "bisect", rev[:12], run_dir)
        docs.append(doc)
    bad = judge(docs, s.get("signature"))
    print(f"step {rev[:12]}: {'bad' if bad else 'good'} ({out})", file=sys.stderr)
    return BAD if bad else GOOD


def main(argv: list[str] | None = None) -> int:
    from harness.pure.errors import HarnessError

    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m harness.host.validate.step SPEC.json", file=sys.stderr)
        return ABORT
    try:
        s = json.loads(Path(args[0]).read_text())
        rev = subprocess.run(["git", "rev-parse", "BISECT_HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        # git bisect run points GIT_DIR at the bisection's clone; the tree's own
        # repository is read from here on
        for name in [n for n in os.environ if n.startswith("GIT_")]:
            del os.environ[name]
        return step(s, rev)
    except HarnessError as e:
        print(f"v4l2-unplug bisect: error: {e}", file=sys.stderr)
        return ABORT
    except (OSError, ValueError, subprocess.CalledProcessError) as e:
        print(f"v4l2-unplug bisect: error: {e}", file=sys.stderr)
        return ABORT


if __name__ == "__main__":
    sys.exit(main())
