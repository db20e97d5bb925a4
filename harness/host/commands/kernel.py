"""`v4l2-unplug kernel`: fetch or build kernel flavours, with the modules the driver
profile builds out of tree, and say where they are."""

from __future__ import annotations

import argparse

from harness.host.commands import add_driver_option, add_kernel_options, kernel_from_args


def run(args: argparse.Namespace) -> int:
    for flavour in args.kernel or ["debian"]:
        k = kernel_from_args(args, flavour)
        print(f"{k.flavour}: {k.release} ({k.arch})\n  image   {k.image}\n  modules {k.module_dir}")
        if k.kbuild is not None:
            print(f"  kbuild  {k.kbuild}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kernel", help="fetch or build kernel flavours and print where they are")
    add_kernel_options(p, multiple=True)
    add_driver_option(p)
    p.set_defaults(func=run)
