"""<linux/media.h>: the media controller API on /dev/media*, in ctypes.

The ctypes classes carry the C struct names and C field names, so the layout test can
compare them with the real header field by field.  The functions below them do one ioctl
each (g_topology does two) and return plain frozen dataclasses, so callers never hold a
ctypes buffer whose memory the kernel may still be writing.
"""

from __future__ import annotations

import ctypes
import errno
from dataclasses import dataclass

from harness.target.uapi import ioc
from harness.target.uapi.flags import format_flags, format_value

# ---------------------------------------------------------------------------------------------
# Structures

u8 = ctypes.c_uint8
u16 = ctypes.c_uint16
u32 = ctypes.c_uint32
u64 = ctypes.c_uint64


class media_device_info(ctypes.Structure):
    _fields_ = [
        ("driver", ctypes.c_char * 16),
        ("model", ctypes.c_char * 32),
        ("serial", ctypes.c_char * 40),
        ("bus_info", ctypes.c_char * 32),
        ("media_version", u32),
        ("hw_revision", u32),
        ("driver_version", u32),
        ("reserved", u32 * 31),
    ]


# The members of media_entity_desc's anonymous union are structs without a type name in C;
# the private classes below exist only to give ctypes something to lay out.
class _media_entity_desc_dev(ctypes.Structure):
    _fields_ = [("major", u32), ("minor", u32)]


class _media_entity_desc_alsa(ctypes.Structure):
    _fields_ = [("card", u32), ("device", u32), ("subdevice", u32)]


class _media_entity_desc_u(ctypes.Union):
    _fields_ = [
        ("dev", _media_entity_desc_dev),
        ("alsa", _media_entity_desc_alsa),
        ("v4l", _media_entity_desc_dev),
        ("fb", _media_entity_desc_dev),
        ("dvb", ctypes.c_int),
        ("raw", u8 * 184),
    ]


class media_entity_desc(ctypes.Structure):
    _anonymous_ = ("_u",)
    _fields_ = [
        ("id", u32),
        ("name", ctypes.c_char * 32),
        ("type", u32),
        ("revision", u32),
        ("flags", u32),
        ("group_id", u32),
        ("pads", u16),
        ("links", u16),
        ("reserved", u32 * 4),
        ("_u", _media_entity_desc_u),
    ]


class media_pad_desc(ctypes.Structure):
    _fields_ = [
        ("entity", u32),
        ("index", u16),
        ("flags", u32),
        ("reserved", u32 * 2),
    ]


class media_link_desc(ctypes.Structure):
    _fields_ = [
        ("source", media_pad_desc),
        ("sink", media_pad_desc),
        ("flags", u32),
        ("reserved", u32 * 2),
    ]


class media_links_enum(ctypes.Structure):
    _fields_ = [
        ("entity", u32),
        ("pads", ctypes.POINTER(media_pad_desc)),
        ("links", ctypes.POINTER(media_link_desc)),
        ("reserved", u32 * 4),
    ]


# The media_v2_* structs are __attribute__((packed)) in C.  None of them has padding today,
# but they are handed to the kernel as arrays, so the element size must stay exactly the C
# one if a future field ever leaves a hole.
class media_v2_entity(ctypes.Structure):
    _pack_ = 1
    _fields_ = [
        ("id", u32),
        ("name", ctypes.c_char * 64),
        ("function", u32),
        ("flags", u32),
        ("reserved", u32 * 5),
    ]


class media_v2_intf_devnode(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("major", u32), ("minor", u32)]


class _media_v2_interface_u(ctypes.Union):
    _fields_ = [("devnode", media_v2_intf_devnode), ("raw", u32 * 16)]


class media_v2_interface(ctypes.Structure):
    _pack_ = 1
    _anonymous_ = ("_u",)
    _fields_ = [
        ("id", u32),
        ("intf_type", u32),
        ("flags", u32),
        ("reserved", u32 * 9),
        ("_u", _media_v2_interface_u),
    ]


class media_v2_pad(ctypes.Structure):
    _pack_ = 1
    _fields_ = [
        ("id", u32),
        ("entity_id", u32),
        ("flags", u32),
        ("index", u32),
        ("reserved", u32 * 4),
    ]


class media_v2_link(ctypes.Structure):
    _pack_ = 1
    _fields_ = [
        ("id", u32),
        ("source_id", u32),
        ("sink_id", u32),
        ("flags", u32),
        ("reserved", u32 * 6),
    ]


