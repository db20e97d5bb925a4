"""Guest architectures, as data.

Everything that differs between an x86-64 and an arm64 guest is a field here:
the QEMU binary and the Debian package that ships it, the emulated machine,
the console, the kernel command line, the modules the initramfs must load,
the Debian and kernel names of the architecture (for downloads and cross
builds). The QEMU target, the initramfs and the kernel flavours read this
table instead of testing the architecture's name.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

from harness.pure.errors import KernelError


@dataclass(frozen=True)
class Arch:
    name: str  # `uname -m` in the guest; Kernel.arch
    debian: str  # dpkg architecture: apt downloads for the guest
    kernel: str  # the kernel's ARCH= for (cross) builds
    cross_compile: str  # CROSS_COMPILE= prefix; "" for the host's own architecture
    qemu: str  # system emulator binary
    qemu_package: str  # Debian package that provides it
    machine: tuple[str, ...]  # -machine (and whatever else the board needs)
    tcg_cpu: tuple[str, ...]  # -cpu under TCG; under KVM it is always "host"
    console: str  # the kernel's name for the serial port QEMU's -serial feeds
    cmdline: tuple[str, ...]  # kernel command line of every boot, after console=
    # What the initramfs loads (when not built in) before it can mount the host root.
    boot_modules: tuple[str, ...]
    # The image `make` builds for QEMU to boot, in the O= directory; its name is the target.
    image: str
    # Devices the board lacks that the harness relies on.
    devices: tuple[str, ...] = ()
    # delete_module(2)'s number: the agent removes modules with O_NONBLOCK
    # through syscall(2), which Python's os module does not wrap.
    # arch/x86/entry/syscalls/syscall_64.tbl; include/uapi/asm-generic/unistd.h
    # (arm64, riscv); 0: not known here.
    sys_delete_module: int = 0

    @property
    def source_dir(self) -> str:
        """arch/<dir> in the kernel tree (x86_64's ARCH= builds from arch/x86)."""
        return "/".join(self.image.split("/")[:2])

    @property
    def native(self) -> bool:
        """The host's own architecture: KVM may run it, and the guest runs the
        host's interpreter. Any other gets a userland of its own
        (harness.host.targets.userland) layered over the host root, and TCG."""
        return self.name == platform.machine()


# Kernel command line shared by every boot. panic=-1 with -no-reboot turns a
# panic into a QEMU exit; the console stays verbose because it is the verdict.
_COMMON = ("loglevel=7", "panic=-1", "nokaslr", "mitigations=off")

ARCHES: dict[str, Arch] = {
    a.name: a
    for a in (
        Arch(
            name="x86_64", debian="amd64", kernel="x86_64", cross_compile="",
            qemu="qemu-system-x86_64", qemu_package="qemu-system-x86",
            machine=("-machine", "pc"), tcg_cpu=(),
            console="ttyS0,115200",
            cmdline=(*_COMMON, "8250.nr_uarts=1", "tsc=reliable", "no_timer_check",
                     "i8042.noaux"),
            boot_modules=("virtio_pci", "virtio_console", "virtio_rng", "9pnet_virtio", "9p",
                          "overlay"),
            image="arch/x86/boot/bzImage",
            sys_delete_module=176,
        ),
        Arch(
            # QEMU's generic arm64 board: PL011 console, GICv2, PCIe (so the
            # same virtio-*-pci devices as on x86), and a device tree that
            # QEMU writes and a test may replace (-dtb). cortex-a57 rather
            # than max: TCG emulates pointer authentication and SVE slowly,
            # and nothing here needs them.
            name="aarch64", debian="arm64", kernel="arm64", cross_compile="aarch64-linux-gnu-",
            qemu="qemu-system-aarch64", qemu_package="qemu-system-arm",
            machine=("-machine", "virt"), tcg_cpu=("-cpu", "cortex-a57"),
            console="ttyAMA0",
            cmdline=_COMMON,
            # virtio_input: a keyboard, so the monitor's sendkey reaches sysrq
            # (the virt board has no PS/2 controller).
            boot_modules=("virtio_pci", "virtio_console", "virtio_rng", "9pnet_virtio", "9p",
                          "overlay", "virtio_input"),
            image="arch/arm64/boot/Image",
            devices=("-device", "virtio-keyboard-pci"),
            sys_delete_module=106,
        ),
    )
}


def syscall_number(machine: str, call: str) -> int:
    """The number of system call `call` ("delete_module") on `machine` (`uname -m`),
    or a KernelError naming what to add: a board of an architecture this table
    lacks runs everything but the calls it needs a number for."""
    arch = ARCHES.get(machine)
    number = getattr(arch, f"sys_{call}", 0) if arch else 0
    if not number:
        known = ", ".join(a.name for a in ARCHES.values() if getattr(a, f"sys_{call}", 0))
        raise KernelError(f"no {call}(2) number for architecture {machine!r}: add it to "
                          f"harness/pure/arch.py (known: {known})")
    return number


def get_arch(name: str) -> Arch:
    try:
        return ARCHES[name]
    except KeyError:
        raise KernelError(
            f"no guest architecture {name!r}: choose one of {', '.join(ARCHES)}"
        ) from None
