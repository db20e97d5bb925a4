"""The streaming engine: frames from a capture node by MMAP, USERPTR, DMABUF or read().

Runs on the target. Every wait is poll() or select() with a deadline, so a
driver that stops delivering is a reported error, never a hung agent. Each
frame is checked as it arrives (FrameChecker, pure and unit-tested): sequence
numbers must increase (gaps are dropped frames), timestamps must increase,
the payload must be complete and not blank.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import mmap
import os
import select
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

from harness.pure.profiles import DriverProfile
from harness.target.device.graph import MediaGraph
from harness.target.device.pipeline import (
    PipelineError,
    capture_nodes,
    check,
    configure,
    media_device,
    require_capture_node,
)
from harness.target.device.video import MEMORY, VideoNode, describe_pix
from harness.target.uapi import videodev2 as v4l2

WAITS = ("poll", "select")
# A reported list stops growing here; the counts go on.
MAX_LISTED = 20
# The blank check reads three runs of bytes: the start, the middle and the end
# of the payload. A run is more than a line of any test pattern up to 1360
# pixels of RGB; the start holds whatever header a DMA engine writes first.
# It runs once a frame: in a TCG guest this costs a third of what a sample
# strided over every page of an RGB frame did.
BLANK_RUN_BYTES = 4096


def is_blank(data: bytes | bytearray | memoryview | mmap.mmap, length: int | None = None) -> bool:
    """True if the runs at the start, middle and end of the first `length`
    bytes all hold the same single value."""
    with memoryview(data) as whole:
        size = len(whole) if length is None else min(length, len(whole))
        with whole[:size].cast("B") as payload:
            if size < 2:
                return True
            first = payload[0]
            starts = {0, max(0, (size - BLANK_RUN_BYTES) // 2), max(0, size - BLANK_RUN_BYTES)}
            for start in starts:
                with payload[start:start + BLANK_RUN_BYTES] as run:
                    # Equal to itself shifted by one byte: every byte is its first.
                    if run[0] != first or run[1:] != run[:-1]:
                        return False
    return True


@dataclass
class FrameChecker:
    """Checks a stream of dequeued frames; feed it with `add`."""

    sizeimage: int = 0
    frames: int = 0
    first_sequence: int | None = None
    last_sequence: int | None = None
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None
    dropped: list[int] = field(default_factory=list)
    dropped_count: int = 0
    blank_frames: int = 0
    errors: list[str] = field(default_factory=list)
    error_count: int = 0

    def error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_LISTED:
            self.errors.append(message)

    def add(
        self,
        sequence: int | None,
        timestamp_ns: int | None,
        bytesused: int,
        flags: int = 0,
        data: bytes | bytearray | memoryview | mmap.mmap | None = None,
    ) -> None:
        """One frame: its sequence number and timestamp (None for read() I/O, which has
        neither), the payload size, the buffer flags and the payload to look at."""
        self.frames += 1
        if sequence is not None:
            if self.last_sequence is None:
                self.first_sequence = sequence
            elif sequence <= self.last_sequence:
                self._frame_error(sequence, f"sequence did not increase (previous "
                                            f"{self.last_sequence})")
            elif sequence > self.last_sequence + 1:
                missing = range(self.last_sequence + 1, sequence)
                self.dropped_count += len(missing)
                room = MAX_LISTED - len(self.dropped)
                self.dropped.extend(list(missing)[: max(room, 0)])
            self.last_sequence = sequence if self.last_sequence is None else max(
                sequence, self.last_sequence)
        if timestamp_ns is not None:
            if self.last_ts_ns is not None and timestamp_ns <= self.last_ts_ns:
                self._frame_error(sequence, f"timestamp {timestamp_ns} ns is not after the "
                                            f"previous {self.last_ts_ns} ns")
            if self.first_ts_ns is None:
                self.first_ts_ns = timestamp_ns
            self.last_ts_ns = max(timestamp_ns, self.last_ts_ns or timestamp_ns)
        if flags & v4l2.V4L2_BUF_FLAG_ERROR:
            self._frame_error(sequence, "the driver marked the buffer with V4L2_BUF_FLAG_ERROR")
        if bytesused == 0 or (self.sizeimage and bytesused < self.sizeimage):
            self._frame_error(sequence, f"{bytesused} bytes of payload, the format needs "
                                        f"{self.sizeimage}")
        if data is not None and bytesused and is_blank(data, bytesused):
            self.blank_frames += 1
            self._frame_error(sequence, "blank (the start, middle and end of the payload "
                                        "hold one value)")

    def _frame_error(self, sequence: int | None, message: str) -> None:
        at = f"frame {self.frames}" + ("" if sequence is None else f" (sequence {sequence})")
        self.error(f"{at}: {message}")

    @property
    def fps(self) -> float | None:
        """Frame rate by the driver's timestamps: frames after the first over the span."""
        if self.frames < 2 or self.first_ts_ns is None or self.last_ts_ns is None:
            return None
        span = (self.last_ts_ns - self.first_ts_ns) / 1e9
        return (self.frames - 1) / span if span > 0 else None


