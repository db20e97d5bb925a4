"""Kernel + profile + patches -> the kernel and target that run the profile: the
decisions (which modules get built, from where, with which patches, which
device tree), without building anything or booting a VM."""

from __future__ import annotations

import gzip
import platform
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.host.kernels import emulation
from harness.host.kernels.kernel import Kernel
from harness.host.targets import emulated
from harness.pure.errors import KernelError
from harness.pure.profiles import get_profile

PATCHES = emulation.PROJECT_ROOT / "vm/patches"
VIMC_PATCH = PATCHES / "vimc-capture-free-at-unregister.patch"
RCAR_PATCH = PATCHES / "rcar-vin-allow-unbind.patch"


def _kernel(arch: str, root: Path = Path("/nowhere"), kbuild: Path | None = None,
            source: Path | None = None) -> Kernel:
    return Kernel(flavour="t", release="6.1.0-56-arm64", image=root / "Image",
                  modules_root=root, arch=arch, kbuild=kbuild, source=source)


def _with_modules(tmp_path: Path, arch: str, *listed: str, kbuild: bool = True) -> Kernel:
    """A kernel whose module tree lists `listed` (paths under lib/modules/<release>)."""
    kernel = _kernel(arch, tmp_path, kbuild=tmp_path / "kbuild" if kbuild else None,
                     source=tmp_path / "src")
    kernel.module_dir.mkdir(parents=True)
    (kernel.module_dir / "modules.dep").write_text("".join(f"{m}:\n" for m in listed))
    return kernel


