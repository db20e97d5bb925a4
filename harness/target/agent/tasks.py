"""Tasks the agent can run, by name. Each returns JSON-able data."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from harness.pure.profiles import DEFAULT_DRIVER
from harness.target.agent.channel import EventChannel

Task = Callable[..., Any]
TASKS: dict[str, Task] = {}


def task(fn: Task) -> Task:
    TASKS[fn.__name__.replace("_", "-")] = fn
    return fn


@task
def uname(channel: EventChannel) -> dict[str, str]:
    u = os.uname()
    return {"release": u.release, "machine": u.machine, "version": u.version}


@task
def topology(channel: EventChannel, driver: str = DEFAULT_DRIVER) -> dict[str, Any]:
    """Load the driver and read its media graph through the harness's own ioctls."""
    from harness.pure.profiles import get_profile
    from harness.target.device.graph import MediaGraph
    from harness.target.device.modules import load_driver

    profile = get_profile(driver)
    load_driver(profile)
    graphs = [MediaGraph.read(path).to_dict() for path in profile.media_devices()]
    return {"driver": driver, "graphs": graphs}


@task
def command(channel: EventChannel, argv: list[str], timeout: float = 60.0) -> dict[str, Any]:
    """Run a program on the target (diagnostics, and peers like media-ctl)."""
    import subprocess

    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return {"argv": argv, "status": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
import harness.target.agent.tasks_device  # noqa: E402,F401  (registers its tasks)
import harness.target.agent.tasks_scenarios  # noqa: E402,F401  (registers its tasks)
