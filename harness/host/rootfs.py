"""A directory tree unpacked from a closure of Debian packages, never installed.

Two things are made this way: an arm64 guest's userland
(harness.host.targets.userland) and a build root holding a compiler the host
lacks (harness.host.kernels.toolchain). Which packages is decided from the
archive's own Depends (harness.host.kernels.closure); the result is cached by
the exact versions resolved, so a tree is rebuilt only when the archive
moves on and the caller asks again.
"""

from __future__ import annotations

import fcntl
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from harness.host import cache
from harness.host.kernels import apt
from harness.host.kernels.closure import Index, closure

# Top-level directories the host has as symlinks into /usr (merged /usr).
# The tree must have the same symlinks: an overlay layer's directory would
# hide the host's symlink instead of merging with what it points to, and a
# chroot finds /bin/sh through them.
MERGED = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")

# Nothing that runs in these trees reads documentation or locales.
UNUSED = ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/lintian")


def _merge(src: Path, dst: Path) -> None:
    """Move the tree `src` into `dst`, merging directories."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        target = dst / entry.name
        if entry.is_dir() and not entry.is_symlink() and target.is_dir():
            _merge(entry, target)
        else:
            if target.is_symlink() or target.is_file():
                target.unlink()
            entry.rename(target)
    src.rmdir()


def merge_usr(root: Path) -> None:
    """/bin, /sbin, /lib... of the unpacked packages moved under /usr, with
    symlinks in their place, as on the host."""
    for name in MERGED:
        top = root / name
        if top.is_dir() and not top.is_symlink():
            _merge(top, root / "usr" / name)
        if (root / "usr" / name).is_dir() and not top.is_symlink():
            top.symlink_to(f"usr/{name}")


def unpacked_closure(
    name: str,
    wanted: Iterable[str],
    skip: frozenset[str],
    arch: str | None,
    suite: str | None,
    finish: Callable[[Path], None] = lambda root: None,
    layout: str = "1",
) -> Path:
    """`wanted` and their dependencies from (`arch`, `suite`)'s archive,
    unpacked into the cache entry `<name>-<key>` with merged /usr, then
    `finish(root)`. `layout` is bumped when what `finish` makes changes."""
    wanted = tuple(wanted)
    version = apt.lists_version(arch or apt.host_arch(), suite)
    # What was resolved against these lists for this request (a new wanted
    # package must be resolved afresh, not read from an older record).
    asked = cache.digest(version, *wanted, *sorted(skip))
    record = cache.cache_root() / f"{name}-{asked}.resolved"
    if record.exists():
        specs = record.read_text().split()
    else:
        index = Index(apt.available(arch, suite))
        specs = [f"{s.name}={s.version}" for s in closure(wanted, index, skip)]
    key = cache.digest(layout, *specs)

    def fill(dest: Path) -> None:
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            for deb in apt.download(specs, Path(tmp), arch, suite):
                apt.unpack(deb, dest)
        for unused in UNUSED:
            shutil.rmtree(dest / unused, ignore_errors=True)
        merge_usr(dest)
        finish(dest)

    record.parent.mkdir(parents=True, exist_ok=True)
    # Parallel test workers may ask at once: one builds, the others wait.
    with (record.parent / f".{Path(name).name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        root = cache.entry(f"{name}-{key}", fill)
    record.write_text("\n".join(specs) + "\n")
    return root
