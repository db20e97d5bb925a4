"""Every scenario a driver profile admits, generated from data.

The full cross product of holds x stages x disruptions is too large to be
useful, so the matrix takes every stage on the first node of each kind
(where the lifetime bugs live: the code paths differ by stage, not by which
of three identical capture nodes is used), one stage on the others, and the
combined "everything held" cases that v4l-utils' test-media runs. Which
stages and disruptions apply, and which nodes there are (capture, m2m,
subdev, one or several media devices), is the profile's data.
"""

from __future__ import annotations

from dataclasses import replace

from harness.pure.errors import HarnessError
from harness.pure.profiles import DriverProfile
from harness.pure.scenarios.model import (
    STAGES_BY_KIND,
    STAGES_BY_QUEUE,
    After,
    Disruption,
    Hold,
    NodeKind,
    Queue,
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


def after_for(holds: tuple[Hold, ...], disruption: Disruption,
              can_stream: bool = True) -> tuple[After, ...]:
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
        steps.append(After.REOPEN)
        # Streaming again needs a capture node to stream from.
        steps += [After.RESTREAM] if can_stream else []
    return tuple(steps)


def stages(profile: DriverProfile, kind: NodeKind,
           among: tuple[Stage, ...] | None = None) -> tuple[Stage, ...]:
    """The stages of `kind` the profile supports (and `among` allows), in model order."""
    return tuple(s for s in STAGES_BY_KIND[kind]
                 if s in profile.stages and (among is None or s in among))


def queue_groups(profile: DriverProfile) -> list[tuple[tuple[Hold, ...], tuple[Stage, ...],
                                                       Stage]]:
    """The profile's queue nodes by queue, in the order it names them: each group's
    holds, the stages its first node goes through, and the stage of the others."""
    by_queue: dict[Queue, list[str]] = {}
    for node in profile.queue_nodes:
        by_queue.setdefault(node.queue, []).append(node.name)
    return [(tuple(Hold(NodeKind.VIDEO, Stage.OPENED, n) for n in names),
             tuple(s for s in STAGES_BY_QUEUE[queue] if s in profile.stages),
             Stage.STREAMING if queue.streams else Stage.OPENED)
            for queue, names in by_queue.items()]


def supported(profile: DriverProfile, wanted: tuple[Disruption, ...],
              instead: tuple[Disruption, ...] = ()) -> tuple[Disruption, ...]:
    """The disruptions of `wanted` the driver's devices support; those of
    `instead` when it supports none of them."""
    got = tuple(d for d in wanted if d in profile.disruptions)
    return got or tuple(d for d in instead if d in profile.disruptions)


def build_matrix(profile: DriverProfile) -> list[Scenario]:
    out: list[Scenario] = []
    can_stream = bool(profile.capture_entities)

    def add(holds: tuple[Hold, ...], d: Disruption, group: str = "", cycles: int = 1,
            target: str = "") -> None:
        tags = sorted({h.stage.value for h in holds} | {h.kind.value for h in holds}
                      | {d.value} | ({f"target:{target}"} if target else set()))
        out.append(Scenario(holds, d, after_for(holds, d, can_stream), cycles=cycles,
                            group=group, target=target, tags=tuple(tags)))

    single = supported(profile, SINGLE_DISRUPTIONS)
    # Without sysfs unbind of the driver's own devices (suppress_bind_attrs)
    # everything goes with the module; the unbind targets (receivers,
    # sources) still unbind on their own.
    group = supported(profile, GROUP_DISRUPTIONS, instead=(Disruption.RMMOD,))
    idle = supported(profile, IDLE_DISRUPTIONS)
    one = supported(profile, (Disruption.UNBIND,))
    # Every stage on the first node of each kind, one stage on the others.
    media = tuple(Hold(NodeKind.MEDIA, Stage.OPENED, e) for e in profile.media_entities or ("",))
    nodes: list[tuple[tuple[Hold, ...], tuple[Stage, ...], Stage]] = [
        (tuple(Hold(NodeKind.VIDEO, Stage.OPENED, e) for e in profile.capture_entities),
         stages(profile, NodeKind.VIDEO), Stage.STREAMING),
        *queue_groups(profile),
        # Each memory-to-memory node is a kind of its own (an encoder, a decoder).
        *(((Hold(NodeKind.VIDEO, Stage.OPENED, n.name),),
           tuple(s for s in n.stages if s in profile.stages), Stage.OPENED)
          for n in profile.m2m_nodes),
        (media, stages(profile, NodeKind.MEDIA), Stage.OPENED),
        (tuple(Hold(NodeKind.SUBDEV, Stage.OPENED, e) for e in profile.subdev_entities),
         stages(profile, NodeKind.SUBDEV), Stage.OPENED),
    ]
    for opened, kind_stages, other_stage in nodes:
        for i, h in enumerate(opened):
            if i == 0:
                for stage in kind_stages:
                    for d in single:
                        add((replace(h, stage=stage),), d)
            else:
                for d in one:
                    add((replace(h, stage=other_stage),), d)

    # v4l-utils contrib/test/test-media: every node held open (sleep N < node),
    # and the same while the first capture node streams.
    everything = tuple(h for opened, _, _ in nodes for h in opened)
    everything = (*media, *(h for h in everything if h.kind is not NodeKind.MEDIA))
    streaming: tuple[Hold, ...] = ()
    if can_stream:
        primary = profile.capture_entities[0]
        streaming = (Hold(NodeKind.VIDEO, Stage.STREAMING, primary),
                     *(h for h in everything if h.entity != primary))
    for d in group:
        add(everything, d, group="all_nodes_open")
        if streaming:
            add(streaming, d, group="all_nodes_open_streaming")

    # Nothing held: rebinding, the module's exit (with the device bound, and
    # after unbind), repeated cycles.
    for d in idle:
        add((), d, group="idle", cycles=CYCLES if d is Disruption.CYCLES else 1)
    for d in supported(profile, (Disruption.CYCLES,)):
        add(everything, d, group="all_nodes_open", cycles=CYCLES)

    for target in profile.unbind_targets:
        for entity in profile.capture_entities:
            for stage in TARGET_STAGES:
                add((Hold(NodeKind.VIDEO, stage, entity),), Disruption.UNBIND,
                    target=target.name)
        if streaming:
            add(streaming, Disruption.UNBIND, group="all_nodes_open_streaming",
                target=target.name)
        add((), Disruption.UNBIND_BIND, group="idle", target=target.name)
    names = [s.name for s in out]
    assert len(names) == len(set(names)), "scenario names must be unique"
    return out


def select(matrix: list[Scenario], names: list[str] | None) -> list[Scenario]:
    """The scenarios called `names` (all when None), or a clear error for an
    unknown one or for a selection that comes to nothing: a run of no
    scenario would exercise nothing and pass."""
    if not names:
        if not matrix:
            raise HarnessError("the driver profile admits no scenario: nothing to run "
                               "(check its nodes, stages and disruptions)")
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
