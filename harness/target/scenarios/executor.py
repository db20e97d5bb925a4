"""Perform one scenario on the target and judge its contracts.

Each scenario runs in a child process: a stuck blocked call, a SIGBUS from a
stale mapping or a crash of the harness's own code then ends that scenario
only, and the agent reports it and goes on (or stops, when the kernel is no
longer fit for the next one).
"""

from __future__ import annotations

import json
import os
import select
import time
import traceback
from pathlib import Path

from harness.pure import markers
from harness.pure.profiles import DriverProfile
from harness.pure.scenarios.contracts import (
    BLOCKED_CALL_BOUND,
    DISRUPTION_BOUND,
    breaks_driver,
    judge,
)
from harness.pure.scenarios.evidence import (
    CallEvidence,
    Evidence,
    LeftBehind,
    NodeEvidence,
    Recovery,
)
from harness.pure.scenarios.model import After, Disruption, Scenario
from harness.pure.scenarios.record import ScenarioRecord, Status
from harness.target.device.modules import load_driver
from harness.target.device.pipeline import MediaGraphs
from harness.target.device.stream import stream_capture
from harness.target.scenarios import disrupt
from harness.target.scenarios.kernel_log import KmsgWatch
from harness.target.scenarios.nodes import HeldNode

SCENARIO_DEADLINE = 120.0
# Once the kernel has printed a report, a scenario may go on while the kernel
# keeps printing (the report itself, reports that follow it, a driver binding
# again), and is stopped once the kernel has been quiet this many seconds...
AFTER_REPORT_QUIET = 2.0
# ... or this many seconds after the report at the latest.
AFTER_REPORT_GRACE = 10.0
# How long a stopped scenario's process may take to die (its files are
# released then, which is when a stale fd's release oopses).
REAP_TIMEOUT = 3.0
RESTREAM_FRAMES = 5
# Taint bits that are information only: P (proprietary), O (out-of-tree), E (unsigned).
BENIGN_TAINT = (1 << 0) | (1 << 12) | (1 << 13)


def kmsg_marker(text: str) -> None:
    """A line in the kernel log, so the host can tell which scenario a report belongs to."""
    try:
        with open("/dev/kmsg", "w") as f:
            f.write(markers.line(text))
    except OSError:
        pass


def taint() -> int:
    return int(Path("/proc/sys/kernel/tainted").read_text())


Targets = dict[str, disrupt.Device]


def ensure_ready(profile: DriverProfile, devices: list[str],
                 targets: Targets | None = None) -> MediaGraphs:
    """Module loaded, every known device (and unbind target) bound, media graphs readable."""
    if not disrupt.module_loaded(profile.driver_module):
        load_driver(profile)
    for device in devices:
        if device not in profile.bound_devices():
            step = disrupt.bind(profile, device, DISRUPTION_BOUND)
            if step.result != "ok":
                raise RuntimeError(f"cannot bind {device} again: {step.result}")
    for target in (targets or {}).values():
        if not target.bound:
            step = disrupt.bind_device(target, DISRUPTION_BOUND)
            if step.result != "ok":
                raise RuntimeError(f"cannot bind {target.name} again: {step.result}")
    load_driver(profile)  # waits for the media device
    graphs = MediaGraphs.read(profile, formats=False)
    # A device can be bound and its media device registered while the graph
    # lacks an entity the scenarios hold (a group member that never rejoined).
    present = graphs.entity_names()
    missing = [e for e in profile.held_entities if e not in present]
    if missing:
        raise RuntimeError(f"{', '.join(graphs.paths)} lacks {', '.join(missing)} after "
                           f"binding every device")
    return graphs


def execute(scenario: Scenario, profile: DriverProfile, devices: list[str],
            targets: Targets | None = None) -> ScenarioRecord:
    """Set up the holds, disrupt, gather what happened, and judge it (contracts.judge)."""
    targets = targets or {}
    graphs = ensure_ready(profile, devices, targets)
    baseline = graphs.node_set()
    taint_before = taint()
    kmsg_marker(markers.scenario(scenario.name, "begin"))
    held = [HeldNode(h, graphs, profile) for h in scenario.holds]
    for node in held:
        node.setup()

    kmsg_marker(markers.scenario(scenario.name, "disrupt"))
    t0 = time.monotonic()
    steps, vanished = _disrupt(scenario, profile, devices, targets,
                               {n.label: n.path for n in held})
    ev = Evidence(scenario, [s.record() for s in steps])
    # Unbinding all of a driver's devices takes every node away. One target
    # (a VIN of a group, a subdev) may leave some held nodes working: those
    # are judged as live nodes, not stale ones.
    lost = {n.label for n in held
            if ev.removed and (not scenario.target or n.label in vanished)}
    ev.calls = [_call_returned(node, node.label in lost, t0) for node in held
                if node.call is not None]
    ev.nodes = [_after_actions(scenario, node, node.label in lost) for node in held]
    for node in held:  # whatever the scenario said, nothing stays open past here
        node.munmap()
        node.close()
    if After.RMMOD in scenario.after:
        ev.rmmod_after_close = _rmmod_after_close(profile).record()
        ev.module_loaded = disrupt.module_loaded(profile.driver_module)
    ev.left_behind = _left_behind(profile, baseline)
    # Bind (or load) again here, not at the next scenario's start, so a
    # driver this scenario left unusable is this scenario's failure.
    ev.recovery = _recover(profile, devices, baseline, scenario, targets)
    results = judge(ev)

    kmsg_marker(markers.scenario(scenario.name, "end"))
    return ScenarioRecord(
        name=scenario.name, status=Status.DONE, contracts=results,
        steps=ev.steps + ([ev.rmmod_after_close] if ev.rmmod_after_close else []),
        vanished=sorted(vanished) if scenario.target else None,
        calls=[c.record for c in ev.calls],
        after={n.label: n.after_dict() for n in ev.nodes},
        taint_before=taint_before, taint_after=taint(),
    )


