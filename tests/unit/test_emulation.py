"""Building a profile's emulation modules: the pure decisions (no build, no VM)."""

from __future__ import annotations

import gzip
import platform
from pathlib import Path

import pytest

from harness.errors import KernelError
from harness.kernels import emulation
from harness.kernels.kernel import Kernel
from harness.profiles import get_profile


def _kernel(arch: str, root: Path = Path("/nowhere"), kbuild: Path | None = None) -> Kernel:
    return Kernel(flavour="t", release="6.1.0-56-arm64", image=root / "Image",
                  modules_root=root, arch=arch, kbuild=kbuild)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="cross variables of an x86 host")
def test_arm64_modules_cross_build_on_an_x86_host() -> None:
    assert emulation.make_vars(_kernel("aarch64")) == (
        "ARCH=arm64", "CROSS_COMPILE=aarch64-linux-gnu-", "DEB_BUILD_ARCH=amd64",
        "DEB_HOST_ARCH=arm64", "DEB_HOST_GNU_TYPE=aarch64-linux-gnu")
    assert emulation.make_vars(_kernel("x86_64")) == ()


def test_profile_without_emulation_leaves_the_kernel_alone() -> None:
    kernel = _kernel("x86_64")
    assert emulation.for_profile(kernel, get_profile("vimc")) is kernel
    assert emulation.device_tree_fragment(get_profile("vimc")) is None


def test_rcar_vin_on_an_x86_kernel_is_one_clear_error() -> None:
    with pytest.raises(KernelError, match="debian-arm64"):
        emulation.for_profile(_kernel("x86_64"), get_profile("rcar-vin"))


def test_rcar_vin_needs_a_build_tree() -> None:
    with pytest.raises(KernelError, match="no build tree"):
        emulation.for_profile(_kernel("aarch64"), get_profile("rcar-vin"))


def test_every_emulation_file_is_in_the_project() -> None:
    emu = get_profile("rcar-vin").emulation
    assert emu is not None
    assert (emulation.PROJECT_ROOT / emu.device_tree).is_file()
    for module in emu.modules:
        for patch in module.patches:
            assert (emulation.PROJECT_ROOT / patch).is_file()
        if module.project:
            assert (emulation.PROJECT_ROOT / module.subdir / "Kbuild").is_file()


def test_debian_version_from_the_image_changelog(tmp_path: Path) -> None:
    doc = tmp_path / "usr/share/doc/linux-image-6.1.0-56-arm64-unsigned"
    doc.mkdir(parents=True)
    with gzip.open(doc / "changelog.Debian.gz", "wt") as f:
        f.write("linux (6.1.192-2) bookworm-security; urgency=high\n")
    assert emulation.debian_version(_kernel("aarch64", tmp_path)) == "6.1.192-2"
    with pytest.raises(KernelError, match="no changelog"):
        emulation.debian_version(_kernel("aarch64", tmp_path / "empty"))
