"""Console lines: prefixes off, printk context and time out.

A serial capture mixes kernel printk output with whatever else wrote to the
console (the agent, a shell, syslog echoes) and, with CONFIG_PRINTK_CALLER,
lines from several CPUs or tasks interleaved. Every kernel line carries the
same prefix shapes, so one regex strips them and yields:

* the printk time (float seconds) when it is absolute,
* a context key that tells writers apart: the caller id ("T123", "C1") when
  the kernel prints one, "console" for a timestamped line without it, and ""
  for a line with no printk prefix at all (dmesg -t, or non-kernel output).

Lines are parsed lazily: a 10 MB log has ~150k lines, and only the few around
a report are ever looked at, so parsing them all up front would dominate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The printk prefix, matched where the line's first '[' is. What comes
# before that bracket is text another writer left on the line ahead of the
# kernel's ("syzkaller login: ", journalctl's "Jan 01 12:00:00 host kernel: ")
# or a syslog level ("<4>"); it is not part of the message.
_PREFIX_RE = re.compile(
    r"""
    (?:
        \[\s*(?P<ts>\d+\.\d+)\]                     # [   12.345678]
        (?:\[\s*(?P<caller>[CT]\d+)\])?             # [  T123] / [    C1]
      | \[\s*\+\d+\.\d+\]                           # dmesg --reltime
      | \[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s[A-Z][a-z]{2}\s[\s\d]\d\s[\d:]{8}\s\d{4}\]  # dmesg -T
      | \[\s*(?P<caller_only>[CT]\d+)\]             # printk.time=0 with caller ids
    )
    \x20?
    """,
    re.VERBOSE,
)
# Longest text taken for another writer's leftovers in front of a prefix.
_MAX_JUNK = 96


@dataclass(frozen=True, slots=True)
class Line:
    """One console line, split into its printk prefix and the message."""

    index: int  # 0-based position in the input
    raw: str  # as captured, without the trailing '\r'
    text: str  # the message, printk prefix and leading junk removed
    timestamp: float | None
    context: str  # "T123", "C1", "console" (timestamp only) or "" (no prefix)

    @property
    def cpu_context(self) -> bool:
        return self.context.startswith("C")


# kmemleak's verbose mode (/sys/module/kmemleak/parameters/verbose) prints
# each leak to the console with its pr_fmt in front of every line:
# "kmemleak: unreferenced object ...", "kmemleak:     [<...>] func+0x1/0x2".
# Without it the lines read as in /sys/kernel/debug/kmemleak, which is how
# the report is parsed; its own messages ("kmemleak: 3 new suspected memory
# leaks") keep the prefix.
_KMEMLEAK_VERBOSE_RE = re.compile(r"kmemleak: (?=unreferenced object | )")


def _message(text: str) -> str:
    if text.startswith("kmemleak: ") and _KMEMLEAK_VERBOSE_RE.match(text):
        return text[len("kmemleak: ") :]
    return text


def parse_line(raw: str, index: int = 0) -> Line:
    """Split one line into prefix and message."""
    raw = raw.rstrip("\r")
    at = raw.find("[", 0, _MAX_JUNK + 1)
    m = _PREFIX_RE.match(raw, at) if at >= 0 else None
    if m is None:
        return Line(index, raw, _message(raw), None, "")
    ts = m.group("ts")
    caller = m.group("caller") or m.group("caller_only")
    return Line(
        index,
        raw,
        _message(raw[m.end() :]),
        float(ts) if ts is not None else None,
        caller or "console",
    )


class LineTable:
    """The lines of one log, parsed on first access."""

    __slots__ = ("_raw", "_cache")

    def __init__(self, text: str) -> None:
        # str.split is C speed; '\r' is dealt with per line, on demand.
        self._raw = text.split("\n")
        if self._raw and self._raw[-1] == "":
            self._raw.pop()
        self._cache: dict[int, Line] = {}

    def __len__(self) -> int:
        return len(self._raw)

    def __getitem__(self, index: int) -> Line:
        line = self._cache.get(index)
        if line is None:
            line = parse_line(self._raw[index], index)
            self._cache[index] = line
        return line

    def raw(self, index: int) -> str:
        return self._raw[index]

    def replace(self, index: int, line: Line, text: str) -> Line:
        """The line with its message replaced: a header cut out of the line
        another message left it on, or joined with its own continuation."""
        new = Line(line.index, line.raw, text, line.timestamp, line.context)
        self._cache[index] = new
        return new

