"""A V4L2 video node on the target: capabilities, formats, and which I/O it offers."""

from __future__ import annotations

import errno
import os
from types import TracebackType
from typing import Any

from harness.target.uapi import videodev2 as v4l2

# I/O methods by the name reports and the command line use.
MEMORY = {
    "mmap": v4l2.V4L2_MEMORY_MMAP,
    "userptr": v4l2.V4L2_MEMORY_USERPTR,
    "dmabuf": v4l2.V4L2_MEMORY_DMABUF,
}
# REQBUFS capability bit that says a memory type is supported (Linux 5.0+).
MEMORY_CAP = {
    "mmap": v4l2.V4L2_BUF_CAP_SUPPORTS_MMAP,
    "userptr": v4l2.V4L2_BUF_CAP_SUPPORTS_USERPTR,
    "dmabuf": v4l2.V4L2_BUF_CAP_SUPPORTS_DMABUF,
}
# read() is not a memory type but is the fourth way to get frames.
IO_METHODS = (*MEMORY, "read")

CAPTURE_CAPS = v4l2.V4L2_CAP_VIDEO_CAPTURE | v4l2.V4L2_CAP_VIDEO_CAPTURE_MPLANE


def describe_pix(fmt: v4l2.PixFormat) -> str:
    """"GRBG 640x480", the short form used in reports and error messages."""
    return f"{v4l2.fourcc_str(fmt.pixelformat)} {fmt.width}x{fmt.height}"


class VideoNode:
    """An open /dev/video*; a context manager that closes it.

    Opened non-blocking by default: the streaming engine waits in poll() or
    select() with a deadline, never in a DQBUF that might not return.
    """

    def __init__(self, path: str, name: str = "", blocking: bool = False):
        self.path = path
        self.name = name or path
        flags = os.O_RDWR | os.O_CLOEXEC | (0 if blocking else os.O_NONBLOCK)
        self.fd = os.open(path, flags)

    def __enter__(self) -> VideoNode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # -- what the node is ----------------------------------------------------

    def querycap(self) -> v4l2.Capability:
        return v4l2.querycap(self.fd)

    def is_capture(self) -> bool:
        return bool(self.querycap().caps & CAPTURE_CAPS)

    def formats(self) -> list[v4l2.FmtDesc]:
        return v4l2.enum_fmt(self.fd)

    def g_fmt(self) -> v4l2.PixFormat:
        fmt = v4l2.g_fmt(self.fd)
        assert isinstance(fmt, v4l2.PixFormat)
        return fmt

    def s_fmt(self, pixelformat: int, width: int, height: int) -> v4l2.PixFormat:
        fmt = v4l2.s_fmt(self.fd, v4l2.PixFormat(width, height, pixelformat))
        assert isinstance(fmt, v4l2.PixFormat)
        return fmt

    def io_methods(self) -> list[str]:
        """The I/O methods the queue offers, from REQBUFS(0)'s capabilities, falling
        back to asking REQBUFS(0) per memory type on kernels that report none."""
        found = []
        try:
            caps = v4l2.reqbufs(self.fd, 0, memory=v4l2.V4L2_MEMORY_MMAP).capabilities
        except OSError:
            caps = 0
        for name, memory in MEMORY.items():
            if caps:
                if caps & MEMORY_CAP[name]:
                    found.append(name)
                continue
            try:
                v4l2.reqbufs(self.fd, 0, memory=memory)
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise
            else:
                found.append(name)
        if self.querycap().caps & v4l2.V4L2_CAP_READWRITE:
            found.append("read")
        return found

    def describe(self) -> dict[str, Any]:
        """Capabilities and formats as plain data (the cross-check with v4l2-compliance)."""
        cap = self.querycap()
        fmt = self.g_fmt()
        return {
            "path": self.path,
            "driver": cap.driver,
            "card": cap.card,
            "bus_info": cap.bus_info,
            "capabilities": cap.capabilities,
            "device_caps": cap.device_caps,
            "caps_names": v4l2.caps_str(cap.caps),
            "formats": [d.fourcc for d in self.formats()],
            "format": {
                "pixelformat": fmt.fourcc, "width": fmt.width, "height": fmt.height,
                "field": fmt.field, "bytesperline": fmt.bytesperline,
                "sizeimage": fmt.sizeimage, "colorspace": fmt.colorspace,
            },
            "io_methods": self.io_methods(),
        }
