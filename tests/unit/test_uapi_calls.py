"""The typed ioctl helpers in harness.target.uapi, against a scripted stand-in for the kernel.

fcntl.ioctl is replaced by a function that answers the way the kernel code does
(drivers/media/mc/mc-device.c, v4l2-ioctl.c): it writes into the ctypes argument and the
arrays its pointers name, and fails with the errno the kernel would use.  The layouts
themselves are proven against C in test_uapi_layout.py; this file checks the logic around
them: the G_TOPOLOGY retry, enumeration ends, pointer plumbing and error naming.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable
from typing import Any

import pytest

from harness.target.uapi import ioc, media, subdev, videodev2
from harness.target.uapi.flags import format_flags

Handler = Callable[[int, Any], None]


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> dict[int, Handler]:
    """Map request number -> handler(fd, arg); unknown requests fail with ENOTTY."""
    handlers: dict[int, Handler] = {}

    def fake_ioctl(fd: int, request: int, arg: Any, mutate: bool = True) -> int:
        assert mutate, "the helpers must let the kernel write into the argument"
        handler = handlers.get(request)
        if handler is None:
            raise OSError(errno.ENOTTY, os.strerror(errno.ENOTTY))
        handler(fd, arg)
        return 0

    monkeypatch.setattr(ioc.fcntl, "ioctl", fake_ioctl)
    return handlers


def _fail(code: int) -> OSError:
    return OSError(code, os.strerror(code))


# ---------------------------------------------------------------------------------------------
# ioc


def test_ioc_encoding_round_trips() -> None:
    request = ioc.IOWR("V", 4, 208)
    assert request == 0xC0D05604
    assert (ioc.ioc_dir(request), ioc.ioc_type(request)) == (ioc.IOC_READ | ioc.IOC_WRITE, 0x56)
    assert (ioc.ioc_nr(request), ioc.ioc_size(request)) == (4, 208)
    assert ioc.describe(request) == "_IOWR('V', 4, 208)"
    assert ioc.describe(ioc.IO("|", 0x80)) == "_IO('|', 128)"


def test_ioc_rejects_what_does_not_fit() -> None:
    with pytest.raises(ValueError):
        ioc.IOR("V", 0, 1 << 14)
    with pytest.raises(ValueError):
        ioc.IO("V", 256)
    with pytest.raises(ValueError):
        ioc.IO("VV", 0)


def test_ioctl_error_names_the_request_and_keeps_errno() -> None:
    # A pipe is a real fd that knows no V4L2 ioctl: the real syscall answers ENOTTY.
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(OSError) as info:
            ioc.ioctl(
                read_end, videodev2.VIDIOC_QUERYCAP, videodev2.v4l2_capability(), "VIDIOC_QUERYCAP"
            )
    finally:
        os.close(read_end)
        os.close(write_end)
    assert info.value.errno == errno.ENOTTY
    assert info.value.strerror == f"VIDIOC_QUERYCAP: {os.strerror(errno.ENOTTY)}"


def test_ioctl_error_keeps_the_oserror_subclass(kernel: dict[int, Handler]) -> None:
    def gone(fd: int, arg: Any) -> None:
        raise _fail(errno.ENOENT)

    kernel[media.MEDIA_IOC_DEVICE_INFO] = gone
    with pytest.raises(FileNotFoundError, match="^.*MEDIA_IOC_DEVICE_INFO: "):
        media.device_info(3)


# ---------------------------------------------------------------------------------------------
# media


class FakeGraph:
    """A media graph as MEDIA_IOC_G_TOPOLOGY reports it, changeable between calls."""

    def __init__(self) -> None:
        self.version = 1
        self.entities = [(1, "Sensor A", media.MEDIA_ENT_F_CAM_SENSOR)]
        self.calls = 0
        self.before_call: Callable[[FakeGraph], None] = lambda graph: None

    def add_entity(self, name: str) -> None:
        self.entities.append((self.entities[-1][0] + 1, name, media.MEDIA_ENT_F_IO_V4L))
        self.version += 1

    def g_topology(self, fd: int, topo: media.media_v2_topology) -> None:
        self.before_call(self)
        self.calls += 1
        topo.topology_version = self.version
        if topo.ptr_entities:
            if len(self.entities) > topo.num_entities:
                raise _fail(errno.ENOSPC)
            out = ctypes.cast(topo.ptr_entities, ctypes.POINTER(media.media_v2_entity))
            for i, (ident, name, function) in enumerate(self.entities):
                out[i].id, out[i].name, out[i].function = ident, name.encode(), function
        topo.num_entities = len(self.entities)
        # One interface, one pad and one interface link, so every array is exercised.
        if topo.ptr_interfaces:
            intfs = ctypes.cast(topo.ptr_interfaces, ctypes.POINTER(media.media_v2_interface))
            intfs[0].id, intfs[0].intf_type = 100, media.MEDIA_INTF_T_V4L_SUBDEV
            intfs[0].devnode.major, intfs[0].devnode.minor = 81, 3
        topo.num_interfaces = 1
        if topo.ptr_pads:
            pads = ctypes.cast(topo.ptr_pads, ctypes.POINTER(media.media_v2_pad))
            pads[0].id, pads[0].entity_id, pads[0].flags = 200, 1, media.MEDIA_PAD_FL_SOURCE
        topo.num_pads = 1
        if topo.ptr_links:
            links = ctypes.cast(topo.ptr_links, ctypes.POINTER(media.media_v2_link))
            links[0].id, links[0].source_id, links[0].sink_id = 300, 100, 1
            links[0].flags = media.MEDIA_LNK_FL_INTERFACE_LINK | media.MEDIA_LNK_FL_ENABLED
        topo.num_links = 1


def test_g_topology_reads_every_array(kernel: dict[int, Handler]) -> None:
    graph = FakeGraph()
    kernel[media.MEDIA_IOC_G_TOPOLOGY] = graph.g_topology
    topo = media.g_topology(3)
    assert graph.calls == 2
    assert topo.version == 1
    assert topo.entity("Sensor A").function_name == "Camera Sensor"
    assert topo.entity_pads(1)[0].is_source
    intf = topo.interface_of(1)
    assert intf is not None and (intf.major, intf.minor) == (81, 3)
    assert intf.type_name == "V4L Sub-Device"
    assert topo.data_links() == []


def test_g_topology_retries_when_the_graph_grows(kernel: dict[int, Handler]) -> None:
    graph = FakeGraph()

    def grow_once(g: FakeGraph) -> None:
        # Between the counting call and the filling call: ENOSPC on the second.
        if g.calls == 1:
            g.add_entity("Raw Capture 0")

    graph.before_call = grow_once
    kernel[media.MEDIA_IOC_G_TOPOLOGY] = graph.g_topology
    topo = media.g_topology(3)
    assert graph.calls == 4
    assert [e.name for e in topo.entities] == ["Sensor A", "Raw Capture 0"]
    assert topo.version == 2


def test_g_topology_retries_when_the_version_changes(kernel: dict[int, Handler]) -> None:
    graph = FakeGraph()
    graph.entities.append((2, "Debayer A", media.MEDIA_ENT_F_PROC_VIDEO_PIXEL_ENC_CONV))

    def shrink_once(g: FakeGraph) -> None:
        # Shrinking fits the arrays, so only the version tells the snapshot is torn.
        if g.calls == 1:
            g.entities.pop()
            g.version += 1

    graph.before_call = shrink_once
    kernel[media.MEDIA_IOC_G_TOPOLOGY] = graph.g_topology
    topo = media.g_topology(3)
    assert graph.calls == 4
    assert [e.name for e in topo.entities] == ["Sensor A"]


def test_g_topology_gives_up_on_a_graph_that_never_settles(
    kernel: dict[int, Handler],
) -> None:
    graph = FakeGraph()
    graph.before_call = lambda g: g.add_entity("more") if g.calls % 2 else None
    kernel[media.MEDIA_IOC_G_TOPOLOGY] = graph.g_topology
    with pytest.raises(OSError, match="MEDIA_IOC_G_TOPOLOGY: topology changed") as info:
        media.g_topology(3, attempts=3)
    assert info.value.errno == errno.EAGAIN


# Entities as vimc registers them, with the legacy types ENUM_ENTITIES reports.
VIMC_ENTITIES = {
    1: ("Sensor A", media.MEDIA_ENT_T_V4L2_SUBDEV_SENSOR, 1, 2),
    5: ("Debayer A", media.MEDIA_ENT_T_V4L2_SUBDEV, 2, 1),
    8: ("Raw Capture 0", media.MEDIA_ENT_T_DEVNODE_V4L, 1, 0),
}


def _enum_entities(fd: int, desc: media.media_entity_desc) -> None:
    wanted = desc.id & ~media.MEDIA_ENT_ID_FLAG_NEXT
    if desc.id & media.MEDIA_ENT_ID_FLAG_NEXT:
        ids = [i for i in sorted(VIMC_ENTITIES) if i > wanted]
    else:
        ids = [wanted] if wanted in VIMC_ENTITIES else []
    if not ids:
        raise _fail(errno.EINVAL)
    name, type_, pads, links = VIMC_ENTITIES[ids[0]]
    ctypes.memset(ctypes.addressof(desc), 0, ctypes.sizeof(desc))
    desc.id, desc.name, desc.type, desc.pads, desc.links = ids[0], name.encode(), type_, pads, links
    desc.dev.major, desc.dev.minor = 81, ids[0]


def test_enum_entities_walks_ids_until_einval(kernel: dict[int, Handler]) -> None:
    kernel[media.MEDIA_IOC_ENUM_ENTITIES] = _enum_entities
    entities = media.enum_entities(3)
    assert [e.id for e in entities] == [1, 5, 8]
    # media-ctl -p prints these as "type V4L2 subdev subtype Sensor" and so on.
    assert [(e.media_ctl_type, e.media_ctl_subtype) for e in entities] == [
        ("V4L2 subdev", "Sensor"),
        ("V4L2 subdev", "Unknown"),
        ("Node", "V4L"),
    ]
    assert (entities[2].major, entities[2].minor) == (81, 8)


def test_enum_entities_stops_a_kernel_that_does_not_advance(
    kernel: dict[int, Handler],
) -> None:
    def stuck(fd: int, desc: media.media_entity_desc) -> None:
        desc.id = 1

    kernel[media.MEDIA_IOC_ENUM_ENTITIES] = stuck
    with pytest.raises(OSError, match="asked for an id after 1, got 1"):
        media.enum_entities(3)


def test_enum_entities_raises_other_errors(kernel: dict[int, Handler]) -> None:
    def unplugged(fd: int, desc: media.media_entity_desc) -> None:
        raise _fail(errno.ENODEV)

    kernel[media.MEDIA_IOC_ENUM_ENTITIES] = unplugged
    with pytest.raises(OSError, match="MEDIA_IOC_ENUM_ENTITIES") as info:
        media.enum_entities(3)
    assert info.value.errno == errno.ENODEV


def test_enum_links_fills_pads_and_outgoing_links(kernel: dict[int, Handler]) -> None:
    def enum_links(fd: int, arg: media.media_links_enum) -> None:
        assert arg.entity == 1
        arg.pads[0].entity, arg.pads[0].index, arg.pads[0].flags = 1, 0, media.MEDIA_PAD_FL_SOURCE
        for i, sink in enumerate((5, 8)):
            link = arg.links[i]
            link.source.entity, link.source.index = 1, 0
            link.sink.entity, link.sink.index = sink, 0
            link.flags = media.MEDIA_LNK_FL_ENABLED | media.MEDIA_LNK_FL_IMMUTABLE

    kernel[media.MEDIA_IOC_ENUM_ENTITIES] = _enum_entities
    kernel[media.MEDIA_IOC_ENUM_LINKS] = enum_links
    result = media.enum_links(3, 1)
    assert result.pads == (media.PadDesc(1, 0, media.MEDIA_PAD_FL_SOURCE),)
    assert [link.sink.entity for link in result.links] == [5, 8]
    assert result.links[0].describe() == "1:0 -> 5:0 [ENABLED,IMMUTABLE]"


def test_setup_link_sends_both_pads(kernel: dict[int, Handler]) -> None:
    seen: list[tuple[int, int, int, int, int]] = []

    def setup(fd: int, link: media.media_link_desc) -> None:
        seen.append(
            (link.source.entity, link.source.index, link.sink.entity, link.sink.index, link.flags)
        )

    kernel[media.MEDIA_IOC_SETUP_LINK] = setup
    media.setup_link(3, 5, 1, 12, 0, media.MEDIA_LNK_FL_ENABLED)
    assert seen == [(5, 1, 12, 0, media.MEDIA_LNK_FL_ENABLED)]


def test_device_info(kernel: dict[int, Handler]) -> None:
    def info(fd: int, arg: media.media_device_info) -> None:
        arg.driver, arg.model, arg.bus_info = b"vimc", b"VIMC MDEV", b"platform:vimc"
        arg.media_version = (6 << 16) | (1 << 8) | 55

    kernel[media.MEDIA_IOC_DEVICE_INFO] = info
    result = media.device_info(3)
    assert (result.driver, result.model, result.bus_info) == ("vimc", "VIMC MDEV", "platform:vimc")
    assert result.kernel_version == (6, 1, 55)
    assert media.media_v2_pad_has_index(result.media_version)


def test_link_type_is_a_field_not_a_flag() -> None:
    data = media.Link(1, 2, 3, media.MEDIA_LNK_FL_ENABLED)
    interface = media.Link(1, 2, 3, media.MEDIA_LNK_FL_INTERFACE_LINK)
    assert data.link_type == media.MEDIA_LNK_FL_DATA_LINK and data.enabled
    assert interface.link_type == media.MEDIA_LNK_FL_INTERFACE_LINK and not interface.enabled
    assert interface.describe() == "interface link 2 -> 3 []"


def test_format_flags_keeps_unknown_bits() -> None:
    assert format_flags(0x43, media.MEDIA_PAD_FL_NAMES) == "SINK,SOURCE,0x40"
    assert format_flags(0, media.MEDIA_PAD_FL_NAMES) == ""


# ---------------------------------------------------------------------------------------------
# videodev2


def test_fourcc_round_trip() -> None:
    assert videodev2.fourcc("RGB3") == videodev2.V4L2_PIX_FMT_RGB24 == 0x33424752
    assert videodev2.fourcc(b"BA81") == videodev2.V4L2_PIX_FMT_SBGGR8
    assert videodev2.fourcc_str(videodev2.V4L2_PIX_FMT_SGRBG10DPCM8) == "BD10"
    assert videodev2.fourcc_str(videodev2.fourcc_be("AR15")) == "AR15-BE"
    assert videodev2.V4L2_PIX_FMT_NAMES[videodev2.V4L2_PIX_FMT_ARGB32] == "ARGB32"
    with pytest.raises(ValueError):
        videodev2.fourcc("RGB")


def test_querycap_reads_device_caps(kernel: dict[int, Handler]) -> None:
    def querycap(fd: int, cap: videodev2.v4l2_capability) -> None:
        cap.driver, cap.card, cap.bus_info = b"vimc", b"vimc", b"platform:vimc"
        cap.capabilities = (
            videodev2.V4L2_CAP_VIDEO_CAPTURE
            | videodev2.V4L2_CAP_STREAMING
            | videodev2.V4L2_CAP_IO_MC
            | videodev2.V4L2_CAP_DEVICE_CAPS
        )
        cap.device_caps = (
            videodev2.V4L2_CAP_VIDEO_CAPTURE
            | videodev2.V4L2_CAP_STREAMING
            | videodev2.V4L2_CAP_IO_MC
        )

    kernel[videodev2.VIDIOC_QUERYCAP] = querycap
    cap = videodev2.querycap(3)
    assert cap.has(videodev2.V4L2_CAP_IO_MC)
    assert not cap.has(videodev2.V4L2_CAP_DEVICE_CAPS)
    assert videodev2.caps_str(cap.caps) == "VIDEO_CAPTURE,STREAMING,IO_MC"


def test_enum_fmt_ends_at_einval(kernel: dict[int, Handler]) -> None:
    formats = [videodev2.V4L2_PIX_FMT_RGB24, videodev2.V4L2_PIX_FMT_SRGGB12]

    def enum_fmt(fd: int, desc: videodev2.v4l2_fmtdesc) -> None:
        if desc.index >= len(formats):
            raise _fail(errno.EINVAL)
        desc.pixelformat = formats[desc.index]

    kernel[videodev2.VIDIOC_ENUM_FMT] = enum_fmt
    assert [f.fourcc for f in videodev2.enum_fmt(3)] == ["RGB3", "RG12"]


def test_s_fmt_carries_colorimetry_fields(kernel: dict[int, Handler]) -> None:
    def s_fmt(fd: int, fmt: videodev2.v4l2_format) -> None:
        pix = fmt.fmt.pix
        # The fields v4l2-python3's 32-byte v4l2_pix_format cannot reach.
        assert pix.priv == videodev2.V4L2_PIX_FMT_PRIV_MAGIC
        assert (pix.ycbcr_enc, pix.quantization) == (1, videodev2.V4L2_QUANTIZATION_FULL_RANGE)
        pix.bytesperline, pix.sizeimage = pix.width * 3, pix.width * 3 * pix.height

    kernel[videodev2.VIDIOC_S_FMT] = s_fmt
    wanted = videodev2.PixFormat(
        640,
        480,
        videodev2.V4L2_PIX_FMT_RGB24,
        ycbcr_enc=1,
        quantization=videodev2.V4L2_QUANTIZATION_FULL_RANGE,
    )
    got = videodev2.s_fmt(3, wanted)
    assert isinstance(got, videodev2.PixFormat)
    assert (got.bytesperline, got.sizeimage) == (1920, 1920 * 480)


def test_mplane_format_and_buffers(kernel: dict[int, Handler]) -> None:
    mplane = videodev2.V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE

    def g_fmt(fd: int, fmt: videodev2.v4l2_format) -> None:
        assert fmt.type == mplane
        mp = fmt.fmt.pix_mp
        mp.width, mp.height, mp.num_planes = 64, 48, 2
        mp.plane_fmt[1].sizeimage = 1536

    def dqbuf(fd: int, buf: videodev2.v4l2_buffer) -> None:
        # The kernel writes plane data through buf.m.planes, up to buf.length entries.
        assert buf.length == videodev2.VIDEO_MAX_PLANES
        buf.index, buf.length = 2, 2
        buf.flags = videodev2.V4L2_BUF_FLAG_DONE | videodev2.V4L2_BUF_FLAG_ERROR
        buf.timestamp.tv_sec, buf.timestamp.tv_usec = 5, 250
        buf.m.planes[1].bytesused = 1536

    kernel[videodev2.VIDIOC_G_FMT] = g_fmt
    kernel[videodev2.VIDIOC_DQBUF] = dqbuf
    fmt = videodev2.g_fmt(3, mplane)
    assert isinstance(fmt, videodev2.PixFormatMplane)
    assert fmt.planes == (videodev2.PlaneFormat(0, 0), videodev2.PlaneFormat(1536, 0))
    buf = videodev2.dqbuf(3, mplane)
    assert buf.index == 2 and [p.bytesused for p in buf.planes] == [0, 1536]
    assert buf.timestamp_ns == 5_000_250_000
    assert buf.flags_str == "DONE,ERROR"


def test_qbuf_dmabuf_puts_the_fd_in_m(kernel: dict[int, Handler]) -> None:
    seen = []

    def qbuf(fd: int, buf: videodev2.v4l2_buffer) -> None:
        seen.append((buf.index, buf.memory, buf.m.fd))
        buf.flags = videodev2.V4L2_BUF_FLAG_QUEUED

    kernel[videodev2.VIDIOC_QBUF] = qbuf
    result = videodev2.qbuf(3, 1, memory=videodev2.V4L2_MEMORY_DMABUF, m=42)
    assert seen == [(1, videodev2.V4L2_MEMORY_DMABUF, 42)]
    assert result.m == 42


def test_reqbufs_expbuf_and_stream(kernel: dict[int, Handler]) -> None:
    calls: list[str] = []

    def reqbufs(fd: int, req: videodev2.v4l2_requestbuffers) -> None:
        req.count = min(req.count, 3)
        req.capabilities = videodev2.V4L2_BUF_CAP_SUPPORTS_MMAP
        calls.append("REQBUFS")

    def expbuf(fd: int, exp: videodev2.v4l2_exportbuffer) -> None:
        assert exp.flags & os.O_CLOEXEC
        exp.fd = 17

    def stream(name: str) -> Handler:
        def handler(fd: int, arg: ctypes.c_int) -> None:
            assert arg.value == videodev2.V4L2_BUF_TYPE_VIDEO_CAPTURE
            calls.append(name)

        return handler

    kernel[videodev2.VIDIOC_REQBUFS] = reqbufs
    kernel[videodev2.VIDIOC_EXPBUF] = expbuf
    kernel[videodev2.VIDIOC_STREAMON] = stream("STREAMON")
    kernel[videodev2.VIDIOC_STREAMOFF] = stream("STREAMOFF")
    assert videodev2.reqbufs(3, 8) == videodev2.RequestBuffers(
        3, videodev2.V4L2_BUF_CAP_SUPPORTS_MMAP, 0
    )
    assert videodev2.expbuf(3, 0) == 17
    videodev2.streamon(3)
    videodev2.streamoff(3)
    assert calls == ["REQBUFS", "STREAMON", "STREAMOFF"]


def test_enum_framesizes_stepwise_reads_max_width(kernel: dict[int, Handler]) -> None:
    def enum_sizes(fd: int, size: videodev2.v4l2_frmsizeenum) -> None:
        if size.index:
            raise AssertionError("a stepwise range has only index 0")
        size.type = videodev2.V4L2_FRMSIZE_TYPE_CONTINUOUS
        size.stepwise.min_width, size.stepwise.max_width = 16, 4096
        size.stepwise.step_width = size.stepwise.step_height = 1
        size.stepwise.min_height, size.stepwise.max_height = 16, 2160

    kernel[videodev2.VIDIOC_ENUM_FRAMESIZES] = enum_sizes
    (size,) = videodev2.enum_framesizes(3, videodev2.V4L2_PIX_FMT_RGB24)
    assert isinstance(size, videodev2.FrameSizeStepwise)
    assert (size.max_width, size.max_height) == (4096, 2160)


# ---------------------------------------------------------------------------------------------
# subdev


def test_subdev_formats_and_enumerations(kernel: dict[int, Handler]) -> None:
    codes = [subdev.MEDIA_BUS_FMT_RGB888_1X24, subdev.MEDIA_BUS_FMT_SGRBG8_1X8]

    def enum_codes(fd: int, arg: subdev.v4l2_subdev_mbus_code_enum) -> None:
        assert (arg.pad, arg.which) == (0, subdev.V4L2_SUBDEV_FORMAT_TRY)
        if arg.index >= len(codes):
            raise _fail(errno.EINVAL)
        arg.code = codes[arg.index]

    def s_fmt(fd: int, arg: subdev.v4l2_subdev_format) -> None:
        assert (arg.pad, arg.which) == (1, subdev.V4L2_SUBDEV_FORMAT_ACTIVE)
        arg.format.width = min(arg.format.width, 4096)

    def enum_sizes(fd: int, arg: subdev.v4l2_subdev_frame_size_enum) -> None:
        if arg.index:
            raise _fail(errno.EINVAL)
        arg.min_width, arg.max_width, arg.min_height, arg.max_height = 16, 4096, 16, 2160

    kernel[subdev.VIDIOC_SUBDEV_ENUM_MBUS_CODE] = enum_codes
    kernel[subdev.VIDIOC_SUBDEV_S_FMT] = s_fmt
    kernel[subdev.VIDIOC_SUBDEV_ENUM_FRAME_SIZE] = enum_sizes
    names = [c.name for c in subdev.enum_mbus_codes(3, 0, subdev.V4L2_SUBDEV_FORMAT_TRY)]
    assert names == ["RGB888_1X24", "SGRBG8_1X8"]
    got = subdev.s_fmt(3, 1, subdev.MbusFormat(8000, 480, subdev.MEDIA_BUS_FMT_SGRBG8_1X8))
    assert (got.width, got.code_name) == (4096, "SGRBG8_1X8")
    assert subdev.enum_frame_sizes(3, 0, codes[0]) == [subdev.FrameSizeRange(16, 4096, 16, 2160)]
    assert subdev.mbus_code_name(0xDEAD) == "0xdead"
