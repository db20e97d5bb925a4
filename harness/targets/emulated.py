"""A QEMU target for a driver profile: the kernel with the profile's emulation
modules, booted with the profile's device tree when it has one."""

from __future__ import annotations

from harness.kernels.emulation import device_tree_fragment, for_profile
from harness.kernels.kernel import Kernel
from harness.profiles import DriverProfile
from harness.targets.devicetree import device_tree
from harness.targets.qemu import QemuTarget


def qemu_target(kernel: Kernel, profile: DriverProfile) -> tuple[QemuTarget, Kernel]:
    """The target that runs `profile`'s scenarios on `kernel`, and the kernel it boots."""
    kernel = for_profile(kernel, profile)
    fragment = device_tree_fragment(profile)
    if fragment is None:
        return QemuTarget(kernel), kernel
    # The tree derives from the one QEMU generates for this very machine.
    machine = QemuTarget(kernel).machine_args()
    return QemuTarget(kernel, dtb=device_tree(machine, fragment)), kernel
