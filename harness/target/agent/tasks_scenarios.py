"""Agent tasks that run unplug scenarios and race mode."""

from __future__ import annotations

from typing import Any

from harness.pure.profiles import get_profile
from harness.target.agent.channel import EventChannel
from harness.target.agent.tasks import task


@task
def scenarios(channel: EventChannel, driver: str, scenarios: list[dict[str, Any]]) -> dict:
    """Run scenarios in order; stop at the first one that leaves the kernel unfit."""
    from harness.pure.scenarios.model import Scenario
    from harness.pure.scenarios.record import Status
    from harness.target.device.modules import load_driver
    from harness.target.device.pipeline import MediaGraphs
    from harness.target.scenarios.disrupt import resolve_targets
    from harness.target.scenarios.executor import (
        ensure_ready,
        kmsg_marker,
        run_isolated,
        unfit_for_more,
    )

    profile = get_profile(driver)
    load_driver(profile)
    devices = profile.bound_devices()
    # Read once while everything is bound: a scenario may leave one unbound.
    targets = (resolve_targets(profile, MediaGraphs.read(profile, formats=False))
               if profile.unbind_targets else {})
    done = 0
    for spec in scenarios:
        scenario = Scenario.from_dict(spec)
        channel.emit("scenario-start", scenario=scenario.name)
        record = run_isolated(scenario, profile, devices, targets=targets)
        channel.emit("scenario-result", scenario=scenario.name, record=record.to_dict())
        done += 1
        reason = unfit_for_more(record)
        if not reason and record.status is not Status.DONE:
            # Whatever went wrong, the next scenario needs a working driver.
            try:
                ensure_ready(profile, devices, targets)
            except Exception as e:
                reason = f"driver unusable after {scenario.name}: {e}"
        if reason:
            kmsg_marker(f"stopping after {scenario.name}: {reason}")
            return {"completed": done, "stopped": reason}
    return {"completed": done, "stopped": ""}


@task
def race(channel: EventChannel, driver: str, duration: float, seed: int, workers: int = 3,
         mode: str = "unbind", kinds: list[str] | None = None,
         delays: dict | None = None) -> dict:
    """Race mode (see harness.target.scenarios.race); `delays` is a DelayPlan's dict."""
    from harness.pure.delays import DelayPlan
    from harness.target.scenarios.race import race as run_race

    plan = DelayPlan.from_dict(delays) if delays else None
    return run_race(get_profile(driver), duration, seed, workers, mode,
                    progress=lambda p: channel.emit("race-progress", **p), kinds=kinds,
                    delays=plan)
