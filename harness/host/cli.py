"""v4l2-unplug: the one entry point.

Problems the user can fix (no QEMU, a bad kernel path, a full disk, a guest
that never came up) end in one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys

from harness.host import interrupts
from harness.host.commands import PROG
from harness.host.commands.inputs import Parser
from harness.host.interrupts import Interrupted
from harness.pure.errors import GuestError, HarnessError

# Modules under harness.host.commands, in the order `--help` lists them.
COMMANDS = ("survey", "run", "validate", "bisect", "history", "topology", "stream", "kernel",
            "kmsg", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG, description="Tear media drivers down while user space uses them."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"harness.host.commands.{name}").register(sub)
    return parser


def describe_os_error(e: OSError) -> str:
    """One line naming the file and the likely fix."""
    where = f"{e.filename}: " if e.filename else ""
    text = f"{where}{e.strerror or e}"
    if e.errno == errno.ENOSPC:
        return (f"{text} (no space left: free some, or point XDG_CACHE_HOME at a larger "
                f"disk for the kernel cache)")
    if e.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return f"{text} (not writable: check XDG_CACHE_HOME and --report)"
    return text


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    interrupts.install()
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
    except OSError as e:
        # A full disk, an unwritable cache or report directory, a file named on
        # the command line that is not there: the user's to fix, not a bug.
        print(f"{PROG}: error: {describe_os_error(e)}", file=sys.stderr)
        return 2
    except Interrupted as e:
        # A command that keeps a report catches it itself; any other stops here.
        print(f"{PROG}: interrupted by {e.name}", file=sys.stderr)
        return e.exit_status


if __name__ == "__main__":
    sys.exit(main())
