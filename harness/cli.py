"""v4l2-unplug: the one entry point.

Problems the user can fix (no QEMU, a bad kernel path, a full disk, a guest
that never came up) end in one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from harness.commands import PROG
from harness.errors import GuestError, HarnessError

# Modules under harness.commands, in the order `--help` lists them.
COMMANDS = ("run", "validate", "bisect", "history", "topology", "stream", "kernel", "kmsg", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Tear media drivers down while user space uses them."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"harness.commands.{name}").register(sub)
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