class media_v2_topology(ctypes.Structure):
    _pack_ = 1
    _fields_ = [
        ("topology_version", u64),
        ("num_entities", u32),
        ("reserved1", u32),
        ("ptr_entities", u64),
        ("num_interfaces", u32),
        ("reserved2", u32),
        ("ptr_interfaces", u64),
        ("num_pads", u32),
        ("reserved3", u32),
        ("ptr_pads", u64),
        ("num_links", u32),
        ("reserved4", u32),
        ("ptr_links", u64),
    ]


# ---------------------------------------------------------------------------------------------
# ioctls

MEDIA_IOC_DEVICE_INFO = ioc.IOWR("|", 0x00, media_device_info)
MEDIA_IOC_ENUM_ENTITIES = ioc.IOWR("|", 0x01, media_entity_desc)
MEDIA_IOC_ENUM_LINKS = ioc.IOWR("|", 0x02, media_links_enum)
MEDIA_IOC_SETUP_LINK = ioc.IOWR("|", 0x03, media_link_desc)
MEDIA_IOC_G_TOPOLOGY = ioc.IOWR("|", 0x04, media_v2_topology)
MEDIA_IOC_REQUEST_ALLOC = ioc.IOR("|", 0x05, ctypes.c_int)
MEDIA_REQUEST_IOC_QUEUE = ioc.IO("|", 0x80)
MEDIA_REQUEST_IOC_REINIT = ioc.IO("|", 0x81)

# ---------------------------------------------------------------------------------------------
# Entity functions

MEDIA_ENT_F_BASE = 0x00000000
MEDIA_ENT_F_OLD_BASE = 0x00010000
MEDIA_ENT_F_OLD_SUBDEV_BASE = 0x00020000

MEDIA_ENT_F_UNKNOWN = MEDIA_ENT_F_BASE
MEDIA_ENT_F_V4L2_SUBDEV_UNKNOWN = MEDIA_ENT_F_OLD_SUBDEV_BASE

MEDIA_ENT_F_DTV_DEMOD = MEDIA_ENT_F_BASE + 0x00001
MEDIA_ENT_F_TS_DEMUX = MEDIA_ENT_F_BASE + 0x00002
MEDIA_ENT_F_DTV_CA = MEDIA_ENT_F_BASE + 0x00003
MEDIA_ENT_F_DTV_NET_DECAP = MEDIA_ENT_F_BASE + 0x00004

MEDIA_ENT_F_IO_V4L = MEDIA_ENT_F_OLD_BASE + 1
MEDIA_ENT_F_IO_DTV = MEDIA_ENT_F_BASE + 0x01001
MEDIA_ENT_F_IO_VBI = MEDIA_ENT_F_BASE + 0x01002
MEDIA_ENT_F_IO_SWRADIO = MEDIA_ENT_F_BASE + 0x01003

MEDIA_ENT_F_CAM_SENSOR = MEDIA_ENT_F_OLD_SUBDEV_BASE + 1
MEDIA_ENT_F_FLASH = MEDIA_ENT_F_OLD_SUBDEV_BASE + 2
MEDIA_ENT_F_LENS = MEDIA_ENT_F_OLD_SUBDEV_BASE + 3

MEDIA_ENT_F_TUNER = MEDIA_ENT_F_OLD_SUBDEV_BASE + 5

MEDIA_ENT_F_IF_VID_DECODER = MEDIA_ENT_F_BASE + 0x02001
MEDIA_ENT_F_IF_AUD_DECODER = MEDIA_ENT_F_BASE + 0x02002

MEDIA_ENT_F_AUDIO_CAPTURE = MEDIA_ENT_F_BASE + 0x03001
MEDIA_ENT_F_AUDIO_PLAYBACK = MEDIA_ENT_F_BASE + 0x03002
MEDIA_ENT_F_AUDIO_MIXER = MEDIA_ENT_F_BASE + 0x03003

MEDIA_ENT_F_PROC_VIDEO_COMPOSER = MEDIA_ENT_F_BASE + 0x4001
MEDIA_ENT_F_PROC_VIDEO_PIXEL_FORMATTER = MEDIA_ENT_F_BASE + 0x4002
MEDIA_ENT_F_PROC_VIDEO_PIXEL_ENC_CONV = MEDIA_ENT_F_BASE + 0x4003
MEDIA_ENT_F_PROC_VIDEO_LUT = MEDIA_ENT_F_BASE + 0x4004
MEDIA_ENT_F_PROC_VIDEO_SCALER = MEDIA_ENT_F_BASE + 0x4005
MEDIA_ENT_F_PROC_VIDEO_STATISTICS = MEDIA_ENT_F_BASE + 0x4006
MEDIA_ENT_F_PROC_VIDEO_ENCODER = MEDIA_ENT_F_BASE + 0x4007
MEDIA_ENT_F_PROC_VIDEO_DECODER = MEDIA_ENT_F_BASE + 0x4008
MEDIA_ENT_F_PROC_VIDEO_ISP = MEDIA_ENT_F_BASE + 0x4009

