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
from typing import Any

from harness.device.graph import MediaGraph
from harness.device.modules import load_driver
from harness.device.stream import stream_capture
from harness.profiles import DriverProfile
from harness.scenarios import disrupt
from harness.scenarios.contracts import (
    BLOCKED_CALL_BOUND,
    DISRUPTION_BOUND,
    RMMOD_REFUSALS,
    STALE_IOCTL_ERRNOS,
    ContractResult,
)
from harness.scenarios.kernel_log import KmsgWatch
from harness.scenarios.model import After, Disruption, Scenario
from harness.scenarios.nodes import HeldNode, errno_name

SCENARIO_DEADLINE = 120.0
# Seconds a scenario may go on once the kernel has printed a report.
AFTER_REPORT_GRACE = 10.0
RESTREAM_FRAMES = 5
# Taint bits that are information only: P (proprietary), O (out-of-tree), E (unsigned).
BENIGN_TAINT = (1 << 0) | (1 << 12) | (1 << 13)


def kmsg_marker(text: str) -> None:
    """A line in the kernel log, so the host can tell which scenario a report belongs to."""
    try:
        with open("/dev/kmsg", "w") as f:
            f.write(f"v4l2-unplug: {text}\n")
    except OSError:
        pass


def taint() -> int:
    return int(Path("/proc/sys/kernel/tainted").read_text())


Targets = dict[str, disrupt.Device]


def ensure_ready(profile: DriverProfile, devices: list[str],
                 targets: Targets | None = None) -> MediaGraph:
    """Module loaded, every known device (and unbind target) bound, media graph readable."""
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
    graph = MediaGraph.read(profile.media_devices()[0], formats=False)
    # A device can be bound and its media device registered while the graph
    # lacks an entity the scenarios hold (a group member that never rejoined).
    present = {e.name for e in graph.topology.entities}
    missing = [e for e in (*profile.capture_entities, *profile.subdev_entities)
               if e not in present]
    if missing:
        raise RuntimeError(f"{graph.path} lacks {', '.join(missing)} after binding every device")
    return graph


def node_set(graph: MediaGraph) -> dict[str, str]:
    """Entity name -> device node, plus the media node: what 'the same nodes' means."""
    nodes = {"(media)": graph.path}
    for e in graph.topology.entities:
        if (node := graph.devnode(e.name)) is not None:
            nodes[e.name] = node
    return nodes


