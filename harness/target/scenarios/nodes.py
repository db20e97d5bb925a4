"""File descriptors held across a disruption, brought to a stage and probed after.

Runs on the target. Each HeldNode owns one fd, its mmapped buffers and, for
blocking or looping stages, the thread that sits in the kernel while the
device goes away.
"""

from __future__ import annotations

import errno
import mmap
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.pure.profiles import DriverProfile
from harness.pure.scenarios.contracts import errno_name
from harness.pure.scenarios.evidence import CallRecord
from harness.pure.scenarios.model import M2M_STAGES, Drain, Hold, NodeKind, Queue, Stage
from harness.target.device.graph import MediaGraph
from harness.target.device.pipeline import MediaGraphs, configure
from harness.target.uapi import media, subdev
from harness.target.uapi import videodev2 as v4l2

BUFFERS = 4
# Seconds a stage waits for one more buffer to complete before taking the
# queue as drained: several frame periods of a driver slowed down by TCG.
DRAIN_WAIT = 3.0

# The buffer type of each queue a profile names (harness.pure.scenarios.model.Queue).
BUF_TYPES: dict[Queue, int] = {
    Queue.VIDEO_CAPTURE: v4l2.V4L2_BUF_TYPE_VIDEO_CAPTURE,
    Queue.VIDEO_OUTPUT: v4l2.V4L2_BUF_TYPE_VIDEO_OUTPUT,
    Queue.VBI_CAPTURE: v4l2.V4L2_BUF_TYPE_VBI_CAPTURE,
    Queue.VBI_OUTPUT: v4l2.V4L2_BUF_TYPE_VBI_OUTPUT,
    Queue.SDR_CAPTURE: v4l2.V4L2_BUF_TYPE_SDR_CAPTURE,
    Queue.META_CAPTURE: v4l2.V4L2_BUF_TYPE_META_CAPTURE,
    Queue.META_OUTPUT: v4l2.V4L2_BUF_TYPE_META_OUTPUT,
    Queue.TOUCH_CAPTURE: v4l2.V4L2_BUF_TYPE_VIDEO_CAPTURE,
}


def attempt(fn: Callable[[], Any]) -> int | None:
    """Run fn; None if it succeeded, else its errno."""
    try:
        fn()
    except OSError as e:
        return e.errno
    return None


class StageNotReached(RuntimeError):
    """A held node could not be brought to its scenario's stage."""


@dataclass
class KernelCall:
    """One call sitting in the kernel in its own thread: blocked (DQBUF, poll)
    or repeated in a loop (G_TOPOLOGY) until told to stop."""

    what: str
    fn: Callable[[], Any]
    loop: bool = False
    started: float = 0.0
    returned: float | None = None
    result: str = ""
    calls: int = 0
    errnos: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.what, daemon=True)
        self.started = time.monotonic()
        self._thread.start()
        # Let it get into the kernel before anything is torn down.
        time.sleep(0.2)
        if not self.loop and self.returned is not None:
            # A blocked stage that did not block is not that stage: running
            # the scenario anyway would pass a contract it never tested.
            raise StageNotReached(f"{self.what} returned {self.result} at once instead of "
                                  f"blocking")

    def _run(self) -> None:
        while True:
            self.calls += 1
            code = attempt(self.fn)
            name = errno_name(code)
            self.errnos[name] = self.errnos.get(name, 0) + 1
            if not self.loop or self._stop.is_set():
                self.result = name
                break
            if code in (errno.ENODEV, errno.EIO, errno.EBADF):
                self.result = name
                break
        self.returned = time.monotonic()

    def stop(self, timeout: float) -> bool:
        """Ask a loop to end; True if the thread is out of the kernel within timeout."""
        self._stop.set()
        return self.join(timeout)

    def join(self, timeout: float) -> bool:
        """True if the call has returned within timeout."""
        assert self._thread is not None
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def record(self, node: str, since: float) -> CallRecord:
        """The call as it stands, for the held node labelled `node`."""
        return CallRecord(
            node=node,
            what=self.what,
            loop=self.loop,
            returned=self.returned is not None,
            latency=None if self.returned is None else round(self.returned - since, 4),
            result=self.result,
            calls=self.calls,
            errnos=dict(self.errnos),
            at=None if self.returned is None else round(self.returned, 6),
        )


