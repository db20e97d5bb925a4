"""`git bisect run` between a good and a bad commit, with any command as the test.

The bisection runs in a private bare clone that borrows the user's objects
(`git clone --bare --shared`), started with `--no-checkout`: git only moves
BISECT_HEAD, so the user's branch, index and working tree are never
touched and no kernel tree is checked out per step. The test command runs
in the clone and reads the commit to test with `git rev-parse BISECT_HEAD`;
its exit status follows git's convention: 0 good, 125 skip (it cannot be
tested, e.g. it does not build), 1-127 bad, 128 and above abort.

The plumbing is separate from the kernel test (step.py), so it is tested
with real git on a small repository and a stub command; `v4l2-unplug bisect
--test-command CMD` uses any command the same way.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.pure.errors import HarnessError

_FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit$", re.M)
_ONLY_SKIPPED = re.compile(r"^There are only 'skip'ped commits left to test\.\n"
                           r"The first bad commit could be any of:\n((?:[0-9a-f]{40}\n)+)", re.M)


class BisectError(HarnessError):
    """The bisection could not start or did not end with a first bad commit."""


@dataclass(frozen=True)
class BisectResult:
    first_bad: str | None  # None when only skipped commits were left
    candidates: tuple[str, ...]  # the first bad commit is one of these (skipped ones)
    subject: str
    log: str  # `git bisect log`: replayable with `git bisect replay`
    steps: int


def _git(repo: Path, *argv: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        msg = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise BisectError(f"git {argv[0]} in {repo} failed: {msg}")
    return proc.stdout


def resolve(repo: Path, rev: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet",
                           f"{rev}^{{commit}}"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BisectError(f"{rev!r} is not a commit of {repo}")
    return proc.stdout.strip()


def bisect(repo: Path, good: str, bad: str, command: Sequence[str],
           workdir: Path | None = None) -> BisectResult:
    """Run `git bisect run COMMAND` from `good` to `bad`; name the first bad commit."""
    repo = Path(repo).expanduser().resolve()
    if subprocess.run(["git", "-C", str(repo), "rev-parse", "--git-dir"],
                      capture_output=True).returncode != 0:
        raise BisectError(f"{repo} is not a git repository")
    good_sha, bad_sha = resolve(repo, good), resolve(repo, bad)
    if good_sha == bad_sha:
        raise BisectError("--good and --bad are the same commit")
    if subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", good_sha,
                       bad_sha]).returncode != 0:
        raise BisectError(f"{good} is not an ancestor of {bad}: nothing to bisect between them")
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bisect-", dir=workdir) as tmp:
        clone = Path(tmp) / "repo.git"
        _git(repo, "clone", "--quiet", "--bare", "--shared", str(repo), str(clone))
        _git(clone, "bisect", "start", "--no-checkout", bad_sha, good_sha)
        proc = subprocess.Popen(["git", "-C", str(clone), "bisect", "run", *command],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        output = []
        for line in proc.stdout:
            output.append(line)
            print(line, end="", file=sys.stderr, flush=True)
        proc.wait()
        text = "".join(output)
        if text and not text.endswith("\n"):
            print(file=sys.stderr)
        log = _git(clone, "bisect", "log")
        steps = len(re.findall(r"^git bisect (?:good|bad|skip)", log, re.M))
        if m := _FIRST_BAD.search(text):
            sha = m.group(1)
            subject = _git(repo, "log", "-1", "--format=%s", sha).strip()
            return BisectResult(sha, (sha,), subject, log, steps)
        if m := _ONLY_SKIPPED.search(text):
            candidates = tuple(m.group(1).split())
            return BisectResult(None, candidates, "", log, steps)
        last = [line for line in text.splitlines() if line.strip()][-1:] or ["no output"]
        raise BisectError(f"git bisect run did not name a first bad commit: {last[0]}")
