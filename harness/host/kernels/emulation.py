"""A kernel made ready for a driver profile: the modules it builds out of tree.

A profile's `out_of_tree` names module directories: from the kernel's own
source (vimc, which Debian's amd64 kernel lacks; rcar-vin with the emulation
build's patch) or from this project (the test-only stand-ins for R-Car
hardware, vm/rcar). One is built when the kernel lacks a module of it, when
it has patches of its own, or when a user's --patch changes its directory;
it is built out of tree against the kernel's build tree, cross-compiled when
the guest's architecture is not the host's, and laid over the kernel's
module tree, every step cached by its inputs (harness.host.kernels.outoftree).
"""

from __future__ import annotations

import gzip
import platform
import re
from collections.abc import Sequence
from pathlib import Path

from harness.host.kernels.kernel import Kernel
from harness.host.kernels.outoftree import with_module
from harness.host.kernels.series import touched_files
from harness.host.kernels.source import source_tree
from harness.pure.arch import Arch, get_arch
from harness.pure.delays import MODULE as DELAY_MODULE_NAME
from harness.pure.errors import KernelError
from harness.pure.profiles import DriverProfile, OutOfTreeModule

PROJECT_ROOT = Path(__file__).resolve().parents[3]

# dpkg's names for the host machine, for Debian's headers (their Makefile
# cross-compiles when DEB_BUILD_ARCH differs from DEB_HOST_ARCH).
_DEB_BUILD_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def cross_compile(kernel: Kernel) -> str:
    """The CROSS_COMPILE prefix that builds for `kernel` on this host ("" for its own)."""
    arch = get_arch(kernel.arch)
    return "" if arch.name == platform.machine() else arch.cross_compile


def make_vars(kernel: Kernel) -> tuple[str, ...]:
    """make variables that build modules for `kernel` on this host: none for the
    host's own architecture, ARCH/CROSS_COMPILE (and Debian's DEB_*_ARCH) otherwise."""
    arch = get_arch(kernel.arch)
    host = platform.machine()
    if not cross_compile(kernel):
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
    """The source tree `kernel` was built from: the one its flavour names, an O=
    build tree's `source` link, else the linux-source of a Debian kernel's version."""
    if kernel.source is not None:
        return kernel.source
    if kernel.kbuild is not None and (kernel.kbuild / "source").is_dir():
        return (kernel.kbuild / "source").resolve()
    return source_tree(debian_version(kernel))


def guest_arch(profile: DriverProfile) -> Arch:
    """The architecture `profile` runs in: its emulation's board, else the PC guest
    kernels built from a tree default to."""
    from harness.host.kernels.tree import DEFAULT_ARCH

    return get_arch(profile.emulation.arch) if profile.emulation else DEFAULT_ARCH


def check_arch(profile: DriverProfile, arch: str, flavour: str) -> None:
    """Refuse a kernel of the wrong architecture for a profile that runs emulated."""
    emulation = profile.emulation
    if emulation is not None and arch != emulation.arch:
        raise KernelError(f"{profile.name} runs emulated in an {emulation.arch} guest, and "
                          f"{flavour} is an {arch} kernel: use an "
                          f"{emulation.arch} flavour (e.g. --kernel debian-arm64)")


def route_patches(
    profile: DriverProfile, patches: Sequence[Path]
) -> dict[OutOfTreeModule, tuple[Path, ...]]:
    """Each user patch goes to the profile's kernel-source modules whose directory
    it changes; a patch that changes anything else cannot be built out of tree."""
    routed: dict[OutOfTreeModule, tuple[Path, ...]] = {}
    ours = [m for m in profile.out_of_tree if not m.project]
    where = ", ".join(m.subdir for m in ours) or "none"
    for patch in map(Path, patches):
        if not patch.is_file():
            raise KernelError(f"patch {patch} does not exist: pass a diff against the kernel "
                              f"source (paths like a/drivers/media/...)")
        files = touched_files(patch.read_text(errors="replace"))
        if not files:
            raise KernelError(f"patch {patch} holds no diff")
        outside = [f for f in files if not any(f.startswith(f"{m.subdir}/") for m in ours)]
        if outside:
            raise KernelError(f"patch {patch} changes {outside[0]}, outside the modules "
                              f"{profile.name} builds out of tree ({where}): patch a whole "
                              f"kernel with 'v4l2-unplug validate --tree'")
        for module in ours:
            if any(f.startswith(f"{module.subdir}/") for f in files):
                routed[module] = (*routed.get(module, ()), patch)
    return routed


def for_profile(kernel: Kernel, profile: DriverProfile, patches: Sequence[Path] = ()) -> Kernel:
    """`kernel` with the modules `profile` builds out of tree that it needs, and
    `patches` applied to the driver modules they change (itself when none)."""
    check_arch(profile, kernel.arch, kernel.flavour)
    routed = route_patches(profile, patches)
    # Decided on the kernel as it came, before any build adds modules to it.
    wanted = [m for m in profile.out_of_tree
              if m.patches or m in routed or not all(map(kernel.has_module, m.modules))]
    if not wanted:
        return kernel
    if kernel.kbuild is None:
        configs = ", ".join(f"{m.config}=m" for m in wanted if m.config) or "them"
        raise KernelError(f"{kernel.describe()} has no build tree to build {profile.name}'s "
                          f"modules against ({', '.join(m.name for m in wanted)}): build "
                          f"the kernel with {configs}, patched in its own tree")
    cross = make_vars(kernel)
    for module in wanted:
        tree = PROJECT_ROOT if module.project else kernel_source(kernel)
        kernel = with_module(
            kernel, kbuild=kernel.kbuild, tree=tree, module=module,
            patches=[*(PROJECT_ROOT / p for p in module.patches), *routed.get(module, ())],
            flavour=kernel.flavour, make_vars=cross, cross_compile=cross_compile(kernel),
        )
    return kernel


# vm/amplify: the test-only module `run --race --amplify` delays kernel functions with.
DELAY_MODULE = OutOfTreeModule(DELAY_MODULE_NAME, "vm/amplify", project=True)


def config_value(kernel: Kernel, option: str) -> str | None:
    """`option`'s value in the configuration `kernel` was built with (its build
    tree's .config), None when it is not set or there is no build tree."""
    if kernel.kbuild is None or not (kernel.kbuild / ".config").is_file():
        return None
    text = (kernel.kbuild / ".config").read_text(errors="replace")
    m = re.search(rf"^{option}=(.*)$", text, re.M)
    return m.group(1) if m else None


def with_delays(kernel: Kernel) -> Kernel:
    """`kernel` with the delay module (vm/amplify) in `updates/`."""
    if kernel.kbuild is None:
        raise KernelError(f"{kernel.describe()} has no build tree to build the delay module "
                          f"of --amplify against: use a debian or debug flavour")
    if config_value(kernel, "CONFIG_KPROBES") != "y":
        raise KernelError(f"{kernel.flavour} {kernel.release} is built without CONFIG_KPROBES, "
                          f"which --amplify's delays need: rebuild it with CONFIG_KPROBES=y "
                          f"(vm/debug.config has it)")
    return with_module(kernel, kbuild=kernel.kbuild, tree=PROJECT_ROOT, module=DELAY_MODULE,
                       flavour=kernel.flavour, make_vars=make_vars(kernel),
                       cross_compile=cross_compile(kernel))


def device_tree_fragment(profile: DriverProfile) -> Path | None:
    """The profile's device-tree fragment in this project, if it has one."""
    if profile.emulation is None:
        return None
    return PROJECT_ROOT / profile.emulation.device_tree