def _diff(tmp_path: Path, *files: str) -> Path:
    patch = tmp_path / f"change-{len(list(tmp_path.glob('change-*')))}.patch"
    patch.write_text("".join(f"--- a/{f}\n+++ b/{f}\n@@ -1 +1 @@\n-a\n+b\n" for f in files))
    return patch


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every out-of-tree build for_profile asks for, recorded instead of run."""
    calls: list[dict[str, Any]] = []

    def with_module(base: Kernel, **kw: Any) -> Kernel:
        calls.append(kw)
        return replace(base, modules_root=base.modules_root / kw["module"].name)

    monkeypatch.setattr(emulation, "with_module", with_module)
    return calls


@pytest.mark.skipif(platform.machine() != "x86_64", reason="cross variables of an x86 host")
def test_arm64_modules_cross_build_on_an_x86_host() -> None:
    assert emulation.make_vars(_kernel("aarch64")) == (
        "ARCH=arm64", "CROSS_COMPILE=aarch64-linux-gnu-", "DEB_BUILD_ARCH=amd64",
        "DEB_HOST_ARCH=arm64", "DEB_HOST_GNU_TYPE=aarch64-linux-gnu")
    assert emulation.make_vars(_kernel("x86_64")) == ()


def test_module_names_match_as_modprobe_matches_them(tmp_path: Path) -> None:
    kernel = _with_modules(tmp_path, "x86_64", "kernel/drivers/media/vimc/vimc.ko.xz",
                           "updates/rcar_vin.ko")
    (kernel.module_dir / "modules.builtin").write_text("kernel/drivers/virtio/virtio_pci.ko\n")
    assert kernel.has_module("vimc") and kernel.has_module("rcar-vin")
    assert kernel.has_module("virtio-pci")
    assert not kernel.has_module("vim") and not kernel.has_module("vivid")
    assert not _kernel("x86_64").has_module("vimc")  # no module tree at all


def test_a_kernel_lacking_vimc_gets_it_from_its_own_source(
        tmp_path: Path, builds: list[dict[str, Any]]) -> None:
    kernel = _with_modules(tmp_path, "x86_64", "kernel/fs/9p/9p.ko")
    out = emulation.for_profile(kernel, get_profile("vimc"))
    (build,) = builds
    assert build["module"].subdir == "drivers/media/test-drivers/vimc"
    assert build["module"].config == "CONFIG_VIDEO_VIMC"
    assert build["tree"] == tmp_path / "src" and build["kbuild"] == tmp_path / "kbuild"
    assert build["patches"] == [] and build["flavour"] == "t"
    assert out.modules_root == tmp_path / "vimc"


def test_a_kernel_with_vimc_is_left_alone_unless_patched(
        tmp_path: Path, builds: list[dict[str, Any]]) -> None:
    kernel = _with_modules(tmp_path, "x86_64", "kernel/drivers/media/test-drivers/vimc/vimc.ko")
    assert emulation.for_profile(kernel, get_profile("vimc")) is kernel
    assert emulation.for_profile(kernel, get_profile("rcar-vin-salvator-x")) is kernel
    assert builds == []
    emulation.for_profile(kernel, get_profile("vimc"), [VIMC_PATCH])
    (build,) = builds
    assert build["module"].name == "vimc" and build["patches"] == [VIMC_PATCH]


def test_rcar_vin_builds_its_driver_and_stand_ins_and_takes_the_users_patch(
        tmp_path: Path, builds: list[dict[str, Any]]) -> None:
    kernel = _with_modules(tmp_path, "aarch64", "kernel/fs/9p/9p.ko")
    fix = _diff(tmp_path, "drivers/media/platform/renesas/rcar-vin/rcar-dma.c")
    out = emulation.for_profile(kernel, get_profile("rcar-vin"), [fix])
    driver, stand_ins = builds
    assert driver["module"].name == "rcar-vin"
    assert driver["tree"] == tmp_path / "src"
    assert driver["patches"] == [RCAR_PATCH, fix]  # the profile's own first, then the user's
    assert stand_ins["module"].modules == ("unplug-test-subdev", "unplug-vin-hw")
    assert stand_ins["tree"] == emulation.PROJECT_ROOT and stand_ins["patches"] == []
    assert driver["make_vars"] == stand_ins["make_vars"] == emulation.make_vars(kernel)
    # each build lays over the previous one
    assert out.modules_root == tmp_path / "rcar-vin" / "unplug-test-subdev"


def test_a_patch_goes_only_to_the_module_whose_directory_it_changes(tmp_path: Path) -> None:
    a = replace(get_profile("vimc").out_of_tree[0], name="a", subdir="drivers/a")
    b = replace(a, name="b", subdir="drivers/b")
    profile = replace(get_profile("vimc"), out_of_tree=(a, b))
    only_b, both = _diff(tmp_path, "drivers/b/b.c"), _diff(tmp_path, "drivers/a/x.c",
                                                           "drivers/b/y.c")
    assert emulation.route_patches(profile, [only_b, both]) == {a: (both,), b: (only_b, both)}


def test_bad_patches_are_one_line_errors(tmp_path: Path) -> None:
    vimc = get_profile("vimc")
    elsewhere = _diff(tmp_path, "drivers/media/test-drivers/vimc/vimc-core.c",
                      "include/media/media-device.h")
    with pytest.raises(KernelError, match="changes include/media/media-device.h, outside the "
                                          "modules vimc builds out of tree "
                                          r"\(drivers/media/test-drivers/vimc\)"):
        emulation.route_patches(vimc, [elsewhere])
    with pytest.raises(KernelError, match="outside the modules rcar-vin-salvator-x builds out "
                                          r"of tree \(none\)"):
        emulation.route_patches(get_profile("rcar-vin-salvator-x"), [VIMC_PATCH])
    with pytest.raises(KernelError, match="vm/rcar/"):  # a stand-in is not the driver
        emulation.route_patches(get_profile("rcar-vin"), [_diff(tmp_path, "vm/rcar/vin-hw.c")])
    with pytest.raises(KernelError, match="does not exist"):
        emulation.route_patches(vimc, [tmp_path / "nope.patch"])
    prose = tmp_path / "notes.txt"
    prose.write_text("not a diff\n")
    with pytest.raises(KernelError, match="holds no diff"):
        emulation.route_patches(vimc, [prose])


def test_rcar_vin_on_an_x86_kernel_is_one_clear_error() -> None:
    with pytest.raises(KernelError, match="debian-arm64"):
        emulation.for_profile(_kernel("x86_64"), get_profile("rcar-vin"))


def test_building_needs_a_build_tree(tmp_path: Path) -> None:
    with pytest.raises(KernelError, match="no build tree"):
        emulation.for_profile(_kernel("aarch64"), get_profile("rcar-vin"))
    lacking = _with_modules(tmp_path, "x86_64", kbuild=False)
    with pytest.raises(KernelError, match="no build tree .*CONFIG_VIDEO_VIMC=m"):
        emulation.for_profile(lacking, get_profile("vimc"))


def test_every_out_of_tree_file_is_in_the_project() -> None:
    emu = get_profile("rcar-vin").emulation
    assert emu is not None
    assert (emulation.PROJECT_ROOT / emu.device_tree).is_file()
    modules = [m for p in ("vimc", "rcar-vin") for m in get_profile(p).out_of_tree]
    assert {m.name for m in modules} == {"vimc", "rcar-vin", "unplug-test-subdev"}
    for module in modules:
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


def test_the_source_the_flavour_names_comes_first(tmp_path: Path) -> None:
    (tmp_path / "kbuild/source").mkdir(parents=True)
    named = _kernel("aarch64", tmp_path, kbuild=tmp_path / "kbuild", source=tmp_path / "src")
    assert emulation.kernel_source(named) == tmp_path / "src"
    assert emulation.kernel_source(replace(named, source=None)) == tmp_path / "kbuild/source"


class _Target:
    """Stands in for QemuTarget: records how it was made."""

    def __init__(self, kernel: Kernel, dtb: Path | None = None) -> None:
        self.kernel, self.dtb = kernel, dtb

    def machine_args(self) -> list[str]:
        return ["qemu-system-aarch64", "-machine", "virt"]


def test_provisioning_boots_the_profiles_kernel_and_device_tree(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        builds: list[dict[str, Any]]) -> None:
    stock = _with_modules(tmp_path, "aarch64")
    fragments: list[tuple[list[str], Path]] = []

    def device_tree(machine: list[str], fragment: Path) -> Path:
        fragments.append((machine, fragment))
        return tmp_path / "board.dtb"

    monkeypatch.setattr(emulated, "QemuTarget", _Target)
    monkeypatch.setattr(emulated, "device_tree", device_tree)
    monkeypatch.setattr(emulated, "get_kernel",
                        lambda name, image, modules: replace(stock, flavour=name))
    target, kernel = emulated.provision("debian-arm64", get_profile("rcar-vin"))
    assert isinstance(target, _Target) and target.kernel is kernel
    assert kernel.flavour == "debian-arm64"
    assert kernel.modules_root == tmp_path / "rcar-vin" / "unplug-test-subdev"
    assert target.dtb == tmp_path / "board.dtb"
    ((machine, fragment),) = fragments
    assert machine[-1] == "virt" and fragment == emulation.PROJECT_ROOT / "vm/rcar/gen3.dtsi"

    with_vimc = _with_modules(tmp_path / "x86", "x86_64", "kernel/vimc.ko")
    target, kernel = emulated.provision(with_vimc, get_profile("vimc"))
    assert kernel is with_vimc and isinstance(target, _Target) and target.dtb is None
    assert len(fragments) == 1



def test_validate_builds_the_tree_for_the_profiles_guest(tmp_path: Path) -> None:
    from harness.host.validate import validation
    from tests.unit.test_validate_tree import fake_tree

    linux = fake_tree(tmp_path / "linux")
    for driver, arch in (("rcar-vin", "aarch64"), ("vimc", "x86_64")):
        opts = validation.Options(tree=linux, patches=[VIMC_PATCH], driver=driver)
        sides = validation.plan(opts)
        assert {side.recipe.arch.name for side in sides.values()} == {arch}, driver