class HeldNode:
    def __init__(self, hold: Hold, graphs: MediaGraphs, profile: DriverProfile):
        self.hold = hold
        self.profile = profile
        # A media hold names its media device by one of its entities ("" when
        # the driver has one media device); a node hold, its own entity (or,
        # for a node with no entity, the name it has in sysfs).
        self.graph: MediaGraph | None = None
        if hold.kind is NodeKind.MEDIA:
            self.graph = graphs.media(hold.entity)
            path: str | None = self.graph.path
        else:
            path = graphs.devnode(hold.entity)
        if path is None:
            raise OSError(errno.ENOENT, f"{hold.entity} has no device node")
        self.path = path
        queue = profile.queue(hold.entity)
        # A node without a queue (a radio) never gets past open: its buffer
        # type is never asked for.
        self.buf_type = BUF_TYPES.get(queue, v4l2.V4L2_BUF_TYPE_VIDEO_CAPTURE)
        self.m2m = profile.m2m_node(hold.entity)
        self.pixel = hold.entity in profile.capture_entities
        self.fd: int | None = None
        self.maps: list[mmap.mmap] = []
        self.call: KernelCall | None = None
        self.format: v4l2.PixFormat | None = None

    @property
    def label(self) -> str:
        return self.hold.label

    # -- bringing the fd to its stage ----------------------------------------

    def setup(self) -> None:
        stage = self.hold.stage
        if self.hold.kind is NodeKind.VIDEO and stage is not Stage.OPENED and self.pixel:
            # Formats are set before open so this fd's own S_FMT is the stage.
            # A memory-to-memory node has no pipeline: its own format is the one.
            self.format = (configure(self.profile, self.hold.entity).format
                           if self.hold.entity in self.profile.capture_entities
                           else _current_format(self.path))
        flags = os.O_RDWR | os.O_CLOEXEC
        self.fd = os.open(self.path, flags)
        setup = {NodeKind.VIDEO: self._video, NodeKind.MEDIA: self._media,
                 NodeKind.SUBDEV: self._subdev}[self.hold.kind]
        if self.m2m is not None:
            setup = self._m2m
        setup(stage)
        if self.call is not None:
            self.call.start()

    def _video(self, stage: Stage) -> None:
        fd = self.fd
        assert fd is not None
        order = list(Stage)
        reached = order.index(stage)

        def at(s: Stage) -> bool:
            return reached >= order.index(s)

        kind = self.buf_type
        output = v4l2.is_output(kind)
        node = next((n for n in self.profile.queue_nodes if n.name == self.hold.entity), None)
        if node is not None and node.input is not None and stage is not Stage.OPENED:
            v4l2.s_input(fd, node.input)
        if at(Stage.FORMAT_SET):
            if self.format is not None:
                v4l2.s_fmt(fd, self.format)
            else:  # VBI, SDR, metadata, touch: the format the node has
                v4l2.reset_fmt(fd, kind)
        if stage is Stage.BLOCKED_READ:
            assert self.format is not None
            size = self.format.sizeimage
            self.call = KernelCall("read", lambda: os.read(fd, size))
            return
        if at(Stage.BUFFERS_REQUESTED):
            count = v4l2.reqbufs(fd, BUFFERS, kind).count
        lengths: list[int] = []
        if at(Stage.BUFFERS_MMAPPED):
            for i in range(count):
                b = v4l2.querybuf(fd, i, kind)
                lengths.append(b.length)
                self.maps.append(mmap.mmap(fd, b.length, mmap.MAP_SHARED,
                                           mmap.PROT_READ | mmap.PROT_WRITE, offset=b.m))
        if at(Stage.STREAMING):
            # An output buffer goes in full; the driver consumes it at its frame rate.
            def queue(i: int) -> None:
                v4l2.qbuf(fd, i, kind, bytesused=lengths[i] if output else 0)

            for i in range(count):
                queue(i)
            v4l2.streamon(fd, kind)
            # One buffer done (a frame captured, or one output) proves it streams.
            queue(v4l2.dqbuf(fd, kind).index)
        # An output queue is waited on for room to write, a capture one for data.
        event = select.POLLOUT if output else select.POLLIN
        if stage.blocking:
            # Dequeue what completes; then DQBUF, poll and select can only
            # wait. Some drivers keep a buffer to the end (vivid's video
            # output holds its last one for loopback), so what completes is
            # waited for, not counted.
            for _ in range(count):
                if not _ready(fd, event, DRAIN_WAIT):
                    break
                v4l2.dqbuf(fd, kind)
            waits: dict[Stage, tuple[str, Callable[[], Any]]] = {
                Stage.BLOCKED_DQBUF: ("VIDIOC_DQBUF", lambda: v4l2.dqbuf(fd, kind)),
                Stage.BLOCKED_POLL: ("poll", lambda: _poll_forever(fd, event)),
                Stage.BLOCKED_SELECT: ("select", lambda: select.select(
                    [] if output else [fd], [fd] if output else [], [])),
            }
            what, fn = waits[stage]
            self.call = KernelCall(what, fn)

    def _m2m(self, stage: Stage) -> None:
        """A memory-to-memory fd: both queues in the formats they have, brought
        as far as `stage` along M2M_STAGES."""
        fd = self.fd
        assert fd is not None and self.m2m is not None
        reached = M2M_STAGES.index(stage)

        def at(s: Stage) -> bool:
            return reached >= M2M_STAGES.index(s)

        out, cap = v4l2.V4L2_BUF_TYPE_VIDEO_OUTPUT, v4l2.V4L2_BUF_TYPE_VIDEO_CAPTURE
        if at(Stage.FORMAT_SET):
            v4l2.reset_fmt(fd, out)
            v4l2.reset_fmt(fd, cap)
        if not at(Stage.BUFFERS_REQUESTED):
            return
        counts = {q: v4l2.reqbufs(fd, BUFFERS, q).count for q in (out, cap)}
        lengths: dict[int, list[int]] = {out: [], cap: []}
        if at(Stage.BUFFERS_MMAPPED):
            for q in (out, cap):
                for i in range(counts[q]):
                    b = v4l2.querybuf(fd, i, q)
                    lengths[q].append(b.length)
                    self.maps.append(mmap.mmap(fd, b.length, mmap.MAP_SHARED,
                                               mmap.PROT_READ | mmap.PROT_WRITE, offset=b.m))
        if not at(Stage.OUTPUT_STREAMING):
            return
        # Output buffers go in full of whatever the mapping holds: a scaler
        # or an encoder takes any bytes as a picture.
        for i in range(counts[out]):
            v4l2.qbuf(fd, i, out, bytesused=lengths[out][i])
        v4l2.streamon(fd, out)
        if stage is Stage.DRAINING:
            # No CAPTURE buffer to mark as the last one: the drain cannot end.
            stop = {Drain.ENCODER: v4l2.encoder_stop, Drain.DECODER: v4l2.decoder_stop}
            if self.m2m.drain not in stop:
                raise StageNotReached(f"{self.hold.entity} has no drain command")
            stop[self.m2m.drain](fd)
            return
        if stage is Stage.OUTPUT_STREAMING:
            return
        for i in range(counts[cap]):
            v4l2.qbuf(fd, i, cap)
        v4l2.streamon(fd, cap)
        # One processed frame proves jobs run.
        if not _ready(fd, select.POLLIN, DRAIN_WAIT * 3):
            raise StageNotReached(f"{self.hold.entity}: no CAPTURE buffer done within "
                                  f"{DRAIN_WAIT * 3:g} s of both queues streaming")
        done = v4l2.dqbuf(fd, cap)
        if stage is Stage.BOTH_STREAMING:
            v4l2.qbuf(fd, done.index, cap)
            return
        # Blocked: OUTPUT runs dry (nothing requeued; every OUTPUT buffer back
        # means every job ran), CAPTURE gives back what was processed, then
        # DQBUF on CAPTURE can only wait. A job may take seconds under TCG
        # (vicodec encodes 1280x720), so the jobs are waited for, not timed.
        for _ in range(counts[out]):
            if not _ready(fd, select.POLLOUT, DRAIN_WAIT * 3):
                raise StageNotReached(f"{self.hold.entity}: OUTPUT did not run dry")
            v4l2.dqbuf(fd, out)
        while _ready(fd, select.POLLIN, 0.5):
            v4l2.dqbuf(fd, cap)
        self.buf_type = cap
        self.call = KernelCall("VIDIOC_DQBUF(CAPTURE)", lambda: v4l2.dqbuf(fd, cap))

    def _media(self, stage: Stage) -> None:
        fd = self.fd
        assert fd is not None
        if stage is Stage.IN_G_TOPOLOGY:
            self.call = KernelCall("MEDIA_IOC_G_TOPOLOGY", lambda: media.g_topology(fd),
                                   loop=True)
        elif stage is Stage.IN_SETUP_LINK:
            assert self.graph is not None
            link = _toggleable_link(self.graph)
            flags = [media.MEDIA_LNK_FL_ENABLED, 0]
            state = {"i": 0}

            def toggle() -> None:
                state["i"] += 1
                media.setup_link(fd, *link, flags[state["i"] % 2])

            self.call = KernelCall("MEDIA_IOC_SETUP_LINK", toggle, loop=True)

    def _subdev(self, stage: Stage) -> None:
        fd = self.fd
        assert fd is not None
        pad = 0
        if stage is Stage.IN_G_FMT:
            self.call = KernelCall("VIDIOC_SUBDEV_G_FMT", lambda: subdev.g_fmt(fd, pad),
                                   loop=True)
        elif stage is Stage.IN_S_FMT:
            current = subdev.g_fmt(fd, pad)
            self.call = KernelCall("VIDIOC_SUBDEV_S_FMT",
                                   lambda: subdev.s_fmt(fd, pad, current), loop=True)

    # -- after the disruption --------------------------------------------------

    def stale_ioctls(self) -> dict[str, str]:
        fd = self.fd
        assert fd is not None
        probes: dict[NodeKind, dict[str, Callable[[], Any]]] = {
            NodeKind.VIDEO: {
                "VIDIOC_QUERYCAP": lambda: v4l2.querycap(fd),
                "VIDIOC_G_FMT": lambda: v4l2.g_fmt_raw(fd, self.buf_type),
                "VIDIOC_REQBUFS": lambda: v4l2.reqbufs(fd, 0, self.buf_type),
                "VIDIOC_STREAMON": lambda: v4l2.streamon(fd, self.buf_type),
                "VIDIOC_STREAMOFF": lambda: v4l2.streamoff(fd, self.buf_type),
            },
            NodeKind.MEDIA: {
                "MEDIA_IOC_DEVICE_INFO": lambda: media.device_info(fd),
                "MEDIA_IOC_G_TOPOLOGY": lambda: media.g_topology(fd),
            },
            NodeKind.SUBDEV: {
                "VIDIOC_SUBDEV_QUERYCAP": lambda: subdev.querycap(fd),
                "VIDIOC_SUBDEV_G_FMT": lambda: subdev.g_fmt(fd, 0),
            },
        }
        return {name: errno_name(attempt(fn)) for name, fn in probes[self.hold.kind].items()}

    def poll_now(self) -> list[str]:
        assert self.fd is not None
        p = select.poll()
        p.register(self.fd, select.POLLIN | select.POLLPRI | select.POLLOUT)
        events = p.poll(0)
        bits = events[0][1] if events else 0
        names = [n for n in ("POLLIN", "POLLPRI", "POLLOUT", "POLLERR", "POLLHUP", "POLLNVAL")
                 if bits & getattr(select, n)]
        return names

    def touch_mmap(self) -> str:
        """Read every mapped buffer in a child; return how the child ended."""
        if not self.maps:
            return "no-maps"
        pid = os.fork()
        if pid == 0:
            try:
                total = 0
                for m in self.maps:
                    total += m[0] + m[len(m) - 1]
                    m[0] = total & 0xFF
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            import signal

            return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
        return "ok"

    def munmap(self) -> str:
        try:
            for m in self.maps:
                m.close()
        except (OSError, ValueError) as e:
            return f"{type(e).__name__}: {e}"
        finally:
            self.maps.clear()
        return "ok"

    def unblock(self, timeout: float) -> str:
        """End a blocked call on a device that is still there, as an application
        would: STREAMOFF wakes every vb2 waiter (DQBUF, poll, select). Until the
        call returns it holds the file, and with it the driver's module."""
        assert self.call is not None and self.fd is not None
        fd = self.fd
        how = errno_name(attempt(lambda: v4l2.streamoff(fd, self.buf_type)))
        if self.call.join(timeout):
            return f"STREAMOFF {how}, call returned {self.call.result}"
        return f"STREAMOFF {how}, call still blocked"

    def close(self) -> str:
        if self.fd is None:
            return "ok"
        fd, self.fd = self.fd, None
        return errno_name(attempt(lambda: os.close(fd)))


