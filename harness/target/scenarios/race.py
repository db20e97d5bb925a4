"""Race mode: workers hammer every node while a disruptor unbinds and binds.

Runs on the target. Each worker is a process with its own generator seeded
from (seed, worker), so what it chooses (which node, which calls, in which
order) is the same on every run with the same seed; only the timing against
the disruptor differs, which is the point of a race. A thread follows
/dev/kmsg and ends the race at the first kernel report, noting which
disruption cycle and which worker iterations were under way.
"""

from __future__ import annotations

import errno
import glob
import mmap
import multiprocessing as mp
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness.pure import markers
from harness.pure.delays import MODULE as DELAY_MODULE
from harness.pure.delays import DelayPlan, parse_stats
from harness.pure.kmsg.classify import PREFILTER
from harness.pure.profiles import DriverProfile
from harness.pure.scenarios.contracts import DISRUPTION_BOUND
from harness.target.device.modules import load_driver, modprobe
from harness.target.scenarios import disrupt
from harness.target.scenarios.executor import kmsg_marker
from harness.target.scenarios.kernel_log import KmsgWatch
from harness.target.uapi import media, subdev
from harness.target.uapi import videodev2 as v4l2

DELAY_STATS = "/sys/kernel/debug/unplug-delay/stats"

# The kernel lines that end a race: every report's first line but a data race's.
# KCSAN leaves the kernel as it was, so the race goes on, and the host counts
# the reports in the profile's code from the console (harness.pure.kmsg.scope).
STOPS_RACE = re.compile(rf"^(?!.*BUG: KCSAN: )(?:{PREFILTER.pattern})")

NODE_GLOBS = {"video": "/dev/video*", "media": "/dev/media*", "subdev": "/dev/v4l-subdev*"}

# What a worker may do with an open fd, by node kind.
CALLS: dict[str, list[tuple[str, Callable[[int], Any]]]] = {
    "video": [
        ("QUERYCAP", v4l2.querycap),
        ("G_FMT", v4l2.g_fmt),
        ("ENUM_FMT", lambda fd: v4l2.enum_fmt(fd, v4l2.V4L2_BUF_TYPE_VIDEO_CAPTURE)),
        ("REQBUFS+MMAP", lambda fd: _map_buffers(fd)),
    ],
    "media": [
        ("DEVICE_INFO", media.device_info),
        ("G_TOPOLOGY", media.g_topology),
        ("ENUM_ENTITIES", media.enum_entities),
    ],
    "subdev": [
        ("QUERYCAP", subdev.querycap),
        ("G_FMT", lambda fd: subdev.g_fmt(fd, 0)),
        ("ENUM_MBUS_CODE", lambda fd: subdev.enum_mbus_codes(fd, 0)),
    ],
}


def _map_buffers(fd: int) -> None:
    count = v4l2.reqbufs(fd, 2).count
    maps = []
    try:
        for i in range(count):
            b = v4l2.querybuf(fd, i)
            maps.append(mmap.mmap(fd, b.length, mmap.MAP_SHARED, mmap.PROT_READ, offset=b.m))
        for m in maps:
            _ = m[0]
    finally:
        for m in maps:
            m.close()
        v4l2.reqbufs(fd, 0)


def plan(seed: int, index: int, kinds: list[str]) -> Iterator[tuple[str, list[str], float]]:
    """What worker `index` does, iteration after iteration: the node kind, the
    calls in order, and where in the sorted node list it picks (0 <= pick < 1).
    Drawn from (seed, index) alone, so a seed replays the same choices; which
    node exists at that moment is the race's part."""
    rng = random.Random(f"{seed}:{index}")
    while True:
        kind = rng.choice(kinds)
        calls = rng.sample([name for name, _ in CALLS[kind]], k=rng.randint(1, len(CALLS[kind])))
        yield kind, calls, rng.random()


def worker(index: int, seed: int, kinds: list[str], stop_at: float, stop: Any,
           counter: Any, out: Any) -> None:
    seen: Counter[str] = Counter()
    iterations = 0
    choices = plan(seed, index, kinds)
    while time.monotonic() < stop_at and not stop.is_set():
        kind, names, pick = next(choices)
        table = dict(CALLS[kind])
        calls = [(name, table[name]) for name in names]
        nodes = sorted(glob.glob(NODE_GLOBS[kind]))
        if not nodes:
            seen["no-node"] += 1
            iterations += 1
            counter.value = iterations
            continue
        path = nodes[int(pick * len(nodes))]
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as e:
            seen[f"open:{errno.errorcode.get(e.errno or 0, e.errno)}"] += 1
        else:
            for name, call in calls:
                try:
                    call(fd)
                    seen[f"{name}:ok"] += 1
                except OSError as e:
                    seen[f"{name}:{errno.errorcode.get(e.errno or 0, e.errno)}"] += 1
            try:
                os.close(fd)
            except OSError as e:
                seen[f"close:{errno.errorcode.get(e.errno or 0, e.errno)}"] += 1
        iterations += 1
        counter.value = iterations
    out.put({"worker": index, "iterations": iterations, "results": dict(seen)})


