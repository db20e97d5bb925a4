"""Applying a user's patches to a source tree, with errors that name the hunk."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from harness.pure.errors import KernelError


def apply_patches(tree: Path, patches: Sequence[Path], strip: int = 1) -> None:
    for patch in patches:
        patch = Path(patch)
        if not patch.is_file():
            raise KernelError(f"patch {patch} does not exist")
        proc = subprocess.run(
            ["patch", f"-p{strip}", "--forward", "--batch", "-i", str(patch.resolve())],
            cwd=tree,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            out = proc.stdout + proc.stderr
            failed = re.findall(r"Hunk #\d+ FAILED at \d+.*|can't find file to patch.*", out)
            where = "; ".join(failed) or out.strip().splitlines()[-1]
            raise KernelError(f"patch {patch.name} does not apply to {tree}: {where}")
