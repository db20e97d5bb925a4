"""<linux/v4l2-subdev.h> and <linux/media-bus-format.h>: the sub-device API on
/dev/v4l-subdev*, in ctypes.

As in media.py, the ctypes classes carry the C names so the layout test can check them, and
the functions return frozen dataclasses.  Every call takes `which`: V4L2_SUBDEV_FORMAT_ACTIVE
touches the device's real configuration, V4L2_SUBDEV_FORMAT_TRY only the file handle's
scratch copy.

The structs follow the installed headers (Linux 6.1 on Debian 12).  Linux 6.3 carved a
`stream` field out of the reserved words of several of them; the size is unchanged, a zero
there means stream 0, and the field can be added once the build host's headers have it.
"""

from __future__ import annotations

import ctypes
import errno
from dataclasses import dataclass

from harness.target.uapi import ioc
from harness.target.uapi.videodev2 import (
    V4L2_COLORSPACE_DEFAULT,
    V4L2_FIELD_NONE,
    V4L2_SEL_TGT_CROP,
    Rect,
    v4l2_fract,
    v4l2_rect,
)

u16 = ctypes.c_uint16
u32 = ctypes.c_uint32

# ---------------------------------------------------------------------------------------------
# Structures


class _v4l2_mbus_framefmt_enc(ctypes.Union):
    _fields_ = [("ycbcr_enc", u16), ("hsv_enc", u16)]


class v4l2_mbus_framefmt(ctypes.Structure):
    _anonymous_ = ("_enc",)
    _fields_ = [
        ("width", u32),
        ("height", u32),
        ("code", u32),
        ("field", u32),
        ("colorspace", u32),
        ("_enc", _v4l2_mbus_framefmt_enc),
        ("quantization", u16),
        ("xfer_func", u16),
        ("flags", u16),
        ("reserved", u16 * 10),
    ]


class v4l2_subdev_format(ctypes.Structure):
    _fields_ = [
        ("which", u32),
        ("pad", u32),
        ("format", v4l2_mbus_framefmt),
        ("reserved", u32 * 8),
    ]


class v4l2_subdev_crop(ctypes.Structure):
    _fields_ = [
        ("which", u32),
        ("pad", u32),
        ("rect", v4l2_rect),
        ("reserved", u32 * 8),
    ]


class v4l2_subdev_mbus_code_enum(ctypes.Structure):
    _fields_ = [
        ("pad", u32),
        ("index", u32),
        ("code", u32),
        ("which", u32),
        ("flags", u32),
        ("reserved", u32 * 7),
    ]


class v4l2_subdev_frame_size_enum(ctypes.Structure):
    _fields_ = [
        ("index", u32),
        ("pad", u32),
        ("code", u32),
        ("min_width", u32),
        ("max_width", u32),
        ("min_height", u32),
        ("max_height", u32),
        ("which", u32),
        ("reserved", u32 * 8),
    ]


class v4l2_subdev_frame_interval(ctypes.Structure):
    _fields_ = [
        ("pad", u32),
        ("interval", v4l2_fract),
        ("reserved", u32 * 9),
    ]


class v4l2_subdev_frame_interval_enum(ctypes.Structure):
    _fields_ = [
        ("index", u32),
        ("pad", u32),
        ("code", u32),
        ("width", u32),
        ("height", u32),
        ("interval", v4l2_fract),
        ("which", u32),
        ("reserved", u32 * 8),
    ]


class v4l2_subdev_selection(ctypes.Structure):
    _fields_ = [
        ("which", u32),
        ("pad", u32),
        ("target", u32),
        ("flags", u32),
        ("r", v4l2_rect),
        ("reserved", u32 * 8),
    ]


class v4l2_subdev_capability(ctypes.Structure):
    _fields_ = [
        ("version", u32),
        ("capabilities", u32),
        ("reserved", u32 * 14),
    ]


# ---------------------------------------------------------------------------------------------
# Constants

