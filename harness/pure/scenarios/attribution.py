"""Which scenario a kernel report belongs to.

Before each scenario the agent writes "v4l2-unplug: scenario NAME begin" to
/dev/kmsg, so the console itself says what was running. A report belongs to
the last scenario that began before it: delayed reports (a hung task found
20 s later, an RCU stall) still land on the scenario that caused them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.pure.kmsg.report import Finding, parse_log
from harness.pure.markers import SCENARIO_RE

_TIME_RE = re.compile(r"^\[\s*(?P<t>\d+\.\d+)\]")

BOOT = "(boot)"


@dataclass(frozen=True)
class Marker:
    line: int  # 1-based, as Finding.line
    scenario: str
    step: str
    time: float | None


def markers(console: str) -> list[Marker]:
    out = []
    for number, text in enumerate(console.splitlines(), start=1):
        m = SCENARIO_RE.search(text)
        if m:
            t = _TIME_RE.match(text)
            out.append(Marker(number, m["name"], m["step"], float(t["t"]) if t else None))
    return out


def attribute(console: str) -> list[tuple[str, Finding]]:
    """(scenario name or BOOT, finding) for every report in the console, in order."""
    marks = [m for m in markers(console) if m.step == "begin"]
    out = []
    for finding in parse_log(console):
        owner = BOOT
        for m in marks:
            if m.line < finding.line:
                owner = m.scenario
            else:
                break
        out.append((owner, finding))
    return out