MEDIA_ENT_F_VID_MUX = MEDIA_ENT_F_BASE + 0x5001
MEDIA_ENT_F_VID_IF_BRIDGE = MEDIA_ENT_F_BASE + 0x5002

MEDIA_ENT_F_ATV_DECODER = MEDIA_ENT_F_OLD_SUBDEV_BASE + 4
MEDIA_ENT_F_DV_DECODER = MEDIA_ENT_F_BASE + 0x6001
MEDIA_ENT_F_DV_ENCODER = MEDIA_ENT_F_BASE + 0x6002

MEDIA_ENT_F_DTV_DECODER = MEDIA_ENT_F_DV_DECODER

# Function names as v4l2-ctl and v4l2-compliance print them ("Entity Function"); media-ctl
# itself prints the legacy type/subtype instead, see media_ctl_type() below.
MEDIA_ENT_F_NAMES: dict[int, str] = {
    MEDIA_ENT_F_UNKNOWN: "Unknown",
    MEDIA_ENT_F_V4L2_SUBDEV_UNKNOWN: "Unknown V4L2 Sub-Device",
    MEDIA_ENT_F_DTV_DEMOD: "Digital TV Demodulator",
    MEDIA_ENT_F_TS_DEMUX: "Transport Stream Demuxer",
    MEDIA_ENT_F_DTV_CA: "Digital TV Conditional Access",
    MEDIA_ENT_F_DTV_NET_DECAP: "Digital TV Network ULE/MLE Desencapsulation",
    MEDIA_ENT_F_IO_V4L: "V4L2 I/O",
    MEDIA_ENT_F_IO_DTV: "Digital TV I/O",
    MEDIA_ENT_F_IO_VBI: "VBI I/O",
    MEDIA_ENT_F_IO_SWRADIO: "Software Radio I/O",
    MEDIA_ENT_F_CAM_SENSOR: "Camera Sensor",
    MEDIA_ENT_F_FLASH: "Flash Controller",
    MEDIA_ENT_F_LENS: "Lens Controller",
    MEDIA_ENT_F_ATV_DECODER: "Analog Video Decoder",
    MEDIA_ENT_F_DV_DECODER: "Digital Video Decoder",
    MEDIA_ENT_F_DV_ENCODER: "Digital Video Encoder",
    MEDIA_ENT_F_TUNER: "Tuner",
    MEDIA_ENT_F_IF_VID_DECODER: "IF-PLL Video Decoder",
    MEDIA_ENT_F_IF_AUD_DECODER: "IF-PLL Audio Decoder",
    MEDIA_ENT_F_AUDIO_CAPTURE: "Audio Capture",
    MEDIA_ENT_F_AUDIO_PLAYBACK: "Audio Playback",
    MEDIA_ENT_F_AUDIO_MIXER: "Audio Mixer",
    MEDIA_ENT_F_PROC_VIDEO_COMPOSER: "Video Composer",
    MEDIA_ENT_F_PROC_VIDEO_PIXEL_FORMATTER: "Video Pixel Formatter",
    MEDIA_ENT_F_PROC_VIDEO_PIXEL_ENC_CONV: "Video Pixel Encoding Converter",
    MEDIA_ENT_F_PROC_VIDEO_LUT: "Video Look-Up Table",
    MEDIA_ENT_F_PROC_VIDEO_SCALER: "Video Scaler",
    MEDIA_ENT_F_PROC_VIDEO_STATISTICS: "Video Statistics",
    MEDIA_ENT_F_PROC_VIDEO_ENCODER: "Video Encoder",
    MEDIA_ENT_F_PROC_VIDEO_DECODER: "Video Decoder",
    MEDIA_ENT_F_PROC_VIDEO_ISP: "Image Signal Processor",
    MEDIA_ENT_F_VID_MUX: "Video Muxer",
    MEDIA_ENT_F_VID_IF_BRIDGE: "Video Interface Bridge",
}

# Entity flags
MEDIA_ENT_FL_DEFAULT = 1 << 0
MEDIA_ENT_FL_CONNECTOR = 1 << 1

# OR'd into an entity id for MEDIA_IOC_ENUM_ENTITIES: "the first entity after this id".
MEDIA_ENT_ID_FLAG_NEXT = 1 << 31

# Legacy entity types, still what MEDIA_IOC_ENUM_ENTITIES puts in media_entity_desc.type:
# the kernel maps every function outside the two old ranges to one of the *_UNKNOWN types
# there, so vimc's debayer and scaler show up as "V4L2 subdev" / "Unknown".
MEDIA_ENT_TYPE_SHIFT = 16
MEDIA_ENT_TYPE_MASK = 0x00FF0000
MEDIA_ENT_SUBTYPE_MASK = 0x0000FFFF

