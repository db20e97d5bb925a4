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

from harness.device.discovery import write_sysfs
from harness.profiles import DriverProfile

_libc = ctypes.CDLL(None, use_errno=True)
_SYS_DELETE_MODULE = {"x86_64": 176, "aarch64": 106}[os.uname().machine]


@dataclass
class Step:
    """One disruption step as it happened."""

    op: str
    target: str
    started: float
    seconds: float | None  # None: still running at the bound
    result: str  # "ok" or an errno name

    def to_dict(self) -> dict:
        return {"op": self.op, "target": self.target, "seconds": self.seconds,
                "result": self.result}


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


def unbind(profile: DriverProfile, device: str, bound: float) -> Step:
    unbind_file = profile.driver_dir / "unbind"
    return _bounded("unbind", device, lambda: write_sysfs(unbind_file, device), bound)


def bind(profile: DriverProfile, device: str, bound: float) -> Step:
    bind_file = profile.driver_dir / "bind"
    return _bounded("bind", device, lambda: write_sysfs(bind_file, device), bound)


def delete_module(name: str, bound: float) -> Step:
    """delete_module(2) with O_NONBLOCK, as rmmod does: refused with EAGAIN/EBUSY while in use."""

    def call() -> None:
        if _libc.syscall(_SYS_DELETE_MODULE, name.encode(), os.O_NONBLOCK) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    return _bounded("rmmod", name, call, bound)


def module_refcount(name: str) -> int | None:
    try:
        return int(Path(f"/sys/module/{name}/refcnt").read_text())
    except (OSError, ValueError):
        return None


def module_loaded(name: str) -> bool:
    return Path(f"/sys/module/{name}").is_dir()
