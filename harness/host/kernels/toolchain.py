"""The compiler a kernel was built with, for the modules built against it.

A module has to be built by its kernel's compiler: kbuild passes the flags
the kernel's configuration chose for that compiler, and an older one rejects
them (6.12 built by gcc-14 passes -fmin-function-alignment=16, which the
host's gcc-12 does not know). Debian's headers name the compiler as
`$(CROSS_COMPILE)gcc-<major>`, and the configuration records its version.

When the host has that compiler, make runs on the host as it always did.
When it does not (trixie's gcc-14, sid's gcc-16 on a bookworm host), the
compiler comes from the oldest Debian suite that carries it, with the rest
of what kbuild runs (make, bash, coreutils, binutils, and that suite's C
library, which those programs and the headers' own fixdep and modpost were
linked against), unpacked into a build root in the cache. make then runs
chrooted in it, in a private mount namespace where the cache and the build
tree are bound at the paths they have on the host, so nothing on either
side needs to know.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.host import cache
from harness.host.kernels import apt
from harness.host.kernels.suites import SUITES, Suite
from harness.host.rootfs import unpacked_closure
from harness.pure.errors import KernelError, SetupError

# What kbuild runs for an external module, besides the compiler. binutils:
# the unprefixed `as` and `ld` a native gcc runs (its package brings only
# the prefixed ones).
BUILD_TOOLS = ("make", "binutils", "bash", "dash", "coreutils", "sed", "grep", "mawk",
               "findutils", "diffutils", "gzip", "xz-utils")

# Packaging machinery nothing in a build root runs (debconf pulls in perl).
SKIP = frozenset({"debconf", "debconf-2.0", "dpkg", "install-info", "tzdata"})

# Links that maintainer scripts make on an installed system (dash's postinst,
# update-alternatives), which unpacking alone does not.
LINKS = {"usr/bin/sh": "dash", "usr/bin/awk": "mawk"}

# Bumped when what `build_root` makes of the unpacked packages changes.
LAYOUT = "2"

PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


@dataclass(frozen=True)
class Compiler:
    """The C compiler a build tree's kernel was built with."""

    triplet: str  # GNU triplet of the code it emits: x86_64-linux-gnu
    major: int  # gcc's major version, from CONFIG_GCC_VERSION

    @property
    def command(self) -> str:
        """The name Debian's headers call it by ($(CROSS_COMPILE)gcc-<major>)."""
        return f"{self.triplet}-gcc-{self.major}"

    @property
    def package(self) -> str:
        """The Debian package that ships `command` for the host."""
        return f"gcc-{self.major}-{self.triplet.replace('_', '-')}"


def compiler_of(kbuild: Path, cross_compile: str = "") -> Compiler | None:
    """The compiler `kbuild`'s kernel was built with, or None if it was not gcc.
    `cross_compile` is the prefix the build is run with ("" for the host's own
    architecture)."""
    config = kbuild / ".config"
    try:
        text = config.read_text(errors="replace")
    except OSError:
        raise KernelError(f"{kbuild} has no .config: it is not a kernel build tree") from None
    m = re.search(r"^CONFIG_GCC_VERSION=(\d+)$", text, re.M)
    if not m or int(m.group(1)) == 0:
        return None
    triplet = cross_compile.rstrip("-") or _host_triplet()
    return Compiler(triplet=triplet, major=int(m.group(1)) // 10000)


def _host_triplet() -> str:
    # Debian's GNU type for the architectures it builds kernels for here.
    return f"{platform.machine()}-linux-gnu"


def suite_carrying(package: str) -> Suite:
    """The oldest suite (in SUITES order) whose archive has `package`."""
    for suite in SUITES:
        try:
            apt.field(package, "Version", None, suite.apt)
        except SetupError:
            continue
        return suite
    names = ", ".join(s.name for s in SUITES)
    raise SetupError(f"no Debian suite the harness follows ({names}) has {package}: "
                     f"build the module with a kernel built by the host's compiler "
                     f"(the debug flavours)")


def kbuild_package(kbuild: Path) -> str | None:
    """The Debian package `kbuild`'s programs (fixdep, modpost, objtool) come
    from: Debian's headers link their scripts/ to linux-kbuild-<version>."""
    scripts = kbuild / "scripts"
    if scripts.is_symlink():
        for part in Path(os.readlink(scripts)).parts:
            if part.startswith("linux-kbuild-"):
                return part
    return None


def build_root(compiler: Compiler, kbuild: Path) -> Path:
    """A tree holding `compiler`, kbuild's tools, their C library, and what
    `kbuild`'s own programs are linked against."""
    suite = suite_carrying(compiler.package)
    # The names its programs need (libelf1t64, libssl3t64...), not the
    # package itself, so one root serves every kernel version of the suite.
    tools = kbuild_package(kbuild)
    needs = apt.depends(tools, None, suite.apt) if tools else []

    def finish(root: Path) -> None:
        if not (root / "usr/bin" / compiler.command).exists():
            raise SetupError(f"the build root of {suite.name} has no /usr/bin/{compiler.command}")
        for link, target in LINKS.items():
            if not (root / link).exists():
                (root / link).symlink_to(target)
        # Mount points for the bind mounts of make_in (the host's /dev and /proc).
        for d in ("dev", "proc", "tmp"):
            (root / d).mkdir(exist_ok=True)

    return unpacked_closure(f"toolchains/{suite.name}-{compiler.package}",
                            (compiler.package, *BUILD_TOOLS, *sorted(needs)), SKIP, None,
                            suite.apt, finish, LAYOUT)


def _outermost(paths: Sequence[Path]) -> list[Path]:
    """`paths` without those inside another of them."""
    resolved = sorted({p.resolve() for p in paths}, key=lambda p: (len(p.parts), str(p)))
    kept: list[Path] = []
    for p in resolved:
        if not any(p.is_relative_to(k) for k in kept):
            kept.append(p)
    return kept


# Runs on the host, in the new mount namespace: bind the host's /dev and
# /proc and every directory the build reads or writes into the root, then
# enter it. Mount points are made inside the root as needed; they stay empty
# on the host side.
_ENTER = """set -e
root=$1; shift
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
while [ "$1" != -- ]; do
    mkdir -p "$root$1"
    mount --bind "$1" "$root$1"
    shift
done
shift
exec chroot "$root" "$@"
"""


def make_in(root: Path, argv: Sequence[str], binds: Sequence[Path]) -> list[str]:
    """The command line that runs `argv` chrooted in `root`, with `binds`
    visible at their host paths."""
    if not shutil.which("unshare"):
        raise SetupError("unshare not found: install util-linux")
    # A user who is not root maps to root in a user namespace of its own.
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    return ["unshare", "--mount", "--propagation", "private", *user, "--",
            "sh", "-c", _ENTER, "enter", str(root), *map(str, _outermost(binds)), "--",
            "env", "-i", f"PATH={PATH}", "LC_ALL=C", "HOME=/", *argv]


def wrap_make(kbuild: Path, argv: Sequence[str], binds: Sequence[Path],
              cross_compile: str = "") -> list[str]:
    """`argv` (a make against `kbuild`) as it must run: unchanged when the host
    has the kernel's compiler, else chrooted in a build root that has it."""
    compiler = compiler_of(kbuild, cross_compile)
    if compiler is None or shutil.which(compiler.command):
        return list(argv)
    # The build tree itself may live outside the cache (a user's own kernel),
    # and a tree built by hand calls its compiler plain `gcc`.
    return make_in(build_root(compiler, kbuild), [*argv, f"CC={compiler.command}"],
                   [cache.cache_root(), kbuild, *binds])