MEDIA_ENT_T_DEVNODE_UNKNOWN = MEDIA_ENT_F_OLD_BASE | MEDIA_ENT_SUBTYPE_MASK
MEDIA_ENT_T_DEVNODE = MEDIA_ENT_F_OLD_BASE
MEDIA_ENT_T_DEVNODE_V4L = MEDIA_ENT_F_IO_V4L
MEDIA_ENT_T_DEVNODE_FB = MEDIA_ENT_F_OLD_BASE + 2
MEDIA_ENT_T_DEVNODE_ALSA = MEDIA_ENT_F_OLD_BASE + 3
MEDIA_ENT_T_DEVNODE_DVB = MEDIA_ENT_F_OLD_BASE + 4
MEDIA_ENT_T_UNKNOWN = MEDIA_ENT_F_UNKNOWN
MEDIA_ENT_T_V4L2_VIDEO = MEDIA_ENT_F_IO_V4L
MEDIA_ENT_T_V4L2_SUBDEV = MEDIA_ENT_F_V4L2_SUBDEV_UNKNOWN
MEDIA_ENT_T_V4L2_SUBDEV_SENSOR = MEDIA_ENT_F_CAM_SENSOR
MEDIA_ENT_T_V4L2_SUBDEV_FLASH = MEDIA_ENT_F_FLASH
MEDIA_ENT_T_V4L2_SUBDEV_LENS = MEDIA_ENT_F_LENS
MEDIA_ENT_T_V4L2_SUBDEV_DECODER = MEDIA_ENT_F_ATV_DECODER
MEDIA_ENT_T_V4L2_SUBDEV_TUNER = MEDIA_ENT_F_TUNER

# media-ctl's own tables (media_entity_type_to_string / media_entity_subtype_to_string), so
# that "type V4L2 subdev subtype Sensor" reads the same in a report as in media-ctl -p.
MEDIA_CTL_TYPE_NAMES: dict[int, str] = {
    MEDIA_ENT_T_DEVNODE: "Node",
    MEDIA_ENT_T_V4L2_SUBDEV: "V4L2 subdev",
}
MEDIA_CTL_NODE_SUBTYPE_NAMES = ("Unknown", "V4L", "FB", "ALSA", "DVB")
MEDIA_CTL_SUBDEV_SUBTYPE_NAMES = ("Unknown", "Sensor", "Flash", "Lens", "Decoder", "Tuner")


def media_ctl_type(type_: int) -> str:
    """media-ctl's name for the type of a legacy media_entity_desc.type ("V4L2 subdev")."""
    return MEDIA_CTL_TYPE_NAMES.get(type_ & MEDIA_ENT_TYPE_MASK, "Unknown")


def media_ctl_subtype(type_: int) -> str:
    """media-ctl's name for the subtype of a legacy media_entity_desc.type ("Sensor")."""
    subtype = type_ & MEDIA_ENT_SUBTYPE_MASK
    kind = type_ & MEDIA_ENT_TYPE_MASK
    names: tuple[str, ...]
    if kind == MEDIA_ENT_T_DEVNODE:
        names = MEDIA_CTL_NODE_SUBTYPE_NAMES
    elif kind == MEDIA_ENT_T_V4L2_SUBDEV:
        names = MEDIA_CTL_SUBDEV_SUBTYPE_NAMES
    else:
        return MEDIA_CTL_NODE_SUBTYPE_NAMES[0]
    return names[subtype] if subtype < len(names) else names[0]


def function_name(function: int) -> str:
    """Human name of an entity function (MEDIA_ENT_F_*)."""
    return format_value(function, MEDIA_ENT_F_NAMES)


# ---------------------------------------------------------------------------------------------
# Pads and links

MEDIA_PAD_FL_SINK = 1 << 0
MEDIA_PAD_FL_SOURCE = 1 << 1
MEDIA_PAD_FL_MUST_CONNECT = 1 << 2

MEDIA_PAD_FL_NAMES: dict[int, str] = {
    MEDIA_PAD_FL_SINK: "SINK",
    MEDIA_PAD_FL_SOURCE: "SOURCE",
    MEDIA_PAD_FL_MUST_CONNECT: "MUST_CONNECT",
}

MEDIA_LNK_FL_ENABLED = 1 << 0
MEDIA_LNK_FL_IMMUTABLE = 1 << 1
MEDIA_LNK_FL_DYNAMIC = 1 << 2

