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

import re
import sys
from pathlib import Path

from harness.host.rootfs import unpacked_closure
from harness.host.targets import bytecode
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
# 2: the standard library byte-compiled.
LAYOUT = "2"

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
    def finish(root: Path) -> None:
        link_applets(root)
        if not (root / PYTHON.lstrip("/")).exists():
            raise SetupError(f"the {arch.debian} userland has no {PYTHON}")
        stdlib = f"usr/lib/python{PY}"
        bytecode.compile_tree(root / stdlib, f"/{stdlib}")

    return unpacked_closure(f"userland/{arch.debian}", WANTED, SKIP, arch.debian, None,
                            finish, LAYOUT)
