"""Debian packages without installing them: resolve, download, unpack.

Kernels are fetched with `apt-get download` and unpacked with `dpkg-deb -x`
into the cache, so the host's own kernel and /boot are never touched.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from harness.errors import SetupError

_updated = False


def _run(argv: list[str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise SetupError(f"{argv[0]} not found: this needs a Debian host with apt") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SetupError(f"{' '.join(argv)} failed: {last}")
    return proc.stdout


def _update_once() -> None:
    global _updated
    if not _updated:
        _run(["apt-get", "update", "-qq"])
        _updated = True


def _show(package: str) -> str:
    out = _run(["apt-cache", "show", "--no-all-versions", package])
    if not out.strip():
        _update_once()
        out = _run(["apt-cache", "show", "--no-all-versions", package])
    if not out.strip():
        raise SetupError(f"apt knows no package {package}: check /etc/apt/sources.list")
    return out


def field(package: str, name: str) -> str:
    m = re.search(rf"^{name}: (.*)$", _show(package), re.M)
    if not m:
        raise SetupError(f"package {package} has no {name} field")
    return m.group(1).strip()


def depends_matching(package: str, pattern: str) -> str:
    """The first dependency of `package` whose name matches `pattern`."""
    for alt in field(package, "Depends").split(","):
        name = alt.split("|")[0].split("(")[0].strip()
        if re.fullmatch(pattern, name):
            return name
    raise SetupError(f"{package} has no dependency matching {pattern}")


def download(packages: list[str], dest: Path) -> list[Path]:
    """Download exact `name=version` specs into dest; return the .deb paths."""
    dest.mkdir(parents=True, exist_ok=True)
    _run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", *packages], cwd=dest)
    debs = sorted(dest.glob("*.deb"))
    if len(debs) < len(packages):
        raise SetupError(f"apt-get download returned {len(debs)} of {len(packages)} packages")
    return debs


def unpack(deb: Path, root: Path) -> None:
    _run(["dpkg-deb", "-x", str(deb), str(root)])


def unpacked(package: str) -> Path:
    """The current version of `package`, unpacked into the cache (never installed)."""
    from harness import cache

    version = field(package, "Version")

    def build(dest: Path) -> None:
        for deb in download([f"{package}={version}"], dest / ".debs"):
            unpack(deb, dest)
            deb.unlink()
        (dest / ".debs").rmdir()

    return cache.entry(f"debs/{package}_{version.replace(':', '%3a')}", build)
