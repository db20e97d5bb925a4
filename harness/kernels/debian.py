"""The `debian` flavour: Debian's current amd64 kernel with vimc built out of tree.

Debian builds its amd64 kernel without CONFIG_VIDEO_VIMC, but with everything
vimc needs as modules (MEDIA_CONTROLLER, V4L2_SUBDEV_API, videobuf2-vmalloc,
v4l2-tpg), so the driver builds from the matching linux-source against the
matching headers in seconds.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import cache
from harness.errors import KernelError
from harness.kernels import apt
from harness.kernels.kernel import Kernel, has_pvh_entry
from harness.kernels.outoftree import VIMC, depmod, with_module
from harness.kernels.source import source_tree

META_PACKAGE = "linux-image-amd64"


@dataclass(frozen=True)
class DebianRelease:
    release: str  # uname -r, e.g. 6.1.0-56-amd64
    version: str  # Debian version, e.g. 6.1.192-2

    @property
    def key(self) -> str:
        return f"{self.release}_{self.version}"


def current_release() -> DebianRelease:
    """What linux-image-amd64 points at today; the ABI number moves every few weeks."""
    image = apt.depends_matching(META_PACKAGE, r"linux-image-.*-amd64(-unsigned)?")
    return DebianRelease(
        release=image.removeprefix("linux-image-").removesuffix("-unsigned"),
        version=apt.field(image, "Version"),
    )


def _packages(rel: DebianRelease) -> Path:
    """The image, headers and kbuild packages, unpacked side by side."""

    def build(dest: Path) -> None:
        headers = f"linux-headers-{rel.release}"
        common = apt.depends_matching(headers, r"linux-headers-.*-common")
        kbuild = apt.depends_matching(headers, r"linux-kbuild-.*")
        specs = [f"linux-image-{rel.release}", headers, common, kbuild]
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            for deb in apt.download([f"{p}={rel.version}" for p in specs], Path(tmp)):
                apt.unpack(deb, dest)
        # The headers' Makefile includes the common headers by absolute path
        # (/usr/src/...); point it at the sibling directory instead, relative
        # to itself, so the entry still works after it is renamed into place.
        makefile = dest / f"usr/src/linux-headers-{rel.release}/Makefile"
        here = "$(dir $(lastword $(MAKEFILE_LIST)))../"
        makefile.write_text(makefile.read_text().replace("/usr/src/", here))
        moddir = dest / "lib/modules" / rel.release
        for link in ("build", "source"):
            (moddir / link).unlink(missing_ok=True)
        depmod(dest, rel.release)
        extract_vmlinux(dest / f"boot/vmlinuz-{rel.release}", dest / "vmlinux", rel.version)

    return cache.entry(f"debian/{rel.key}", build)


def extract_vmlinux(bzimage: Path, out: Path, version: str) -> None:
    """The uncompressed ELF inside Debian's bzImage: Debian builds with
    CONFIG_PVH, so QEMU can start it at its PVH entry and skip both the
    firmware's real-mode boot and the XZ decompressor, seconds under TCG."""
    script = source_tree(version) / "scripts" / "extract-vmlinux"
    with out.open("wb") as f:
        proc = subprocess.run(["sh", str(script), str(bzimage)], stdout=f, stderr=subprocess.PIPE)
    if proc.returncode != 0 or not has_pvh_entry(out):
        raise KernelError(f"cannot extract a PVH-bootable vmlinux from {bzimage}: "
                          f"{proc.stderr.decode().strip() or 'no PVH entry note'}")


def provide(patches: Sequence[Path] = ()) -> Kernel:
    """Debian's kernel plus vimc.ko (with `patches` applied to vimc)."""
    rel = current_release()
    packages = _packages(rel)
    stock = Kernel(
        flavour="debian", release=rel.release, image=packages / "vmlinux", modules_root=packages
    )
    return with_module(
        stock,
        kbuild=packages / f"usr/src/linux-headers-{rel.release}",
        tree=source_tree(rel.version),
        module=VIMC,
        patches=patches,
    )