# The top four bits are not flags but the link's type; compare (flags & LINK_TYPE) with the
# *_LINK values, never test them as bits (DATA_LINK is 0).  In C, (0xf << 28) is an int and
# comes out negative; as a mask for the __u32 flags it is 0xf0000000, the value used here.
MEDIA_LNK_FL_LINK_TYPE = 0xF << 28
MEDIA_LNK_FL_DATA_LINK = 0 << 28
MEDIA_LNK_FL_INTERFACE_LINK = 1 << 28
MEDIA_LNK_FL_ANCILLARY_LINK = 2 << 28

MEDIA_LNK_FL_NAMES: dict[int, str] = {
    MEDIA_LNK_FL_ENABLED: "ENABLED",
    MEDIA_LNK_FL_IMMUTABLE: "IMMUTABLE",
    MEDIA_LNK_FL_DYNAMIC: "DYNAMIC",
}
MEDIA_LNK_TYPE_NAMES: dict[int, str] = {
    MEDIA_LNK_FL_DATA_LINK: "data",
    MEDIA_LNK_FL_INTERFACE_LINK: "interface",
    MEDIA_LNK_FL_ANCILLARY_LINK: "ancillary",
}

# ---------------------------------------------------------------------------------------------
# Interfaces

MEDIA_INTF_T_DVB_BASE = 0x00000100
MEDIA_INTF_T_V4L_BASE = 0x00000200
MEDIA_INTF_T_ALSA_BASE = 0x00000300

MEDIA_INTF_T_DVB_FE = MEDIA_INTF_T_DVB_BASE
MEDIA_INTF_T_DVB_DEMUX = MEDIA_INTF_T_DVB_BASE + 1
MEDIA_INTF_T_DVB_DVR = MEDIA_INTF_T_DVB_BASE + 2
MEDIA_INTF_T_DVB_CA = MEDIA_INTF_T_DVB_BASE + 3
MEDIA_INTF_T_DVB_NET = MEDIA_INTF_T_DVB_BASE + 4

MEDIA_INTF_T_V4L_VIDEO = MEDIA_INTF_T_V4L_BASE
MEDIA_INTF_T_V4L_VBI = MEDIA_INTF_T_V4L_BASE + 1
MEDIA_INTF_T_V4L_RADIO = MEDIA_INTF_T_V4L_BASE + 2
MEDIA_INTF_T_V4L_SUBDEV = MEDIA_INTF_T_V4L_BASE + 3
MEDIA_INTF_T_V4L_SWRADIO = MEDIA_INTF_T_V4L_BASE + 4
MEDIA_INTF_T_V4L_TOUCH = MEDIA_INTF_T_V4L_BASE + 5

MEDIA_INTF_T_ALSA_PCM_CAPTURE = MEDIA_INTF_T_ALSA_BASE
MEDIA_INTF_T_ALSA_PCM_PLAYBACK = MEDIA_INTF_T_ALSA_BASE + 1
MEDIA_INTF_T_ALSA_CONTROL = MEDIA_INTF_T_ALSA_BASE + 2
MEDIA_INTF_T_ALSA_COMPRESS = MEDIA_INTF_T_ALSA_BASE + 3
MEDIA_INTF_T_ALSA_RAWMIDI = MEDIA_INTF_T_ALSA_BASE + 4
MEDIA_INTF_T_ALSA_HWDEP = MEDIA_INTF_T_ALSA_BASE + 5
MEDIA_INTF_T_ALSA_SEQUENCER = MEDIA_INTF_T_ALSA_BASE + 6
MEDIA_INTF_T_ALSA_TIMER = MEDIA_INTF_T_ALSA_BASE + 7

MEDIA_INTF_T_NAMES: dict[int, str] = {
    MEDIA_INTF_T_DVB_FE: "DVB Front End",
    MEDIA_INTF_T_DVB_DEMUX: "DVB Demuxer",
    MEDIA_INTF_T_DVB_DVR: "DVB DVR",
    MEDIA_INTF_T_DVB_CA: "DVB Conditional Access",
    MEDIA_INTF_T_DVB_NET: "DVB Net",
    MEDIA_INTF_T_V4L_VIDEO: "V4L Video",
    MEDIA_INTF_T_V4L_VBI: "V4L VBI",
    MEDIA_INTF_T_V4L_RADIO: "V4L Radio",
    MEDIA_INTF_T_V4L_SUBDEV: "V4L Sub-Device",
    MEDIA_INTF_T_V4L_SWRADIO: "V4L Software Defined Radio",
    MEDIA_INTF_T_V4L_TOUCH: "V4L Touch",
    MEDIA_INTF_T_ALSA_PCM_CAPTURE: "ALSA PCM Capture",
    MEDIA_INTF_T_ALSA_PCM_PLAYBACK: "ALSA PCM Playback",
    MEDIA_INTF_T_ALSA_CONTROL: "ALSA Control",
    MEDIA_INTF_T_ALSA_COMPRESS: "ALSA Compress",
    MEDIA_INTF_T_ALSA_RAWMIDI: "ALSA Raw MIDI",
    MEDIA_INTF_T_ALSA_HWDEP: "ALSA HWDEP",
    MEDIA_INTF_T_ALSA_SEQUENCER: "ALSA Sequencer",
    MEDIA_INTF_T_ALSA_TIMER: "ALSA Timer",
}

