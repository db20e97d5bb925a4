"""Patch files: plain diffs, mailboxes of a series (split by git), and what they touch."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.host.kernels.series import apply, read_patch_file, read_series
from harness.pure.errors import KernelError

PROJECT_PATCH = (Path(__file__).resolve().parents[2]
                 / "vm/patches/vimc-capture-free-at-unregister.patch")
REVERT_PATCH = PROJECT_PATCH.with_name("vimc-capture-free-at-unregister-revert.patch")


def _git(repo: Path, *argv: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=A U Thor", "-c",
                           "user.email=author@example.org", *argv],
                          check=True, capture_output=True, text=True).stdout


def test_the_projects_patch_is_one_diff_of_one_file() -> None:
    (patch,) = read_patch_file(PROJECT_PATCH)
    assert patch.files == ("drivers/media/test-drivers/vimc/vimc-capture.c",)
    assert patch.subject.startswith("media: vimc: free the capture device at unregister")
    assert patch.label == PROJECT_PATCH.name
    assert [h[0] for h in patch.hunks("drivers/media/test-drivers/vimc/vimc-capture.c")] == [
        339, 352]


def test_the_revert_undoes_the_patch(tmp_path: Path) -> None:
    vimc = tmp_path / "drivers/media/test-drivers/vimc"
    vimc.mkdir(parents=True)
    (patch,) = read_patch_file(PROJECT_PATCH)
    (revert,) = read_patch_file(REVERT_PATCH)
    assert revert.files == patch.files
    # a capture.c with just the context the two hunks need
    src = PROJECT_PATCH.read_text().split("\n---\n", 1)[1]
    old_lines = {}
    for hunk in src.split("@@ -")[1:]:
        start = int(hunk.split(",")[0])
        body = hunk.split("@@\n", 1)[1]
        old_lines[start] = [ln[1:] for ln in body.splitlines() if ln[:1] in (" ", "-")]
    lines = ["/* filler */"] * 400
    for start, block in old_lines.items():
        lines[start - 1:start - 1 + len(block)] = block
    original = "\n".join(lines) + "\n"
    (vimc / "vimc-capture.c").write_text(original)
    apply(patch, tmp_path)
    assert "Lifetime bug" in (vimc / "vimc-capture.c").read_text()
    apply(revert, tmp_path)
    assert (vimc / "vimc-capture.c").read_text() == original


def test_a_mailbox_series_is_split_and_its_cover_letter_passed_over(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.c").write_text("one\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    for i, name in enumerate(("a.c", "b.c"), start=1):
        (repo / name).write_text(f"change {i}\n")
        _git(repo, "add", ".")
        _git(repo, "commit", "-qm", f"media: part {i}")
    mbox = tmp_path / "series.mbox"
    mbox.write_text(_git(repo, "format-patch", "--stdout", "--cover-letter", "HEAD~2"))
    patches = read_patch_file(mbox)
    assert [p.subject for p in patches] == ["media: part 1", "media: part 2"]
    assert [p.files for p in patches] == [("a.c",), ("b.c",)]
    assert patches[1].label == "series.mbox [2/2] 'media: part 2'"
    # applied in order on the base commit's content
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.c").write_text("one\n")
    for p in patches:
        apply(p, work)
    assert (work / "a.c").read_text() == "change 1\n"
    assert (work / "b.c").read_text() == "change 2\n"


def test_files_are_read_in_order_and_bad_ones_named(tmp_path: Path) -> None:
    assert len(read_series([PROJECT_PATCH, REVERT_PATCH])) == 2
    with pytest.raises(KernelError, match="does not exist"):
        read_series([tmp_path / "missing.patch"])
    junk = tmp_path / "junk.patch"
    junk.write_text("From: someone\nSubject: not a patch\n\nhello\n")
    with pytest.raises(KernelError, match="holds no diff"):
        read_series([junk])


def test_a_patch_for_a_missing_file_says_so(tmp_path: Path) -> None:
    (patch,) = read_patch_file(PROJECT_PATCH)
    with pytest.raises(KernelError, match="vimc-capture.c: No such file or directory"):
        apply(patch, tmp_path)
