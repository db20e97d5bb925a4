"""The scenario vocabulary. A scenario is a value: it can be named, stored in a
report, sent to the target and replayed alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class NodeKind(StrEnum):
    VIDEO = "video"
    MEDIA = "media"
    SUBDEV = "subdev"


class Stage(StrEnum):
    """How far a file descriptor got before the disruption."""

    OPENED = "opened"
    FORMAT_SET = "format_set"
    BUFFERS_REQUESTED = "buffers_requested"
    BUFFERS_MMAPPED = "buffers_mmapped"
    STREAMING = "streaming"
    BLOCKED_DQBUF = "blocked_dqbuf"
    BLOCKED_POLL = "blocked_poll"
    BLOCKED_SELECT = "blocked_select"
    BLOCKED_READ = "blocked_read"
    # media and subdev fds are "in" an ioctl: a thread repeats it across the disruption
    IN_G_TOPOLOGY = "in_g_topology"
    IN_SETUP_LINK = "in_setup_link"
    IN_G_FMT = "in_g_fmt"
    IN_S_FMT = "in_s_fmt"
    # A memory-to-memory fd has two queues: user space feeds OUTPUT, the
    # driver fills CAPTURE. Only OUTPUT streaming (no job can run), both
    # streaming (jobs run), blocked in DQBUF on CAPTURE once OUTPUT ran dry,
    # and mid-drain: a STOP command (V4L2_ENC_CMD_STOP, V4L2_DEC_CMD_STOP)
    # that cannot finish, OUTPUT buffers queued and no CAPTURE buffer to end on.
    OUTPUT_STREAMING = "output_streaming"
    BOTH_STREAMING = "both_streaming"
    BLOCKED_DQBUF_CAPTURE = "blocked_dqbuf_capture"
    DRAINING = "draining"

    @property
    def blocking(self) -> bool:
        return self in (Stage.BLOCKED_DQBUF, Stage.BLOCKED_POLL, Stage.BLOCKED_SELECT,
                        Stage.BLOCKED_READ, Stage.BLOCKED_DQBUF_CAPTURE)

    @property
    def looping(self) -> bool:
        return self in (Stage.IN_G_TOPOLOGY, Stage.IN_SETUP_LINK, Stage.IN_G_FMT, Stage.IN_S_FMT)

    @property
    def maps_buffers(self) -> bool:
        return self in (Stage.BUFFERS_MMAPPED, Stage.STREAMING, Stage.BLOCKED_DQBUF,
                        Stage.BLOCKED_POLL, Stage.BLOCKED_SELECT, *M2M_STREAMING)

    @property
    def streams(self) -> bool:
        return self in (Stage.STREAMING, Stage.BLOCKED_DQBUF, Stage.BLOCKED_POLL,
                        Stage.BLOCKED_SELECT, Stage.BLOCKED_READ, *M2M_STREAMING)


M2M_STREAMING = (Stage.OUTPUT_STREAMING, Stage.BOTH_STREAMING, Stage.BLOCKED_DQBUF_CAPTURE,
                 Stage.DRAINING)
# Every stage a memory-to-memory node can be brought to, in order; a node's
# profile says which of them it reaches (a decoder fed no valid stream never
# runs a job, a stateless one takes buffers only through requests).
M2M_STAGES = (Stage.OPENED, Stage.FORMAT_SET, Stage.BUFFERS_REQUESTED, Stage.BUFFERS_MMAPPED,
              *M2M_STREAMING)


class Drain(StrEnum):
    """The command that drains a memory-to-memory node: an encoder's or a decoder's."""

    NONE = "none"
    ENCODER = "encoder"  # VIDIOC_ENCODER_CMD V4L2_ENC_CMD_STOP
    DECODER = "decoder"  # VIDIOC_DECODER_CMD V4L2_DEC_CMD_STOP


STAGES_BY_KIND: dict[NodeKind, tuple[Stage, ...]] = {
    NodeKind.VIDEO: (
        Stage.OPENED, Stage.FORMAT_SET, Stage.BUFFERS_REQUESTED, Stage.BUFFERS_MMAPPED,
        Stage.STREAMING, Stage.BLOCKED_DQBUF, Stage.BLOCKED_POLL, Stage.BLOCKED_SELECT,
        Stage.BLOCKED_READ,
    ),
    NodeKind.MEDIA: (Stage.OPENED, Stage.IN_G_TOPOLOGY, Stage.IN_SETUP_LINK),
    NodeKind.SUBDEV: (Stage.OPENED, Stage.IN_G_FMT, Stage.IN_S_FMT),
}


class Queue(StrEnum):
    """The buffer queue a video-class node (/dev/video, vbi, swradio, v4l-touch,
    radio) streams through, as its buffer type names it; NONE for a node with
    no queue (a radio tuner). Which queue a node has is profile data; the
    buffer type each one means is the target's (harness.target.scenarios.nodes)."""

    VIDEO_CAPTURE = "video_capture"
    VIDEO_OUTPUT = "video_output"
    VBI_CAPTURE = "vbi_capture"
    VBI_OUTPUT = "vbi_output"
    SDR_CAPTURE = "sdr_capture"
    META_CAPTURE = "meta_capture"
    META_OUTPUT = "meta_output"
    # A touch sensor's node: frames of pressure values on a video capture queue.
    TOUCH_CAPTURE = "touch_capture"
    NONE = "none"

    @property
    def streams(self) -> bool:
        return self is not Queue.NONE


