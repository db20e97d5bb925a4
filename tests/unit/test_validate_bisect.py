"""The bisection plumbing with real git: `git bisect run` on a small repository with a stub
test in place of the kernel build and scenario (the harness step is the same command
slot, see harness/host/validate/bisect.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.host.validate.bisect import BisectError, bisect
from harness.host.validate.step import judge

# bad when the file holds "bug"; 125 (skip) when it holds "broken"
STUB = ("f=$(git show BISECT_HEAD:driver.c); "
        "case $f in *broken*) exit 125;; *bug*) exit 1;; *) exit 0;; esac")


def _git(repo: Path, *argv: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c",
                           "user.email=t@example.org", *argv],
                          check=True, capture_output=True, text=True).stdout.strip()


def history_repo(root: Path, contents: list[str]) -> list[str]:
    """A repository with one commit per content of driver.c; returns the shas."""
    root.mkdir()
    _git(root, "init", "-q")
    shas = []
    for i, text in enumerate(contents, start=1):
        (root / "driver.c").write_text(f"{text} (version {i})\n")
        _git(root, "add", "driver.c")
        _git(root, "commit", "-qm", f"commit {i}: {text}")
        shas.append(_git(root, "rev-parse", "HEAD"))
    return shas


def test_bisect_names_the_first_bad_commit(tmp_path: Path) -> None:
    contents = ["ok"] * 6 + ["bug introduced"] + ["bug still"] * 9
    shas = history_repo(tmp_path / "repo", contents)
    head_before = _git(tmp_path / "repo", "rev-parse", "HEAD")
    result = bisect(tmp_path / "repo", shas[0], shas[-1], ["sh", "-c", STUB])
    assert result.first_bad == shas[6]
    assert result.subject == "commit 7: bug introduced"
    assert 2 <= result.steps <= 5
    assert "# first bad commit: [" + shas[6] in result.log
    # the user's repository did not move, and holds no bisection state
    repo = tmp_path / "repo"
    assert _git(repo, "rev-parse", "HEAD") == head_before
    assert _git(repo, "status", "--porcelain") == ""
    assert not (repo / ".git/BISECT_LOG").exists()


def test_skipped_commits_leave_candidates(tmp_path: Path) -> None:
    shas = history_repo(tmp_path / "repo", ["ok", "broken", "broken bug", "bug"])
    result = bisect(tmp_path / "repo", shas[0], shas[-1], ["sh", "-c", STUB])
    assert result.first_bad is None
    assert set(result.candidates) >= {shas[1], shas[2]}


def test_bad_ranges_are_refused(tmp_path: Path) -> None:
    shas = history_repo(tmp_path / "repo", ["ok", "bug"])
    with pytest.raises(BisectError, match="not an ancestor"):
        bisect(tmp_path / "repo", shas[1], shas[0], ["true"])
    with pytest.raises(BisectError, match="same commit"):
        bisect(tmp_path / "repo", shas[0], shas[0], ["true"])
    with pytest.raises(BisectError, match="is not a commit"):
        bisect(tmp_path / "repo", "v9.9", shas[1], ["true"])
    (tmp_path / "plain").mkdir()
    with pytest.raises(BisectError, match="not a git repository"):
        bisect(tmp_path / "plain", "a", "b", ["true"])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.host.cli", *args], capture_output=True,
                          text=True, env=dict(os.environ), timeout=120)


def test_bisect_command_with_a_test_command(tmp_path: Path) -> None:
    shas = history_repo(tmp_path / "repo", ["ok", "ok", "bug", "bug"])
    proc = _cli("bisect", "--tree", str(tmp_path / "repo"), "--good", shas[0], "--bad", "HEAD",
                "--test-command", f"sh -c '{STUB}'", "--report", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"first bad commit: {shas[2]} commit 3: bug")
    assert (tmp_path / "report/bisect.log").read_text().count("git bisect") >= 2


def test_bisect_command_refuses_in_one_line(tmp_path: Path) -> None:
    history_repo(tmp_path / "repo", ["ok", "bug"])
    proc = _cli("bisect", "--tree", str(tmp_path / "repo"), "--good", "HEAD~1", "--bad", "HEAD")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("v4l2-unplug: error: give --scenario NAME")


def test_a_step_is_bad_on_a_failure_or_only_on_the_signature_asked_for() -> None:
    failing = {"scenarios": [{"name": "s", "verdict": "fail", "contracts": [], "findings": [
        {"signature": "WARNING:warning:foo", "title": "WARNING in foo"}]}]}
    passing = {"scenarios": [{"name": "s", "verdict": "pass", "contracts": [], "findings": []}]}
    assert judge([passing, failing], None) is True
    assert judge([passing, passing], None) is False
    assert judge([failing], "KASAN:use-after-free:media_gobj_destroy") is False
    assert judge([failing], "WARNING:warning:foo") is True
