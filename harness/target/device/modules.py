"""Loading and removing a driver's modules on the target, with deadlines."""

from __future__ import annotations

import subprocess
import time

from harness.pure.errors import HarnessError
from harness.pure.profiles import DriverProfile

MODPROBE_TIMEOUT = 60.0


def modprobe(*args: str, timeout: float = MODPROBE_TIMEOUT) -> None:
    try:
        proc = subprocess.run(
            ["modprobe", *args], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise HarnessError(
            f"modprobe {' '.join(args)} did not return within {timeout:.0f} s"
        ) from None
    if proc.returncode != 0:
        raise HarnessError(f"modprobe {' '.join(args)} failed: {proc.stderr.strip()}")


def load_driver(profile: DriverProfile, timeout: float = 30.0) -> None:
    """Load the profile's modules and wait until its media device(s) appear."""
    for module in profile.modules:
        modprobe(*profile.modprobe_args(module))
    deadline = time.monotonic() + timeout
    while not profile.media_devices():
        if time.monotonic() > deadline:
            raise HarnessError(
                f"{profile.name} loaded but no media device bound to driver "
                f"{profile.driver!r} appeared within {timeout:.0f} s"
            )
        time.sleep(0.05)
