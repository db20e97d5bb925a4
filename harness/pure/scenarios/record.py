"""What one scenario run sends from the target to the host, as types.

The agent builds a ScenarioRecord, sends `to_dict()` in its scenario-result
event, and the host reads it back with `from_dict()`: both sides import this
module, so it imports nothing that needs a device or a VM. The JSON keys are
the ones results.json and the events log have always carried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from harness.pure.scenarios.contracts import ContractResult
from harness.pure.scenarios.evidence import CallRecord, StepRecord

__all__ = ["CallRecord", "ScenarioRecord", "Status", "StepRecord"]


class Status(StrEnum):
    """How the scenario's process ended."""

    DONE = "done"  # every step ran; the contracts say how it went
    ERROR = "error"  # the harness's own code raised (a stage not reached, ...)
    HANG = "hang"  # still in the kernel at the deadline
    CRASHED = "crashed"  # the process died without reporting (killed, oopsed)
    # The host lost the target under it (QEMU killed, a connection dropped):
    # set by the host, never by the agent.
    LOST = "lost"
    INTERRUPTED = "interrupted"  # the harness was told to stop (SIGINT, ...): host only


@dataclass
class ScenarioRecord:
    """One scenario as the target saw it. A record of a scenario that did not
    finish (error, hang, crash) has no steps, calls or after-actions."""

    name: str
    status: Status
    contracts: list[ContractResult] = field(default_factory=list)
    steps: list[StepRecord] | None = None
    # Labels of held nodes whose device node was gone right after the unbind
    # of a single unbind target (None for scenarios without one).
    vanished: list[str] | None = None
    calls: list[CallRecord] | None = None
    # What each held node saw after the disruption, by label: the after-action
    # ("stale_ioctls", "touch_mmap", "poll", "munmap", "close") -> its outcome.
    after: dict[str, dict[str, Any]] | None = None
    taint_before: int | None = None
    taint_after: int | None = None
    error: str | None = None
    traceback: str | None = None
    # A thread still in the kernel kept the scenario's process from exiting.
    stuck_process: bool = False

    @property
    def failed_contracts(self) -> list[ContractResult]:
        return [c for c in self.contracts if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name,
                               "contracts": [c.to_dict() for c in self.contracts]}
        if self.steps is not None:
            out["steps"] = [s.to_dict() for s in self.steps]
        if self.vanished is not None:
            out["vanished"] = self.vanished
        if self.calls is not None:
            out["calls"] = [c.to_dict() for c in self.calls]
        if self.after is not None:
            out["after"] = self.after
        if self.taint_before is not None:
            out["taint_before"] = self.taint_before
        if self.taint_after is not None:
            out["taint_after"] = self.taint_after
        out["status"] = self.status.value
        for key in ("error", "traceback"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.stuck_process:
            out["stuck_process"] = True
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScenarioRecord:
        def listed(key: str, of: Any) -> Any:
            return None if d.get(key) is None else [of(x) for x in d[key]]

        return cls(
            name=d["name"],
            status=Status(d["status"]),
            contracts=[ContractResult.from_dict(c) for c in d.get("contracts", [])],
            steps=listed("steps", StepRecord.from_dict),
            vanished=d.get("vanished"),
            calls=listed("calls", CallRecord.from_dict),
            after=d.get("after"),
            taint_before=d.get("taint_before"),
            taint_after=d.get("taint_after"),
            error=d.get("error"),
            traceback=d.get("traceback"),
            stuck_process=bool(d.get("stuck_process", False)),
        )