MEDIA_API_VERSION = (0 << 16) | (1 << 8) | 0


def _kernel_version(major: int, minor: int, patch: int) -> int:
    return (major << 16) | (minor << 8) | patch


def media_v2_entity_has_flags(media_version: int) -> bool:
    """MEDIA_V2_ENTITY_HAS_FLAGS: media_v2_entity.flags is filled in (Linux 4.19 and later)."""
    return media_version >= _kernel_version(4, 19, 0)


def media_v2_pad_has_index(media_version: int) -> bool:
    """MEDIA_V2_PAD_HAS_INDEX: media_v2_pad.index is filled in (Linux 4.19 and later)."""
    return media_version >= _kernel_version(4, 19, 0)


# ---------------------------------------------------------------------------------------------
# Typed calls


def _text(raw: bytes) -> str:
    # The kernel fills these with strscpy, but a driver's model or serial string is not
    # promised to be UTF-8; a report must still be written.
    return raw.decode("utf-8", "replace")


def _version_tuple(code: int) -> tuple[int, int, int]:
    return (code >> 16) & 0xFF, (code >> 8) & 0xFF, code & 0xFF


@dataclass(frozen=True)
class DeviceInfo:
    driver: str
    model: str
    serial: str
    bus_info: str
    media_version: int
    hw_revision: int
    driver_version: int

    @property
    def kernel_version(self) -> tuple[int, int, int]:
        """media_version as (major, minor, patch); the kernel sets it to LINUX_VERSION_CODE."""
        return _version_tuple(self.media_version)


def device_info(fd: int) -> DeviceInfo:
    """MEDIA_IOC_DEVICE_INFO."""
    info = media_device_info()
    ioc.ioctl(fd, MEDIA_IOC_DEVICE_INFO, info, "MEDIA_IOC_DEVICE_INFO")
    return DeviceInfo(
        driver=_text(info.driver),
        model=_text(info.model),
        serial=_text(info.serial),
        bus_info=_text(info.bus_info),
        media_version=info.media_version,
        hw_revision=info.hw_revision,
        driver_version=info.driver_version,
    )


@dataclass(frozen=True)
class Entity:
    id: int
    name: str
    function: int
    flags: int

    @property
    def function_name(self) -> str:
        return function_name(self.function)


@dataclass(frozen=True)
class Interface:
    id: int
    intf_type: int
    flags: int
    major: int
    minor: int

    @property
    def type_name(self) -> str:
        return format_value(self.intf_type, MEDIA_INTF_T_NAMES)


@dataclass(frozen=True)
class Pad:
    id: int
    entity_id: int
    flags: int
    index: int

    @property
    def is_sink(self) -> bool:
        return bool(self.flags & MEDIA_PAD_FL_SINK)

    @property
    def is_source(self) -> bool:
        return bool(self.flags & MEDIA_PAD_FL_SOURCE)


@dataclass(frozen=True)
class Link:
    """A topology link.  For data links source_id and sink_id are pad ids; for interface
    links source_id is the interface id and sink_id the entity id."""

    id: int
    source_id: int
    sink_id: int
    flags: int

    @property
    def link_type(self) -> int:
        return self.flags & MEDIA_LNK_FL_LINK_TYPE

    @property
    def enabled(self) -> bool:
        return bool(self.flags & MEDIA_LNK_FL_ENABLED)

    @property
    def immutable(self) -> bool:
        return bool(self.flags & MEDIA_LNK_FL_IMMUTABLE)

    def describe(self) -> str:
        kind = format_value(self.link_type, MEDIA_LNK_TYPE_NAMES)
        flags = format_flags(self.flags & ~MEDIA_LNK_FL_LINK_TYPE, MEDIA_LNK_FL_NAMES)
        return f"{kind} link {self.source_id} -> {self.sink_id} [{flags}]"


