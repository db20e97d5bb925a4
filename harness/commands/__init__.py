"""Subcommands of v4l2-unplug: each module has `register(subparsers)`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness.kernels.flavours import FLAVOURS, get_kernel
from harness.kernels.kernel import Kernel

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
                   help="apply FILE to vimc and build it out of tree (repeatable)")


def kernel_from_args(args: argparse.Namespace, flavour: str | None = None) -> Kernel:
    return get_kernel(flavour or args.kernel, args.kernel_image, args.modules, args.patch)


def report_dir(args: argparse.Namespace, what: str) -> Path:
    if getattr(args, "report", None):
        return Path(args.report)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("reports") / f"{stamp}-{what}-{args.kernel}"