# Stages a node of each queue can be brought to: a node that streams goes
# through every video stage its driver supports; a radio tuner only opens.
STAGES_BY_QUEUE: dict[Queue, tuple[Stage, ...]] = {
    **{q: STAGES_BY_KIND[NodeKind.VIDEO] for q in Queue if q.streams},
    Queue.NONE: (Stage.OPENED,),
}


class Disruption(StrEnum):
    UNBIND = "unbind"  # sysfs unbind of the bound device
    RMMOD = "rmmod"  # delete_module of the driver's module, fds still open
    UNBIND_BIND = "unbind_bind"  # unbind, then bind again
    UNBIND_RMMOD = "unbind_rmmod"  # unbind, then remove the module of the unbound driver
    CYCLES = "cycles"  # N unbind/bind cycles in a row


class After(StrEnum):
    """What user space does once the device is gone (in this order)."""

    STALE_IOCTLS = "stale_ioctls"
    TOUCH_MMAP = "touch_mmap"
    POLL = "poll"
    MUNMAP = "munmap"
    CLOSE = "close"
    # Remove the module once every fd is closed, as test-media does after its
    # holders exit: the only way the driver's module exit runs after an unplug.
    RMMOD = "rmmod"
    REOPEN = "reopen"
    RESTREAM = "restream"


@dataclass(frozen=True)
class Hold:
    """One file descriptor held across the disruption."""

    kind: NodeKind
    stage: Stage
    entity: str = ""  # the entity whose node is opened ("" for the media node)

    @property
    def label(self) -> str:
        where = f".{slug(self.entity)}" if self.entity else ""
        return f"{self.kind.value}{where}-{self.stage.value}"


@dataclass(frozen=True)
class Scenario:
    holds: tuple[Hold, ...]
    disruption: Disruption
    after: tuple[After, ...]
    cycles: int = 1
    # A short label for a hold set that would make the name unreadable
    # ("all-nodes"), or "" to name every hold.
    group: str = ""
    # The profile's unbind target the disruption acts on ("" for every device
    # of the driver).
    target: str = ""
    tags: tuple[str, ...] = field(default=(), compare=False)

    @property
    def name(self) -> str:
        held = self.group or "+".join(h.label for h in self.holds) or "idle"
        disruption = self.disruption.value
        if self.disruption is Disruption.CYCLES:
            disruption += f"{self.cycles}"
        if self.target:
            disruption += f".{self.target}"
        return f"{held}--{disruption}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "holds": [
                {"kind": h.kind.value, "stage": h.stage.value, "entity": h.entity}
                for h in self.holds
            ],
            "disruption": self.disruption.value,
            "after": [a.value for a in self.after],
            "cycles": self.cycles,
            "group": self.group,
            "target": self.target,
            "tags": list(self.tags),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scenario:
        return cls(
            holds=tuple(
                Hold(NodeKind(h["kind"]), Stage(h["stage"]), h.get("entity", ""))
                for h in d["holds"]
            ),
            disruption=Disruption(d["disruption"]),
            after=tuple(After(a) for a in d["after"]),
            cycles=d.get("cycles", 1),
            group=d.get("group", ""),
            target=d.get("target", ""),
            tags=tuple(d.get("tags", ())),
        )


def slug(text: str) -> str:
    """'Raw Capture 0' -> 'raw_capture_0', for names that survive shells and pytest -k."""
    out = "".join(c.lower() if c.isalnum() else "_" for c in text)
    return "_".join(part for part in out.split("_") if part)
