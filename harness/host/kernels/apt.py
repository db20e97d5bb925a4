"""Debian packages without installing them: resolve, download, unpack.

Kernels are fetched with `apt-get download` and unpacked with `dpkg-deb -x`
into the cache, so the host's own kernel and /boot are never touched.

Packages of another architecture (an arm64 guest's kernel and userland) come
from the same sources.list through an apt state of their own in the cache
(its own package lists, an empty dpkg status), so the host's dpkg never
learns a foreign architecture. Every function takes `arch` (a dpkg
architecture); None is the host's.
"""

from __future__ import annotations

import fcntl
import re
import subprocess
import time
from functools import cache as _once
from pathlib import Path

from harness.host import cache
from harness.pure.errors import SetupError

_updated = False

# A foreign architecture's package lists are refreshed after this long: the
# archive drops superseded kernels, so a stale list names .debs that are gone.
FOREIGN_LISTS_MAX_AGE = 24 * 3600.0


@_once
def host_arch() -> str:
    return _run(["dpkg", "--print-architecture"]).strip()


def _options(arch: str | None) -> list[str]:
    """apt -o options that point apt at `arch`'s own state in the cache."""
    if arch is None or arch == host_arch():
        return []
    state = cache.cache_root() / "apt" / arch
    for d in ("lists/partial", "cache/archives/partial"):
        (state / d).mkdir(parents=True, exist_ok=True)
    (state / "status").touch()
    return [
        "-o", f"APT::Architecture={arch}", "-o", f"APT::Architectures={arch}",
        "-o", f"Dir::State::Lists={state / 'lists'}",
        "-o", f"Dir::State::status={state / 'status'}",
        "-o", f"Dir::Cache={state / 'cache'}",
        # apt's download sandbox user cannot write into root's cache directory.
        "-o", "APT::Sandbox::User=root",
    ]


def _foreign_lists(arch: str | None) -> None:
    """Fetch (or refresh) a foreign architecture's package lists."""
    opts = _options(arch)
    if arch is None or not opts:
        return
    state = cache.cache_root() / "apt" / arch
    stamp = state / "updated"

    def fresh() -> bool:
        return stamp.exists() and time.time() - stamp.stat().st_mtime < FOREIGN_LISTS_MAX_AGE

    if fresh():
        return
    # Parallel test workers share the lists; apt would refuse a second update.
    with (state / "update.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if fresh():
            return
        try:
            _run(["apt-get", *opts, "update", "-qq"])
        except SetupError:
            # Offline: lists from an earlier update still name what the cache holds.
            if not any(state.glob("lists/*Packages*")):
                raise
            return
        stamp.touch()


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


def _show(package: str, arch: str | None = None) -> str:
    if opts := _options(arch):
        _foreign_lists(arch)
        try:
            out = _run(["apt-cache", *opts, "show", "--no-all-versions", package])
        except SetupError:
            out = ""
        if not out.strip():
            raise SetupError(f"apt knows no {arch} package {package}: "
                             f"check /etc/apt/sources.list")
        return out
    out = _run(["apt-cache", "show", "--no-all-versions", package])
    if not out.strip():
        _update_once()
        out = _run(["apt-cache", "show", "--no-all-versions", package])
    if not out.strip():
        raise SetupError(f"apt knows no package {package}: check /etc/apt/sources.list")
    return out


def field(package: str, name: str, arch: str | None = None) -> str:
    m = re.search(rf"^{name}: (.*)$", _show(package, arch), re.M)
    if not m:
        raise SetupError(f"package {package} has no {name} field")
    return m.group(1).strip()


def depends_matching(package: str, pattern: str, arch: str | None = None) -> str:
    """The first dependency of `package` whose name matches `pattern`."""
    for alt in field(package, "Depends", arch).split(","):
        name = alt.split("|")[0].split("(")[0].strip()
        if re.fullmatch(pattern, name):
            return name
    raise SetupError(f"{package} has no dependency matching {pattern}")


def lists_version(arch: str) -> str:
    """Changes whenever `arch`'s package lists do (for caching what was
    resolved against them)."""
    _foreign_lists(arch)
    lists = cache.cache_root() / "apt" / arch / "lists" if _options(arch) else Path(
        "/var/lib/apt/lists")
    stamps = sorted(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                    for p in lists.glob("*Release"))
    return cache.digest(*stamps)


def available(arch: str | None = None) -> str:
    """Every package's candidate stanza (`apt-cache dumpavail`), for resolving
    a whole dependency closure without one apt call per package."""
    _foreign_lists(arch)
    return _run(["apt-cache", *_options(arch), "dumpavail"])


def download(packages: list[str], dest: Path, arch: str | None = None) -> list[Path]:
    """Download exact `name=version` specs into dest; return the .deb paths."""
    dest.mkdir(parents=True, exist_ok=True)
    _foreign_lists(arch)
    _run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", *_options(arch),
          *packages], cwd=dest)
    debs = sorted(dest.glob("*.deb"))
    if len(debs) < len(packages):
        raise SetupError(f"apt-get download returned {len(debs)} of {len(packages)} packages")
    return debs


def unpack(deb: Path, root: Path) -> None:
    _run(["dpkg-deb", "-x", str(deb), str(root)])


def unpacked(package: str, arch: str | None = None) -> Path:
    """The current version of `package`, unpacked into the cache (never installed)."""
    version = field(package, "Version", arch)

    def build(dest: Path) -> None:
        for deb in download([f"{package}={version}"], dest / ".debs", arch):
            unpack(deb, dest)
            deb.unlink()
        (dest / ".debs").rmdir()

    suffix = f"_{arch}" if _options(arch) else ""
    return cache.entry(f"debs/{package}_{version.replace(':', '%3a')}{suffix}", build)
