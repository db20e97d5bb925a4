"""Race amplification: seeded, bounded delays at kernel functions (vm/amplify).

A race window is hit by luck when both sides run at the speed they happen
to run; a KASAN kernel under TCG moves the two sides apart and may never
line them up. A delay on the side that checked and is about to use (the
entry of `media_device_get_info()`, after `__media_ioctl()` found the node
registered) holds that side inside its window while the other side's unbind
goes on. Which functions is the profile's, as data (`DriverProfile.delays`);
how long and how often is a `DelayPlan`, which the test-only module
`unplug-delay` takes as its parameters and the report records as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness.pure.errors import HarnessError

# The module's own bound (vm/amplify/unplug-delay.c, DELAY_LIMIT_US) and how
# many symbols it takes.
DELAY_LIMIT_US = 50_000
MAX_POINTS = 8

MODULE = "unplug-delay"

_SPEC = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*(\+(0x[0-9a-fA-F]+|[0-9]+))?$")


@dataclass(frozen=True)
class DelayPoint:
    """One place the module delays: a kernel function's entry (or `symbol+offset`),
    and why a delay there widens a window (the check before it, the use after)."""

    symbol: str
    why: str = ""

    def __post_init__(self) -> None:
        check_symbol(self.symbol)


def check_symbol(spec: str) -> str:
    """`spec` if it is a symbol or symbol+offset the module can read."""
    if not _SPEC.match(spec):
        raise HarnessError(f"delay point {spec!r} is not a kernel symbol: give a function "
                           f"name, or name+offset (media_device_get_info+0x1c)")
    return spec


@dataclass(frozen=True)
class DelayPlan:
    """What `unplug-delay` is loaded with for one race."""

    symbols: tuple[str, ...]
    # Every call, 5-40 ms: on 6.1 and 7.2 this finds media_device_get_info()'s
    # NULL dereference in seconds where the plain race takes minutes or never.
    # One CPU waits at a time (the module's rule), so "every call" cannot
    # stall the unbind.
    min_us: int = 5_000
    max_us: int = 40_000
    permille: int = 1000
    seed: int = 1

    def __post_init__(self) -> None:
        if not self.symbols:
            raise HarnessError("--amplify has no function to delay: the profile names none; "
                               "give some with --delay-at SYMBOL")
        if len(self.symbols) > MAX_POINTS:
            raise HarnessError(f"{len(self.symbols)} delay points: the module takes at most "
                               f"{MAX_POINTS}; choose with --delay-at")
        for s in self.symbols:
            check_symbol(s)
        if not 0 <= self.min_us <= self.max_us <= DELAY_LIMIT_US:
            raise HarnessError(f"delay range {self.min_us}-{self.max_us} us: give "
                               f"MIN-MAX with 0 <= MIN <= MAX <= {DELAY_LIMIT_US}")
        if not 0 <= self.permille <= 1000:
            raise HarnessError(f"delay probability {self.permille}/1000: give 0 to 1000")

    def module_args(self) -> list[str]:
        """modprobe's parameters for the module."""
        return [f"symbols={','.join(self.symbols)}", f"delay_min_us={self.min_us}",
                f"delay_max_us={self.max_us}", f"permille={self.permille}",
                f"seed={self.seed & 0xFFFFFFFF}"]

    def to_dict(self) -> dict[str, Any]:
        return {"symbols": list(self.symbols), "min_us": self.min_us, "max_us": self.max_us,
                "permille": self.permille, "seed": self.seed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DelayPlan:
        return cls(tuple(d["symbols"]), int(d["min_us"]), int(d["max_us"]),
                   int(d["permille"]), int(d["seed"]))


def parse_range(text: str) -> tuple[int, int]:
    """'1000-20000' (microseconds) -> (1000, 20000)."""
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if not m:
        raise HarnessError(f"delay range {text!r}: give MIN-MAX in microseconds, e.g. 1000-20000")
    return int(m.group(1)), int(m.group(2))


def parse_stats(text: str) -> list[dict[str, Any]]:
    """/sys/kernel/debug/unplug-delay/stats -> one dict per delay point: how many
    calls passed it, how many were delayed and for how long in all, and how
    many drew a delay while another CPU was already waiting (`busy`: the
    module delays one CPU at a time)."""
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 5:
            continue
        name, calls, delays, us, busy = parts
        symbol = name[:-2] if name.endswith("+0") else name
        rows.append({"symbol": symbol, "calls": int(calls), "delays": int(delays),
                     "delayed_us": int(us), "busy": int(busy)})
    return rows