def execute(scenario: Scenario, profile: DriverProfile, devices: list[str],
            targets: Targets | None = None) -> dict[str, Any]:
    results: list[ContractResult] = []
    record: dict[str, Any] = {"name": scenario.name, "contracts": results}
    targets = targets or {}
    graph = ensure_ready(profile, devices, targets)
    baseline = node_set(graph)
    taint_before = taint()
    kmsg_marker(f"scenario {scenario.name} begin")

    held = [HeldNode(h, graph, profile) for h in scenario.holds]
    for node in held:
        node.setup()

    kmsg_marker(f"scenario {scenario.name} disrupt")
    t0 = time.monotonic()
    paths = {n.label: n.path for n in held}
    steps, vanished = _disrupt(scenario, profile, devices, targets, paths)
    record["steps"] = [s.to_dict() for s in steps]
    stuck = [s for s in steps if s.seconds is None]
    results.append(ContractResult(
        "disruption-completes", not stuck,
        "every step returned" if not stuck else f"{stuck[0].op} {stuck[0].target} still running "
        f"after {DISRUPTION_BOUND:.0f} s",
        measured={s.op: s.seconds for s in steps},
    ))
    removed = [s for s in steps if s.op in ("unbind", "rmmod") and s.result == "ok"]
    # Unbinding all of a driver's devices takes every node away. One target
    # (a VIN of a group, a subdev) may leave some held nodes working: those
    # are judged as live nodes, not stale ones.
    if scenario.target:
        record["vanished"] = sorted(vanished)
    lost = {n.label for n in held if removed and (not scenario.target or n.label in vanished)}

    # Calls that were in the kernel when the device went away.
    calls: list[dict[str, Any]] = []
    for node in held:
        if node.call is None:
            continue
        if not node.call.loop and node.label not in lost:
            # Nothing went away (rmmod refused): a blocked call rightly stays
            # blocked, until user space itself ends it.
            calls.append({"node": node.label, **node.call.to_dict(since=t0),
                          "released": node.unblock(BLOCKED_CALL_BOUND)})
            continue
        out = (node.call.stop if node.call.loop else node.call.join)(BLOCKED_CALL_BOUND)
        info = node.call.to_dict(since=t0)
        calls.append({"node": node.label, **info})
        if not node.call.loop:
            latency = info["latency"]
            # A negative latency: the call was not blocked when the unplug came.
            ok = (out and latency is not None
                  and 0 <= latency <= BLOCKED_CALL_BOUND + _slowest(steps))
            if out and latency is not None and latency < 0:
                detail = (f"{info['what']} returned {info['result']} {-latency} s before the "
                          f"unplug: the stage was not held")
            elif out:
                detail = f"{info['what']} returned {info['result']} after {latency} s"
            else:
                detail = f"{info['what']} still blocked {BLOCKED_CALL_BOUND:.0f} s after the unplug"
            results.append(ContractResult(
                "blocked-call-returns", bool(ok), detail,
                subject=node.label, measured={"latency": latency, "result": info["result"]},
            ))
        elif node.call.loop and not out:
            results.append(ContractResult(
                "blocked-call-returns", False,
                f"{info['what']} loop stuck in the kernel after the unplug", subject=node.label,
            ))
    record["calls"] = calls

    after: dict[str, dict[str, Any]] = {n.label: {} for n in held}
    gone = bool(removed)
    for node in held:
        seen = after[node.label]
        if After.STALE_IOCTLS in scenario.after and node.label in lost:
            errs = node.stale_ioctls()
            seen["stale_ioctls"] = errs
            allowed = {errno_name(e) for e in STALE_IOCTL_ERRNOS[node.hold.kind]}
            bad = {k: v for k, v in errs.items() if v not in allowed}
            results.append(ContractResult(
                "stale-ioctl-errno", not bad,
                f"all failed with {'/'.join(sorted(allowed))}" if not bad
                else ", ".join(f"{k} -> {v}" for k, v in bad.items()),
                subject=node.label, measured=errs,
            ))
        if After.TOUCH_MMAP in scenario.after and node.maps:
            how = node.touch_mmap()
            seen["touch_mmap"] = how
            results.append(ContractResult("mmap-survives", how == "ok",
                                          f"reading the mappings: {how}", subject=node.label))
        if After.POLL in scenario.after:
            seen["poll"] = node.poll_now()
        if After.MUNMAP in scenario.after:
            seen["munmap"] = node.munmap()
        if After.CLOSE in scenario.after:
            how = node.close()
            seen["close"] = how
            results.append(ContractResult("close-succeeds", how == "ok", f"close: {how}",
                                          subject=node.label))
    record["after"] = after
    for node in held:  # whatever the scenario said, nothing stays open past here
        node.munmap()
        node.close()

    if scenario.disruption in (Disruption.RMMOD, Disruption.UNBIND_RMMOD):
        rm = [s for s in steps if s.op == "rmmod"][-1]
        refused = rm.result in {errno_name(e) for e in RMMOD_REFUSALS}
        results.append(ContractResult(
            "rmmod-refuses-or-completes", rm.result == "ok" or refused,
            f"rmmod {'while open' if held else 'with nothing open'}: {rm.result}",
            measured={"result": rm.result},
        ))
    if After.RMMOD in scenario.after:
        step = _rmmod_after_close(profile)
        record["steps"].append(step.to_dict())
        gone = gone or step.result == "ok"
        results.append(ContractResult(
            "rmmod-after-close", not disrupt.module_loaded(profile.driver_module),
            f"rmmod once every fd was closed: {step.result}",
            measured={"result": step.result, "seconds": step.seconds},
        ))

    if scenario.disruption in (Disruption.UNBIND_BIND, Disruption.CYCLES):
        results.append(_rebind_restores(profile, devices, baseline, scenario, targets))
    else:
        if gone and not scenario.target:
            results.append(_nothing_left_behind(profile, baseline))
        # Bind (or load) again here, not at the next scenario's start, so a
        # driver this scenario left unusable is this scenario's failure.
        results.append(_rebind_restores(profile, devices, baseline, scenario, targets,
                                        contract="driver-recovers"))

    kmsg_marker(f"scenario {scenario.name} end")
    record["taint_before"], record["taint_after"] = taint_before, taint()
    return record


def _disrupt(scenario: Scenario, profile: DriverProfile, devices: list[str], targets: Targets,
             paths: dict[str, str]) -> tuple[list, set[str]]:
    """The steps, and the labels of held nodes whose device node was gone right
    after the (first) unbind."""
    bound = DISRUPTION_BOUND
    module = profile.driver_module
    d = scenario.disruption
    steps = []
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


def _slowest(steps: list) -> float:
    return max((s.seconds or 0.0) for s in steps) if steps else 0.0


