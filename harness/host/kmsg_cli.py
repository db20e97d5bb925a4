"""`kmsg FILE [--json]`: the deduplicated findings of one console log.

Exit status: 0 when the log was read (with or without findings), 2 when it
could not be read or the arguments were wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from harness.pure.kmsg.report import FindingGroup, dedup, parse_log


def _read(path: str) -> str:
    if path == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(path, "rb") as f:
            data = f.read()
    # Serial captures carry line noise and half-written UTF-8; a report is
    # still readable around a replacement character.
    return data.decode("utf-8", errors="replace")


def _format(group: FindingGroup) -> str:
    f = group.first
    head = f"[primary] {f.title}" if group.primary else f.title
    lines = [f"{head}  (x{group.count})"]
    lines.append(f"  class:     {f.bug_class}")
    lines.append(f"  signature: {f.signature}")
    if f.guilty_frame is not None:
        lines.append(f"  guilty:    {f.guilty_frame} ({f.guilty_rule})")
    else:
        lines.append("  guilty:    none")
    where = f"line {f.line}"
    if f.timestamp is not None:
        where += f", {f.timestamp:.6f}s"
    lines.append(f"  time:      {where}")
    task = "unknown"
    if f.comm is not None or f.pid is not None:
        task = f"{f.comm or '?'} (pid {f.pid if f.pid is not None else '?'})"
    if f.cpu is not None:
        task += f" on CPU {f.cpu}"
    lines.append(f"  task:      {task}")
    if f.taint is None:
        taint = "unknown"
    else:
        taint = " ".join(sorted(f.taint)) if f.taint else "not tainted"
    lines.append(f"  taint:     {taint}")
    if f.corrupted:
        lines.append(f"  corrupted: {f.corrupted_reason}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kmsg",
        description="List the kernel bug reports (KASAN, oops, WARNING, lockdep, hangs, "
        "leaks ...) in a serial console capture or dmesg output.",
    )
    parser.add_argument("file", help="console log or dmesg text; '-' reads standard input")
    parser.add_argument("--json", action="store_true", help="print a JSON list of findings")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        text = _read(args.file)
    except OSError as e:
        print(f"kmsg: error: cannot read {args.file}: {e.strerror or e}", file=sys.stderr)
        return 2
    groups = dedup(parse_log(text))
    try:
        if args.json:
            json.dump([g.to_dict() for g in groups], sys.stdout, indent=2)
            sys.stdout.write("\n")
        elif not groups:
            print("no kernel bug reports found")
        else:
            print("\n\n".join(_format(g) for g in groups))
        sys.stdout.flush()
    except BrokenPipeError:
        # `kmsg log | head`: the reader has what it wanted. Point stdout at
        # /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
