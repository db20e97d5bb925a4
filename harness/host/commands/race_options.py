"""The race's options, defined once: `run --race` and `validate --race` take the same.

A new race option (a disruptor, an amplification switch) is added here and
both commands have it; `race_plan()` reads them back into one value.
"""

from __future__ import annotations

import argparse

from harness.host.commands.inputs import at_least_one, positive_seconds
from harness.host.race_series import RacePlan
from harness.pure.scenarios.model import NodeKind


def add_race_options(p: argparse.ArgumentParser, title: str = "race mode") -> \
        argparse._ArgumentGroup:
    """--race and what shapes a race; returns the group, for a command's own additions."""
    race = p.add_argument_group(title)
    race.add_argument("--race", action="store_true",
                      help="workers open/ioctl/mmap/close every node while a disruptor loops")
    race.add_argument("--duration", type=positive_seconds, default=60.0,
                      help="seconds per race (default 60)")
    race.add_argument("--seed", type=int, default=1,
                      help="seed of every random choice; a series counts up from it")
    race.add_argument("--workers", type=at_least_one, default=3,
                      help="worker processes (default 3)")
    race.add_argument("--race-mode", choices=("unbind", "rmmod"), default="unbind",
                      help="disruptor: unbind/bind or rmmod/modprobe cycles")
    race.add_argument("--race-nodes", action="append", choices=[k.value for k in NodeKind],
                      help="node kinds the workers use (repeatable; default: all)")
    return race


def race_plan(args: argparse.Namespace) -> RacePlan | None:
    """The race the options ask for (None without --race)."""
    if not args.race:
        return None
    return RacePlan(args.duration, args.seed, args.workers, args.race_mode,
                    tuple(args.race_nodes) if args.race_nodes else None)