V4L2_SUBDEV_FORMAT_TRY = 0
V4L2_SUBDEV_FORMAT_ACTIVE = 1

# The node was registered read-only: S_FMT, S_SELECTION etc. fail with EPERM.
V4L2_SUBDEV_CAP_RO_SUBDEV = 0x00000001

V4L2_SUBDEV_MBUS_CODE_CSC_COLORSPACE = 0x00000001
V4L2_SUBDEV_MBUS_CODE_CSC_XFER_FUNC = 0x00000002
V4L2_SUBDEV_MBUS_CODE_CSC_YCBCR_ENC = 0x00000004
V4L2_SUBDEV_MBUS_CODE_CSC_HSV_ENC = V4L2_SUBDEV_MBUS_CODE_CSC_YCBCR_ENC
V4L2_SUBDEV_MBUS_CODE_CSC_QUANTIZATION = 0x00000008

V4L2_MBUS_FRAMEFMT_SET_CSC = 0x0001

# ---------------------------------------------------------------------------------------------
# ioctls

VIDIOC_SUBDEV_QUERYCAP = ioc.IOR("V", 0, v4l2_subdev_capability)
VIDIOC_SUBDEV_G_FMT = ioc.IOWR("V", 4, v4l2_subdev_format)
VIDIOC_SUBDEV_S_FMT = ioc.IOWR("V", 5, v4l2_subdev_format)
VIDIOC_SUBDEV_G_FRAME_INTERVAL = ioc.IOWR("V", 21, v4l2_subdev_frame_interval)
VIDIOC_SUBDEV_S_FRAME_INTERVAL = ioc.IOWR("V", 22, v4l2_subdev_frame_interval)
VIDIOC_SUBDEV_ENUM_MBUS_CODE = ioc.IOWR("V", 2, v4l2_subdev_mbus_code_enum)
VIDIOC_SUBDEV_ENUM_FRAME_SIZE = ioc.IOWR("V", 74, v4l2_subdev_frame_size_enum)
VIDIOC_SUBDEV_ENUM_FRAME_INTERVAL = ioc.IOWR("V", 75, v4l2_subdev_frame_interval_enum)
VIDIOC_SUBDEV_G_CROP = ioc.IOWR("V", 59, v4l2_subdev_crop)
VIDIOC_SUBDEV_S_CROP = ioc.IOWR("V", 60, v4l2_subdev_crop)
VIDIOC_SUBDEV_G_SELECTION = ioc.IOWR("V", 61, v4l2_subdev_selection)
VIDIOC_SUBDEV_S_SELECTION = ioc.IOWR("V", 62, v4l2_subdev_selection)

# ---------------------------------------------------------------------------------------------
# Media bus formats, all of <linux/media-bus-format.h>.  vimc's sensor offers every RGB888
# and BGR888 variant, ARGB8888_1X32 and the 8/10/12-bit Bayer codes (plus the A-law and DPCM
# compressed 10-bit ones); the rest are here so any code a driver reports has a name.

# Fixed
MEDIA_BUS_FMT_FIXED = 0x0001

