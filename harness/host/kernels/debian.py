"""The `debian` flavours: Debian's current kernel for amd64 and for arm64, as
Debian ships it, with the headers that out-of-tree modules build against.

A driver Debian does not build (vimc on amd64: no CONFIG_VIDEO_VIMC, but
everything vimc needs as modules) is the driver profile's to name; it builds
from the matching linux-source against these headers in seconds
(harness.host.kernels.emulation).
"""

from __future__ import annotations

import fcntl
import gzip
import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.host import cache
from harness.host.kernels import apt
from harness.host.kernels.kernel import Kernel, has_pvh_entry, is_arm64_image
from harness.host.kernels.outoftree import depmod
from harness.host.kernels.source import source_tree
from harness.host.kernels.suites import Suite
from harness.pure.arch import Arch
from harness.pure.errors import KernelError, SetupError


@dataclass(frozen=True)
class DebianRelease:
    release: str  # uname -r, e.g. 6.1.0-56-amd64
    version: str  # Debian version, e.g. 6.1.192-2
    arch: str = "amd64"  # dpkg architecture of the image
    suite: str | None = None  # apt suite it came from (None: the host's sources)

    @property
    def key(self) -> str:
        return f"{self.release}_{self.version}"


def current_release(arch: str = "amd64", suite: str | None = None) -> DebianRelease:
    """What linux-image-<arch> points at today in `suite`; the ABI number moves
    every few weeks."""
    image = apt.depends_matching(
        f"linux-image-{arch}", rf"linux-image-.*-{arch}(-unsigned)?", arch, suite
    )
    return DebianRelease(
        release=image.removeprefix("linux-image-").removesuffix("-unsigned"),
        version=apt.field(image, "Version", arch, suite),
        arch=arch,
        suite=suite,
    )


def extract_vmlinux(bzimage: Path, out: Path, rel: DebianRelease) -> None:
    """The uncompressed ELF inside Debian's bzImage: Debian builds with
    CONFIG_PVH, so QEMU can start it at its PVH entry and skip both the
    firmware's real-mode boot and the XZ decompressor, seconds under TCG."""
    script = source_tree(rel.version, rel.suite) / "scripts" / "extract-vmlinux"
    with out.open("wb") as f:
        proc = subprocess.run(["sh", str(script), str(bzimage)], stdout=f, stderr=subprocess.PIPE)
    if proc.returncode != 0 or not has_pvh_entry(out):
        raise KernelError(f"cannot extract a PVH-bootable vmlinux from {bzimage}: "
                          f"{proc.stderr.decode().strip() or 'no PVH entry note'}")


def arm64_image(vmlinuz: Path, out: Path, rel: DebianRelease) -> None:
    """The Image QEMU boots. Debian's unsigned arm64 vmlinuz is already a plain
    Image (an EFI-stub PE); a gzip'd one, as other builds ship, is inflated
    once here rather than by QEMU on every boot."""
    data = vmlinuz.read_bytes()
    plain = data[:2] != b"\x1f\x8b"
    if not plain:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise KernelError(f"{vmlinuz} is a damaged gzip file: {e}") from None
    if not is_arm64_image(data[:64]):
        raise KernelError(f"{vmlinuz} does not hold an arm64 Image (no ARM\\x64 magic)")
    if plain:
        os.link(vmlinuz, out)  # the same bytes: no second copy of 30 MB
    else:
        out.write_bytes(data)


@dataclass(frozen=True)
class ImageLayout:
    """How one architecture's Debian kernel package becomes what QEMU boots."""

    # Format strings over the release (uname -r), the first the suite has.
    image_packages: tuple[str, ...]
    boot_image: str  # file name in the unpacked entry
    prepare: Callable[[Path, Path, DebianRelease], None]  # (vmlinuz, out, release)
    cmdline: tuple[str, ...] = ()  # what this architecture's kernel is booted with


LAYOUTS = {
    "amd64": ImageLayout(("linux-image-{release}",), "vmlinux", extract_vmlinux),
    # The unsigned package where there is one (bookworm, trixie): the signed
    # one carries an EFI-signed PE image. Sid has only one.
    # Debian's arm64 kernel has no KASAN: poison freed and fresh slab objects and
    # check redzones, so a use-after-free crashes loudly instead of passing.
    "arm64": ImageLayout(("linux-image-{release}-unsigned", "linux-image-{release}"), "Image",
                         arm64_image, cmdline=("slub_debug=FZPU",)),
}

# Where a package puts the compressed kernel: /boot up to trixie; from sid
# on, linux-binary-<release> puts it beside the modules (the path is after
# the move of usr/lib/modules below).
VMLINUZ = ("boot/vmlinuz-{release}", "lib/modules/{release}/vmlinuz")


