"""A kernel made ready for a driver that runs without its hardware.

A profile's `emulation` names the modules a stock kernel lacks (rcar-vin
from the kernel's own source, with the emulation build's patches) and the
project's test-only stand-ins for the hardware (vm/rcar). Each is built out
of tree against the kernel's build tree, cross-compiled when the guest's
architecture is not the host's, and laid over the kernel's module tree;
every step is cached by its inputs (harness.kernels.outoftree).
"""

from __future__ import annotations

import gzip
import platform
import re
from pathlib import Path

from harness.arch import get_arch
from harness.errors import KernelError
from harness.kernels.kernel import Kernel
from harness.kernels.outoftree import ModuleSource, with_module
from harness.kernels.source import source_tree
from harness.profiles import DriverProfile

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# dpkg's names for the host machine, for Debian's headers (their Makefile
# cross-compiles when DEB_BUILD_ARCH differs from DEB_HOST_ARCH).
_DEB_BUILD_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def make_vars(kernel: Kernel) -> tuple[str, ...]:
    """make variables that build modules for `kernel` on this host: none for the
    host's own architecture, ARCH/CROSS_COMPILE (and Debian's DEB_*_ARCH) otherwise."""
    arch = get_arch(kernel.arch)
    host = platform.machine()
    if arch.name == host:
        return ()
    build_arch = _DEB_BUILD_ARCH.get(host)
    if build_arch is None:
        raise KernelError(f"cannot cross-build {arch.name} modules on a {host} host")
    gnu_type = arch.cross_compile.rstrip("-")
    return (f"ARCH={arch.kernel}", f"CROSS_COMPILE={arch.cross_compile}",
            f"DEB_BUILD_ARCH={build_arch}", f"DEB_HOST_ARCH={arch.debian}",
            f"DEB_HOST_GNU_TYPE={gnu_type}")


def debian_version(kernel: Kernel) -> str:
    """The Debian version of an unpacked Debian kernel (its changelog's first line),
    which names the linux-source its modules build from."""
    docs = sorted((kernel.modules_root / "usr/share/doc").glob(f"linux-image-{kernel.release}*"))
    for doc in docs:
        changelog = doc / "changelog.Debian.gz"
        if changelog.is_file():
            with gzip.open(changelog, "rt") as f:
                m = re.match(r"linux \(([^)]+)\)", f.readline())
            if m:
                return m.group(1)
    raise KernelError(f"{kernel.describe()} is not an unpacked Debian kernel: no changelog "
                      f"names its version, so no linux-source matches it")


def kernel_source(kernel: Kernel) -> Path:
    """The source tree `kernel` was built from: an O= build tree's `source`
    link, else the linux-source of a Debian kernel's version."""
    if kernel.kbuild is not None and (kernel.kbuild / "source").is_dir():
        return (kernel.kbuild / "source").resolve()
    return source_tree(debian_version(kernel))


def for_profile(kernel: Kernel, profile: DriverProfile) -> Kernel:
    """`kernel` with the modules `profile` needs in emulation (itself when none)."""
    emulation = profile.emulation
    if emulation is None:
        return kernel
    if kernel.arch != emulation.arch:
        raise KernelError(f"{profile.name} runs emulated in an {emulation.arch} guest, and "
                          f"{kernel.flavour} is an {kernel.arch} kernel: use an "
                          f"{emulation.arch} flavour (e.g. --kernel debian-arm64)")
    if kernel.kbuild is None:
        raise KernelError(f"{kernel.describe()} has no build tree to build {profile.name}'s "
                          f"modules against")
    cross = make_vars(kernel)
    for module in emulation.modules:
        tree = PROJECT_ROOT if module.project else kernel_source(kernel)
        kernel = with_module(
            kernel, kbuild=kernel.kbuild, tree=tree,
            module=ModuleSource(module.name, module.subdir, module.config, module.objects),
            patches=[PROJECT_ROOT / p for p in module.patches],
            flavour=kernel.flavour, make_vars=cross,
        )
    return kernel


def device_tree_fragment(profile: DriverProfile) -> Path | None:
    """The profile's device-tree fragment in this project, if it has one."""
    if profile.emulation is None:
        return None
    return PROJECT_ROOT / profile.emulation.device_tree
