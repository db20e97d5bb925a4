"""Debian's linux-source tarball, unpacked once into the cache.

Every flavour comes from it or matches it: a profile's modules that a
Debian kernel lacks build out of tree from its directories (vimc from
drivers/media/test-drivers/vimc), and `debug` builds the whole kernel.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from harness.host import cache
from harness.host.kernels import apt
from harness.pure.errors import SetupError


def source_package(version: str) -> str:
    """linux-source-6.1 for Debian version 6.1.192-2."""
    m = re.match(r"(\d+\.\d+)", version)
    if not m:
        raise SetupError(f"cannot derive a linux-source package from version {version!r}")
    return f"linux-source-{m.group(1)}"


def source_tree(version: str, suite: str | None = None) -> Path:
    """The unpacked kernel source of Debian version `version` (from apt `suite`)."""
    package = source_package(version)

    def build(dest: Path) -> None:
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            (deb,) = apt.download([f"{package}={version}"], Path(tmp) / "debs", suite=suite)
            apt.unpack(deb, Path(tmp) / "root")
            tarballs = list((Path(tmp) / "root/usr/src").glob("linux-source-*.tar.*"))
            if len(tarballs) != 1:
                raise SetupError(f"{deb.name} holds no linux-source tarball")
            proc = subprocess.run(
                ["tar", "-xf", str(tarballs[0]), "-C", str(dest), "--strip-components=1"],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise SetupError(f"unpacking {tarballs[0].name} failed: {proc.stderr.strip()}")

    return cache.entry(f"source/{package}_{version}", build)
