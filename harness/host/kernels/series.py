"""Patches for a whole kernel tree: plain diffs and mailboxes of a series.

A file given with --patch is either one diff (`git diff`, `diff -u`, a
`git format-patch` file) or a mailbox holding a series (`git format-patch
--stdout`, b4, a saved thread). Mailboxes are split with `git mailsplit`
and each message's diff is taken out with `git mailinfo`, as `git am`
does; a message without a diff (a cover letter) is passed over.

Patches are applied with `git apply`, which works outside a repository,
refuses fuzz like `git am`, and says which file and line a failing hunk
starts at; the error names the hunk by number and header as well.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.pure.errors import KernelError

_MBOX_FROM = re.compile(r"^From \S+ ", re.M)
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@.*$", re.M)
_FAILED = re.compile(r"^error: patch failed: (?P<file>.+):(?P<line>\d+)$", re.M)


@dataclass(frozen=True)
class Patch:
    """One diff: a whole patch file, or one message of a mailbox."""

    file: Path
    number: int  # position in its file's series, from 1
    total: int  # patches in that file
    subject: str
    diff: str

    @property
    def label(self) -> str:
        if self.total == 1:
            return self.file.name
        return f"{self.file.name} [{self.number}/{self.total}] {self.subject!r}"

    @property
    def files(self) -> tuple[str, ...]:
        """Every path the diff names (old and new names of a rename), relative to the tree."""
        return touched_files(self.diff)

    def hunks(self, path: str) -> list[tuple[int, str]]:
        """(old start line, header line) of each hunk of `path`, in order."""
        out: list[tuple[int, str]] = []
        current = None
        for line in self.diff.splitlines():
            if line.startswith("+++ ") or line.startswith("--- "):
                name = _strip(line[4:])
                if name is not None:
                    current = name
            elif line.startswith("diff --git "):
                current = None
            elif current == path and (m := _HUNK.match(line)):
                out.append((int(m.group(1)), m.group(0)))
        return out


def _strip(name: str, strip: int = 1) -> str | None:
    name = name.split("\t")[0].strip()
    if name == "/dev/null":
        return None
    if name.startswith('"') and name.endswith('"'):
        name = name[1:-1]
    parts = name.split("/")
    return "/".join(parts[strip:]) if len(parts) > strip else name


def touched_files(diff: str) -> tuple[str, ...]:
    names: list[str] = []
    for line in diff.splitlines():
        name = None
        if line.startswith(("--- ", "+++ ")):
            name = _strip(line[4:])
        elif m := re.match(r"^(?:rename|copy) (?:from|to) (.+)$", line):
            name = m.group(1)
        if name and name not in names:
            names.append(name)
    return tuple(names)


def _git(argv: list[str], stdin: bytes | None = None, cwd: Path | None = None
         ) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *argv], input=stdin, cwd=cwd, capture_output=True,
                              check=False)
    except FileNotFoundError:
        raise KernelError("git is not installed: it splits and applies patches") from None


def read_patch_file(path: Path) -> list[Patch]:
    """The patches in one file, in order; a clear error for anything that is not a patch."""
    path = Path(path)
    if not path.is_file():
        raise KernelError(f"patch {path} does not exist")
    text = path.read_text(errors="replace")
    if not _MBOX_FROM.match(text):
        subject = re.search(r"^Subject: (?:\[[^]]*\] )?(.*)$", text, re.M)
        patches = [(subject.group(1).strip() if subject else path.name, text)]
    else:
        patches = _split_mailbox(path)
    found = [(s, d) for s, d in patches if touched_files(d)]
    if not found:
        raise KernelError(f"{path} holds no diff (expected a patch or a mailbox of a series)")
    return [Patch(path, i, len(found), s, d) for i, (s, d) in enumerate(found, start=1)]


def _split_mailbox(path: Path) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        proc = _git(["mailsplit", f"-o{tmp}", str(path.resolve())])
        if proc.returncode != 0:
            raise KernelError(f"cannot split mailbox {path}: {proc.stderr.decode().strip()}")
        out = []
        for msg in sorted(Path(tmp).iterdir()):
            info = _git(["mailinfo", os.devnull, str(msg) + ".patch"], stdin=msg.read_bytes())
            if info.returncode != 0:
                raise KernelError(f"cannot read message {msg.name} of {path}: "
                                  f"{info.stderr.decode().strip()}")
            subject = re.search(r"^Subject: (.*)$", info.stdout.decode(errors="replace"), re.M)
            diff = Path(str(msg) + ".patch").read_text(errors="replace")
            out.append((subject.group(1).strip() if subject else msg.name, diff))
        return out


def read_series(paths: Sequence[Path]) -> list[Patch]:
    return [p for path in paths for p in read_patch_file(Path(path))]


def apply(patch: Patch, tree: Path, log: Path | None = None) -> None:
    """Apply one patch to `tree` (which must not be inside a git work tree's index)."""
    env = {**os.environ, "LC_ALL": "C",
           # never let git find a repository above the tree and apply relative to it
           "GIT_CEILING_DIRECTORIES": str(Path(tree).resolve().parent)}
    proc = subprocess.run(
        ["git", "apply", "--verbose", "--whitespace=nowarn", "-p1", "-"],
        input=patch.diff.encode(), cwd=tree, capture_output=True, env=env, check=False,
    )
    output = (proc.stdout + proc.stderr).decode(errors="replace")
    if log is not None:
        with log.open("a") as f:
            f.write(f"$ git apply {patch.label}\n{output}\n")
    if proc.returncode != 0:
        where = f" (git apply output: {log})" if log else ""
        raise KernelError(f"patch {patch.label} does not apply: {explain(patch, output)}{where}")


def explain(patch: Patch, output: str) -> str:
    """The failing hunk, by number and header, from git apply's output."""
    if m := _FAILED.search(output):
        path, line = m.group("file"), int(m.group("line"))
        hunks = patch.hunks(path)
        for i, (start, header) in enumerate(hunks, start=1):
            if start == line:
                return f"hunk #{i} of {len(hunks)} in {path} ({header}) does not match the tree"
        return f"{path}: a hunk at line {line} does not match the tree"
    errors = [line.removeprefix("error: ") for line in output.splitlines()
              if line.startswith("error: ")]
    if errors:
        return errors[-1]
    return output.strip().splitlines()[-1] if output.strip() else "git apply failed"
