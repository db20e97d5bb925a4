"""What a command-line value must be before anything is fetched, built or booted.

Each is an argparse `type=`: a value that cannot mean anything (a race of -5
seconds, no worker, no repetition) is refused in one line by the parser,
instead of booting a guest that exercises nothing and then reports a pass.
"""

from __future__ import annotations

import argparse
from typing import NoReturn


def positive_seconds(text: str) -> float:
    """A duration in seconds, more than zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds "
                                         f"(e.g. 60)") from None
    # `not value > 0` also refuses nan, which compares false with everything.
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} seconds would run nothing: give a "
                                         f"duration above 0 (e.g. 60)")
    return value


_TIME_UNITS = {"s": 1, "m": 60, "h": 3600}


def time_budget(text: str) -> float:
    """A length of time in seconds, from "90", "90s", "10m" or "1.5h"; more than zero."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in _TIME_UNITS else (text, "s")
    try:
        value = float(number) * _TIME_UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a length of time "
                                         "(e.g. 600, 10m or 1h)") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} would allow nothing: give a time above 0 "
                                         "(e.g. 10m)")
    return value


def at_least_one(text: str) -> int:
    """A count of workers, runs or frames: 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (e.g. 3)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} would run nothing: give 1 or more")
    return value


class Parser(argparse.ArgumentParser):
    """argparse, but a refused argument is one line on stderr (the usage of
    `run` alone is a screenful), naming where the full help is."""

    def error(self, message: str) -> NoReturn:
        from harness.host.commands import PROG

        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")
