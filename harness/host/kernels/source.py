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


def series(version: str) -> tuple[int, int]:
    """(6, 1) for Debian version 6.1.192-2."""
    m = re.match(r"(\d+)\.(\d+)", version)
    if not m:
        raise SetupError(f"cannot derive a linux-source package from version {version!r}")
    return int(m.group(1)), int(m.group(2))


def source_package(version: str) -> str:
    """linux-source-6.1 for Debian version 6.1.192-2."""
    major, minor = series(version)
    return f"linux-source-{major}.{minor}"


def _key(version: str) -> str:
    return f"source/{source_package(version)}_{version}"


def source_cached(version: str) -> bool:
    """True if the source of Debian version `version` is unpacked in the cache."""
    return (cache.cache_root() / _key(version)).is_dir()


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

    return cache.entry(_key(version), build)