def race(profile: DriverProfile, duration: float, seed: int, workers: int = 3,
         mode: str = "unbind", report_pattern: re.Pattern[str] | None = None,
         progress: Callable[[dict[str, Any]], None] | None = None,
         kinds: list[str] | None = None, delays: DelayPlan | None = None) -> dict[str, Any]:
    """`kinds` limits the workers to some node kinds (default: all), e.g. to look
    past a known bug that one kind hits at once. `delays` loads the delay module
    (vm/amplify) once the driver is up, so its kprobes find the driver's
    modules loaded, and it stays for the whole race."""
    load_driver(profile)
    if delays is not None:
        modprobe(DELAY_MODULE, *delays.module_args())
    devices = profile.bound_devices()
    kinds = kinds or list(NODE_GLOBS)
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    out = ctx.Queue()
    counters = [ctx.Value("q", 0, lock=False) for _ in range(workers)]
    watch = KmsgWatch(report_pattern or STOPS_RACE)
    watch.start()
    kmsg_marker(markers.race_begin(seed, workers, mode))
    start = time.monotonic()
    stop_at = start + duration
    procs = [ctx.Process(target=worker, args=(i, seed, kinds, stop_at, stop, counters[i], out),
                         daemon=True) for i in range(workers)]
    for p in procs:
        p.start()

    rng = random.Random(f"{seed}:disruptor")
    cycles, stuck = 0, None
    steps: Counter[str] = Counter()
    cycle_starts: list[float] = []
    last_progress = start
    while time.monotonic() < stop_at and not watch.fired.is_set():
        cycle_starts.append(time.monotonic())
        cycles += 1
        for op in _cycle(profile, devices, mode):
            step = op()
            steps[f"{step.op}:{step.result}"] += 1
            if step.seconds is None:
                stuck = step.to_dict()
                break
            time.sleep(rng.uniform(0.0, 0.05))
        if stuck:
            break
        if progress and time.monotonic() - last_progress > 5:
            last_progress = time.monotonic()
            progress({"cycles": cycles, "iterations": [c.value for c in counters],
                      "elapsed": round(last_progress - start, 1)})
    stop.set()
    elapsed = time.monotonic() - start
    if watch.first is not None:
        # each worker's iteration when the race was stopped by the report
        watch.first["iterations"] = [c.value for c in counters]
    results = []
    for _ in procs:
        try:
            results.append(out.get(timeout=10))
        except Exception:
            break
    for p in procs:
        p.join(5)
    hung_workers = [i for i, p in enumerate(procs) if p.is_alive()]
    reported = {r["worker"] for r in results}
    for i, p in enumerate(procs):
        if i not in reported:
            # Stuck in the kernel, or killed by an oops in its own syscall.
            how = "stuck" if p.is_alive() else f"died (exit {p.exitcode})"
            results.append({"worker": i, "iterations": counters[i].value, "results": {},
                            "ended": how})
    kmsg_marker(markers.race_end(cycles))
    first = watch.first
    if first is not None:
        # which disruption cycle was under way when the kernel spoke
        first["cycle"] = sum(1 for t in cycle_starts if t <= _kernel_to_mono(first))
    _restore(profile, devices)
    delayed = _delay_stats(delays) if delays is not None else None
    return {
        "seed": seed,
        "mode": mode,
        "kinds": kinds,
        "duration": round(elapsed, 2),
        # what it was asked for: a race a report stopped early replays with it
        "planned_duration": duration,
        "cycles": cycles,
        "cycles_per_second": round(cycles / elapsed, 2) if elapsed else 0,
        "steps": dict(steps),
        "workers": [
            {**r, "per_second": round(r["iterations"] / elapsed, 1) if elapsed else 0}
            for r in sorted(results, key=lambda r: r["worker"])
        ],
        "stuck_disruption": stuck,
        "stuck_workers": hung_workers,
        "first_report": first,
        "stopped_early": first is not None,
        # When each cycle began, in seconds after the race began: the host
        # places every report in its cycle (harness.pure.race.exposure).
        "cycle_starts": [round(t - start, 3) for t in cycle_starts],
        # The delays the race ran under, and how often each point fired.
        "delays": delayed,
    }


def _delay_stats(plan: DelayPlan) -> dict[str, Any]:
    """The plan and what the delay module counted at each point; the module is
    removed afterwards, so the driver's modules can go again."""
    try:
        points = parse_stats(Path(DELAY_STATS).read_text())
    except OSError as e:
        points = []
        error = f"stats unreadable: {e.strerror}"
    else:
        error = ""
    try:
        modprobe("-r", DELAY_MODULE)
    except Exception:
        pass  # the host reboots before anything else runs
    return {**plan.to_dict(), "points": points, **({"error": error} if error else {})}


def _kernel_to_mono(first: dict[str, Any]) -> float:
    # printk timestamps are local_clock(); on these targets it tracks
    # CLOCK_MONOTONIC closely enough to pick the cycle (cycles last >10 ms).
    return first["kernel_time"]


def _cycle(profile: DriverProfile, devices: list[str], mode: str) -> list[Callable[[], Any]]:
    if mode == "rmmod":
        return [lambda: disrupt.delete_module(profile.driver_module, DISRUPTION_BOUND),
                lambda: _timed_modprobe(profile)]
    return [*(lambda d=d: disrupt.unbind(profile, d, DISRUPTION_BOUND) for d in devices),
            *(lambda d=d: disrupt.bind(profile, d, DISRUPTION_BOUND) for d in devices)]


def _timed_modprobe(profile: DriverProfile) -> disrupt.Step:
    start = time.monotonic()
    try:
        for module in profile.modules:
            modprobe(*profile.modprobe_args(module))
        result = "ok"
    except Exception as e:
        result = str(e)[:80]
    return disrupt.Step("modprobe", profile.driver_module, start,
                        round(time.monotonic() - start, 4), result)


def _restore(profile: DriverProfile, devices: list[str]) -> None:
    try:
        if not disrupt.module_loaded(profile.driver_module):
            load_driver(profile)
        for d in devices:
            if d not in profile.bound_devices():
                disrupt.bind(profile, d, DISRUPTION_BOUND)
    except Exception:
        pass  # the host reboots before anything else runs