# RGB
MEDIA_BUS_FMT_RGB444_1X12 = 0x1016
MEDIA_BUS_FMT_RGB444_2X8_PADHI_BE = 0x1001
MEDIA_BUS_FMT_RGB444_2X8_PADHI_LE = 0x1002
MEDIA_BUS_FMT_RGB555_2X8_PADHI_BE = 0x1003
MEDIA_BUS_FMT_RGB555_2X8_PADHI_LE = 0x1004
MEDIA_BUS_FMT_RGB565_1X16 = 0x1017
MEDIA_BUS_FMT_BGR565_2X8_BE = 0x1005
MEDIA_BUS_FMT_BGR565_2X8_LE = 0x1006
MEDIA_BUS_FMT_RGB565_2X8_BE = 0x1007
MEDIA_BUS_FMT_RGB565_2X8_LE = 0x1008
MEDIA_BUS_FMT_RGB666_1X18 = 0x1009
MEDIA_BUS_FMT_RBG888_1X24 = 0x100E
MEDIA_BUS_FMT_RGB666_1X24_CPADHI = 0x1015
MEDIA_BUS_FMT_RGB666_1X7X3_SPWG = 0x1010
MEDIA_BUS_FMT_BGR888_1X24 = 0x1013
MEDIA_BUS_FMT_BGR888_3X8 = 0x101B
MEDIA_BUS_FMT_GBR888_1X24 = 0x1014
MEDIA_BUS_FMT_RGB888_1X24 = 0x100A
MEDIA_BUS_FMT_RGB888_2X12_BE = 0x100B
MEDIA_BUS_FMT_RGB888_2X12_LE = 0x100C
MEDIA_BUS_FMT_RGB888_3X8 = 0x101C
MEDIA_BUS_FMT_RGB888_3X8_DELTA = 0x101D
MEDIA_BUS_FMT_RGB888_1X7X4_SPWG = 0x1011
MEDIA_BUS_FMT_RGB888_1X7X4_JEIDA = 0x1012
MEDIA_BUS_FMT_RGB666_1X30_CPADLO = 0x101E
MEDIA_BUS_FMT_RGB888_1X30_CPADLO = 0x101F
MEDIA_BUS_FMT_ARGB8888_1X32 = 0x100D
MEDIA_BUS_FMT_RGB888_1X32_PADHI = 0x100F
MEDIA_BUS_FMT_RGB101010_1X30 = 0x1018
MEDIA_BUS_FMT_RGB666_1X36_CPADLO = 0x1020
MEDIA_BUS_FMT_RGB888_1X36_CPADLO = 0x1021
MEDIA_BUS_FMT_RGB121212_1X36 = 0x1019
MEDIA_BUS_FMT_RGB161616_1X48 = 0x101A

# YUV (including grey)
MEDIA_BUS_FMT_Y8_1X8 = 0x2001
MEDIA_BUS_FMT_UV8_1X8 = 0x2015
MEDIA_BUS_FMT_UYVY8_1_5X8 = 0x2002
MEDIA_BUS_FMT_VYUY8_1_5X8 = 0x2003
MEDIA_BUS_FMT_YUYV8_1_5X8 = 0x2004
MEDIA_BUS_FMT_YVYU8_1_5X8 = 0x2005
MEDIA_BUS_FMT_UYVY8_2X8 = 0x2006
MEDIA_BUS_FMT_VYUY8_2X8 = 0x2007
MEDIA_BUS_FMT_YUYV8_2X8 = 0x2008
MEDIA_BUS_FMT_YVYU8_2X8 = 0x2009
MEDIA_BUS_FMT_Y10_1X10 = 0x200A
MEDIA_BUS_FMT_Y10_2X8_PADHI_LE = 0x202C
MEDIA_BUS_FMT_UYVY10_2X10 = 0x2018
MEDIA_BUS_FMT_VYUY10_2X10 = 0x2019
MEDIA_BUS_FMT_YUYV10_2X10 = 0x200B
MEDIA_BUS_FMT_YVYU10_2X10 = 0x200C
MEDIA_BUS_FMT_Y12_1X12 = 0x2013
MEDIA_BUS_FMT_UYVY12_2X12 = 0x201C
MEDIA_BUS_FMT_VYUY12_2X12 = 0x201D
MEDIA_BUS_FMT_YUYV12_2X12 = 0x201E
MEDIA_BUS_FMT_YVYU12_2X12 = 0x201F
MEDIA_BUS_FMT_Y14_1X14 = 0x202D
MEDIA_BUS_FMT_UYVY8_1X16 = 0x200F
MEDIA_BUS_FMT_VYUY8_1X16 = 0x2010
MEDIA_BUS_FMT_YUYV8_1X16 = 0x2011
MEDIA_BUS_FMT_YVYU8_1X16 = 0x2012
MEDIA_BUS_FMT_YDYUYDYV8_1X16 = 0x2014
MEDIA_BUS_FMT_UYVY10_1X20 = 0x201A
MEDIA_BUS_FMT_VYUY10_1X20 = 0x201B
MEDIA_BUS_FMT_YUYV10_1X20 = 0x200D
MEDIA_BUS_FMT_YVYU10_1X20 = 0x200E
MEDIA_BUS_FMT_VUY8_1X24 = 0x2024
MEDIA_BUS_FMT_YUV8_1X24 = 0x2025
MEDIA_BUS_FMT_UYYVYY8_0_5X24 = 0x2026
MEDIA_BUS_FMT_UYVY12_1X24 = 0x2020
MEDIA_BUS_FMT_VYUY12_1X24 = 0x2021
MEDIA_BUS_FMT_YUYV12_1X24 = 0x2022
MEDIA_BUS_FMT_YVYU12_1X24 = 0x2023
MEDIA_BUS_FMT_YUV10_1X30 = 0x2016
MEDIA_BUS_FMT_UYYVYY10_0_5X30 = 0x2027
MEDIA_BUS_FMT_AYUV8_1X32 = 0x2017
MEDIA_BUS_FMT_UYYVYY12_0_5X36 = 0x2028
MEDIA_BUS_FMT_YUV12_1X36 = 0x2029
MEDIA_BUS_FMT_YUV16_1X48 = 0x202A
MEDIA_BUS_FMT_UYYVYY16_0_5X48 = 0x202B

