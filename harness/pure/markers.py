"""The lines the agent writes into the kernel log, and how the host reads them.

The agent marks where each scenario begins, disrupts and ends, and where a
race begins and ends, by writing to /dev/kmsg: the marks then sit in the
console between the kernel's own lines, in the kernel's order and with its
timestamps, so a report can be placed in the scenario or race it came in.
Both sides take the wording from here.
"""

from __future__ import annotations

import re

PREFIX = "v4l2-unplug: "

SCENARIO_STEPS = ("begin", "disrupt", "end")
SCENARIO_RE = re.compile(
    re.escape(PREFIX) + r"scenario (?P<name>\S+) (?P<step>" + "|".join(SCENARIO_STEPS) + r")\b"
)
RACE_BEGIN = PREFIX + "race begin"


def scenario(name: str, step: str) -> str:
    """The mark of `step` (one of SCENARIO_STEPS) of scenario `name`, without PREFIX."""
    assert step in SCENARIO_STEPS, step
    return f"scenario {name} {step}"


def race_begin(seed: int, workers: int, mode: str) -> str:
    return f"{RACE_BEGIN.removeprefix(PREFIX)} seed={seed} workers={workers} mode={mode}"


def race_end(cycles: int) -> str:
    return f"race end cycles={cycles}"


def line(text: str) -> str:
    """What the agent writes to /dev/kmsg for the mark `text`."""
    return f"{PREFIX}{text}\n"