@dataclass
class StreamResult:
    """One stream of one node with one I/O method, as reported."""

    node: str
    devnode: str
    memory: str
    wait: str
    format: str = ""
    requested: int = 0
    frames: int = 0
    buffers: int = 0
    seconds: float = 0.0
    fps: float | None = None
    wall_fps: float | None = None
    first_sequence: int | None = None
    last_sequence: int | None = None
    dropped: list[int] = field(default_factory=list)
    dropped_count: int = 0
    blank_frames: int = 0
    exporter: str | None = None
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    # errno name of the call that ended the stream early, if one did
    stop_errno: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_count == 0 and self.frames == self.requested

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def fail(self, message: str) -> StreamResult:
        self.error_count += 1
        if len(self.errors) < MAX_LISTED:
            self.errors.append(message)
        return self

    def stopped_by(self, devnode: str, e: OSError) -> None:
        """The stream ended on a failed call: its errno, and the failure."""
        self.stop_errno = errno.errorcode.get(e.errno or 0, str(e.errno))
        self.fail(f"{devnode}: {e.strerror or e}")

    def take(self, checker: FrameChecker, seconds: float) -> None:
        self.frames = checker.frames
        self.seconds = round(seconds, 3)
        fps = checker.fps
        self.fps = round(fps, 2) if fps is not None else None
        self.wall_fps = round(checker.frames / seconds, 2) if seconds > 0 else None
        self.first_sequence, self.last_sequence = checker.first_sequence, checker.last_sequence
        self.dropped, self.dropped_count = checker.dropped, checker.dropped_count
        self.blank_frames = checker.blank_frames
        for message in checker.errors:
            self.fail(message)
        self.error_count += checker.error_count - len(checker.errors)


class _Waiter:
    """Waits until a frame can be taken, by poll() or select(), with a deadline."""

    def __init__(self, fd: int, how: str):
        if how not in WAITS:
            raise ValueError(f"wait must be one of {', '.join(WAITS)}, not {how!r}")
        self.fd, self.how = fd, how
        self.poller = select.poll()
        self.poller.register(fd, select.POLLIN | select.POLLPRI | select.POLLERR)

    def wait(self, timeout: float) -> str:
        """"ready", "timeout" or "error" (POLLERR, or select's exceptional set)."""
        if self.how == "poll":
            events = self.poller.poll(timeout * 1000)
            if not events:
                return "timeout"
            bits = events[0][1]
            if bits & (select.POLLERR | select.POLLNVAL | select.POLLHUP):
                return "error"
            return "ready"
        readable, _, exceptional = select.select([self.fd], [], [self.fd], timeout)
        if exceptional:
            return "error"
        return "ready" if readable else "timeout"


def _page_round(n: int) -> int:
    page = mmap.PAGESIZE
    return (n + page - 1) // page * page


class _QueueArgs(TypedDict, total=False):
    """The keyword arguments of v4l2.qbuf that differ by memory type (none for MMAP)."""

    m: int
    length: int