def _rebind_restores(profile: DriverProfile, devices: list[str], baseline: dict[str, str],
                     scenario: Scenario, targets: Targets | None = None,
                     contract: str = "rebind-restores") -> ContractResult:
    try:
        graph = ensure_ready(profile, devices, targets)
    except Exception as e:  # the driver did not come back: that is the finding
        return ContractResult(contract, False, f"driver did not come back: {e}")
    now = node_set(graph)
    if set(now) != set(baseline):
        missing = sorted(set(baseline) - set(now))
        extra = sorted(set(now) - set(baseline))
        return ContractResult(contract, False,
                              f"node set changed: missing {missing}, new {extra}")
    for entity in now:
        fd = os.open(now[entity], os.O_RDWR | os.O_CLOEXEC)
        os.close(fd)
    if After.RESTREAM in scenario.after:
        primary = profile.capture_entities[0]
        streamed = stream_capture(profile, primary, "mmap", RESTREAM_FRAMES)
        if streamed.frames < RESTREAM_FRAMES or streamed.errors:
            return ContractResult(
                contract, False,
                f"{primary} streamed {streamed.frames}/{RESTREAM_FRAMES} frames after rebind"
                f"{': ' + streamed.errors[0] if streamed.errors else ''}")
    again = ", streamed again" if After.RESTREAM in scenario.after else ""
    return ContractResult(contract, True, f"{len(now)} nodes back; reopened all{again}",
                          measured={"nodes": len(now)})


def _nothing_left_behind(profile: DriverProfile, baseline: dict[str, str]) -> ContractResult:
    module = profile.driver_module
    left = [p for p in baseline.values() if os.path.exists(p)]
    mdevs = profile.media_devices()
    refs = disrupt.module_refcount(module)
    problems = []
    if left:
        problems.append(f"nodes still present: {left}")
    if mdevs:
        problems.append(f"media devices still bound: {mdevs}")
    if refs not in (None, 0):
        problems.append(f"module {module} refcnt {refs}")
    return ContractResult("nothing-left-behind", not problems,
                          "; ".join(problems) or "no node, media device or module reference left",
                          measured={"refcnt": refs})


def run_isolated(scenario: Scenario, profile: DriverProfile, devices: list[str],
                 deadline: float = SCENARIO_DEADLINE,
                 targets: Targets | None = None) -> dict[str, Any]:
    """execute() in a child; the parent survives whatever happens to it."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        try:
            rec = execute(scenario, profile, devices, targets)
            rec["contracts"] = [c.to_dict() for c in rec["contracts"]]
            rec["status"] = "done"
        except Exception as e:
            rec = {"name": scenario.name, "status": "error", "contracts": [],
                   "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        with os.fdopen(wfd, "w") as w:
            w.write(json.dumps(rec, default=str))
        os._exit(0)
    os.close(wfd)
    chunks, end = [], time.monotonic() + deadline
    # Once the kernel has reported, a scenario still running is most likely
    # stuck behind the task that oopsed: it gets a short grace, not the whole
    # deadline, so a crashing driver costs seconds per scenario, not minutes.
    watch = _kernel_watch()
    with os.fdopen(rfd) as r:
        while time.monotonic() < end:
            if select.select([r], [], [], 1.0)[0]:
                data = r.read()
                chunks.append(data)
                break
            if watch is not None and watch.fired.is_set():
                end = min(end, time.monotonic() + AFTER_REPORT_GRACE)
    if watch is not None:
        watch.stop()
    text = "".join(chunks)
    status = _reap(pid)
    if not text:
        return {"name": scenario.name, "status": "hang" if status is None else "crashed",
                "contracts": [], "error": f"scenario process {status or 'stuck in the kernel'}"}
    rec = json.loads(text)
    if status is None:
        rec["stuck_process"] = True  # a thread still in the kernel keeps it from exiting
    return rec


def _kernel_watch() -> KmsgWatch | None:
    from harness.kmsg.classify import PREFILTER

    try:
        watch = KmsgWatch(PREFILTER)
    except OSError:  # no /dev/kmsg to read (a board without it): the full deadline
        return None
    watch.start()
    return watch


def _reap(pid: int, timeout: float = 5.0) -> str | None:
    try:
        return _wait_or_kill(pid, timeout)
    except ChildProcessError:
        # Seen when the scenario's own task oopsed: the kernel tore the
        # child down under us. Gone all the same, and the kernel is unfit.
        return "lost after a kernel oops (waitpid: no such child)"


def _wait_or_kill(pid: int, timeout: float) -> str | None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if os.WIFSIGNALED(status):
                return f"killed by signal {os.WTERMSIG(status)}"
            return f"exit {os.WEXITSTATUS(status)}"
        time.sleep(0.05)
    os.kill(pid, 9)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return "killed after the deadline"
        time.sleep(0.05)
    return None


def unfit_for_more(record: dict[str, Any]) -> str:
    """Why the kernel should be rebooted before the next scenario ('' if it need not)."""
    new = (record.get("taint_after", 0) & ~record.get("taint_before", 0)) & ~BENIGN_TAINT
    if new:
        return f"kernel taint changed (0x{new:x})"
    if record.get("status") in ("hang", "crashed"):
        return f"scenario {record['status']}"
    if record.get("stuck_process"):
        return "a task is stuck in the kernel"
    broken = [c for c in record.get("contracts", [])
              if c.get("contract") in ("driver-recovers", "rebind-restores")
              and not c.get("passed")]
    if broken:
        return f"driver unusable: {broken[0].get('detail', '')}"
    return ""