# Bayer
MEDIA_BUS_FMT_SBGGR8_1X8 = 0x3001
MEDIA_BUS_FMT_SGBRG8_1X8 = 0x3013
MEDIA_BUS_FMT_SGRBG8_1X8 = 0x3002
MEDIA_BUS_FMT_SRGGB8_1X8 = 0x3014
MEDIA_BUS_FMT_SBGGR10_ALAW8_1X8 = 0x3015
MEDIA_BUS_FMT_SGBRG10_ALAW8_1X8 = 0x3016
MEDIA_BUS_FMT_SGRBG10_ALAW8_1X8 = 0x3017
MEDIA_BUS_FMT_SRGGB10_ALAW8_1X8 = 0x3018
MEDIA_BUS_FMT_SBGGR10_DPCM8_1X8 = 0x300B
MEDIA_BUS_FMT_SGBRG10_DPCM8_1X8 = 0x300C
MEDIA_BUS_FMT_SGRBG10_DPCM8_1X8 = 0x3009
MEDIA_BUS_FMT_SRGGB10_DPCM8_1X8 = 0x300D
MEDIA_BUS_FMT_SBGGR10_2X8_PADHI_BE = 0x3003
MEDIA_BUS_FMT_SBGGR10_2X8_PADHI_LE = 0x3004
MEDIA_BUS_FMT_SBGGR10_2X8_PADLO_BE = 0x3005
MEDIA_BUS_FMT_SBGGR10_2X8_PADLO_LE = 0x3006
MEDIA_BUS_FMT_SBGGR10_1X10 = 0x3007
MEDIA_BUS_FMT_SGBRG10_1X10 = 0x300E
MEDIA_BUS_FMT_SGRBG10_1X10 = 0x300A
MEDIA_BUS_FMT_SRGGB10_1X10 = 0x300F
MEDIA_BUS_FMT_SBGGR12_1X12 = 0x3008
MEDIA_BUS_FMT_SGBRG12_1X12 = 0x3010
MEDIA_BUS_FMT_SGRBG12_1X12 = 0x3011
MEDIA_BUS_FMT_SRGGB12_1X12 = 0x3012
MEDIA_BUS_FMT_SBGGR14_1X14 = 0x3019
MEDIA_BUS_FMT_SGBRG14_1X14 = 0x301A
MEDIA_BUS_FMT_SGRBG14_1X14 = 0x301B
MEDIA_BUS_FMT_SRGGB14_1X14 = 0x301C
MEDIA_BUS_FMT_SBGGR16_1X16 = 0x301D
MEDIA_BUS_FMT_SGBRG16_1X16 = 0x301E
MEDIA_BUS_FMT_SGRBG16_1X16 = 0x301F
MEDIA_BUS_FMT_SRGGB16_1X16 = 0x3020

