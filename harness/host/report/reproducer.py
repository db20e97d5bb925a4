"""The one command that runs a finding again: its scenario alone, or its race's seed.

Built from what results.json records (driver, kernel, scenario name, the
race's stats), so a report read on another machine still says how to get
the same report. What a run does not record (--patch files, a board's
--console and --power-cycle) is not guessed at.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable
from typing import Any

from harness.pure.scenarios.model import NodeKind

PROG = "v4l2-unplug"



def _path(kernel: dict[str, Any]) -> list[str]:
    # Documents from before the module tree was recorded name only the image.
    return ["--kernel", "path", "--kernel-image", kernel["image"],
            *(["--modules", kernel["modules"]] if kernel.get("modules") else [])]


# How the kernel of a run is named again on the command line, by its
# flavour; any other flavour is named as itself (--kernel debug, ...).
# A board's "image" is the target it ran on; a built tree's (validate,
# bisect) and a user's image boot as --kernel path.
KERNEL_ARGS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "board": lambda k: ["--target", k["image"]],
    "path": _path,
    "tree": _path,
}

# The race options the agent's stats give back, and the default each has on
# the command line (left out when the race used it).
ALL_KINDS = [k.value for k in NodeKind]
RACE_DEFAULTS = {"workers": 3, "race_mode": "unbind"}
# A race from an agent that did not send its planned duration runs the
# default: it stops at its first report anyway.
DEFAULT_DURATION = 60


def kernel_args(kernel: dict[str, Any]) -> list[str]:
    flavour = kernel.get("flavour") or "debian"
    named = KERNEL_ARGS.get(flavour)
    return named(kernel) if named else ["--kernel", flavour]


def _base(doc: dict[str, Any]) -> list[str]:
    return [PROG, "run", "--driver", doc.get("driver") or "vimc",
            *kernel_args(doc.get("kernel") or {})]


def scenario_command(doc: dict[str, Any], scenario: str) -> str:
    """`run` of one scenario, on the run's driver and kernel."""
    return shlex.join([*_base(doc), "--scenario", scenario])


def race_command(doc: dict[str, Any]) -> str | None:
    """`run --race` with the race's seed, duration, workers, cycle mode and node
    kinds; None when the agent sent no stats (the race did not run)."""
    stats = doc.get("stats") or {}
    if "seed" not in stats:
        return None
    planned = stats.get("planned_duration") or DEFAULT_DURATION
    args = [*_base(doc), "--race", "--seed", str(stats["seed"]),
            "--duration", f"{math.ceil(planned):d}"]
    workers = len(stats.get("workers") or []) or RACE_DEFAULTS["workers"]
    if workers != RACE_DEFAULTS["workers"]:
        args += ["--workers", str(workers)]
    if stats.get("mode", RACE_DEFAULTS["race_mode"]) != RACE_DEFAULTS["race_mode"]:
        args += ["--race-mode", stats["mode"]]
    kinds = stats.get("kinds") or ALL_KINDS
    if sorted(kinds) != sorted(ALL_KINDS):
        for kind in kinds:
            args += ["--race-nodes", kind]
    return shlex.join(args)
