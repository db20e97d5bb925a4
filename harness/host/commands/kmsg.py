"""`v4l2-unplug kmsg FILE`: the kernel reports (KASAN, WARNING, ...) in a log."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from harness.host.kmsg_cli import main as kmsg_main

    return kmsg_main([str(args.file), *(["--json"] if args.json else [])])


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kmsg", help="find kernel reports (KASAN, WARNING, ...) in a log")
    p.add_argument("file", type=Path)
    p.add_argument("--json", action="store_true", help="print findings as JSON")
    p.set_defaults(func=run)