# JPEG
MEDIA_BUS_FMT_JPEG_1X8 = 0x4001

# Vendor specific
MEDIA_BUS_FMT_S5C_UYVY_JPEG_1X8 = 0x5001

# HSV
MEDIA_BUS_FMT_AHSV8888_1X32 = 0x6001

# Metadata
MEDIA_BUS_FMT_METADATA_FIXED = 0x7001

MEDIA_BUS_FMT_NAMES: dict[int, str] = {
    value: name.removeprefix("MEDIA_BUS_FMT_")
    for name, value in globals().items()
    if name.startswith("MEDIA_BUS_FMT_") and isinstance(value, int)
}


def mbus_code_name(code: int) -> str:
    """A media bus code as media-ctl prints it ("SGRBG8_1X8"), or hex if unknown."""
    return MEDIA_BUS_FMT_NAMES.get(code, f"{code:#06x}")


# ---------------------------------------------------------------------------------------------
# Typed calls

# Enumerations end with EINVAL; a driver that never says so would keep a test spinning.
_ENUM_LIMIT = 4096


def _enum_guard(name: str, index: int) -> None:
    if index >= _ENUM_LIMIT:
        raise OSError(errno.EOVERFLOW, f"{name}: still answering at index {index}")


@dataclass(frozen=True)
class SubdevCapability:
    version: int
    capabilities: int

    @property
    def read_only(self) -> bool:
        return bool(self.capabilities & V4L2_SUBDEV_CAP_RO_SUBDEV)


def querycap(fd: int) -> SubdevCapability:
    """VIDIOC_SUBDEV_QUERYCAP (Linux 5.10 and later; ENOTTY before)."""
    cap = v4l2_subdev_capability()
    ioc.ioctl(fd, VIDIOC_SUBDEV_QUERYCAP, cap, "VIDIOC_SUBDEV_QUERYCAP")
    return SubdevCapability(cap.version, cap.capabilities)


@dataclass(frozen=True)
class MbusFormat:
    """v4l2_mbus_framefmt.  To set the colorimetry fields, put V4L2_MBUS_FRAMEFMT_SET_CSC
    in flags (on a source pad whose driver advertises CSC in ENUM_MBUS_CODE)."""

    width: int
    height: int
    code: int
    field: int = V4L2_FIELD_NONE
    colorspace: int = V4L2_COLORSPACE_DEFAULT
    ycbcr_enc: int = 0
    quantization: int = 0
    xfer_func: int = 0
    flags: int = 0

    @property
    def code_name(self) -> str:
        return mbus_code_name(self.code)


def _mbus_value(fmt: v4l2_mbus_framefmt) -> MbusFormat:
    return MbusFormat(**{name: getattr(fmt, name) for name in MbusFormat.__dataclass_fields__})


def g_fmt(fd: int, pad: int, which: int = V4L2_SUBDEV_FORMAT_ACTIVE) -> MbusFormat:
    """VIDIOC_SUBDEV_G_FMT."""
    arg = v4l2_subdev_format(which=which, pad=pad)
    ioc.ioctl(fd, VIDIOC_SUBDEV_G_FMT, arg, "VIDIOC_SUBDEV_G_FMT")
    return _mbus_value(arg.format)


def s_fmt(fd: int, pad: int, fmt: MbusFormat, which: int = V4L2_SUBDEV_FORMAT_ACTIVE) -> MbusFormat:
    """VIDIOC_SUBDEV_S_FMT; returns the format as the driver adjusted it."""
    arg = v4l2_subdev_format(which=which, pad=pad)
    for name in MbusFormat.__dataclass_fields__:
        setattr(arg.format, name, getattr(fmt, name))
    ioc.ioctl(fd, VIDIOC_SUBDEV_S_FMT, arg, "VIDIOC_SUBDEV_S_FMT")
    return _mbus_value(arg.format)