def _call_returned(node: HeldNode, lost: bool, t0: float) -> CallEvidence:
    """Wait (within the bound) for the call `node` had in the kernel at the unplug."""
    call = node.call
    assert call is not None
    if not call.loop and not lost:
        # Nothing went away (rmmod refused): a blocked call rightly stays
        # blocked, until user space itself ends it.
        record = call.record(node.label, since=t0)
        record.released = node.unblock(BLOCKED_CALL_BOUND)
        return CallEvidence(record, lost=False, ended=False)
    ended = (call.stop if call.loop else call.join)(BLOCKED_CALL_BOUND)
    return CallEvidence(call.record(node.label, since=t0), lost=lost, ended=ended)


def _after_actions(scenario: Scenario, node: HeldNode, lost: bool) -> NodeEvidence:
    """What user space does with a held fd after the disruption, as the scenario says."""
    seen = NodeEvidence(node.label, node.hold.kind)
    if After.STALE_IOCTLS in scenario.after and lost:
        seen.stale_ioctls = node.stale_ioctls()
    if After.TOUCH_MMAP in scenario.after and node.maps:
        seen.touch_mmap = node.touch_mmap()
    if After.POLL in scenario.after:
        seen.poll = node.poll_now()
    if After.MUNMAP in scenario.after:
        seen.munmap = node.munmap()
    if After.CLOSE in scenario.after:
        seen.close = node.close()
    return seen


def _disrupt(scenario: Scenario, profile: DriverProfile, devices: list[str], targets: Targets,
             paths: dict[str, str]) -> tuple[list[disrupt.Step], set[str]]:
    """The steps, and the labels of held nodes whose device node was gone right
    after the (first) unbind."""
    bound = DISRUPTION_BOUND
    module = profile.driver_module
    d = scenario.disruption
    steps: list[disrupt.Step] = []
    if d is Disruption.RMMOD:
        return [disrupt.delete_module(module, bound)], set()
    if scenario.target:
        if scenario.target not in targets:
            raise RuntimeError(f"unbind target {scenario.target} was not resolved on this target")
        acting = [targets[scenario.target]]
    else:
        acting = [disrupt.Device(profile.driver_dir, dev) for dev in devices]
    vanished: set[str] | None = None
    for _ in range(scenario.cycles if d is Disruption.CYCLES else 1):
        steps += [disrupt.unbind_device(dev, bound) for dev in acting]
        if vanished is None:
            vanished = {label for label, path in paths.items()
                        if path is not None and not os.path.exists(path)}
        if d in (Disruption.UNBIND_BIND, Disruption.CYCLES):
            steps += [disrupt.bind_device(dev, bound) for dev in acting]
    if d is Disruption.UNBIND_RMMOD:
        steps.append(disrupt.delete_module(module, bound))
    return steps, vanished or set()


def _rmmod_after_close(profile: DriverProfile) -> disrupt.Step:
    if not disrupt.module_loaded(profile.driver_module):
        return disrupt.Step("rmmod", profile.driver_module, time.monotonic(), 0.0,
                            "already removed")
    return disrupt.delete_module(profile.driver_module, DISRUPTION_BOUND)


def _recover(profile: DriverProfile, devices: list[str], baseline: dict[str, str],
             scenario: Scenario, targets: Targets | None = None) -> Recovery:
    """Bind and load the driver again; reopen every node, and stream when the
    scenario says so."""
    try:
        graphs = ensure_ready(profile, devices, targets)
    except Exception as e:  # the driver did not come back: that is the finding
        return Recovery(baseline, error=str(e))
    now = graphs.node_set()
    recovery = Recovery(baseline, now)
    if set(now) != set(baseline):
        return recovery
    for entity in now:
        fd = os.open(now[entity], os.O_RDWR | os.O_CLOEXEC)
        os.close(fd)
    if After.RESTREAM in scenario.after:
        primary = profile.capture_entities[0]
        streamed = stream_capture(profile, primary, "mmap", RESTREAM_FRAMES)
        recovery.restream = (primary, streamed.frames, RESTREAM_FRAMES,
                             streamed.errors[0] if streamed.errors else "")
    return recovery


