"""Debian packages without installing them: resolve, download, unpack.

Kernels are fetched with `apt-get download` and unpacked with `dpkg-deb -x`
into the cache, so the host's own kernel and /boot are never touched.

Packages of another architecture (an arm64 guest's kernel and userland) or
of another suite (trixie's or sid's kernels on a bookworm host) come through
an apt state of their own in the cache: its own package lists, an empty dpkg
status and, for a suite, its own sources list naming only that suite. The
host's sources, lists and dpkg architectures are never changed. Every
function takes `arch` (a dpkg architecture; None is the host's) and `suite`
(a Debian suite; None is whatever the host's own sources carry).
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

# Where a suite the host does not carry comes from, with the key that signs
# every current suite (debian-archive-keyring).
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


@_once
def host_arch() -> str:
    return _run(["dpkg", "--print-architecture"]).strip()


def state_dir(arch: str | None, suite: str | None = None) -> Path | None:
    """The cache's own apt state for (`arch`, `suite`), or None for the host's."""
    arch = arch or host_arch()
    if suite is not None:
        return cache.cache_root() / "apt" / f"{suite}-{arch}"
    if arch != host_arch():
        return cache.cache_root() / "apt" / arch
    return None


def _options(arch: str | None, suite: str | None = None) -> list[str]:
    """apt -o options that point apt at (`arch`, `suite`)'s own state in the cache."""
    state = state_dir(arch, suite)
    if state is None:
        return []
    arch = arch or host_arch()
    for d in ("lists/partial", "cache/archives/partial"):
        (state / d).mkdir(parents=True, exist_ok=True)
    (state / "status").touch()
    opts = [
        "-o", f"APT::Architecture={arch}", "-o", f"APT::Architectures={arch}",
        "-o", f"Dir::State::Lists={state / 'lists'}",
        "-o", f"Dir::State::status={state / 'status'}",
        "-o", f"Dir::Cache={state / 'cache'}",
        # apt's download sandbox user cannot write into root's cache directory.
        "-o", "APT::Sandbox::User=root",
    ]
    if suite is not None:
        sources = state / "sources.list"
        line = f"deb [signed-by={DEBIAN_KEYRING}] {DEBIAN_MIRROR} {suite} main\n"
        if not sources.exists() or sources.read_text() != line:
            sources.write_text(line)
        opts += ["-o", f"Dir::Etc::SourceList={sources}",
                 "-o", "Dir::Etc::SourceParts=/nonexistent"]
    return opts


def _foreign_lists(arch: str | None, suite: str | None = None) -> None:
    """Fetch (or refresh) the package lists of an apt state of our own."""
    opts = _options(arch, suite)
    state = state_dir(arch, suite)
    if state is None:
        return
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


def _show(package: str, arch: str | None = None, suite: str | None = None) -> str:
    if opts := _options(arch, suite):
        _foreign_lists(arch, suite)
        try:
            out = _run(["apt-cache", *opts, "show", "--no-all-versions", package])
        except SetupError:
            out = ""
        if not out.strip():
            if suite:
                raise SetupError(f"{suite} has no {arch or host_arch()} package {package} "
                                 f"in {DEBIAN_MIRROR}: is the name right for that suite?")
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


def exists(package: str, arch: str | None = None, suite: str | None = None) -> bool:
    """True if apt knows `package` (for `arch`, in `suite`)."""
    try:
        _show(package, arch, suite)
    except SetupError:
        return False
    return True


def field(package: str, name: str, arch: str | None = None, suite: str | None = None) -> str:
    m = re.search(rf"^{name}: (.*)$", _show(package, arch, suite), re.M)
    if not m:
        raise SetupError(f"package {package} has no {name} field")
    return m.group(1).strip()


def depends(package: str, arch: str | None = None, suite: str | None = None) -> list[str]:
    """The names `package` depends on (the first of each alternative)."""
    return [alt.split("|")[0].split("(")[0].strip()
            for alt in field(package, "Depends", arch, suite).split(",")]


def depends_matching(package: str, pattern: str, arch: str | None = None,
                     suite: str | None = None) -> str:
    """The first dependency of `package` whose name matches `pattern`."""
    for name in depends(package, arch, suite):
        if re.fullmatch(pattern, name):
            return name
    raise SetupError(f"{package} has no dependency matching {pattern}")


def lists_version(arch: str, suite: str | None = None) -> str:
    """Changes whenever `arch`'s package lists do (for caching what was
    resolved against them)."""
    _foreign_lists(arch, suite)
    state = state_dir(arch, suite)
    lists = state / "lists" if state else Path("/var/lib/apt/lists")
    stamps = sorted(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                    for p in lists.glob("*Release"))
    return cache.digest(*stamps)


def available(arch: str | None = None, suite: str | None = None) -> str:
    """Every package's candidate stanza (`apt-cache dumpavail`), for resolving
    a whole dependency closure without one apt call per package."""
    _foreign_lists(arch, suite)
    return _run(["apt-cache", *_options(arch, suite), "dumpavail"])


def download(packages: list[str], dest: Path, arch: str | None = None,
             suite: str | None = None) -> list[Path]:
    """Download exact `name=version` specs into dest; return the .deb paths."""
    dest.mkdir(parents=True, exist_ok=True)
    _foreign_lists(arch, suite)
    _run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root",
          *_options(arch, suite), *packages], cwd=dest)
    debs = sorted(dest.glob("*.deb"))
    if len(debs) < len(packages):
        raise SetupError(f"apt-get download returned {len(debs)} of {len(packages)} packages")
    return debs


def unpack(deb: Path, root: Path) -> None:
    _run(["dpkg-deb", "-x", str(deb), str(root)])


def unpacked(package: str, arch: str | None = None, suite: str | None = None) -> Path:
    """The current version of `package`, unpacked into the cache (never installed)."""
    version = field(package, "Version", arch, suite)

    def build(dest: Path) -> None:
        for deb in download([f"{package}={version}"], dest / ".debs", arch, suite):
            unpack(deb, dest)
            deb.unlink()
        (dest / ".debs").rmdir()

    suffix = f"_{arch}" if (arch or host_arch()) != host_arch() else ""
    suffix += f"_{suite}" if suite else ""
    return cache.entry(f"debs/{package}_{version.replace(':', '%3a')}{suffix}", build)