@dataclass(frozen=True)
class Topology:
    version: int
    entities: tuple[Entity, ...]
    interfaces: tuple[Interface, ...]
    pads: tuple[Pad, ...]
    links: tuple[Link, ...]

    def entity(self, name: str) -> Entity:
        """The entity with this name; KeyError if there is none."""
        for entity in self.entities:
            if entity.name == name:
                return entity
        raise KeyError(name)

    def entity_pads(self, entity_id: int) -> list[Pad]:
        return sorted((p for p in self.pads if p.entity_id == entity_id), key=lambda p: p.index)

    def data_links(self) -> list[Link]:
        return [link for link in self.links if link.link_type == MEDIA_LNK_FL_DATA_LINK]

    def interface_of(self, entity_id: int) -> Interface | None:
        """The device node interface linked to an entity (its /dev/video* or
        /dev/v4l-subdev*), or None."""
        by_id = {intf.id: intf for intf in self.interfaces}
        for link in self.links:
            if link.link_type == MEDIA_LNK_FL_INTERFACE_LINK and link.sink_id == entity_id:
                intf = by_id.get(link.source_id)
                if intf is not None:
                    return intf
        return None


def _array(ctype: type[ctypes.Structure], count: int) -> tuple[ctypes.Array | None, int]:
    if count == 0:
        # A null pointer asks the kernel for the count only.
        return None, 0
    array = (ctype * count)()
    return array, ctypes.addressof(array)


def g_topology(fd: int, attempts: int = 8) -> Topology:
    """MEDIA_IOC_G_TOPOLOGY, the whole graph as one consistent snapshot.

    The first call (null pointers) returns the counts and topology_version; the second fills
    arrays of those sizes.  If the graph changed in between, the kernel either fails the
    second call with ENOSPC (it grew) or returns another topology_version (it changed); both
    mean the arrays describe no single state of the graph, so the dance starts over.  That
    is routine here, because tests unbind drivers while this runs.
    """
    name = "MEDIA_IOC_G_TOPOLOGY"
    for _ in range(attempts):
        counts = media_v2_topology()
        ioc.ioctl(fd, MEDIA_IOC_G_TOPOLOGY, counts, name)

        entities, ptr_entities = _array(media_v2_entity, counts.num_entities)
        interfaces, ptr_interfaces = _array(media_v2_interface, counts.num_interfaces)
        pads, ptr_pads = _array(media_v2_pad, counts.num_pads)
        links, ptr_links = _array(media_v2_link, counts.num_links)
        topo = media_v2_topology(
            num_entities=counts.num_entities,
            ptr_entities=ptr_entities,
            num_interfaces=counts.num_interfaces,
            ptr_interfaces=ptr_interfaces,
            num_pads=counts.num_pads,
            ptr_pads=ptr_pads,
            num_links=counts.num_links,
            ptr_links=ptr_links,
        )
        try:
            ioc.ioctl(fd, MEDIA_IOC_G_TOPOLOGY, topo, name)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                continue
            raise
        if topo.topology_version != counts.topology_version:
            continue
        # A shrinking graph also bumps the version, so from here the counts are the ones
        # the arrays were sized for.
        return Topology(
            version=topo.topology_version,
            entities=tuple(
                Entity(e.id, _text(e.name), e.function, e.flags) for e in (entities or ())
            ),
            interfaces=tuple(
                Interface(i.id, i.intf_type, i.flags, i.devnode.major, i.devnode.minor)
                for i in (interfaces or ())
            ),
            pads=tuple(Pad(p.id, p.entity_id, p.flags, p.index) for p in (pads or ())),
            links=tuple(Link(k.id, k.source_id, k.sink_id, k.flags) for k in (links or ())),
        )
    raise OSError(errno.EAGAIN, f"{name}: topology changed during each of {attempts} reads")


@dataclass(frozen=True)
class EntityDesc:
    """A legacy media_entity_desc.  type is the legacy type (see media_ctl_type), not the
    function; major/minor are the device node, 0/0 for entities without one."""

    id: int
    name: str
    type: int
    flags: int
    pads: int
    links: int
    major: int
    minor: int

    @property
    def media_ctl_type(self) -> str:
        return media_ctl_type(self.type)

    @property
    def media_ctl_subtype(self) -> str:
        return media_ctl_subtype(self.type)


def _entity_desc(desc: media_entity_desc) -> EntityDesc:
    return EntityDesc(
        id=desc.id,
        name=_text(desc.name),
        type=desc.type,
        flags=desc.flags,
        pads=desc.pads,
        links=desc.links,
        major=desc.dev.major,
        minor=desc.dev.minor,
    )


def entity_desc(fd: int, entity_id: int) -> EntityDesc:
    """MEDIA_IOC_ENUM_ENTITIES for exactly this id (EINVAL if there is no such entity)."""
    desc = media_entity_desc(id=entity_id)
    ioc.ioctl(fd, MEDIA_IOC_ENUM_ENTITIES, desc, "MEDIA_IOC_ENUM_ENTITIES")
    return _entity_desc(desc)


