"""`v4l2-unplug topology`: boot, load the driver, print its media graph."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.host.commands import (
    PROG,
    add_driver_option,
    add_kernel_options,
    qemu_from_args,
    report_dir,
)


def run(args: argparse.Namespace) -> int:
    from harness.host.targets.qemu import raise_for_boot
    from harness.target.device.graph import MediaGraph

    target, kernel = qemu_from_args(args)
    run = target.run(
        [{"task": "topology", "args": {"driver": args.driver}}], report_dir(args, "topology")
    )
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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("topology", help="boot, load the driver, print its media graph")
    add_kernel_options(p)
    add_driver_option(p)
    p.add_argument("--report", type=Path, help="directory for the console log and events")
    p.set_defaults(func=run)
