"""What a scenario gathers on the target for its contracts to judge.

The executor fills an Evidence while it acts (disrupts, probes the stale fds,
closes, rebinds); the contracts (harness.pure.scenarios.contracts) only read it.
Pure data: the host imports the step and call records that travel in a
ScenarioRecord from here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.pure.scenarios.model import After, Disruption, NodeKind, Scenario

# Disruptions that bind the device again themselves: their scenario ends with
# the driver back, and says so as "rebind-restores".
REBINDING = (Disruption.UNBIND_BIND, Disruption.CYCLES)


@dataclass
class StepRecord:
    """One disruption step: unbind, bind or rmmod of `target`."""

    op: str
    target: str
    seconds: float | None  # None: still running at the bound
    result: str  # "ok" or an errno name
    # When it began on the target's CLOCK_MONOTONIC, the clock printk times
    # follow: the report page sets the step beside the kernel's lines.
    at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "target": self.target, "seconds": self.seconds,
                               "result": self.result}
        if self.at is not None:
            out["at"] = self.at
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StepRecord:
        return cls(d["op"], d["target"], d.get("seconds"), d["result"], d.get("at"))


@dataclass
class CallRecord:
    """A call that sat in the kernel across the disruption (blocked, or a loop)."""

    node: str  # the held node's label
    what: str  # "VIDIOC_DQBUF", "poll", "MEDIA_IOC_G_TOPOLOGY", ...
    loop: bool
    returned: bool
    latency: float | None  # seconds from the disruption to the return
    result: str
    calls: int
    errnos: dict[str, int] = field(default_factory=dict)
    # How user space ended a blocked call whose device stayed (rmmod refused);
    # None when the device went away.
    released: str | None = None
    # When it returned, on the target's CLOCK_MONOTONIC (None: it did not).
    at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"node": self.node, "what": self.what, "loop": self.loop,
                               "returned": self.returned, "latency": self.latency,
                               "result": self.result, "calls": self.calls,
                               "errnos": self.errnos}
        if self.released is not None:
            out["released"] = self.released
        if self.at is not None:
            out["at"] = self.at
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CallRecord:
        return cls(node=d["node"], what=d["what"], loop=d["loop"], returned=d["returned"],
                   latency=d.get("latency"), result=d["result"], calls=d.get("calls", 0),
                   errnos=dict(d.get("errnos", {})), released=d.get("released"),
                   at=d.get("at"))


@dataclass
class CallEvidence:
    record: CallRecord
    lost: bool  # the call's node went away with the disruption
    ended: bool  # the call was out of the kernel within the bound


@dataclass
class NodeEvidence:
    """One held fd after the disruption: what each after-action returned (None:
    the scenario did not do it to this fd)."""

    label: str
    kind: NodeKind
    stale_ioctls: dict[str, str] | None = None  # ioctl -> "ok" or errno name
    touch_mmap: str | None = None
    poll: list[str] | None = None
    munmap: str | None = None
    close: str | None = None

    def after_dict(self) -> dict[str, Any]:
        """The after-actions done, in the order they were done (After's order)."""
        return {a.value: getattr(self, a.value) for a in After
                if hasattr(self, a.value) and getattr(self, a.value) is not None}


@dataclass
class LeftBehind:
    """What of the driver was still there once the device was gone and every fd closed."""

    module: str
    nodes: list[str]
    media_devices: list[str]
    refcnt: int | None


@dataclass
class Recovery:
    """The driver bound (and loaded) again after the scenario."""

    before: dict[str, str]  # entity -> device node, as the scenario began
    after: dict[str, str] = field(default_factory=dict)
    error: str = ""  # the driver did not come back
    # Streaming again after the rebind: the node, frames got of frames wanted,
    # and the first error (None: not asked for).
    restream: tuple[str, int, int, str] | None = None


@dataclass
class Evidence:
    scenario: Scenario
    steps: list[StepRecord]  # the disruption's own
    calls: list[CallEvidence] = field(default_factory=list)
    nodes: list[NodeEvidence] = field(default_factory=list)
    rmmod_after_close: StepRecord | None = None
    module_loaded: bool = True  # after rmmod_after_close
    left_behind: LeftBehind | None = None
    recovery: Recovery | None = None

    @property
    def removed(self) -> bool:
        """The disruption took the device (unbind) or the module (rmmod) away."""
        return any(s.op in ("unbind", "rmmod") and s.result == "ok" for s in self.steps)

    @property
    def gone(self) -> bool:
        """The driver is gone: removed, or its module removed once every fd closed."""
        return self.removed or (self.rmmod_after_close is not None
                                and self.rmmod_after_close.result == "ok")

    @property
    def slowest_step(self) -> float:
        return max((s.seconds or 0.0) for s in self.steps) if self.steps else 0.0
