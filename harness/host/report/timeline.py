"""What the agent did and what the kernel said, on one clock, for one finding.

The agent stamps its steps with CLOCK_MONOTONIC and writes markers into the
kernel log; printk stamps the kernel's lines with its own clock, which
CLOCK_MONOTONIC follows. Put side by side they show the order of events: the
unbind began, the blocked DQBUF returned, the kernel reported, the scenario
ended. Built from results.json (a scenario's `kernel_times`, `steps`,
`blocked_calls`, `findings`; a race's stats and exposure).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Source(StrEnum):
    KERNEL = "kernel"
    AGENT = "agent"


@dataclass(frozen=True)
class Event:
    at: float  # seconds on the kernel's clock
    source: Source
    text: str
    signature: str | None = None  # a kernel report's


# The agent's markers in the kernel log (harness.target.scenarios.executor.execute).
MARKERS = {"begin": "scenario begins", "disrupt": "scenario disrupts", "end": "scenario ends"}
# Cycles of a race shown before its first report: what was under way.
RACE_CYCLES_SHOWN = 3
# What one disruption cycle of a race does, by its mode (--race-mode).
CYCLE_TEXT = {"unbind": "unbind and bind again", "rmmod": "remove the module and load it again"}


def scenario_events(s: dict[str, Any]) -> list[Event]:
    """A scenario of results.json as events in time order."""
    events = [Event(t, Source.KERNEL, f"v4l2-unplug: {MARKERS[k]}")
              for k, t in (s.get("kernel_times") or {}).items()
              if t is not None and k in MARKERS]
    for step in s.get("steps") or []:
        if step.get("at") is None:
            continue
        took = ("still running at the bound" if step.get("seconds") is None
                else f"{step['result']} after {step['seconds'] * 1000:.1f} ms")
        events.append(Event(step["at"], Source.AGENT, f"{step['op']} {step['target']}: {took}"))
    for call in s.get("blocked_calls") or []:
        if call.get("at") is None:
            continue
        after = ("" if call.get("latency") is None
                 else f", {call['latency'] * 1000:.1f} ms after the unplug")
        events.append(Event(call["at"], Source.AGENT,
                            f"{call['what']} on {call['node']} returned {call['result']}{after}"))
    for f in s.get("findings") or []:
        if f.get("timestamp") is not None:
            events.append(Event(f["timestamp"], Source.KERNEL, f["title"], f["signature"]))
    return sorted(events, key=lambda e: (e.at, e.source != Source.KERNEL))


def race_events(doc: dict[str, Any]) -> list[Event]:
    """A race's last cycles before its reports, and the reports, in time order.
    The race's start on the kernel's clock is its first report's time less the
    seconds the exposure counted up to it."""
    stats = doc.get("stats") or {}
    exposure = doc.get("exposure") or {}
    findings = [f for f in doc.get("findings") or [] if f.get("timestamp") is not None]
    hits = {h["signature"]: h for h in exposure.get("first_hits") or []
            if h.get("seconds") is not None}
    anchor = next((f for f in findings if f["signature"] in hits), None)
    if anchor is None:
        return []
    begin = anchor["timestamp"] - hits[anchor["signature"]]["seconds"]
    events = [Event(begin, Source.KERNEL, "v4l2-unplug: race begins (seed "
                    f"{stats.get('seed', '?')}, {len(stats.get('workers') or [])} workers)")]
    starts = [begin + t for t in stats.get("cycle_starts") or []]
    before = [i for i, t in enumerate(starts) if t <= anchor["timestamp"]][-RACE_CYCLES_SHOWN:]
    cycle = CYCLE_TEXT.get(stats.get("mode", ""), "disrupt")
    for i in before:
        events.append(Event(starts[i], Source.AGENT, f"cycle {i + 1} begins: {cycle}"))
    first = stats.get("first_report") or {}
    if first.get("iterations"):
        events.append(Event(anchor["timestamp"], Source.AGENT,
                            "worker iterations at the report: "
                            + ", ".join(str(n) for n in first["iterations"])))
    events += [Event(f["timestamp"], Source.KERNEL, f["title"], f["signature"])
               for f in findings]
    return sorted(events, key=lambda e: (e.at, e.source != Source.KERNEL))
