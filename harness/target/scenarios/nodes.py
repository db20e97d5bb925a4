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
from harness.pure.scenarios.model import Hold, NodeKind, Stage
from harness.target.device.graph import MediaGraph
from harness.target.device.pipeline import MediaGraphs, configure
from harness.target.uapi import media, subdev
from harness.target.uapi import videodev2 as v4l2

BUFFERS = 4


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
        # the driver has one media device); a node hold, its own entity.
        self.graph = graphs.media(hold.entity)
        path = (self.graph.path if hold.kind is NodeKind.MEDIA
                else self.graph.devnode(hold.entity))
        if path is None:
            raise OSError(errno.ENOENT, f"{hold.entity} has no device node")
        self.path = path
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
        if self.hold.kind is NodeKind.VIDEO and stage is not Stage.OPENED:
            # Formats are set before open so this fd's own S_FMT is the stage.
            # A memory-to-memory node has no pipeline: its own format is the one.
            self.format = (configure(self.profile, self.hold.entity).format
                           if self.hold.entity in self.profile.capture_entities
                           else _current_format(self.path))
        flags = os.O_RDWR | os.O_CLOEXEC
        self.fd = os.open(self.path, flags)
        setup = {NodeKind.VIDEO: self._video, NodeKind.MEDIA: self._media,
                 NodeKind.SUBDEV: self._subdev}[self.hold.kind]
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

        if at(Stage.FORMAT_SET):
            assert self.format is not None
            v4l2.s_fmt(fd, self.format)
        if stage is Stage.BLOCKED_READ:
            assert self.format is not None
            size = self.format.sizeimage
            self.call = KernelCall("read", lambda: os.read(fd, size))
            return
        if at(Stage.BUFFERS_REQUESTED):
            count = v4l2.reqbufs(fd, BUFFERS).count
        if at(Stage.BUFFERS_MMAPPED):
            for i in range(count):
                b = v4l2.querybuf(fd, i)
                self.maps.append(mmap.mmap(fd, b.length, mmap.MAP_SHARED,
                                           mmap.PROT_READ | mmap.PROT_WRITE, offset=b.m))
        if at(Stage.STREAMING):
            for i in range(count):
                v4l2.qbuf(fd, i)
            v4l2.streamon(fd)
            # One frame proves the pipeline really streams.
            v4l2.qbuf(fd, v4l2.dqbuf(fd).index)
        if stage.blocking:
            # With every buffer dequeued and none queued, DQBUF, poll and
            # select can only wait: nothing will ever complete.
            for _ in range(count):
                v4l2.dqbuf(fd)
            waits: dict[Stage, tuple[str, Callable[[], Any]]] = {
                Stage.BLOCKED_DQBUF: ("VIDIOC_DQBUF", lambda: v4l2.dqbuf(fd)),
                Stage.BLOCKED_POLL: ("poll", lambda: _poll_forever(fd)),
                Stage.BLOCKED_SELECT: ("select", lambda: select.select([fd], [], [])),
            }
            what, fn = waits[stage]
            self.call = KernelCall(what, fn)

    def _media(self, stage: Stage) -> None:
        fd = self.fd
        assert fd is not None
        if stage is Stage.IN_G_TOPOLOGY:
            self.call = KernelCall("MEDIA_IOC_G_TOPOLOGY", lambda: media.g_topology(fd),
                                   loop=True)
        elif stage is Stage.IN_SETUP_LINK:
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
                "VIDIOC_G_FMT": lambda: v4l2.g_fmt(fd),
                "VIDIOC_REQBUFS": lambda: v4l2.reqbufs(fd, 0),
                "VIDIOC_STREAMON": lambda: v4l2.streamon(fd),
                "VIDIOC_STREAMOFF": lambda: v4l2.streamoff(fd),
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
        how = errno_name(attempt(lambda: v4l2.streamoff(fd)))
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


def _poll_forever(fd: int) -> None:
    p = select.poll()
    p.register(fd, select.POLLIN)
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
