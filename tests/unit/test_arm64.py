"""The arm64 guest's pure parts: the architecture table, the dependency closure
of its userland (from real bookworm arm64 stanzas, trimmed to the fields that
matter, in tests/data/debian/arm64-Packages), the userland's layout, and the
kernel image check."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from harness.host.kernels.closure import Index, closure, parse_stanza
from harness.host.kernels.debian import LAYOUTS, DebianRelease, arm64_image
from harness.host.kernels.kernel import is_arm64_image
from harness.host.rootfs import merge_usr
from harness.host.targets.initramfs import BOOT_MODULES, module_load_order
from harness.host.targets.qemu import BASE_CMDLINE, base_cmdline
from harness.host.targets.userland import applets, link_applets
from harness.pure.arch import ARCHES, get_arch
from harness.pure.errors import HarnessError

PACKAGES = Path(__file__).parents[1] / "data" / "debian" / "arm64-Packages"


def index() -> Index:
    return Index(PACKAGES.read_text())


# --- the architecture table


def test_x86_boots_exactly_as_before_the_table() -> None:
    assert BASE_CMDLINE == (
        "console=ttyS0,115200", "loglevel=7", "panic=-1", "nokaslr", "mitigations=off",
        "8250.nr_uarts=1", "tsc=reliable", "no_timer_check", "i8042.noaux",
    )
    assert BOOT_MODULES == (
        "virtio_pci", "virtio_console", "virtio_rng", "9pnet_virtio", "9p", "overlay",
    )
    x86 = ARCHES["x86_64"]
    assert (x86.machine, x86.tcg_cpu, x86.devices) == (("-machine", "pc"), (), ())
    assert x86.native  # the project's machines are x86-64


def test_arm64_is_the_virt_board_with_a_pl011_console_and_its_own_userland() -> None:
    a = get_arch("aarch64")
    assert (a.qemu, a.qemu_package, a.debian, a.kernel) == (
        "qemu-system-aarch64", "qemu-system-arm", "arm64", "arm64")
    assert a.machine == ("-machine", "virt")
    assert base_cmdline(a)[0] == "console=ttyAMA0"
    # nothing x86-only leaks onto an arm64 command line
    assert not any(o.startswith(("8250.", "tsc=", "i8042.")) for o in a.cmdline)
    assert not a.native
    assert a.cross_compile == "aarch64-linux-gnu-"


def test_unknown_arch_is_one_line() -> None:
    with pytest.raises(HarnessError, match="no guest architecture 'mips'.*x86_64, aarch64"):
        get_arch("mips")


def test_arm64_boot_modules_come_from_an_arm64_modules_dep(tmp_path: Path) -> None:
    # Debian arm64 6.1 builds virtio and virtio_ring in, the rest as modules.
    (tmp_path / "modules.dep").write_text(
        "kernel/drivers/virtio/virtio_pci_legacy_dev.ko:\n"
        "kernel/drivers/virtio/virtio_pci_modern_dev.ko:\n"
        "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko"
        " kernel/drivers/virtio/virtio_pci_modern_dev.ko\n"
        "kernel/drivers/char/virtio_console.ko:\n"
        "kernel/drivers/char/hw_random/virtio-rng.ko:\n"
        "kernel/net/9p/9pnet.ko:\n"
        "kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko\n"
        "kernel/fs/netfs/netfs.ko:\n"
        "kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko\n"
        "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko"
        " kernel/fs/netfs/netfs.ko\n"
        "kernel/fs/overlayfs/overlay.ko:\n"
        "kernel/drivers/virtio/virtio_input.ko:\n"
    )
    (tmp_path / "modules.builtin").write_text(
        "kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\n")
    order = [Path(p).name for p in module_load_order(tmp_path, get_arch("aarch64").boot_modules)]
    assert order.index("virtio_pci_modern_dev.ko") < order.index("virtio_pci.ko")
    assert order.index("netfs.ko") < order.index("fscache.ko") < order.index("9p.ko")
    assert order[-1] == "virtio_input.ko"


# --- the userland's package closure


def test_stanza_fields_drop_versions_qualifiers_and_keep_alternatives() -> None:
    s = parse_stanza(
        "Package: x\nVersion: 1\nPre-Depends: libc6 (>= 2.35)\n"
        "Depends: python3:any (>= 3.11), a | b (<< 2) [arm64],\n c\nProvides: y (= 1), z\n"
    )
    assert s.depends == (("libc6",), ("python3",), ("a", "b"), ("c",))
    assert s.provides == ("y", "z")


def test_python_closure_from_bookworm_arm64_stanzas() -> None:
    names = {s.name for s in closure(["python3.11-minimal"], index())}
    assert names == {
        "python3.11-minimal", "libpython3.11-minimal", "libexpat1", "zlib1g", "libc6",
        "libgcc-s1", "gcc-12-base", "libssl3",
    }


def test_kmod_and_libudev_pull_their_libraries() -> None:
    names = {s.name for s in closure(["kmod", "libudev1"], index())}
    assert {"libkmod2", "liblzma5", "libzstd1", "libssl3", "libc6"} <= names


def test_versions_are_the_index_candidates() -> None:
    (bb,) = closure(["busybox-static"], index())
    assert bb.version == "1:1.35.0-4+deb12u1+b1"


def test_skipped_packages_and_virtual_alternatives() -> None:
    # tzdata: "debconf (>= 0.5) | debconf-2.0"; debconf is real, so it is taken
    assert "debconf" in {s.name for s in closure(["tzdata"], index())}
    # with both alternatives skipped the group is dropped, not satisfied by
    # another provider of debconf-2.0 (cdebconf)
    both = frozenset({"debconf", "debconf-2.0"})
    assert {s.name for s in closure(["tzdata"], index(), skip=both)} == {"tzdata"}


def test_virtual_package_resolves_to_a_provider() -> None:
    text = (
        "Package: app\nVersion: 1\nDepends: virt\n\n"
        "Package: impl\nVersion: 2\nProvides: virt\n"
    )
    assert [s.name for s in closure(["app"], Index(text))] == ["app", "impl"]


def test_unknown_and_unsatisfiable_packages_are_one_line_errors() -> None:
    with pytest.raises(HarnessError, match="no package nonesuch"):
        closure(["nonesuch"], index())
    with pytest.raises(HarnessError, match="app: nothing in the package index satisfies gone"):
        closure(["app"], Index("Package: app\nVersion: 1\nDepends: gone\n"))


# --- the userland's layout


def test_applets_are_read_from_the_name_table() -> None:
    blob = b"\x7fELF...\0[\0[[\0acpid\0ash\0busybox\0cat\0sh\0uname\0\0\x01\x02more"
    assert applets(blob) == ["[", "[[", "acpid", "ash", "cat", "sh", "uname"]
    assert applets(b"no table here") == []


def test_merged_usr_and_applet_links(tmp_path: Path) -> None:
    root = tmp_path
    (root / "bin").mkdir()
    (root / "bin/busybox").write_bytes(b"\0[\0[[\0modprobe\0sh\0uname\0\0")
    (root / "sbin").mkdir()
    (root / "sbin/modprobe").symlink_to("/bin/kmod")
    (root / "lib/aarch64-linux-gnu").mkdir(parents=True)
    (root / "lib/aarch64-linux-gnu/libc.so.6").write_text("")
    (root / "usr/lib/aarch64-linux-gnu").mkdir(parents=True)
    (root / "usr/lib/aarch64-linux-gnu/libudev.so.1").write_text("")
    merge_usr(root)
    for d in ("bin", "sbin", "lib"):
        assert (root / d).is_symlink() and str((root / d).readlink()) == f"usr/{d}"
    assert {p.name for p in (root / "usr/lib/aarch64-linux-gnu").iterdir()} == {
        "libc.so.6", "libudev.so.1"}
    assert not (root / "lib64").exists()  # nothing to merge: the host's stays visible
    link_applets(root)
    assert str((root / "usr/bin/sh").readlink()) == "busybox"
    # kmod's modprobe wins over busybox's
    assert not (root / "usr/bin/modprobe").exists()
    assert str((root / "usr/sbin/modprobe").readlink()) == "/bin/kmod"


# --- the kernel image


def _image() -> bytes:
    header = bytearray(64)
    header[:2] = b"MZ"
    header[0x38:0x3C] = b"ARM\x64"
    return bytes(header) + b"\0" * 64


REL = DebianRelease("6.1.0-56-arm64", "6.1.192-2", "arm64")


def test_arm64_image_plain_or_gzipped(tmp_path: Path) -> None:
    assert LAYOUTS["arm64"].image_packages[0].format(release="6.1.0-56-arm64") == (
        "linux-image-6.1.0-56-arm64-unsigned")
    for name, data in (("plain", _image()), ("gz", gzip.compress(_image()))):
        (tmp_path / name).write_bytes(data)
        arm64_image(tmp_path / name, tmp_path / f"{name}.Image", REL)
        assert is_arm64_image((tmp_path / f"{name}.Image").read_bytes()[:64])
    (tmp_path / "x86").write_bytes(b"\0" * 0x202 + b"HdrS")
    with pytest.raises(HarnessError, match="does not hold an arm64 Image"):
        arm64_image(tmp_path / "x86", tmp_path / "out", REL)


# --- apt for a foreign architecture


def test_foreign_apt_state_is_its_own_and_survives_being_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.host.kernels import apt

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(apt, "host_arch", lambda: "amd64")
    calls: list[list[str]] = []

    def offline(argv: list[str], cwd: Path | None = None) -> str:
        calls.append(argv)
        raise apt.SetupError("apt-get update failed: Temporary failure resolving")

    monkeypatch.setattr(apt, "_run", offline)
    assert apt._options("amd64") == [] and apt._options(None) == []
    state = tmp_path / "v4l2-unplug" / "apt" / "arm64"
    opts = apt._options("arm64")
    assert f"Dir::State::Lists={state / 'lists'}" in opts
    assert f"Dir::State::status={state / 'status'}" in opts  # never the host's dpkg status
    assert "APT::Architectures=arm64" in opts
    with pytest.raises(HarnessError, match="Temporary failure"):
        apt._foreign_lists("arm64")  # nothing fetched yet: an error
    (state / "lists" / "deb.debian.org_debian_dists_bookworm_main_binary-arm64_Packages.lz4"
     ).write_text("")
    apt._foreign_lists("arm64")  # earlier lists: carry on with them
    assert [argv[-2:] for argv in calls] == [["update", "-qq"]] * 2


# --- the debug-arm64 flavour's configuration


def test_debug_arm64_keeps_the_detectors_and_trades_the_pc_for_the_virt_board() -> None:
    from harness.host.kernels.debug import fragment_text
    from harness.host.kernels.tree import fragment_options, make_argv

    opts = fragment_options(fragment_text(get_arch("aarch64")))
    for detector in ("CONFIG_KASAN", "CONFIG_PROVE_LOCKING", "CONFIG_DEBUG_LIST",
                     "CONFIG_DEBUG_OBJECTS", "CONFIG_DETECT_HUNG_TASK"):
        assert opts[detector] == "y", detector
    assert opts["CONFIG_LKDTM"] == "m"
    # the arm64 fragment comes last, so its "is not set" wins over debug.config's =y
    for x86 in ("CONFIG_ACPI", "CONFIG_UNWINDER_ORC", "CONFIG_SERIAL_8250"):
        assert opts[x86] == "n", x86
    for board in ("CONFIG_SERIAL_AMBA_PL011_CONSOLE", "CONFIG_PCI_HOST_GENERIC",
                  "CONFIG_VIRTIO_INPUT"):
        assert opts[board] == "y", board
    argv = make_argv(Path("/src"), Path("/out"), get_arch("aarch64"), "Image")
    assert "ARCH=arm64" in argv and "CROSS_COMPILE=aarch64-linux-gnu-" in argv
    assert argv[-1] == "Image"


# --- the QEMU command line, per architecture


def _command(monkeypatch: pytest.MonkeyPatch, arch: str, dtb: Path | None = None) -> list[str]:
    import sys
    import sysconfig

    from harness.host.kernels.kernel import Kernel
    from harness.host.targets import qemu

    monkeypatch.setattr(qemu, "find_qemu", lambda a: f"/usr/bin/{get_arch(a).qemu}")
    monkeypatch.setattr(qemu, "choose_accel", lambda binary, image: "tcg")
    monkeypatch.setattr(qemu.userland, "build", lambda a: Path(f"/c/userland/{a.debian}-k"))
    monkeypatch.setattr(Path, "is_file", lambda self: True)
    monkeypatch.setattr(qemu, "kernel_config", lambda kernel: {"CONFIG_ACPI": "y"})
    kernel = Kernel("f", "6.1.0-56", Path("/k/Image"), Path("/k"), arch=arch, cmdline=("x=1",))
    argv = qemu.QemuTarget(kernel, dtb=dtb).command(Path("/r"), Path("/r/job.json"), Path("/i"))
    purelib = sysconfig.get_paths()["purelib"]
    python = sys.executable if arch == "x86_64" else "/usr/bin/python3.11"
    return [a.replace(purelib, "PURELIB").replace(python, "PYTHON")
            .replace(str(qemu.CHECKOUT), "CHECKOUT") for a in argv]


def test_x86_command_line_is_what_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _command(monkeypatch, "x86_64") == [
        "/usr/bin/qemu-system-x86_64", "-accel", "tcg", "-machine", "pc", "-smp", "2",
        "-m", "1024", "-nodefaults", "-display", "none", "-no-reboot",
        "-kernel", "/k/Image", "-initrd", "/i",
        "-append", "console=ttyS0,115200 loglevel=7 panic=-1 nokaslr mitigations=off "
        "8250.nr_uarts=1 tsc=reliable no_timer_check i8042.noaux x=1 acpi=noirq "
        "harness.init=CHECKOUT/vm/guest-init harness.modroot=/k harness.python=PYTHON "
        "harness.job=/r/job.json harness.cwd=CHECKOUT harness.path=CHECKOUT:PURELIB",
        "-chardev", "file,id=console,path=/r/console.log", "-serial", "chardev:console",
        "-device", "virtio-rng-pci", "-device", "virtio-serial-pci,id=vser",
        "-chardev", "file,id=events,path=/r/events.jsonl",
        "-device", "virtserialport,bus=vser.0,chardev=events,name=harness.events",
        "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
        "-monitor", "unix:/r/monitor.sock,server=on,wait=off",
    ]


def test_arm64_command_line_adds_its_userland_keyboard_and_device_tree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = _command(monkeypatch, "aarch64", dtb=Path("/t/board.dtb"))
    assert argv[:5] == ["/usr/bin/qemu-system-aarch64", "-accel", "tcg", "-cpu", "cortex-a57"]
    assert argv[argv.index("-machine") + 1] == "virt"
    assert argv[argv.index("-dtb") + 1] == "/t/board.dtb"
    append = argv[argv.index("-append") + 1].split()
    assert append[0] == "console=ttyAMA0"
    assert "harness.python=PYTHON" in append and append[-1] == "harness.userland=userland"
    assert "local,id=userland,path=/c/userland/arm64-k,security_model=none,readonly=on," \
           "multidevs=remap" in argv
    assert "virtio-9p-pci,fsdev=userland,mount_tag=userland" in argv
    assert "virtio-keyboard-pci" in argv


def test_a_missing_device_tree_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.host.kernels.kernel import Kernel
    from harness.host.targets import qemu

    kernel = Kernel("f", "r", Path("/k/Image"), Path("/k"), arch="aarch64")
    with pytest.raises(HarnessError, match="device tree blob /nonexistent.dtb does not exist"):
        qemu.QemuTarget(kernel, dtb=Path("/nonexistent.dtb"))


def test_the_kernel_beside_its_modules_from_sid_on(tmp_path: Path) -> None:
    from harness.host.kernels.debian import vmlinuz

    with pytest.raises(HarnessError, match="no kernel at boot/vmlinuz-6.1.0-56-arm64"):
        vmlinuz(tmp_path, REL)
    moved = tmp_path / "lib/modules/6.1.0-56-arm64/vmlinuz"
    moved.parent.mkdir(parents=True)
    moved.write_bytes(b"")
    assert vmlinuz(tmp_path, REL) == moved
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot/vmlinuz-6.1.0-56-arm64").write_bytes(b"")
    assert vmlinuz(tmp_path, REL) == tmp_path / "boot/vmlinuz-6.1.0-56-arm64"


def test_image_packages_take_the_first_package_apt_knows_and_its_release_deps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness.host.kernels import apt, debian
    from harness.pure.errors import SetupError

    known = {
        # sid's arm64: no -unsigned package, an empty image depending on its parts
        "linux-image-7.2.13+deb14-arm64": ["linux-binary-7.2.13+deb14-arm64",
                                           "linux-modules-7.2.13+deb14-arm64",
                                           "linux-base-7.2.13+deb14-arm64", "kmod"],
    }
    monkeypatch.setattr(apt, "exists", lambda name, arch, suite: name in known)
    monkeypatch.setattr(apt, "depends", lambda name, arch, suite: known[name])
    rel = debian.DebianRelease("7.2.13+deb14-arm64", "7.2.13-1", "arm64", "sid")
    assert debian.image_packages(rel) == [
        "linux-image-7.2.13+deb14-arm64", "linux-binary-7.2.13+deb14-arm64",
        "linux-modules-7.2.13+deb14-arm64", "linux-base-7.2.13+deb14-arm64"]

    # A package apt knows but cannot read is that error, not "no such package".
    def broken(name: str, arch: str, suite: str) -> list[str]:
        raise SetupError(f"package {name} has no Depends field")

    monkeypatch.setattr(apt, "depends", broken)
    with pytest.raises(SetupError, match="no Depends field"):
        debian.image_packages(rel)
    known.clear()
    with pytest.raises(SetupError, match="sid has no kernel package .*-unsigned or"):
        debian.image_packages(rel)