def image_packages(rel: DebianRelease) -> list[str]:
    """The packages that hold `rel`'s kernel and modules. Up to trixie that
    is linux-image-<release> itself; from sid on it is an empty package that
    depends on linux-binary-, linux-modules- and linux-base-<release>, so
    every dependency named after the release is taken too."""
    names = [p.format(release=rel.release) for p in LAYOUTS[rel.arch].image_packages]
    image = next((name for name in names if apt.exists(name, rel.arch, rel.suite)), None)
    if image is None:
        raise SetupError(f"{rel.suite or 'bookworm'} has no kernel package "
                         f"{' or '.join(names)} for {rel.arch}")
    parts = apt.depends(image, rel.arch, rel.suite)
    return [image, *(p for p in parts if p.startswith("linux-") and p.endswith(rel.release))]


def vmlinuz(root: Path, rel: DebianRelease) -> Path:
    for pattern in VMLINUZ:
        if (path := root / pattern.format(release=rel.release)).is_file():
            return path
    raise KernelError(f"the packages of {rel.release} hold no kernel at "
                      f"{' or '.join(VMLINUZ).format(release=rel.release)}")


def headers_dir(packages: Path, rel: DebianRelease) -> Path:
    """The kernel's build tree (M= builds go through it) inside an unpacked entry."""
    return packages / f"usr/src/linux-headers-{rel.release}"


def packages(rel: DebianRelease) -> Path:
    """The image, headers and kbuild packages, unpacked side by side. The image
    and headers are the release's architecture; linux-kbuild (the headers'
    scripts/ and tools/, programs run during a build) is the host's, so a
    foreign kernel's modules cross-build here."""
    layout = LAYOUTS[rel.arch]

    def build(dest: Path) -> None:
        headers = f"linux-headers-{rel.release}"
        common = apt.depends_matching(headers, r"linux-headers-.*-common", rel.arch, rel.suite)
        kbuild = apt.depends_matching(headers, r"linux-kbuild-.*", rel.arch, rel.suite)
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            debs = apt.download([f"{p}={rel.version}"
                                 for p in (*image_packages(rel), headers, common)],
                                Path(tmp) / "guest", rel.arch, rel.suite)
            debs += apt.download([f"{kbuild}={rel.version}"], Path(tmp) / "host",
                                 suite=rel.suite)
            for deb in debs:
                apt.unpack(deb, dest)
        # The headers' Makefile includes the common headers by absolute path
        # (/usr/src/...); point it at the sibling directory instead, relative
        # to itself, so the entry still works after it is renamed into place.
        makefile = headers_dir(dest, rel) / "Makefile"
        here = "$(dir $(lastword $(MAKEFILE_LIST)))../"
        makefile.write_text(makefile.read_text().replace("/usr/src/", here))
        # From trixie on, packages install modules under /usr/lib/modules
        # (merged /usr); the guest mounts <root>/lib/modules.
        merged = dest / "usr/lib/modules"
        if merged.is_dir() and not (dest / "lib/modules").exists():
            (dest / "lib").mkdir(exist_ok=True)
            merged.rename(dest / "lib/modules")
        moddir = dest / "lib/modules" / rel.release
        for link in ("build", "source"):
            (moddir / link).unlink(missing_ok=True)
        depmod(dest, rel.release)
        layout.prepare(vmlinuz(dest, rel), dest / layout.boot_image, rel)

    # Parallel test workers may ask at once: one fetches, the others wait.
    lock_path = cache.cache_root() / "debian" / f".{rel.key}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return cache.entry(f"debian/{rel.key}", build)


def version(suite: Suite, arch: Arch) -> str:
    return current_release(arch.debian, suite.apt).version


def cached(suite: Suite, arch: Arch) -> bool:
    rel = current_release(arch.debian, suite.apt)
    return (cache.cache_root() / "debian" / rel.key).is_dir()


def provide(name: str, suite: Suite, arch: Arch) -> Kernel:
    """Debian's kernel of `suite` for `arch`, as it is. The drivers under test
    that it lacks build out of tree against `Kernel.kbuild` (for a foreign
    architecture with ARCH= and CROSS_COMPILE= from harness.pure.arch), from
    the matching linux-source."""
    rel = current_release(arch.debian, suite.apt)
    unpacked = packages(rel)
    layout = LAYOUTS[rel.arch]
    return Kernel(
        flavour=name, release=rel.release, image=unpacked / layout.boot_image,
        modules_root=unpacked, arch=arch.name, cmdline=layout.cmdline,
        kbuild=headers_dir(unpacked, rel), source=source_tree(rel.version, rel.suite),
    )