def _left_behind(profile: DriverProfile, baseline: dict[str, str]) -> LeftBehind:
    return LeftBehind(
        module=profile.driver_module,
        nodes=[p for p in baseline.values() if os.path.exists(p)],
        media_devices=profile.media_devices(),
        refcnt=disrupt.module_refcount(profile.driver_module),
    )


def run_isolated(scenario: Scenario, profile: DriverProfile, devices: list[str],
                 deadline: float = SCENARIO_DEADLINE,
                 targets: Targets | None = None) -> ScenarioRecord:
    """execute() in a child; the parent survives whatever happens to it."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        try:
            rec = execute(scenario, profile, devices, targets)
        except Exception as e:
            rec = ScenarioRecord(scenario.name, Status.ERROR,
                                 error=f"{type(e).__name__}: {e}",
                                 traceback=traceback.format_exc())
        with os.fdopen(wfd, "w") as w:
            w.write(json.dumps(rec.to_dict(), default=str))
        os._exit(0)
    os.close(wfd)
    chunks, end = [], time.monotonic() + deadline
    # Once the kernel has reported, a scenario still running is most likely
    # stuck behind the task that oopsed: it goes on only while the kernel
    # still prints, so a crashing driver costs seconds per scenario, not minutes.
    watch = _kernel_watch()
    wake: list[int] = [watch.wake_fd] if watch is not None else []
    reported = closed = False
    with os.fdopen(rfd) as r:
        while time.monotonic() < end:
            # After a report this process polls instead of sleeping: an oops
            # can leave the CPU it sleeps on without timer interrupts (seen on
            # arm64, with a WARNING in ct_kernel_exit), and a sleep there
            # lasts until something else interrupts that CPU.
            ready = select.select([rfd, *wake], [], [], 0.0 if reported else 0.25)[0]
            if rfd in ready:
                chunks.append(r.read())
                closed = True  # the child wrote its record, or died
                break
            if watch is None or not watch.fired.is_set():
                continue
            watch.drain()
            if not reported:
                reported = True
                end = min(end, time.monotonic() + AFTER_REPORT_GRACE)
            if watch.quiet_for() >= AFTER_REPORT_QUIET:
                break
            os.sched_yield()
    if watch is not None:
        watch.stop()
    text = "".join(chunks)
    # A process that never closed its pipe is stuck: no point waiting for it to exit.
    status = _reap(pid, REAP_TIMEOUT if closed else 0.0, poll=reported)
    if not text:
        return ScenarioRecord(scenario.name, Status.HANG if status is None else Status.CRASHED,
                              error=f"scenario process {status or 'stuck in the kernel'}")
    rec = ScenarioRecord.from_dict(json.loads(text))
    if status is None:
        rec.stuck_process = True  # a thread still in the kernel keeps it from exiting
    return rec


def _kernel_watch() -> KmsgWatch | None:
    from harness.pure.kmsg.classify import PREFILTER

    try:
        watch = KmsgWatch(PREFILTER, keep_following=True)
    except OSError:  # no /dev/kmsg to read (a board without it): the full deadline
        return None
    watch.start()
    return watch


def _reap(pid: int, patience: float, poll: bool = False) -> str | None:
    """Wait `patience` seconds for the child to exit, then kill it; `poll`:
    without sleeping (after a report, see run_isolated)."""
    try:
        return _wait_or_kill(pid, patience, poll)
    except ChildProcessError:
        # Seen when the scenario's own task oopsed: the kernel tore the
        # child down under us. Gone all the same, and the kernel is unfit.
        return "lost after a kernel oops (waitpid: no such child)"


def _wait_or_kill(pid: int, patience: float, poll: bool) -> str | None:
    pause = os.sched_yield if poll else (lambda: time.sleep(0.05))
    end = time.monotonic() + patience
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if os.WIFSIGNALED(status):
                return f"killed by signal {os.WTERMSIG(status)}"
            return f"exit {os.WEXITSTATUS(status)}"
        if time.monotonic() >= end:
            break
        pause()
    os.kill(pid, 9)
    end = time.monotonic() + REAP_TIMEOUT
    while time.monotonic() < end:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return "killed after the deadline"
        pause()
    return None


def unfit_for_more(record: ScenarioRecord) -> str:
    """Why the kernel should be rebooted before the next scenario ('' if it need not)."""
    new = ((record.taint_after or 0) & ~(record.taint_before or 0)) & ~BENIGN_TAINT
    if new:
        return f"kernel taint changed (0x{new:x})"
    if record.status in (Status.HANG, Status.CRASHED):
        return f"scenario {record.status.value}"
    if record.stuck_process:
        return "a task is stuck in the kernel"
    broken = breaks_driver(record.contracts)
    if broken is not None:
        return f"driver unusable: {broken.detail}"
    return ""