def _current_format(path: str | None) -> v4l2.PixFormat:
    assert path is not None
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fmt = v4l2.g_fmt(fd)
    finally:
        os.close(fd)
    if not isinstance(fmt, v4l2.PixFormat):
        raise StageNotReached(f"{path}: multi-planar formats are not held yet")
    return fmt


def _ready(fd: int, event: int, timeout: float) -> bool:
    """True once `event` itself is reported: v4l2-mem2mem's poll answers
    POLLERR when neither queue has anything left queued, which is no buffer
    to dequeue."""
    p = select.poll()
    p.register(fd, event)
    events = p.poll(timeout * 1000)
    return bool(events and events[0][1] & event)


def _poll_forever(fd: int, event: int = select.POLLIN) -> None:
    p = select.poll()
    p.register(fd, event)
    p.poll()


def _toggleable_link(graph: MediaGraph) -> tuple[int, int, int, int]:
    """A data link that is neither immutable nor enabled: SETUP_LINK may flip it
    without breaking the default pipeline."""
    topo = graph.topology
    pads = {p.id: p for p in topo.pads}
    for link in topo.data_links():
        if not link.immutable and not link.enabled:
            src, sink = pads[link.source_id], pads[link.sink_id]
            return src.entity_id, src.index, sink.entity_id, sink.index
    raise OSError(errno.ENOENT, "no link that MEDIA_IOC_SETUP_LINK may toggle")
