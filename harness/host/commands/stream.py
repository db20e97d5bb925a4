"""`v4l2-unplug stream`: boot, set up each capture pipeline, stream, report per node."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from harness.host.commands import (
    PROG,
    add_driver_option,
    add_kernel_options,
    qemu_from_args,
    report_dir,
)
from harness.host.commands.inputs import at_least_one
from harness.pure.errors import HarnessError

MEMORY_CHOICES = ("mmap", "userptr", "dmabuf", "read")


def kernel_reports(console: str) -> list[str]:
    """Titles of the kernel reports (KASAN, lockdep, WARNING, BUG, ...) in a console."""
    from harness.pure.kmsg.report import parse_log

    return [f.title for f in parse_log(console)]


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match:
        raise HarnessError(f"--size {text!r}: not a size like 640x480, 'default' or 'all'")
    return int(match[1]), int(match[2])


def _sizes(args: argparse.Namespace, default: tuple[int, int],
           others: tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
    sizes: list[tuple[int, int]] = []
    for text in args.size or ["default"]:
        chosen = {"default": [default], "all": [default, *others]}.get(text)
        for size in chosen or [parse_size(text)]:
            if size not in sizes:
                sizes.append(size)
    return sizes


def _memory(args: argparse.Namespace) -> list[str] | None:
    if not args.memory or "all" in args.memory:
        return None  # each node's own I/O methods
    chosen = [m for text in args.memory for m in text.split(",") if m]
    unknown = [m for m in chosen if m not in MEMORY_CHOICES]
    if unknown:
        raise HarnessError(f"unknown I/O method {', '.join(unknown)}: choose from "
                           f"{', '.join(MEMORY_CHOICES)} or all")
    return chosen


def _dropped(result: dict[str, Any]) -> str:
    count = result["dropped_count"]
    if not count:
        return "0"
    listed = ",".join(map(str, result["dropped"][:5]))
    return f"{count} ({listed}{',...' if count > 5 else ''})"


def render_table(results: list[dict[str, Any]]) -> str:
    """One line per stream: node, memory, format, frames, fps, dropped sequence numbers."""
    header = ("node", "memory", "format", "frames", "fps", "dropped", "result")
    rows = [header]
    for r in results:
        fps = f"{r['fps']:.1f}" if r.get("fps") is not None else "-"
        rows.append((r["node"], r["memory"], r["format"] or "-",
                     f"{r['frames']}/{r['requested']}", fps, _dropped(r),
                     "ok" if r["ok"] else f"{r['error_count']} error(s)"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    for r in results:
        for message in r["errors"]:
            lines.append(f"  {r['node']} {r['memory']} {r['format']}: {message}")
        if r["error_count"] > len(r["errors"]):
            lines.append(f"  {r['node']} {r['memory']}: "
                         f"... {r['error_count'] - len(r['errors'])} more")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from harness.host.targets.qemu import raise_for_boot
    from harness.pure.profiles import get_profile

    profile = get_profile(args.driver)
    nodes = None if not args.node or "all" in args.node else args.node
    unknown = [n for n in nodes or [] if n not in profile.streamed_entities]
    if unknown:
        raise HarnessError(f"{', '.join(map(repr, unknown))}: not a node {profile.name} "
                           f"streams from (choose from: all, "
                           f"{', '.join(profile.streamed_entities)})")
    sizes = _sizes(args, profile.default_size, profile.other_sizes)
    task_args = {"driver": args.driver, "nodes": nodes, "memory": _memory(args),
                 "sizes": [list(s) for s in sizes], "frames": args.frames, "wait": args.wait,
                 "buffers": args.buffers}
    target, kernel = qemu_from_args(args)
    out = report_dir(args, "stream")
    guest = target.run([{"task": "stream", "args": task_args}], out)
    raise_for_boot(guest)
    status = 0
    results: list[dict[str, Any]] = []
    for event in guest.results():
        if event["event"] == "error":
            print(f"{PROG}: stream failed in the guest: {event['message']}", file=sys.stderr)
            status = 1
            continue
        results = event["data"]["results"]
    if guest.outcome != "done":
        # A run cut short still streamed something; show what the events say.
        results = results or [{k: v for k, v in e.items() if k not in ("event", "mono", "pid")}
                               for e in guest.events if e["event"] == "stream-result"]
        print(f"{PROG}: guest {guest.outcome}: {guest.message}", file=sys.stderr)
        status = 1
    (out / "stream.json").write_text(json.dumps(results, indent=1))
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print(render_table(results))
    if any(not r["ok"] for r in results):
        status = 1
    reports = kernel_reports(guest.console())
    if reports:
        status = 1
        print(f"kernel log: {len(reports)} report(s):", file=sys.stderr)
        for line in reports[:20]:
            print(f"  {line}", file=sys.stderr)
    else:
        print("kernel log: no BUG, WARNING, KASAN or lockdep report", file=sys.stderr)
    print(f"kernel {kernel.describe()}; boot to agent {guest.boot_seconds or 0:.1f} s; "
          f"console log {guest.console_path}", file=sys.stderr)
    return status


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stream", help="boot, set up each capture pipeline and stream from it",
        description="Stream from capture nodes with each I/O method they offer and report "
                    "frames, frame rate and dropped sequence numbers per node.")
    add_kernel_options(p)
    add_driver_option(p)
    p.add_argument("--node", action="append", metavar="ENTITY",
                   help="capture entity to stream from, repeatable, or 'all' (default)")
    p.add_argument("--memory", action="append", metavar="METHOD",
                   help=f"I/O method(s): {', '.join(MEMORY_CHOICES)}, comma-separated or "
                        f"repeated, or 'all' (default: every method the node offers)")
    p.add_argument("--size", action="append", metavar="WxH",
                   help="frame size, repeatable: WxH, 'default' (the default) or 'all' "
                        "(the profile's default and other sizes)")
    p.add_argument("--frames", type=at_least_one, default=60,
                   help="frames per stream (default: 60)")
    p.add_argument("--wait", choices=("poll", "select"), default="poll",
                   help="how to wait for frames (default: poll)")
    p.add_argument("--buffers", type=at_least_one, default=4, help="buffers per queue (default: 4)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--report", type=Path, help="directory for the console log and events")
    p.set_defaults(func=run)
