"""Subcommands of v4l2-unplug: each module has `register(subparsers)`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.host.kernels.flavours import FLAVOURS
from harness.host.kernels.kernel import Kernel
from harness.pure.profiles import DEFAULT_DRIVER

if TYPE_CHECKING:
    from harness.host.targets.base import BoardKernel, Target
    from harness.host.targets.qemu import QemuTarget
    from harness.pure.delays import DelayPlan
    from harness.pure.profiles import DriverProfile

PROG = "v4l2-unplug"


def add_kernel_options(p: argparse.ArgumentParser, multiple: bool = False) -> None:
    p.add_argument(
        "--kernel",
        action="append" if multiple else "store",
        default=None if multiple else "debian",
        metavar="FLAVOUR",
        help=f"kernel flavour: {', '.join(FLAVOURS)} (default: debian)",
    )
    p.add_argument("--kernel-image", type=Path, help="bzImage or vmlinux, with --kernel path")
    p.add_argument("--modules", type=Path, help="INSTALL_MOD_PATH of the image, with --kernel path")
    p.add_argument("--patch", action="append", type=Path, default=[], metavar="FILE",
                   help="apply FILE to the driver's module and build it out of tree "
                        "(repeatable)")


def add_driver_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--driver", default=DEFAULT_DRIVER,
                   help=f"driver profile (default: {DEFAULT_DRIVER})")


def kernel_from_args(args: argparse.Namespace, flavour: str | None = None) -> Kernel:
    """The kernel of --kernel (or `flavour`) with what --driver needs and --patch changes."""
    from harness.host.targets.emulated import provision_kernel
    from harness.pure.profiles import get_profile

    return provision_kernel(flavour or args.kernel, get_profile(args.driver), args.patch,
                            args.kernel_image, args.modules)


def qemu_from_args(args: argparse.Namespace) -> tuple[QemuTarget, Kernel]:
    """The QEMU guest that runs --driver on --kernel (+ --patch), and its kernel."""
    from harness.host.targets.emulated import provision
    from harness.pure.profiles import get_profile

    return provision(args.kernel, get_profile(args.driver), args.patch, args.kernel_image,
                     args.modules, delays=bool(getattr(args, "amplify", False)))


def report_dir(args: argparse.Namespace, what: str) -> Path:
    if getattr(args, "report", None):
        return Path(args.report)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    where = args.kernel if getattr(args, "target", "qemu") == "qemu" else "board"
    return Path("reports") / f"{stamp}-{what}-{where}"


def add_amplify_options(g: argparse._ArgumentGroup) -> None:
    """--amplify and what it delays, for a command that races."""
    from harness.pure.delays import DelayPlan

    plan = DelayPlan(("x",))
    g.add_argument("--amplify", action="store_true",
                   help="widen race windows: seeded, bounded busy-waits at the entry of the "
                        "profile's functions through kprobes (vm/amplify; the kernel needs "
                        "CONFIG_KPROBES)")
    g.add_argument("--delay-at", action="append", metavar="SYMBOL",
                   help="with --amplify: delay this function (or function+offset) instead "
                        "of the profile's (repeatable)")
    g.add_argument("--delay-us", default=f"{plan.min_us}-{plan.max_us}", metavar="MIN-MAX",
                   help=f"with --amplify: each delay's range in microseconds "
                        f"(default {plan.min_us}-{plan.max_us})")
    g.add_argument("--delay-permille", type=int, default=plan.permille, metavar="N",
                   help=f"with --amplify: calls delayed per thousand (default {plan.permille})")


def delay_plan(args: argparse.Namespace, profile: DriverProfile) -> DelayPlan | None:
    """The delays --amplify asks for (seeded with --seed), None without it."""
    from harness.pure.delays import DelayPlan, parse_range
    from harness.pure.errors import HarnessError

    if not getattr(args, "amplify", False):
        if getattr(args, "delay_at", None):
            raise HarnessError("--delay-at chooses what --amplify delays: add --amplify")
        return None
    if not getattr(args, "race", True):
        raise HarnessError("--amplify widens a race's windows: add --race")
    low, high = parse_range(args.delay_us)
    symbols = tuple(args.delay_at or (p.symbol for p in profile.delays))
    return DelayPlan(symbols, low, high, args.delay_permille, args.seed)


def add_target_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("boards (instead of a QEMU guest)")
    g.add_argument("--target", default="qemu", metavar="TARGET",
                   help="qemu (default: boot --kernel), ssh://[user@]host[:port][/checkout]"
                        "[?python=PATH], serial:/dev/ttyX[?baud=N&user=U&password=P"
                        "&python=PATH&checkout=DIR], or labgrid:ENV.yaml[?target=NAME] "
                        "(a labgrid environment: address, serial port and power driver)")
    g.add_argument("--console", metavar="serial:/dev/ttyX[?baud=N]",
                   help="the board's serial console, read for the kernel log with an ssh "
                        "target (it survives a crash; otherwise /dev/kmsg is read over ssh)")
    g.add_argument("--power-cycle", metavar="CMD",
                   help="shell command that power-cycles the board, to recover it after a "
                        "crash (otherwise: reboot, or wait for it to reset itself)")
    g.add_argument("--ssh-identity", type=Path, metavar="FILE",
                   help="private key for an ssh target (default: your ssh configuration)")


def target_from_args(args: argparse.Namespace) -> tuple[Target, Kernel | BoardKernel]:
    """The target to run on and the kernel its report names. A board runs
    its own kernel, so --kernel/--patch do not apply to it."""
    import atexit
    import sys

    from harness.pure.errors import HarnessError

    spec = getattr(args, "target", "qemu") or "qemu"
    if spec == "qemu":
        if getattr(args, "console", None) or getattr(args, "power_cycle", None):
            raise HarnessError("--console and --power-cycle are for boards (--target ssh://... "
                               "or serial:...)")
        return qemu_from_args(args)
    if getattr(args, "amplify", False):
        raise HarnessError("--amplify builds its delay module into a QEMU guest's kernel; on a "
                           "board, race without it")
    if args.patch or args.kernel_image or args.modules:
        raise HarnessError("--patch, --kernel-image and --modules build or boot a kernel in "
                           "QEMU; a board runs its own kernel (install the driver there)")

    from harness.host.targets.base import BoardKernel
    from harness.host.targets.schemes import BoardOptions, open_board

    def note(text: str) -> None:
        print(f"{PROG}: {text}", file=sys.stderr, flush=True)

    target = open_board(spec, BoardOptions(args.console, args.power_cycle, args.ssh_identity,
                                           note))
    atexit.register(target.close)
    probe = target.probe()
    return target, BoardKernel("board", probe["release"], target.spec)