def g_selection(
    fd: int,
    pad: int,
    target: int = V4L2_SEL_TGT_CROP,
    which: int = V4L2_SUBDEV_FORMAT_ACTIVE,
) -> Rect:
    """VIDIOC_SUBDEV_G_SELECTION."""
    sel = v4l2_subdev_selection(which=which, pad=pad, target=target)
    ioc.ioctl(fd, VIDIOC_SUBDEV_G_SELECTION, sel, "VIDIOC_SUBDEV_G_SELECTION")
    return Rect(sel.r.left, sel.r.top, sel.r.width, sel.r.height)


def s_selection(
    fd: int,
    pad: int,
    target: int,
    rect: Rect,
    flags: int = 0,
    which: int = V4L2_SUBDEV_FORMAT_ACTIVE,
) -> Rect:
    """VIDIOC_SUBDEV_S_SELECTION; returns the rectangle the driver chose."""
    sel = v4l2_subdev_selection(
        which=which,
        pad=pad,
        target=target,
        flags=flags,
        r=v4l2_rect(rect.left, rect.top, rect.width, rect.height),
    )
    ioc.ioctl(fd, VIDIOC_SUBDEV_S_SELECTION, sel, "VIDIOC_SUBDEV_S_SELECTION")
    return Rect(sel.r.left, sel.r.top, sel.r.width, sel.r.height)


@dataclass(frozen=True)
class MbusCode:
    code: int
    flags: int

    @property
    def name(self) -> str:
        return mbus_code_name(self.code)


def enum_mbus_codes(fd: int, pad: int, which: int = V4L2_SUBDEV_FORMAT_ACTIVE) -> list[MbusCode]:
    """VIDIOC_SUBDEV_ENUM_MBUS_CODE for every index, until EINVAL."""
    found: list[MbusCode] = []
    index = 0
    while True:
        _enum_guard("VIDIOC_SUBDEV_ENUM_MBUS_CODE", index)
        arg = v4l2_subdev_mbus_code_enum(pad=pad, index=index, which=which)
        try:
            ioc.ioctl(fd, VIDIOC_SUBDEV_ENUM_MBUS_CODE, arg, "VIDIOC_SUBDEV_ENUM_MBUS_CODE")
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                return found
            raise
        found.append(MbusCode(arg.code, arg.flags))
        index += 1


@dataclass(frozen=True)
class FrameSizeRange:
    min_width: int
    max_width: int
    min_height: int
    max_height: int


def enum_frame_sizes(
    fd: int, pad: int, code: int, which: int = V4L2_SUBDEV_FORMAT_ACTIVE
) -> list[FrameSizeRange]:
    """VIDIOC_SUBDEV_ENUM_FRAME_SIZE for every index, until EINVAL."""
    found: list[FrameSizeRange] = []
    index = 0
    while True:
        _enum_guard("VIDIOC_SUBDEV_ENUM_FRAME_SIZE", index)
        arg = v4l2_subdev_frame_size_enum(index=index, pad=pad, code=code, which=which)
        try:
            ioc.ioctl(fd, VIDIOC_SUBDEV_ENUM_FRAME_SIZE, arg, "VIDIOC_SUBDEV_ENUM_FRAME_SIZE")
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                return found
            raise
        found.append(FrameSizeRange(arg.min_width, arg.max_width, arg.min_height, arg.max_height))
        index += 1


# ---------------------------------------------------------------------------------------------
# What the layout test compares with the C headers

C_HEADERS = ["linux/v4l2-subdev.h", "linux/media-bus-format.h"]

C_STRUCTS = ioc.c_structs(globals(), ("v4l2_subdev_", "v4l2_mbus_"))

C_CONSTANTS = ioc.c_constants(
    globals(), ("V4L2_SUBDEV_", "V4L2_MBUS_", "VIDIOC_SUBDEV_", "MEDIA_BUS_FMT_")
)