def enum_entities(fd: int) -> list[EntityDesc]:
    """All entities, in id order, by MEDIA_IOC_ENUM_ENTITIES with MEDIA_ENT_ID_FLAG_NEXT.

    The walk ends at EINVAL, which the kernel returns when there is no entity with a
    larger id; every other error is raised.
    """
    found: list[EntityDesc] = []
    last = 0
    while True:
        desc = media_entity_desc(id=last | MEDIA_ENT_ID_FLAG_NEXT)
        try:
            ioc.ioctl(fd, MEDIA_IOC_ENUM_ENTITIES, desc, "MEDIA_IOC_ENUM_ENTITIES")
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                return found
            raise
        if desc.id <= last:
            # The kernel promised a larger id; looping on it would never end.
            raise OSError(
                errno.EPROTO,
                f"MEDIA_IOC_ENUM_ENTITIES: asked for an id after {last}, got {desc.id}",
            )
        found.append(_entity_desc(desc))
        last = desc.id


@dataclass(frozen=True)
class PadDesc:
    entity: int
    index: int
    flags: int


@dataclass(frozen=True)
class LinkDesc:
    source: PadDesc
    sink: PadDesc
    flags: int

    def describe(self) -> str:
        flags = format_flags(self.flags & ~MEDIA_LNK_FL_LINK_TYPE, MEDIA_LNK_FL_NAMES)
        return (
            f"{self.source.entity}:{self.source.index} -> "
            f"{self.sink.entity}:{self.sink.index} [{flags}]"
        )


@dataclass(frozen=True)
class EntityLinks:
    entity: int
    pads: tuple[PadDesc, ...]
    links: tuple[LinkDesc, ...]


def _pad_desc(pad: media_pad_desc) -> PadDesc:
    return PadDesc(pad.entity, pad.index, pad.flags)


# The kernel copies every outgoing link of the entity into the user array without knowing
# its size, so a link added between the count and the copy would be written past the end.
# The slack keeps that inside memory this function owns.
_LINK_SLACK = 16


def enum_links(fd: int, entity_id: int) -> EntityLinks:
    """MEDIA_IOC_ENUM_LINKS: the pads of an entity and its outgoing data links.

    The counts come from MEDIA_IOC_ENUM_ENTITIES for the same id.  Links whose source
    entity is still 0 afterwards were not written (entity ids start at 1) and are dropped.
    """
    desc = entity_desc(fd, entity_id)
    pads = (media_pad_desc * max(desc.pads, 1))()
    links = (media_link_desc * (desc.links + _LINK_SLACK))()
    arg = media_links_enum(
        entity=entity_id,
        pads=ctypes.cast(pads, ctypes.POINTER(media_pad_desc)),
        links=ctypes.cast(links, ctypes.POINTER(media_link_desc)),
    )
    ioc.ioctl(fd, MEDIA_IOC_ENUM_LINKS, arg, "MEDIA_IOC_ENUM_LINKS")
    return EntityLinks(
        entity=entity_id,
        pads=tuple(_pad_desc(p) for p in pads[: desc.pads]),
        links=tuple(
            LinkDesc(_pad_desc(k.source), _pad_desc(k.sink), k.flags)
            for k in links
            if k.source.entity != 0
        ),
    )


def setup_link(
    fd: int,
    source_entity: int,
    source_pad: int,
    sink_entity: int,
    sink_pad: int,
    flags: int,
) -> None:
    """MEDIA_IOC_SETUP_LINK: set the flags (in practice ENABLED) of an existing link."""
    link = media_link_desc(
        source=media_pad_desc(entity=source_entity, index=source_pad),
        sink=media_pad_desc(entity=sink_entity, index=sink_pad),
        flags=flags,
    )
    ioc.ioctl(fd, MEDIA_IOC_SETUP_LINK, link, "MEDIA_IOC_SETUP_LINK")


# ---------------------------------------------------------------------------------------------
# What the layout test compares with the C header

C_HEADERS = ["linux/media.h"]

C_STRUCTS = ioc.c_structs(globals(), ("media_",))

# The function-like macros are checked on both sides of the version they test for.
_PROBE_VERSIONS = (_kernel_version(4, 18, 255), _kernel_version(4, 19, 0), _kernel_version(6, 1, 0))

C_CONSTANTS = (
    ioc.c_constants(globals(), ("MEDIA_",))
    + [
        (f"MEDIA_V2_ENTITY_HAS_FLAGS({v:#x})", int(media_v2_entity_has_flags(v)))
        for v in _PROBE_VERSIONS
    ]
    + [(f"MEDIA_V2_PAD_HAS_INDEX({v:#x})", int(media_v2_pad_has_index(v))) for v in _PROBE_VERSIONS]
)
