"""Every scenario a driver profile admits, generated from data.

The full cross product of holds x stages x disruptions is too large to be
useful, so the matrix takes every stage on the first node of each kind
(where the lifetime bugs live: the code paths differ by stage, not by which
of three identical capture nodes is used), one stage on the others, and the
combined "everything held" cases that v4l-utils' test-media runs.
"""

from __future__ import annotations

from harness.errors import HarnessError
from harness.profiles import DriverProfile
from harness.scenarios.model import (
    STAGES_BY_KIND,
    After,
    Disruption,
    Hold,
    NodeKind,
    Scenario,
    Stage,
)

SINGLE_DISRUPTIONS = (Disruption.UNBIND, Disruption.RMMOD, Disruption.UNBIND_BIND)
# A profile's unbind targets (one VIN of a group, the subdev feeding one) are
# taken away while each capture node is at these stages, so a device goes
# from under its own pipeline and from beside another one.
TARGET_STAGES = (Stage.OPENED, Stage.STREAMING, Stage.BLOCKED_DQBUF)
GROUP_DISRUPTIONS = (Disruption.UNBIND, Disruption.UNBIND_RMMOD, Disruption.UNBIND_BIND)
IDLE_DISRUPTIONS = (Disruption.UNBIND_BIND, Disruption.RMMOD, Disruption.UNBIND_RMMOD,
                    Disruption.CYCLES)
CYCLES = 5


def after_for(holds: tuple[Hold, ...], disruption: Disruption) -> tuple[After, ...]:
    steps = [After.STALE_IOCTLS]
    if any(h.stage.maps_buffers for h in holds):
        steps.append(After.TOUCH_MMAP)
    steps.append(After.POLL)
    if any(h.stage.maps_buffers for h in holds):
        steps.append(After.MUNMAP)
    steps.append(After.CLOSE)
    if disruption in (Disruption.UNBIND_RMMOD, Disruption.RMMOD):
        steps.append(After.RMMOD)
    if disruption in (Disruption.UNBIND_BIND, Disruption.CYCLES):
        steps += [After.REOPEN, After.RESTREAM]
    return tuple(steps)


def _scenario(holds: tuple[Hold, ...], disruption: Disruption, group: str = "",
              cycles: int = 1, target: str = "") -> Scenario:
    tags = sorted({h.stage.value for h in holds} | {h.kind.value for h in holds}
                  | {disruption.value} | ({f"target:{target}"} if target else set()))
    return Scenario(holds, disruption, after_for(holds, disruption), cycles=cycles,
                    group=group, target=target, tags=tuple(tags))


def stages(profile: DriverProfile, kind: NodeKind) -> tuple[Stage, ...]:
    return tuple(s for s in STAGES_BY_KIND[kind]
                 if s is not Stage.BLOCKED_READ or profile.supports_read)


def build_matrix(profile: DriverProfile) -> list[Scenario]:
    out: list[Scenario] = []
    # Without sysfs unbind of the driver's own devices (suppress_bind_attrs)
    # they go with the module only; the unbind targets (receivers, sources)
    # still unbind on their own.
    driver_unbind = profile.sysfs_unbind
    single = SINGLE_DISRUPTIONS if driver_unbind else (Disruption.RMMOD,)
    group = GROUP_DISRUPTIONS if driver_unbind else (Disruption.RMMOD,)
    idle = IDLE_DISRUPTIONS if driver_unbind else (Disruption.RMMOD,)
    primary, *other_captures = profile.capture_entities
    first_subdev, *other_subdevs = profile.subdev_entities

    for stage in stages(profile, NodeKind.VIDEO):
        for d in single:
            out.append(_scenario((Hold(NodeKind.VIDEO, stage, primary),), d))
    for entity in other_captures if driver_unbind else ():
        out.append(_scenario((Hold(NodeKind.VIDEO, Stage.STREAMING, entity),), Disruption.UNBIND))
    for stage in stages(profile, NodeKind.MEDIA):
        for d in single:
            out.append(_scenario((Hold(NodeKind.MEDIA, stage),), d))
    for stage in stages(profile, NodeKind.SUBDEV):
        for d in single:
            out.append(_scenario((Hold(NodeKind.SUBDEV, stage, first_subdev),), d))
    for entity in other_subdevs if driver_unbind else ():
        out.append(_scenario((Hold(NodeKind.SUBDEV, Stage.OPENED, entity),), Disruption.UNBIND))

    # v4l-utils contrib/test/test-media: every node held open (sleep N < node),
    # and the same while the first capture node streams.
    everything = (
        Hold(NodeKind.MEDIA, Stage.OPENED),
        *(Hold(NodeKind.VIDEO, Stage.OPENED, e) for e in profile.capture_entities),
        *(Hold(NodeKind.SUBDEV, Stage.OPENED, e) for e in profile.subdev_entities),
    )
    streaming = (Hold(NodeKind.VIDEO, Stage.STREAMING, primary),
                 *(h for h in everything if h.entity != primary))
    for d in group:
        out.append(_scenario(everything, d, group="all_nodes_open"))
        out.append(_scenario(streaming, d, group="all_nodes_open_streaming"))

    # Nothing held: rebinding, the module's exit (with the device bound, and
    # after unbind), repeated cycles.
    for d in idle:
        out.append(_scenario((), d, group="idle",
                             cycles=CYCLES if d is Disruption.CYCLES else 1))
    if driver_unbind:
        out.append(_scenario(everything, Disruption.CYCLES, group="all_nodes_open",
                             cycles=CYCLES))

    for target in profile.unbind_targets:
        for entity in profile.capture_entities:
            for stage in TARGET_STAGES:
                out.append(_scenario((Hold(NodeKind.VIDEO, stage, entity),), Disruption.UNBIND,
                                     target=target.name))
        out.append(_scenario(streaming, Disruption.UNBIND, group="all_nodes_open_streaming",
                             target=target.name))
        out.append(_scenario((), Disruption.UNBIND_BIND, group="idle", target=target.name))
    names = [s.name for s in out]
    assert len(names) == len(set(names)), "scenario names must be unique"
    return out


def select(matrix: list[Scenario], names: list[str] | None) -> list[Scenario]:
    """The scenarios called `names` (all when None), or a clear error for an unknown one."""
    if not names:
        return matrix
    by_name = {s.name: s for s in matrix}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        close = [s.name for s in matrix if any(part in s.name for part in unknown[0].split("--"))]
        hint = f"; similar: {', '.join(close[:5])}" if close else ""
        raise HarnessError(
            f"unknown scenario {unknown[0]!r}{hint} (list them with 'v4l2-unplug run --list')"
        )
    return [by_name[n] for n in names]
