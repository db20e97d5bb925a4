"""What user space may expect after an unplug, each with where it is written
and how it is judged.

A contract result is reported apart from kernel findings: a kernel can be
free of oopses and still leave a DQBUF blocked forever. Each row of CONTRACTS
carries its check, which reads the evidence the executor gathered
(harness.pure.scenarios.evidence) and returns the contract's results: adding a
contract is one row here (and the evidence it reads, if that is new).
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from harness.pure.scenarios.evidence import REBINDING, Evidence, NodeEvidence, Recovery
from harness.pure.scenarios.model import After, Disruption, NodeKind

# Errors an ioctl on a stale fd may return, by node kind (see stale-ioctl-errno).
STALE_IOCTL_ERRNOS: dict[NodeKind, frozenset[int]] = {
    NodeKind.VIDEO: frozenset({errno.ENODEV}),
    NodeKind.SUBDEV: frozenset({errno.ENODEV}),
    NodeKind.MEDIA: frozenset({errno.EIO}),
}

RMMOD_REFUSALS = frozenset({errno.EBUSY, errno.EAGAIN})

# Seconds a blocked call, an unbind or a bind may take; generous under TCG.
BLOCKED_CALL_BOUND = 5.0
DISRUPTION_BOUND = 30.0


def errno_name(code: int | None) -> str:
    return "ok" if code is None else errno.errorcode.get(code, str(code))


class Phase(IntEnum):
    """When in a scenario a contract's evidence is complete. Results are
    reported in this order, table order within a phase; the held-node
    contracts one fd at a time, in the order of the after-actions they judge."""

    DISRUPTION = 1  # the unbind/bind/rmmod returned
    CALLS = 2  # the calls that were in the kernel returned
    HELD_NODES = 3  # user space acted on each stale fd
    MODULE = 4  # the module was removed (or refused)
    RECOVERY = 5  # the driver was bound and loaded again


@dataclass
class ContractResult:
    contract: str
    passed: bool
    detail: str
    subject: str = ""  # which fd / node / step
    measured: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        cited = CONTRACTS.get(self.contract)
        return {
            "contract": self.contract,
            "passed": self.passed,
            "detail": self.detail,
            "subject": self.subject,
            "measured": self.measured,
            "expectation": cited.expectation if cited else "",
            "source": cited.source if cited else "",
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContractResult:
        # expectation and source are the table's: they are not read back.
        return cls(d["contract"], d["passed"], d["detail"], d.get("subject", ""),
                   dict(d.get("measured") or {}))


ScenarioCheck = Callable[["Contract", Evidence], Iterable[ContractResult]]
NodeCheck = Callable[["Contract", NodeEvidence], "ContractResult | None"]


@dataclass(frozen=True)
class Contract:
    id: str
    expectation: str
    source: str
    phase: Phase
    # Either a check of the whole scenario's evidence (results in any number),
    # or a check of each held fd (at most one result each) with the
    # after-action whose outcome it judges.
    check: ScenarioCheck | None = None
    node_check: NodeCheck | None = None
    after: After | None = None
    # A failure means the driver is unusable: the kernel is rebooted before
    # the next scenario rather than blaming that one.
    breaks_driver: bool = False

    def result(self, passed: bool, detail: str, subject: str = "",
               measured: dict[str, Any] | None = None) -> ContractResult:
        return ContractResult(self.id, passed, detail, subject, measured or {})


# -- the checks the rows below carry ---------------------------------------------------


def _blocked_call_returns(c: Contract, ev: Evidence) -> Iterable[ContractResult]:
    for call in ev.calls:
        info = call.record
        if not info.loop and not call.lost:
            # Nothing went away (rmmod refused): a blocked call rightly stays
            # blocked, until user space itself ends it.
            continue
        if info.loop:
            if not call.ended:
                yield c.result(False, f"{info.what} loop stuck in the kernel after the unplug",
                               subject=info.node)
            continue
        latency = info.latency
        # A negative latency: the call was not blocked when the unplug came.
        ok = (call.ended and latency is not None
              and 0 <= latency <= BLOCKED_CALL_BOUND + ev.slowest_step)
        if call.ended and latency is not None and latency < 0:
            detail = (f"{info.what} returned {info.result} {-latency} s before the "
                      f"unplug: the stage was not held")
        elif call.ended:
            detail = f"{info.what} returned {info.result} after {latency} s"
        else:
            detail = f"{info.what} still blocked {BLOCKED_CALL_BOUND:.0f} s after the unplug"
        yield c.result(bool(ok), detail, subject=info.node,
                       measured={"latency": latency, "result": info.result})


def _stale_ioctl_errno(c: Contract, node: NodeEvidence) -> ContractResult | None:
    if node.stale_ioctls is None:
        return None
    allowed = {errno_name(e) for e in STALE_IOCTL_ERRNOS[node.kind]}
    bad = {k: v for k, v in node.stale_ioctls.items() if v not in allowed}
    return c.result(not bad,
                    f"all failed with {'/'.join(sorted(allowed))}" if not bad
                    else ", ".join(f"{k} -> {v}" for k, v in bad.items()),
                    subject=node.label, measured=node.stale_ioctls)


def _close_succeeds(c: Contract, node: NodeEvidence) -> ContractResult | None:
    if node.close is None:
        return None
    return c.result(node.close == "ok", f"close: {node.close}", subject=node.label)


def _mmap_survives(c: Contract, node: NodeEvidence) -> ContractResult | None:
    if node.touch_mmap is None:
        return None
    return c.result(node.touch_mmap == "ok", f"reading the mappings: {node.touch_mmap}",
                    subject=node.label)


def _recovered(c: Contract, recovery: Recovery | None) -> Iterable[ContractResult]:
    if recovery is None:
        return
    if recovery.error:
        yield c.result(False, f"driver did not come back: {recovery.error}")
        return
    now, before = recovery.after, recovery.before
    if set(now) != set(before):
        missing = sorted(set(before) - set(now))
        extra = sorted(set(now) - set(before))
        yield c.result(False, f"node set changed: missing {missing}, new {extra}")
        return
    if recovery.restream is not None:
        entity, frames, wanted, error = recovery.restream
        if frames < wanted or error:
            yield c.result(False, f"{entity} streamed {frames}/{wanted} frames after rebind"
                                  f"{': ' + error if error else ''}")
            return
    streamed = ", streamed again" if recovery.restream is not None else ""
    yield c.result(True, f"{len(now)} nodes back; reopened all{streamed}",
                   measured={"nodes": len(now)})


def _rebind_restores(c: Contract, ev: Evidence) -> Iterable[ContractResult]:
    if ev.scenario.disruption in REBINDING:
        yield from _recovered(c, ev.recovery)


def _rmmod_refuses_or_completes(c: Contract, ev: Evidence) -> Iterable[ContractResult]:
    if ev.scenario.disruption not in (Disruption.RMMOD, Disruption.UNBIND_RMMOD):
        return
    rm = [s for s in ev.steps if s.op == "rmmod"][-1]
    refused = rm.result in {errno_name(e) for e in RMMOD_REFUSALS}
    yield c.result(rm.result == "ok" or refused,
                   f"rmmod {'while open' if ev.nodes else 'with nothing open'}: {rm.result}",
                   measured={"result": rm.result})


def _nothing_left_behind(c: Contract, ev: Evidence) -> Iterable[ContractResult]:
    # One unbind target going away leaves the rest of the driver in place.
    left = ev.left_behind
    if (ev.scenario.disruption in REBINDING or not ev.gone or ev.scenario.target
            or left is None):
        return
    problems = []
    if left.nodes:
        problems.append(f"nodes still present: {left.nodes}")
    if left.media_devices:
        problems.append(f"media devices still bound: {left.media_devices}")
    if left.refcnt not in (None, 0):
        problems.append(f"module {left.module} refcnt {left.refcnt}")
    yield c.result(not problems,
                   "; ".join(problems) or "no node, media device or module reference left",
                   measured={"refcnt": left.refcnt})


def _rmmod_after_close(c: Contract, ev: Evidence) -> Iterable[ContractResult]:
    step = ev.rmmod_after_close
    if step is None:
        return
    yield c.result(not ev.module_loaded, f"rmmod once every fd was closed: {step.result}",
                   measured={"result": step.result, "seconds": step.seconds})


def _driver_recovers(c: Contract, ev: Evidence) -> Iterable[ContractResult]:
    if ev.scenario.disruption not in REBINDING:
        yield from _recovered(c, ev.recovery)


def _disruption_completes(c: Contract, ev: Evidence) -> Iterable[ContractResult]:
    stuck = [s for s in ev.steps if s.seconds is None]
    yield c.result(
        not stuck,
        "every step returned" if not stuck else f"{stuck[0].op} {stuck[0].target} still "
        f"running after {DISRUPTION_BOUND:.0f} s",
        measured={s.op: s.seconds for s in ev.steps},
    )


CONTRACTS: dict[str, Contract] = {
    c.id: c
    for c in (
        Contract(
            "blocked-call-returns",
            "a DQBUF, poll, select or read blocked at unbind returns within the bound",
            "seed RFC 'V4L2: Handle the race condition between device access and unbind': "
            "blocking calls such as VIDIOC_DQBUF must be woken at unbind; "
            "v4l2-dev.c video_unregister_device() wakes vb2 waiters via the disconnect path",
            Phase.CALLS, check=_blocked_call_returns,
        ),
        Contract(
            "stale-ioctl-errno",
            "an ioctl on a file descriptor whose device is gone fails with the documented "
            "error: ENODEV for video and subdev nodes, EIO for the media node",
            "drivers/media/v4l2-core/v4l2-dev.c v4l2_ioctl(): '!video_is_registered -> "
            "-ENODEV'; drivers/media/mc/mc-devnode.c media_ioctl(): "
            "'!media_devnode_is_registered -> -EIO'; "
            "Documentation/userspace-api/media/v4l/func-ioctl.rst (ENODEV)",
            Phase.HELD_NODES, node_check=_stale_ioctl_errno, after=After.STALE_IOCTLS,
        ),
        Contract(
            "close-succeeds",
            "close() of a file descriptor whose device is gone returns 0",
            "Documentation/userspace-api/media/v4l/func-close.rst; "
            "seed RFC: every file operation, not only ioctl, must be safe after unbind",
            Phase.HELD_NODES, node_check=_close_succeeds, after=After.CLOSE,
        ),
        Contract(
            "mmap-survives",
            "touching buffers mmapped before the unplug does not kill the process",
            "videobuf2-core.c: a mapped buffer holds its memory until the last vm_close "
            "(vb2_common_vm_close / vb2_vmalloc_put), so a mapping outlives the device",
            Phase.HELD_NODES, node_check=_mmap_survives, after=After.TOUCH_MMAP,
        ),
        Contract(
            "rebind-restores",
            "after bind the same set of nodes (by entity) comes back and streams again",
            "v4l-utils contrib/test/test-media (unbind, bind, then stream again); "
            "Documentation/driver-api/driver-model/binding.rst",
            Phase.RECOVERY, check=_rebind_restores, breaks_driver=True,
        ),
        Contract(
            "rmmod-refuses-or-completes",
            "removing the module while a node is open is refused with EBUSY/EAGAIN, "
            "or completes without a kernel report",
            "kernel/module/main.c delete_module(): try_stop_module() fails with "
            "-EWOULDBLOCK while references are held; v4l2 fops hold the owner module",
            Phase.MODULE, check=_rmmod_refuses_or_completes,
        ),
        Contract(
            "nothing-left-behind",
            "after unbind and close no device node, media entity or module reference of "
            "the driver is left",
            "'Use Media Dev Allocator to fix vimc dev lifetime bugs': the top-level struct "
            "is freed when the last reference to the media/v4l2 device drops",
            Phase.RECOVERY, check=_nothing_left_behind,
        ),
        Contract(
            "rmmod-after-close",
            "once every file descriptor is closed, the unbound (or still bound) driver's "
            "module can be removed",
            "v4l-utils contrib/test/test-media (rmmod after the holders of the unbound "
            "vimc exit); kernel/module/main.c: the module's refcount drops with the last "
            "fops_put() in v4l2_release()/media_release()",
            Phase.MODULE, check=_rmmod_after_close,
        ),
        Contract(
            "driver-recovers",
            "after the scenario, binding the device (and loading the module) again brings "
            "back the same set of nodes",
            "Documentation/driver-api/driver-model/binding.rst (a device can be bound "
            "again after unbind); the seed RFC's goal that unbind leaves no stale state",
            Phase.RECOVERY, check=_driver_recovers, breaks_driver=True,
        ),
        Contract(
            "disruption-completes",
            "the unbind/bind/rmmod itself returns within the bound",
            "Documentation/ABI/testing/sysfs-bus (unbind); a sysfs write that never "
            "returns is a hung task",
            Phase.DISRUPTION, check=_disruption_completes,
        ),
    )
}


def judge(ev: Evidence) -> list[ContractResult]:
    """Every contract's results for the gathered evidence, in report order (Phase)."""
    order = list(After)
    out: list[ContractResult] = []
    for phase in Phase:
        rows = [c for c in CONTRACTS.values() if c.phase is phase]
        for c in rows:
            if c.check is not None:
                out += c.check(c, ev)
        held = sorted((c for c in rows if c.node_check is not None),
                      key=lambda c: order.index(c.after) if c.after else len(order))
        for node in ev.nodes:
            for c in held:
                assert c.node_check is not None
                if (r := c.node_check(c, node)) is not None:
                    out.append(r)
    return out


def breaks_driver(results: Iterable[ContractResult]) -> ContractResult | None:
    """The first failed result of a contract whose failure leaves the driver unusable."""
    for r in results:
        cited = CONTRACTS.get(r.contract)
        if cited is not None and cited.breaks_driver and not r.passed:
            return r
    return None
