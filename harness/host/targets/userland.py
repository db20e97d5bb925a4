"""A guest userland for an architecture the host cannot run (an arm64 guest).

The x86 guest runs the host's own Python from the host root it mounts over
9p. An arm64 guest mounts the same host root (for the checkout, the
virtualenv's pure-Python packages, the job file and the report directory, all
at their host paths) but needs programs of its own: CPython (the host's
minor version), the C libraries its extension modules and pyudev's ctypes
load, kmod (the agent runs modprobe and rmmod), and busybox for everything a
task runs through a shell. They come from Debian's packages for that architecture, resolved with
their dependencies from the archive's index, unpacked into one cached tree
laid out like the host (merged /usr), and QEMU exports that tree as a second
9p share that the initramfs stacks over the host root (vm/initramfs-init).
Names that exist in both resolve to the guest's architecture; multiarch
library directories (/usr/lib/aarch64-linux-gnu) never collide.
"""

from __future__ import annotations

import fcntl
import re
import shutil
import sys
import tempfile
from pathlib import Path

from harness.host import cache
from harness.host.kernels import apt
from harness.host.kernels.closure import Index, closure
from harness.pure.arch import Arch
from harness.pure.errors import SetupError

# The guest's CPython is the host's minor version: the virtualenv's
# site-packages it imports from the host were installed for that version.
PY = f"{sys.version_info.major}.{sys.version_info.minor}"

# What the agent needs in the guest; their dependencies come from the index.
# libc-bin: ldconfig, which ctypes.util.find_library runs to find libudev.
WANTED = (
    f"python{PY}-minimal", f"libpython{PY}-stdlib", "libudev1", "kmod", "busybox-static",
    "libc-bin",
)

# Dependencies not worth unpacking: packaging machinery (debconf pulls in
# perl), and architecture-independent data (time zones, MIME types, inputrc)
# that the host root below the layer already has.
SKIP = frozenset({
    "debconf", "debconf-2.0", "perl-base", "dpkg", "install-info", "tzdata",
    "readline-common", "media-types", "mime-support",
})

# Bumped when the layer's layout changes, so cached layers are rebuilt.
LAYOUT = "1"

# Top-level directories the host has as symlinks into /usr (merged /usr).
# The layer must have the same symlinks: an overlay layer's directory would
# hide the host's symlink instead of merging with what it points to.
MERGED = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")

# What `python` means in the guest (harness.python=).
PYTHON = f"/usr/bin/python{PY}"


def applets(busybox: bytes) -> list[str]:
    """The applet names compiled into a busybox binary, read from its name
    table ("[\\0[[\\0acpid\\0...\\0\\0") since a foreign binary cannot be asked
    with --list."""
    start = busybox.find(b"\0[\0[[\0")
    if start < 0:
        return []
    names = []
    for raw in busybox[start + 1 :].split(b"\0"):
        if not raw or not re.fullmatch(rb"[a-z0-9_.\[\]-]+", raw):
            break
        names.append(raw.decode())
    return [n for n in names if n != "busybox"]


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


def link_applets(root: Path) -> None:
    """usr/bin/<applet> -> busybox for every applet no package provides, so
    `sh`, `uname`, `sleep`... in the guest are the guest's own."""
    busybox = root / "usr/bin/busybox"
    names = applets(busybox.read_bytes())
    if "sh" not in names:
        raise SetupError(f"{busybox} has no applet table with sh in it")
    for name in names:
        link = root / "usr/bin" / name
        if not any((root / d / name).exists() or (root / d / name).is_symlink()
                   for d in ("usr/bin", "usr/sbin")):
            link.symlink_to("busybox")


def build(arch: Arch) -> Path:
    """The userland tree for `arch`, resolved against the archive as apt last
    saw it and cached by the exact package versions."""
    version = apt.lists_version(arch.debian)
    record = cache.cache_root() / "userland" / f"{arch.debian}-{version}.resolved"
    if record.exists():
        specs = record.read_text().split()
    else:
        index = Index(apt.available(arch.debian))
        specs = [f"{s.name}={s.version}" for s in closure(WANTED, index, SKIP)]
    key = cache.digest(LAYOUT, *specs)

    def fill(dest: Path) -> None:
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            for deb in apt.download(specs, Path(tmp), arch.debian):
                apt.unpack(deb, dest)
        # Documentation and locales: nothing in the guest reads them.
        for unused in ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/lintian"):
            shutil.rmtree(dest / unused, ignore_errors=True)
        merge_usr(dest)
        link_applets(dest)
        if not (dest / PYTHON.lstrip("/")).exists():
            raise SetupError(f"the {arch.debian} userland has no {PYTHON}")

    record.parent.mkdir(parents=True, exist_ok=True)
    # Parallel test workers each construct a target: one builds, the others wait.
    with (record.parent / f".{arch.debian}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        layer = cache.entry(f"userland/{arch.debian}-{key}", fill)
    record.write_text("\n".join(specs) + "\n")
    return layer
