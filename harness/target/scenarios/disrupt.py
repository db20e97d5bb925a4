"""The disruptions themselves: unbind, bind, module removal, with timings.

Runs on the target. Every operation runs in a thread with a bound, because a
sysfs unbind that never returns is exactly the kind of bug we look for, and
the scenario must still report it instead of hanging with it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.pure.arch import syscall_number
from harness.pure.profiles import DriverProfile
from harness.pure.scenarios.evidence import StepRecord
from harness.target.device.discovery import write_sysfs
from harness.target.device.graph import MediaGraph
from harness.target.device.pipeline import MediaGraphs

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass
class Step:
    """One disruption step as it happened."""

    op: str
    target: str
    started: float
    seconds: float | None  # None: still running at the bound
    result: str  # "ok" or an errno name

    def record(self) -> StepRecord:
        return StepRecord(self.op, self.target, self.seconds, self.result,
                          round(self.started, 6))

    def to_dict(self) -> dict[str, Any]:
        return self.record().to_dict()


def _bounded(op: str, target: str, fn, bound: float) -> Step:
    out: dict[str, str] = {}

    def run() -> None:
        try:
            fn()
            out["result"] = "ok"
        except OSError as e:
            out["result"] = errno.errorcode.get(e.errno or 0, str(e.errno))

    start = time.monotonic()
    t = threading.Thread(target=run, name=f"{op} {target}", daemon=True)
    t.start()
    t.join(bound)
    seconds = None if t.is_alive() else round(time.monotonic() - start, 4)
    return Step(op, target, start, seconds, out.get("result", "still running"))


@dataclass(frozen=True)
class Device:
    """A device as its driver's sysfs directory names it: what unbind and bind write."""

    driver_dir: Path
    name: str

    @property
    def bound(self) -> bool:
        return (self.driver_dir / self.name).exists()


def device_of_entity(graph: MediaGraph | MediaGraphs, entity: str) -> Device:
    """The bound device that provides `entity` (found through its device node)."""
    node = graph.devnode(entity)
    if node is None:
        raise OSError(errno.ENOENT, f"entity {entity!r} has no device node")
    rdev = os.stat(node).st_rdev
    sysdev = Path(f"/sys/dev/char/{os.major(rdev)}:{os.minor(rdev)}/device").resolve()
    driver = (sysdev / "driver").resolve()
    if not driver.is_dir():
        raise OSError(errno.ENODEV, f"{sysdev.name} (providing {entity!r}) has no driver")
    return Device(driver, sysdev.name)


def unbind_device(device: Device, bound: float) -> Step:
    unbind_file = device.driver_dir / "unbind"
    return _bounded("unbind", device.name, lambda: write_sysfs(unbind_file, device.name), bound)


def bind_device(device: Device, bound: float) -> Step:
    bind_file = device.driver_dir / "bind"
    return _bounded("bind", device.name, lambda: write_sysfs(bind_file, device.name), bound)


def unbind(profile: DriverProfile, device: str, bound: float) -> Step:
    return unbind_device(Device(profile.driver_dir, device), bound)


def bind(profile: DriverProfile, device: str, bound: float) -> Step:
    return bind_device(Device(profile.driver_dir, device), bound)


def resolve_targets(profile: DriverProfile,
                    graph: MediaGraph | MediaGraphs) -> dict[str, Device]:
    """The profile's unbind targets as devices, read while everything is bound."""
    return {t.name: device_of_entity(graph, t.entity) for t in profile.unbind_targets}


def kernel_module_name(name: str) -> str:
    """The name the kernel knows a module by: modprobe accepts rcar-vin, the
    kernel (delete_module, /sys/module) only rcar_vin."""
    return name.replace("-", "_")


def delete_module(name: str, bound: float) -> Step:
    """delete_module(2) with O_NONBLOCK, as rmmod does: refused with EAGAIN/EBUSY while in use."""

    number = syscall_number(os.uname().machine, "delete_module")

    def call() -> None:
        if _libc.syscall(number, kernel_module_name(name).encode(),
                         os.O_NONBLOCK) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    return _bounded("rmmod", name, call, bound)


def module_refcount(name: str) -> int | None:
    try:
        return int(Path(f"/sys/module/{kernel_module_name(name)}/refcnt").read_text())
    except (OSError, ValueError):
        return None


def module_loaded(name: str) -> bool:
    return Path(f"/sys/module/{kernel_module_name(name)}").is_dir()