class _Buffers:
    """The memory behind a queue's buffers, for one memory type, and how to queue each."""

    def __init__(self) -> None:
        self.views: list[Any] = []  # what to read a frame from, by buffer index
        self.queue_args: list[_QueueArgs] = []  # qbuf keyword arguments, by index
        self._anchors: list[ctypes.c_char] = []  # ctypes views pinning USERPTR maps
        self._cleanup: list[Callable[[], object]] = []  # what they return is dropped

    def close(self) -> None:
        # A mapping cannot close while a ctypes view of it exists.
        self._anchors.clear()
        self.views.clear()
        for fn in reversed(self._cleanup):
            try:
                fn()
            except (OSError, ValueError, BufferError):
                pass
        self._cleanup.clear()

    @classmethod
    def mmap(cls, fd: int, count: int) -> _Buffers:
        bufs = cls()
        for i in range(count):
            b = v4l2.querybuf(fd, i)
            m = mmap.mmap(fd, b.length, mmap.MAP_SHARED, mmap.PROT_READ, offset=b.m)
            bufs._cleanup.append(m.close)
            bufs.views.append(m)
            bufs.queue_args.append({})
        return bufs

    @classmethod
    def userptr(cls, count: int, sizeimage: int) -> _Buffers:
        bufs = cls()
        length = _page_round(sizeimage)
        for _ in range(count):
            m = mmap.mmap(-1, length, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            bufs._cleanup.append(m.close)
            anchor = ctypes.c_char.from_buffer(m)
            bufs._anchors.append(anchor)
            bufs.views.append(m)
            bufs.queue_args.append({"m": ctypes.addressof(anchor), "length": length})
        return bufs

    @classmethod
    def dmabuf(cls, exporter: VideoNode, count: int, sizeimage: int) -> _Buffers:
        """Buffers allocated by `exporter` (CREATE_BUFS, so its format stays as it is),
        exported with EXPBUF and mapped through the dmabuf fds."""
        bufs = cls()
        fmt = exporter.g_fmt()
        size = max(sizeimage, fmt.sizeimage)
        created = v4l2.create_bufs(exporter.fd, count, v4l2.PixFormat(
            fmt.width, fmt.height, fmt.pixelformat, field=fmt.field,
            bytesperline=fmt.bytesperline, sizeimage=size, colorspace=fmt.colorspace))
        bufs._cleanup.append(lambda: v4l2.reqbufs(exporter.fd, 0))
        if created.count < count:
            raise OSError(errno.ENOMEM, f"{exporter.name} created {created.count} of {count} "
                                        f"buffers")
        for i in range(created.index, created.index + count):
            length = v4l2.querybuf(exporter.fd, i).length
            dfd = v4l2.expbuf(exporter.fd, i)
            bufs._cleanup.append(functools.partial(os.close, dfd))
            m = mmap.mmap(dfd, length, mmap.MAP_SHARED, mmap.PROT_READ)
            bufs._cleanup.append(m.close)
            bufs.views.append(m)
            bufs.queue_args.append({"m": dfd, "length": length})
        return bufs


def stream_node(
    devnode: str,
    memory: str,
    frames: int,
    *,
    node: str = "",
    wait: str = "poll",
    buffers: int = 4,
    exporter: str | None = None,
    frame_timeout: float = 5.0,
) -> StreamResult:
    """Stream `frames` frames from a capture node whose pipeline is already set up.

    `memory` is one of MEMORY or "read"; DMABUF needs `exporter`, another video
    node whose buffers are imported. Errors end up in the result, not raised:
    a stream that stops half way is a finding with the frames it did deliver."""
    result = StreamResult(node or devnode, devnode, memory, wait, requested=frames,
                          exporter=exporter if memory == "dmabuf" else None)
    try:
        with VideoNode(devnode, node) as video:
            fmt = video.g_fmt()
            result.format = describe_pix(fmt)
            checker = FrameChecker(sizeimage=fmt.sizeimage)
            start = time.monotonic()
            try:
                if memory == "read":
                    _read_frames(video, fmt, frames, wait, checker, frame_timeout, result)
                else:
                    _queue_frames(video, fmt, memory, frames, wait, buffers, exporter,
                                  checker, frame_timeout, result)
            finally:
                result.take(checker, time.monotonic() - start)
    except OSError as e:
        result.stopped_by(devnode, e)
    return result


def _queue_frames(
    video: VideoNode,
    fmt: v4l2.PixFormat,
    memory: str,
    frames: int,
    wait: str,
    count: int,
    exporter: str | None,
    checker: FrameChecker,
    frame_timeout: float,
    result: StreamResult,
) -> None:
    fd, mem = video.fd, MEMORY[memory]
    granted = v4l2.reqbufs(fd, count, memory=mem).count
    result.buffers = granted
    exporting: VideoNode | None = None
    bufs = _Buffers()
    streaming = False
    try:
        if memory == "mmap":
            bufs = _Buffers.mmap(fd, granted)
        elif memory == "userptr":
            bufs = _Buffers.userptr(granted, fmt.sizeimage)
        else:
            if exporter is None:
                result.fail("dmabuf: no other video node to export buffers from")
                return
            exporting = VideoNode(exporter)
            bufs = _Buffers.dmabuf(exporting, granted, fmt.sizeimage)
        for i in range(granted):
            v4l2.qbuf(fd, i, memory=mem, **bufs.queue_args[i])
        queue = v4l2.CaptureQueue(fd, mem)
        v4l2.streamon(fd)
        streaming = True
        waiter = _Waiter(fd, wait)
        while checker.frames < frames:
            state = waiter.wait(frame_timeout)
            if state == "timeout":
                result.fail(f"no frame within {frame_timeout:g} s after {checker.frames} frames")
                return
            if state == "error":
                result.fail(f"{wait} reported an error after {checker.frames} frames")
                return
            try:
                buf = queue.dqbuf()
            except OSError as e:
                if e.errno == errno.EAGAIN:
                    continue
                raise
            checker.add(buf.sequence, v4l2.timestamp_ns(buf), buf.bytesused, buf.flags,
                        bufs.views[buf.index])
            if checker.frames < frames:
                queue.requeue(buf)
    finally:
        if streaming:
            try:
                v4l2.streamoff(fd)
            except OSError as e:
                result.fail(f"VIDIOC_STREAMOFF: {e.strerror}")
        try:
            v4l2.reqbufs(fd, 0, memory=mem)
        except OSError as e:
            result.fail(f"VIDIOC_REQBUFS(0): {e.strerror}")
        bufs.close()
        if exporting is not None:
            exporting.close()


def _read_frames(
    video: VideoNode,
    fmt: v4l2.PixFormat,
    frames: int,
    wait: str,
    checker: FrameChecker,
    frame_timeout: float,
    result: StreamResult,
) -> None:
    waiter = _Waiter(video.fd, wait)
    while checker.frames < frames:
        state = waiter.wait(frame_timeout)
        if state != "ready":
            result.fail(f"no frame to read within {frame_timeout:g} s after "
                        f"{checker.frames} frames" if state == "timeout"
                        else f"{wait} reported an error after {checker.frames} frames")
            return
        try:
            data = os.read(video.fd, fmt.sizeimage)
        except OSError as e:
            if e.errno == errno.EAGAIN:
                continue
            raise
        checker.add(None, None, len(data), 0, data)


def stream_m2m(devnode: str, frames: int, node: str = "", buffers: int = 4,
               frame_timeout: float = 10.0) -> StreamResult:
    """Feed a memory-to-memory node `frames` OUTPUT pictures and check the
    CAPTURE frames it makes, both queues in the formats the node has. The
    pictures are a byte ramp, so a converter's output is not blank; a
    compressed CAPTURE format is checked for payload, not for its size."""
    out, cap = v4l2.V4L2_BUF_TYPE_VIDEO_OUTPUT, v4l2.V4L2_BUF_TYPE_VIDEO_CAPTURE
    result = StreamResult(node or devnode, devnode, "mmap", "poll", requested=frames)
    try:
        with VideoNode(devnode, node) as video:
            fd = video.fd
            out_fmt, cap_fmt = v4l2.g_fmt(fd, out), v4l2.g_fmt(fd, cap)
            assert isinstance(out_fmt, v4l2.PixFormat) and isinstance(cap_fmt, v4l2.PixFormat)
            result.format = f"{describe_pix(out_fmt)} -> {describe_pix(cap_fmt)}"
            compressed = any(f.pixelformat == cap_fmt.pixelformat
                             and f.flags & v4l2.V4L2_FMT_FLAG_COMPRESSED
                             for f in v4l2.enum_fmt(fd, cap))
            checker = FrameChecker(sizeimage=0 if compressed else cap_fmt.sizeimage)
            start = time.monotonic()
            try:
                _m2m_frames(fd, frames, buffers, checker, frame_timeout, result)
            finally:
                result.take(checker, time.monotonic() - start)
    except OSError as e:
        result.stopped_by(devnode, e)
    return result


def _m2m_frames(fd: int, frames: int, count: int, checker: FrameChecker,
                frame_timeout: float, result: StreamResult) -> None:
    out, cap = v4l2.V4L2_BUF_TYPE_VIDEO_OUTPUT, v4l2.V4L2_BUF_TYPE_VIDEO_CAPTURE
    maps: list[mmap.mmap] = []
    views: dict[int, list[mmap.mmap]] = {out: [], cap: []}
    lengths: list[int] = []
    streaming: list[int] = []
    try:
        for q in (out, cap):
            for i in range(v4l2.reqbufs(fd, count, q).count):
                b = v4l2.querybuf(fd, i, q)
                m = mmap.mmap(fd, b.length, mmap.MAP_SHARED,
                              mmap.PROT_READ | mmap.PROT_WRITE, offset=b.m)
                maps.append(m)
                views[q].append(m)
                if q == out:
                    lengths.append(b.length)
                    m[:] = bytes(range(256)) * (b.length // 256) + bytes(b.length % 256)
        result.buffers = len(views[cap])
        for i in range(len(views[out])):
            v4l2.qbuf(fd, i, out, bytesused=lengths[i])
        for i in range(len(views[cap])):
            v4l2.qbuf(fd, i, cap)
        for q in (out, cap):
            v4l2.streamon(fd, q)
            streaming.append(q)
        waiter = select.poll()
        waiter.register(fd, select.POLLIN | select.POLLOUT | select.POLLERR)
        while checker.frames < frames:
            events = waiter.poll(frame_timeout * 1000)
            bits = events[0][1] if events else 0
            if not bits:
                result.fail(f"no frame within {frame_timeout:g} s after {checker.frames} frames")
                return
            if bits & select.POLLERR:
                result.fail(f"poll reported an error after {checker.frames} frames")
                return
            if bits & select.POLLOUT:  # a picture consumed: feed it again
                done = v4l2.dqbuf(fd, out)
                v4l2.qbuf(fd, done.index, out, bytesused=lengths[done.index])
            if bits & select.POLLIN:
                buf = v4l2.dqbuf(fd, cap)
                # No timestamp: an m2m driver copies OUTPUT's, which are not set here.
                checker.add(buf.sequence, None, buf.bytesused, buf.flags,
                            views[cap][buf.index])
                v4l2.qbuf(fd, buf.index, cap)
    finally:
        for q in streaming:
            try:
                v4l2.streamoff(fd, q)
            except OSError as e:
                result.fail(f"VIDIOC_STREAMOFF: {e.strerror}")
        for m in maps:
            m.close()
        for q in (out, cap):
            try:
                v4l2.reqbufs(fd, 0, q)
            except OSError as e:
                result.fail(f"VIDIOC_REQBUFS(0): {e.strerror}")


def exporter_for(profile: DriverProfile, capture: str) -> str | None:
    """Another video capture node of the same media device, to export DMABUF
    buffers from (a metadata or VBI node has no pixel format to size them by)."""
    graph = MediaGraph.read(media_device(profile), formats=False)
    for name in capture_nodes(graph):
        if name != capture and (node := graph.devnode(name)):
            with VideoNode(node, name) as video:
                if video.querycap().caps & v4l2.V4L2_CAP_VIDEO_CAPTURE:
                    return node
    return None


def stream_capture(
    profile: DriverProfile,
    capture: str,
    memory: str,
    frames: int,
    size: tuple[int, int] | None = None,
    wait: str = "poll",
    buffers: int = 4,
    setup: bool = True,
) -> StreamResult:
    """Configure `capture`'s pipeline for `size` (unless `setup` is False: then it
    streams as the pipeline is), stream from it, and if STREAMON finds a broken
    pipeline, say which link is broken."""
    failed = StreamResult(capture, "", memory, wait, requested=frames)
    try:
        if setup:
            devnode = configure(profile, capture, size).devnode
        else:
            graph = MediaGraph.read(media_device(profile), formats=False)
            require_capture_node(graph, capture)
            devnode = graph.devnode(capture) or ""
    except PipelineError as e:
        return failed.fail(str(e))
    exporter = exporter_for(profile, capture) if memory == "dmabuf" else None
    result = stream_node(devnode, memory, frames, node=capture, wait=wait,
                         buffers=buffers, exporter=exporter)
    if result.stop_errno == "EPIPE" and result.errors:
        try:
            check(profile, media_device(profile), capture)
        except PipelineError as e:
            result.errors[-1] += f": {e}"
    return result
