"""v4l2-unplug: the one entry point.

Problems the user can fix (no QEMU, a bad kernel path, a full disk, a guest
that never came up) end in one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness.errors import GuestError, HarnessError
from harness.kernels.flavours import FLAVOURS, get_kernel
from harness.kernels.kernel import Kernel

PROG = "v4l2-unplug"


def _add_kernel_options(p: argparse.ArgumentParser, multiple: bool = False) -> None:
    p.add_argument(
        "--kernel",
        action="append" if multiple else "store",
        default=None if multiple else "debian",
        metavar="FLAVOUR",
        help=f"kernel flavour: {', '.join(FLAVOURS)} (default: debian)",
    )
    p.add_argument("--kernel-image", type=Path, help="bzImage, with --kernel path")
    p.add_argument("--modules", type=Path, help="INSTALL_MOD_PATH of the image, with --kernel path")


def _kernel(args: argparse.Namespace, flavour: str | None = None) -> Kernel:
    return get_kernel(flavour or args.kernel, args.kernel_image, args.modules)


def _report_dir(args: argparse.Namespace, what: str) -> Path:
    if getattr(args, "report", None):
        return Path(args.report)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("reports") / f"{stamp}-{what}-{args.kernel}"


def cmd_kernel(args: argparse.Namespace) -> int:
    for flavour in args.kernel or ["debian"]:
        k = _kernel(args, flavour)
        print(f"{k.flavour}: {k.release}\n  image   {k.image}\n  modules {k.module_dir}")
    return 0


def cmd_topology(args: argparse.Namespace) -> int:
    from harness.device.graph import MediaGraph
    from harness.targets.qemu import QemuTarget, raise_for_boot

    kernel = _kernel(args)
    target = QemuTarget(kernel)
    run_dir = _report_dir(args, "topology")
    run = target.run([{"task": "topology", "args": {"driver": args.driver}}], run_dir)
    raise_for_boot(run)
    status = 0
    for event in run.results():
        if event["event"] == "error":
            print(f"{PROG}: {event['task']} failed in the guest: {event['message']}",
                  file=sys.stderr)
            status = 1
            continue
        for graph in event["data"]["graphs"]:
            print(MediaGraph.from_dict(graph).render())
    if run.outcome != "done":
        print(f"{PROG}: guest {run.outcome}: {run.message}", file=sys.stderr)
        status = 1
    print(f"kernel {kernel.describe()}; boot to agent {run.boot_seconds or 0:.1f} s; "
          f"console log {run.console_path}", file=sys.stderr)
    return status


def cmd_kmsg(args: argparse.Namespace) -> int:
    from harness.kmsg.cli import main as kmsg_main

    return kmsg_main([str(args.file), *(["--json"] if args.json else [])])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Tear media drivers down while user space uses them."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("kernel", help="fetch or build kernel flavours and print where they are")
    _add_kernel_options(p, multiple=True)
    p.set_defaults(func=cmd_kernel)

    p = sub.add_parser("topology", help="boot, load the driver, print its media graph")
    _add_kernel_options(p)
    p.add_argument("--driver", default="vimc", help="driver profile (default: vimc)")
    p.add_argument("--report", type=Path, help="directory for the console log and events")
    p.set_defaults(func=cmd_topology)

    p = sub.add_parser("kmsg", help="find kernel reports (KASAN, WARNING, ...) in a log")
    p.add_argument("file", type=Path)
    p.add_argument("--json", action="store_true", help="print findings as JSON")
    p.set_defaults(func=cmd_kmsg)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except GuestError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        if e.console_tail:
            print("--- last lines of the console ---", file=sys.stderr)
            print(e.console_tail, file=sys.stderr)
        return 2
    except HarnessError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
