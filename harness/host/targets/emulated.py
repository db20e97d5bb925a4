"""Kernel + driver profile + patches -> the QEMU target that runs the profile.

The one place every command and the pytest plugin get a bootable guest from:
the kernel (a flavour's, or one `validate` built from a tree) gets the
modules the profile builds out of tree, with a user's patches applied to the
driver modules they change (harness.host.kernels.emulation), and boots with the
profile's device tree when it has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.host.kernels.emulation import device_tree_fragment, for_profile, with_delays
from harness.host.kernels.flavours import get_kernel
from harness.host.kernels.kernel import Kernel
from harness.host.targets.devicetree import device_tree
from harness.host.targets.qemu import QemuTarget
from harness.pure.profiles import DriverProfile


def provision_kernel(
    kernel: Kernel | str,
    profile: DriverProfile,
    patches: Sequence[Path] = (),
    image: Path | None = None,
    modules: Path | None = None,
    delays: bool = False,
) -> Kernel:
    """The kernel that runs `profile`: `kernel` (a Kernel, or a flavour's name with
    `image` and `modules` for the path flavour) with the profile's modules, and
    with the delay module of --amplify when `delays`."""
    if isinstance(kernel, str):
        kernel = get_kernel(kernel, image, modules)
    kernel = for_profile(kernel, profile, patches)
    return with_delays(kernel) if delays else kernel


def target_for(kernel: Kernel, profile: DriverProfile) -> QemuTarget:
    """The QEMU target that boots `kernel`, already provisioned for `profile`."""
    fragment = device_tree_fragment(profile)
    if fragment is None:
        return QemuTarget(kernel)
    # The tree derives from the one QEMU generates for this very machine.
    machine = QemuTarget(kernel).machine_args()
    return QemuTarget(kernel, dtb=device_tree(machine, fragment))


def provision(
    kernel: Kernel | str,
    profile: DriverProfile,
    patches: Sequence[Path] = (),
    image: Path | None = None,
    modules: Path | None = None,
    delays: bool = False,
) -> tuple[QemuTarget, Kernel]:
    """The target that runs `profile`'s scenarios, and the kernel it boots."""
    kernel = provision_kernel(kernel, profile, patches, image, modules, delays)
    return target_for(kernel, profile), kernel
