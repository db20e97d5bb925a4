"""Kernel flavours: what they accept, what they refuse, and how they say so."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness.host.cli import build_parser
from harness.host.commands import kernel_from_args
from harness.host.kernels.debug import fragment_options, unmet_options
from harness.host.kernels.flavours import get_kernel
from harness.host.kernels.kernel import check_image
from harness.host.kernels.path import provide as provide_path
from harness.host.targets.initramfs import module_load_order
from harness.pure.errors import HarnessError, KernelError


def _modtree(root: Path, release: str = "6.1.0-test") -> Path:
    moddir = root / "lib" / "modules" / release
    moddir.mkdir(parents=True)
    (moddir / "modules.dep").write_text(
        "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko\n"
        "kernel/net/9p/9pnet.ko:\n"
        "kernel/fs/netfs/netfs.ko:\n"
        "kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko"
        " kernel/drivers/virtio/virtio.ko\n"
        "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n"
        "kernel/drivers/virtio/virtio_ring.ko:\n"
        "kernel/fs/overlayfs/overlay.ko:\n"
    )
    (moddir / "modules.builtin").write_text(
        "kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/char/virtio_console.ko\n"
        "kernel/drivers/char/hw_random/virtio-rng.ko\n"
    )
    return moddir


def test_boot_modules_come_in_dependency_order_and_skip_builtins(tmp_path: Path) -> None:
    order = [Path(p).name for p in module_load_order(_modtree(tmp_path))]
    assert sorted(order) == sorted([
        "virtio_ring.ko", "virtio.ko", "9pnet.ko", "9pnet_virtio.ko", "netfs.ko", "9p.ko",
        "overlay.ko",
    ])
    for before, after in [("virtio_ring.ko", "virtio.ko"), ("virtio.ko", "9pnet_virtio.ko"),
                          ("9pnet.ko", "9pnet_virtio.ko"), ("netfs.ko", "9p.ko"),
                          ("9pnet.ko", "9p.ko")]:
        assert order.index(before) < order.index(after)


def test_missing_boot_module_is_named(tmp_path: Path) -> None:
    moddir = _modtree(tmp_path)
    with pytest.raises(KernelError, match="overlay"):
        module_load_order(moddir, ("virtio_pci", "overlay", "squashfs_not_there"))
    with pytest.raises(KernelError, match="squashfs_not_there"):
        module_load_order(moddir, ("squashfs_not_there",))


def test_a_file_that_is_not_a_kernel_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "bzImage"
    junk.write_bytes(b"\x7fELF" + bytes(1000))
    with pytest.raises(KernelError, match="not a Linux x86 kernel image"):
        check_image(junk)


def test_path_flavour_checks_image_and_module_tree(tmp_path: Path) -> None:
    image = tmp_path / "bzImage"
    image.write_bytes(bytes(0x202) + b"HdrS" + bytes(100))
    _modtree(tmp_path / "mods")
    kernel = provide_path(image, tmp_path / "mods")
    assert kernel.release == "6.1.0-test" and kernel.flavour == "path"
    # lib/modules/<release> itself is accepted too
    assert provide_path(image, tmp_path / "mods/lib/modules/6.1.0-test").release == "6.1.0-test"
    with pytest.raises(KernelError, match="modules_install"):
        provide_path(image, tmp_path)
    with pytest.raises(KernelError, match="does not exist"):
        provide_path(tmp_path / "nope", tmp_path / "mods")


def test_unknown_flavour_and_missing_path_arguments() -> None:
    with pytest.raises(HarnessError,
                       match="choose one of debian, debian-trixie, .*debug-sid-arm64, "
                             "kcsan, kcsan-trixie, kcsan-sid, path"):
        get_kernel("fedora")
    with pytest.raises(HarnessError, match="--kernel-image"):
        get_kernel("path")


def test_fragment_options_that_kconfig_dropped_are_reported() -> None:
    wanted = fragment_options("CONFIG_KASAN=y\n# CONFIG_KERNEL_XZ is not set\nCONFIG_LKDTM=m\n")
    assert wanted == {"CONFIG_KASAN": "y", "CONFIG_KERNEL_XZ": "n", "CONFIG_LKDTM": "m"}
    config = "CONFIG_KASAN=y\nCONFIG_KERNEL_XZ=y\n# CONFIG_LKDTM is not set\n"
    assert unmet_options(wanted, config) == ["CONFIG_KERNEL_XZ=n (got y)", "CONFIG_LKDTM=m (got n)"]


def test_debug_fragment_has_the_detectors_the_issue_asks_for() -> None:
    from harness.host.kernels.debug import FRAGMENT

    opts = fragment_options(FRAGMENT.read_text())
    for name in (
        "CONFIG_KASAN", "CONFIG_KASAN_GENERIC", "CONFIG_STACKTRACE", "CONFIG_PROVE_LOCKING",
        "CONFIG_DEBUG_LIST", "CONFIG_DEBUG_OBJECTS", "CONFIG_DETECT_HUNG_TASK", "CONFIG_9P_FS",
        "CONFIG_VIRTIO_PCI", "CONFIG_SERIAL_8250_CONSOLE", "CONFIG_DEVTMPFS",
        "CONFIG_BLK_DEV_INITRD",
    ):
        assert opts.get(name) == "y", name
    assert opts["CONFIG_VIDEO_VIMC"] == "m" and opts["CONFIG_LKDTM"] == "m"


def _path_args(tmp_path: Path, *patches: Path, driver: str = "vimc") -> argparse.Namespace:
    """What `v4l2-unplug kernel --kernel path ...` parses to, for a kernel of the
    user's that has vimc as a module."""
    moddir = _modtree(tmp_path / "mods")
    image = tmp_path / "bzImage"
    image.write_bytes(bytes(0x202) + b"HdrS" + bytes(100))
    with (moddir / "modules.dep").open("a") as f:
        f.write("kernel/drivers/media/test-drivers/vimc/vimc.ko:\n")
    argv = ["kernel", "--kernel", "path", "--kernel-image", str(image), "--modules",
            str(tmp_path / "mods"), "--driver", driver]
    for patch in patches:
        argv += ["--patch", str(patch)]
    return build_parser().parse_args(argv)


def test_a_kernel_of_the_users_with_the_driver_is_booted_as_it_is(tmp_path: Path) -> None:
    kernel = kernel_from_args(_path_args(tmp_path), "path")
    assert kernel.flavour == "path" and kernel.modules_root == tmp_path / "mods"


def test_patch_and_driver_mistakes_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(KernelError, match=r"patch .*nope.patch does not exist"):
        kernel_from_args(_path_args(tmp_path / "a", tmp_path / "nope.patch"), "path")
    # vimc is there, but patching it needs a build tree the path flavour does not have
    patch = Path(__file__).resolve().parents[2] / "vm/patches/vimc-capture-free-at-unregister.patch"
    with pytest.raises(KernelError, match="no build tree to build vimc's modules"):
        kernel_from_args(_path_args(tmp_path / "b", patch), "path")
    # rcar-vin runs emulated on arm64: an x86 kernel is refused before anything is built
    with pytest.raises(KernelError, match="aarch64 guest, and path is an x86_64 kernel"):
        kernel_from_args(_path_args(tmp_path / "c", driver="rcar-vin"), "path")
    with pytest.raises(HarnessError, match="unknown driver profile 'nope'"):
        kernel_from_args(_path_args(tmp_path / "d", driver="nope"), "path")
