"""`v4l2-unplug kernel`: fetch or build kernel flavours, with the modules the driver
profile builds out of tree, and say where they are; `--list` says what each
flavour follows today and whether it is in the cache."""

from __future__ import annotations

import argparse

from harness.host.commands import add_driver_option, add_kernel_options, kernel_from_args
from harness.host.kernels.flavours import FLAVOURS
from harness.pure.errors import HarnessError


def list_flavours() -> int:
    rows = []
    for f in FLAVOURS.values():
        if f.needs_path:
            rows.append((f.name, "-", "-", "-", f.summary))
            continue
        assert f.suite is not None
        try:
            version, cached = f.version(), ("yes" if f.cached() else "no")
        except HarnessError as e:
            version, cached = f"unavailable ({e})", "no"
        rows.append((f.name, f.suite.name, version, cached, f.summary))
    header = ("FLAVOUR", "SUITE", "VERSION TODAY", "CACHED", "WHAT")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(4)]
    for row in (header, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list:
        return list_flavours()
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
    p.add_argument("--list", action="store_true",
                   help="list every flavour, the version its suite carries today, and "
                        "whether it is cached")
    p.set_defaults(func=run)
