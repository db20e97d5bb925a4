"""<linux/videodev2.h>: the V4L2 video node API on /dev/video*, on top of v4l2-python3.

v4l2-python3 (import name v4l2) is a Python 3 port of bindings written against Linux 2.6.34.
What it still gets right is re-exported from here unchanged (the "= _lib.X" lines); what it
gets wrong or lacks is defined here again, with a "v4l2-python3:" note at each place saying
what it had and why that matters.  The layout test compares every struct, field, ioctl
number and constant in this module, re-exported or not, with the C header, so "gets right"
is checked, not assumed.

Use this module, not v4l2 directly: v4l2's ioctl numbers and several of its structs are
wrong.

Everything assumes an LP64 user space (x86_64, arm64): timeval and the pointers and
unsigned longs inside v4l2_buffer and v4l2_plane are 8 bytes, as the kernel's native
(non-compat) ioctls expect.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass

import v4l2 as _lib

from harness.target.uapi import ioc
from harness.target.uapi.flags import format_flags

u8 = ctypes.c_uint8
u16 = ctypes.c_uint16
u32 = ctypes.c_uint32
s32 = ctypes.c_int32

VIDEO_MAX_FRAME = _lib.VIDEO_MAX_FRAME
VIDEO_MAX_PLANES = _lib.VIDEO_MAX_PLANES

# ---------------------------------------------------------------------------------------------
# Four-character codes


def fourcc(code: str | bytes) -> int:
    """v4l2_fourcc: "RGB3" -> 0x33424752.

    v4l2-python3: v4l2_fourcc(a, b, c, d) takes four one-character strings and calls ord()
    on each; a bytes code (what v4l2_fmtdesc.description and most byte buffers give) cannot
    be passed, because indexing bytes yields ints and ord() rejects them.
    """
    raw = code.encode("ascii") if isinstance(code, str) else bytes(code)
    if len(raw) != 4:
        raise ValueError(f"a fourcc is four characters, got {code!r}")
    return int.from_bytes(raw, "little")


def fourcc_be(code: str | bytes) -> int:
    """v4l2_fourcc_be: the big-endian variant of a format, flagged by bit 31."""
    return fourcc(code) | (1 << 31)


def fourcc_str(value: int) -> str:
    """0x33424752 -> "RGB3", with "-BE" for big-endian variants, as v4l2-ctl prints them.

    v4l2-python3: v4l2_fourcc2str feeds bit 31 into chr() as part of the last character,
    so every big-endian format comes out with a stray non-ASCII character.
    """
    chars = "".join(chr((value >> shift) & 0x7F) for shift in (0, 8, 16, 24))
    return chars + ("-BE" if value & (1 << 31) else "")


# ---------------------------------------------------------------------------------------------
# Enumerations (re-exported: v4l2-python3's values match the header)

V4L2_FIELD_ANY = _lib.V4L2_FIELD_ANY
V4L2_FIELD_NONE = _lib.V4L2_FIELD_NONE
V4L2_FIELD_TOP = _lib.V4L2_FIELD_TOP
V4L2_FIELD_BOTTOM = _lib.V4L2_FIELD_BOTTOM
V4L2_FIELD_INTERLACED = _lib.V4L2_FIELD_INTERLACED
V4L2_FIELD_SEQ_TB = _lib.V4L2_FIELD_SEQ_TB
V4L2_FIELD_SEQ_BT = _lib.V4L2_FIELD_SEQ_BT
V4L2_FIELD_ALTERNATE = _lib.V4L2_FIELD_ALTERNATE
V4L2_FIELD_INTERLACED_TB = _lib.V4L2_FIELD_INTERLACED_TB
V4L2_FIELD_INTERLACED_BT = _lib.V4L2_FIELD_INTERLACED_BT

V4L2_BUF_TYPE_VIDEO_CAPTURE = _lib.V4L2_BUF_TYPE_VIDEO_CAPTURE
V4L2_BUF_TYPE_VIDEO_OUTPUT = _lib.V4L2_BUF_TYPE_VIDEO_OUTPUT
V4L2_BUF_TYPE_VIDEO_OVERLAY = _lib.V4L2_BUF_TYPE_VIDEO_OVERLAY
V4L2_BUF_TYPE_VBI_CAPTURE = _lib.V4L2_BUF_TYPE_VBI_CAPTURE
V4L2_BUF_TYPE_VBI_OUTPUT = _lib.V4L2_BUF_TYPE_VBI_OUTPUT
V4L2_BUF_TYPE_SLICED_VBI_CAPTURE = _lib.V4L2_BUF_TYPE_SLICED_VBI_CAPTURE
V4L2_BUF_TYPE_SLICED_VBI_OUTPUT = _lib.V4L2_BUF_TYPE_SLICED_VBI_OUTPUT
V4L2_BUF_TYPE_VIDEO_OUTPUT_OVERLAY = _lib.V4L2_BUF_TYPE_VIDEO_OUTPUT_OVERLAY
V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE = _lib.V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE
V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE = _lib.V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE
V4L2_BUF_TYPE_SDR_CAPTURE = _lib.V4L2_BUF_TYPE_SDR_CAPTURE
V4L2_BUF_TYPE_SDR_OUTPUT = _lib.V4L2_BUF_TYPE_SDR_OUTPUT
V4L2_BUF_TYPE_META_CAPTURE = _lib.V4L2_BUF_TYPE_META_CAPTURE
# v4l2-python3: stops at META_CAPTURE; META_OUTPUT came with Linux 5.0.
V4L2_BUF_TYPE_META_OUTPUT = 14
V4L2_BUF_TYPE_PRIVATE = _lib.V4L2_BUF_TYPE_PRIVATE

V4L2_MEMORY_MMAP = _lib.V4L2_MEMORY_MMAP
V4L2_MEMORY_USERPTR = _lib.V4L2_MEMORY_USERPTR
V4L2_MEMORY_OVERLAY = _lib.V4L2_MEMORY_OVERLAY
V4L2_MEMORY_DMABUF = _lib.V4L2_MEMORY_DMABUF

V4L2_COLORSPACE_DEFAULT = _lib.V4L2_COLORSPACE_DEFAULT
V4L2_COLORSPACE_SMPTE170M = _lib.V4L2_COLORSPACE_SMPTE170M
V4L2_COLORSPACE_SMPTE240M = _lib.V4L2_COLORSPACE_SMPTE240M
V4L2_COLORSPACE_REC709 = _lib.V4L2_COLORSPACE_REC709
V4L2_COLORSPACE_BT878 = _lib.V4L2_COLORSPACE_BT878
V4L2_COLORSPACE_470_SYSTEM_M = _lib.V4L2_COLORSPACE_470_SYSTEM_M
V4L2_COLORSPACE_470_SYSTEM_BG = _lib.V4L2_COLORSPACE_470_SYSTEM_BG
V4L2_COLORSPACE_JPEG = _lib.V4L2_COLORSPACE_JPEG
V4L2_COLORSPACE_SRGB = _lib.V4L2_COLORSPACE_SRGB
# v4l2-python3 still calls this ADOBERGB, a name the header keeps only as an alias.
V4L2_COLORSPACE_OPRGB = _lib.V4L2_COLORSPACE_ADOBERGB
V4L2_COLORSPACE_BT2020 = _lib.V4L2_COLORSPACE_BT2020
V4L2_COLORSPACE_RAW = _lib.V4L2_COLORSPACE_RAW
V4L2_COLORSPACE_DCI_P3 = _lib.V4L2_COLORSPACE_DCI_P3

V4L2_YCBCR_ENC_DEFAULT = 0
V4L2_QUANTIZATION_DEFAULT = 0
V4L2_QUANTIZATION_FULL_RANGE = 1
V4L2_QUANTIZATION_LIM_RANGE = 2
V4L2_XFER_FUNC_DEFAULT = 0

V4L2_FRMSIZE_TYPE_DISCRETE = _lib.V4L2_FRMSIZE_TYPE_DISCRETE
V4L2_FRMSIZE_TYPE_CONTINUOUS = _lib.V4L2_FRMSIZE_TYPE_CONTINUOUS
V4L2_FRMSIZE_TYPE_STEPWISE = _lib.V4L2_FRMSIZE_TYPE_STEPWISE

V4L2_FRMIVAL_TYPE_DISCRETE = _lib.V4L2_FRMIVAL_TYPE_DISCRETE
V4L2_FRMIVAL_TYPE_CONTINUOUS = _lib.V4L2_FRMIVAL_TYPE_CONTINUOUS
V4L2_FRMIVAL_TYPE_STEPWISE = _lib.V4L2_FRMIVAL_TYPE_STEPWISE


def is_output(buf_type: int) -> bool:
    """V4L2_TYPE_IS_OUTPUT: user space fills the buffers of these queues."""
    return buf_type in (V4L2_BUF_TYPE_VIDEO_OUTPUT, V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
                        V4L2_BUF_TYPE_VIDEO_OVERLAY, V4L2_BUF_TYPE_VIDEO_OUTPUT_OVERLAY,
                        V4L2_BUF_TYPE_VBI_OUTPUT, V4L2_BUF_TYPE_SLICED_VBI_OUTPUT,
                        V4L2_BUF_TYPE_SDR_OUTPUT, V4L2_BUF_TYPE_META_OUTPUT)


def is_multiplanar(buf_type: int) -> bool:
    """V4L2_TYPE_IS_MULTIPLANAR."""
    return buf_type in (V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE)


# ---------------------------------------------------------------------------------------------
# Capabilities

V4L2_CAP_VIDEO_CAPTURE = _lib.V4L2_CAP_VIDEO_CAPTURE
V4L2_CAP_VIDEO_OUTPUT = _lib.V4L2_CAP_VIDEO_OUTPUT
V4L2_CAP_VIDEO_OVERLAY = _lib.V4L2_CAP_VIDEO_OVERLAY
V4L2_CAP_VBI_CAPTURE = _lib.V4L2_CAP_VBI_CAPTURE
V4L2_CAP_VBI_OUTPUT = _lib.V4L2_CAP_VBI_OUTPUT
V4L2_CAP_SLICED_VBI_CAPTURE = _lib.V4L2_CAP_SLICED_VBI_CAPTURE
V4L2_CAP_SLICED_VBI_OUTPUT = _lib.V4L2_CAP_SLICED_VBI_OUTPUT
V4L2_CAP_RDS_CAPTURE = _lib.V4L2_CAP_RDS_CAPTURE
V4L2_CAP_VIDEO_OUTPUT_OVERLAY = _lib.V4L2_CAP_VIDEO_OUTPUT_OVERLAY
V4L2_CAP_HW_FREQ_SEEK = _lib.V4L2_CAP_HW_FREQ_SEEK
V4L2_CAP_RDS_OUTPUT = _lib.V4L2_CAP_RDS_OUTPUT
V4L2_CAP_VIDEO_CAPTURE_MPLANE = _lib.V4L2_CAP_VIDEO_CAPTURE_MPLANE
V4L2_CAP_VIDEO_OUTPUT_MPLANE = _lib.V4L2_CAP_VIDEO_OUTPUT_MPLANE
V4L2_CAP_VIDEO_M2M_MPLANE = _lib.V4L2_CAP_VIDEO_M2M_MPLANE
V4L2_CAP_VIDEO_M2M = _lib.V4L2_CAP_VIDEO_M2M
V4L2_CAP_TUNER = _lib.V4L2_CAP_TUNER
V4L2_CAP_AUDIO = _lib.V4L2_CAP_AUDIO
V4L2_CAP_RADIO = _lib.V4L2_CAP_RADIO
V4L2_CAP_MODULATOR = _lib.V4L2_CAP_MODULATOR
V4L2_CAP_SDR_CAPTURE = _lib.V4L2_CAP_SDR_CAPTURE
V4L2_CAP_EXT_PIX_FORMAT = _lib.V4L2_CAP_EXT_PIX_FORMAT
V4L2_CAP_SDR_OUTPUT = _lib.V4L2_CAP_SDR_OUTPUT
V4L2_CAP_META_CAPTURE = _lib.V4L2_CAP_META_CAPTURE
V4L2_CAP_READWRITE = _lib.V4L2_CAP_READWRITE
V4L2_CAP_ASYNCIO = _lib.V4L2_CAP_ASYNCIO
V4L2_CAP_STREAMING = _lib.V4L2_CAP_STREAMING
V4L2_CAP_TOUCH = _lib.V4L2_CAP_TOUCH
V4L2_CAP_DEVICE_CAPS = _lib.V4L2_CAP_DEVICE_CAPS
# v4l2-python3: lacks META_OUTPUT (Linux 5.0) and IO_MC (Linux 5.8).  IO_MC is the bit that
# says a node's input is chosen through the media controller, which every vimc capture node
# sets; without it there is no way to tell an MC-centric node from a plain one.
V4L2_CAP_META_OUTPUT = 0x08000000
V4L2_CAP_IO_MC = 0x20000000

# ---------------------------------------------------------------------------------------------
# Buffer flags and capabilities

V4L2_BUF_FLAG_MAPPED = _lib.V4L2_BUF_FLAG_MAPPED
V4L2_BUF_FLAG_QUEUED = _lib.V4L2_BUF_FLAG_QUEUED
V4L2_BUF_FLAG_DONE = _lib.V4L2_BUF_FLAG_DONE
V4L2_BUF_FLAG_KEYFRAME = _lib.V4L2_BUF_FLAG_KEYFRAME
V4L2_BUF_FLAG_PFRAME = _lib.V4L2_BUF_FLAG_PFRAME
V4L2_BUF_FLAG_BFRAME = _lib.V4L2_BUF_FLAG_BFRAME
V4L2_BUF_FLAG_TIMECODE = _lib.V4L2_BUF_FLAG_TIMECODE
# v4l2-python3: has V4L2_BUF_FLAG_INPUT = 0x0200, a flag the kernel dropped long ago; the bit
# now means M2M_HOLD_CAPTURE_BUF.  It also lacks ERROR, which is how a driver that is being
# torn down hands back a buffer it could not fill, and LAST.  None of it is re-exported.
V4L2_BUF_FLAG_ERROR = 0x00000040
V4L2_BUF_FLAG_IN_REQUEST = 0x00000080
V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF = 0x00000200
V4L2_BUF_FLAG_PREPARED = 0x00000400
V4L2_BUF_FLAG_NO_CACHE_INVALIDATE = 0x00000800
V4L2_BUF_FLAG_NO_CACHE_CLEAN = 0x00001000
V4L2_BUF_FLAG_TIMESTAMP_MASK = 0x0000E000
V4L2_BUF_FLAG_TIMESTAMP_UNKNOWN = 0x00000000
V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC = 0x00002000
V4L2_BUF_FLAG_TIMESTAMP_COPY = 0x00004000
V4L2_BUF_FLAG_TSTAMP_SRC_MASK = 0x00070000
V4L2_BUF_FLAG_TSTAMP_SRC_EOF = 0x00000000
V4L2_BUF_FLAG_TSTAMP_SRC_SOE = 0x00010000
V4L2_BUF_FLAG_LAST = 0x00100000
V4L2_BUF_FLAG_REQUEST_FD = 0x00800000

V4L2_BUF_FLAG_NAMES: dict[int, str] = {
    V4L2_BUF_FLAG_MAPPED: "MAPPED",
    V4L2_BUF_FLAG_QUEUED: "QUEUED",
    V4L2_BUF_FLAG_DONE: "DONE",
    V4L2_BUF_FLAG_KEYFRAME: "KEYFRAME",
    V4L2_BUF_FLAG_PFRAME: "PFRAME",
    V4L2_BUF_FLAG_BFRAME: "BFRAME",
    V4L2_BUF_FLAG_ERROR: "ERROR",
    V4L2_BUF_FLAG_IN_REQUEST: "IN_REQUEST",
    V4L2_BUF_FLAG_TIMECODE: "TIMECODE",
    V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF: "M2M_HOLD_CAPTURE_BUF",
    V4L2_BUF_FLAG_PREPARED: "PREPARED",
    V4L2_BUF_FLAG_NO_CACHE_INVALIDATE: "NO_CACHE_INVALIDATE",
    V4L2_BUF_FLAG_NO_CACHE_CLEAN: "NO_CACHE_CLEAN",
    V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC: "TIMESTAMP_MONOTONIC",
    V4L2_BUF_FLAG_TIMESTAMP_COPY: "TIMESTAMP_COPY",
    V4L2_BUF_FLAG_TSTAMP_SRC_SOE: "TSTAMP_SRC_SOE",
    V4L2_BUF_FLAG_LAST: "LAST",
    V4L2_BUF_FLAG_REQUEST_FD: "REQUEST_FD",
}

# Filled in by REQBUFS and CREATE_BUFS (Linux 4.20); v4l2-python3 has none of them.
V4L2_BUF_CAP_SUPPORTS_MMAP = 1 << 0
V4L2_BUF_CAP_SUPPORTS_USERPTR = 1 << 1
V4L2_BUF_CAP_SUPPORTS_DMABUF = 1 << 2
V4L2_BUF_CAP_SUPPORTS_REQUESTS = 1 << 3
V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS = 1 << 4
V4L2_BUF_CAP_SUPPORTS_M2M_HOLD_CAPTURE_BUF = 1 << 5
V4L2_BUF_CAP_SUPPORTS_MMAP_CACHE_HINTS = 1 << 6

V4L2_MEMORY_FLAG_NON_COHERENT = 1 << 0

# ---------------------------------------------------------------------------------------------
# Format flags

V4L2_FMT_FLAG_COMPRESSED = _lib.V4L2_FMT_FLAG_COMPRESSED
V4L2_FMT_FLAG_EMULATED = _lib.V4L2_FMT_FLAG_EMULATED
V4L2_FMT_FLAG_CONTINUOUS_BYTESTREAM = 0x0004
V4L2_FMT_FLAG_DYN_RESOLUTION = 0x0008
V4L2_FMT_FLAG_ENC_CAP_FRAME_INTERVAL = 0x0010
V4L2_FMT_FLAG_CSC_COLORSPACE = 0x0020
V4L2_FMT_FLAG_CSC_XFER_FUNC = 0x0040
V4L2_FMT_FLAG_CSC_YCBCR_ENC = 0x0080
V4L2_FMT_FLAG_CSC_HSV_ENC = V4L2_FMT_FLAG_CSC_YCBCR_ENC
V4L2_FMT_FLAG_CSC_QUANTIZATION = 0x0100

V4L2_PIX_FMT_FLAG_PREMUL_ALPHA = 0x00000001
V4L2_PIX_FMT_FLAG_SET_CSC = 0x00000002

# S_FMT only honours the colorimetry fields after priv (flags, ycbcr_enc, quantization,
# xfer_func) when priv holds this value; otherwise the core zeroes them first.
V4L2_PIX_FMT_PRIV_MAGIC = 0xFEEDCAFE

# ---------------------------------------------------------------------------------------------
# Pixel formats: the ones vimc produces, and the common ones a test may ask for.

# RGB
V4L2_PIX_FMT_RGB332 = _lib.V4L2_PIX_FMT_RGB332
V4L2_PIX_FMT_RGB565 = _lib.V4L2_PIX_FMT_RGB565
V4L2_PIX_FMT_RGB565X = _lib.V4L2_PIX_FMT_RGB565X
V4L2_PIX_FMT_BGR24 = _lib.V4L2_PIX_FMT_BGR24
V4L2_PIX_FMT_RGB24 = _lib.V4L2_PIX_FMT_RGB24
V4L2_PIX_FMT_BGR32 = _lib.V4L2_PIX_FMT_BGR32
V4L2_PIX_FMT_RGB32 = _lib.V4L2_PIX_FMT_RGB32
V4L2_PIX_FMT_RGBX32 = _lib.V4L2_PIX_FMT_RGBX32
V4L2_PIX_FMT_XRGB32 = _lib.V4L2_PIX_FMT_XRGB32
V4L2_PIX_FMT_RGBA32 = _lib.V4L2_PIX_FMT_RGBA32
# v4l2-python3 lacks the rest of the 32-bit RGB family, ARGB32 (vimc's only alpha format)
# among them.
V4L2_PIX_FMT_ABGR32 = fourcc("AR24")
V4L2_PIX_FMT_XBGR32 = fourcc("XR24")
V4L2_PIX_FMT_BGRA32 = fourcc("RA24")
V4L2_PIX_FMT_BGRX32 = fourcc("RX24")
V4L2_PIX_FMT_ARGB32 = fourcc("BA24")

# Grey
V4L2_PIX_FMT_GREY = _lib.V4L2_PIX_FMT_GREY
V4L2_PIX_FMT_Y10 = _lib.V4L2_PIX_FMT_Y10
V4L2_PIX_FMT_Y12 = fourcc("Y12 ")
V4L2_PIX_FMT_Y16 = _lib.V4L2_PIX_FMT_Y16

# YUV
V4L2_PIX_FMT_YUYV = _lib.V4L2_PIX_FMT_YUYV
V4L2_PIX_FMT_YVYU = _lib.V4L2_PIX_FMT_YVYU
V4L2_PIX_FMT_UYVY = _lib.V4L2_PIX_FMT_UYVY
V4L2_PIX_FMT_VYUY = _lib.V4L2_PIX_FMT_VYUY
V4L2_PIX_FMT_YUV422P = _lib.V4L2_PIX_FMT_YUV422P
V4L2_PIX_FMT_YUV420 = _lib.V4L2_PIX_FMT_YUV420
V4L2_PIX_FMT_YVU420 = _lib.V4L2_PIX_FMT_YVU420
V4L2_PIX_FMT_NV12 = _lib.V4L2_PIX_FMT_NV12
V4L2_PIX_FMT_NV21 = _lib.V4L2_PIX_FMT_NV21
V4L2_PIX_FMT_NV16 = _lib.V4L2_PIX_FMT_NV16
V4L2_PIX_FMT_NV61 = _lib.V4L2_PIX_FMT_NV61

# Bayer.  v4l2-python3 has 8 and 10 bits only and one of the four DPCM variants; vimc
# offers 8, 10 and 12 bits and the A-law and DPCM compressed 10-bit ones in every order.
V4L2_PIX_FMT_SBGGR8 = _lib.V4L2_PIX_FMT_SBGGR8
V4L2_PIX_FMT_SGBRG8 = _lib.V4L2_PIX_FMT_SGBRG8
V4L2_PIX_FMT_SGRBG8 = _lib.V4L2_PIX_FMT_SGRBG8
V4L2_PIX_FMT_SRGGB8 = _lib.V4L2_PIX_FMT_SRGGB8
V4L2_PIX_FMT_SBGGR10 = _lib.V4L2_PIX_FMT_SBGGR10
V4L2_PIX_FMT_SGBRG10 = _lib.V4L2_PIX_FMT_SGBRG10
V4L2_PIX_FMT_SGRBG10 = _lib.V4L2_PIX_FMT_SGRBG10
V4L2_PIX_FMT_SRGGB10 = _lib.V4L2_PIX_FMT_SRGGB10
V4L2_PIX_FMT_SBGGR12 = fourcc("BG12")
V4L2_PIX_FMT_SGBRG12 = fourcc("GB12")
V4L2_PIX_FMT_SGRBG12 = fourcc("BA12")
V4L2_PIX_FMT_SRGGB12 = fourcc("RG12")
V4L2_PIX_FMT_SBGGR10ALAW8 = fourcc("aBA8")
V4L2_PIX_FMT_SGBRG10ALAW8 = fourcc("aGA8")
V4L2_PIX_FMT_SGRBG10ALAW8 = fourcc("agA8")
V4L2_PIX_FMT_SRGGB10ALAW8 = fourcc("aRA8")
V4L2_PIX_FMT_SBGGR10DPCM8 = fourcc("bBA8")
V4L2_PIX_FMT_SGBRG10DPCM8 = fourcc("bGA8")
V4L2_PIX_FMT_SGRBG10DPCM8 = _lib.V4L2_PIX_FMT_SGRBG10DPCM8
V4L2_PIX_FMT_SRGGB10DPCM8 = fourcc("bRA8")
V4L2_PIX_FMT_SBGGR16 = _lib.V4L2_PIX_FMT_SBGGR16

# Compressed
V4L2_PIX_FMT_MJPEG = _lib.V4L2_PIX_FMT_MJPEG
V4L2_PIX_FMT_JPEG = _lib.V4L2_PIX_FMT_JPEG

# ---------------------------------------------------------------------------------------------
# Selection targets and flags (<linux/v4l2-common.h>, shared with the subdev API)

V4L2_SEL_TGT_CROP = 0x0000
V4L2_SEL_TGT_CROP_DEFAULT = 0x0001
V4L2_SEL_TGT_CROP_BOUNDS = 0x0002
V4L2_SEL_TGT_NATIVE_SIZE = 0x0003
V4L2_SEL_TGT_COMPOSE = 0x0100
V4L2_SEL_TGT_COMPOSE_DEFAULT = 0x0101
V4L2_SEL_TGT_COMPOSE_BOUNDS = 0x0102
V4L2_SEL_TGT_COMPOSE_PADDED = 0x0103

V4L2_SEL_FLAG_GE = 1 << 0
V4L2_SEL_FLAG_LE = 1 << 1
V4L2_SEL_FLAG_KEEP_CONFIG = 1 << 2

# ---------------------------------------------------------------------------------------------
# Structures


class timeval(ctypes.Structure):
    # v4l2-python3: names the fields secs/usecs; C (and every kernel document) says
    # tv_sec/tv_usec.  c_long is right on LP64.  A 32-bit user space built with a 64-bit
    # time_t has a 16-byte timeval there too, which changes sizeof(v4l2_buffer) and with it
    # the request numbers of QUERYBUF/QBUF/DQBUF; such a target would need its own numbers.
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class v4l2_rect(ctypes.Structure):
    # v4l2-python3: width and height are c_int32; in C they are __u32 (only left and top
    # are signed).  A driver reporting a size above 2 GiB pixels is absurd, but a garbage
    # value from a half-torn-down driver should read as the large number it is, not as a
    # negative size.
    _fields_ = [("left", s32), ("top", s32), ("width", u32), ("height", u32)]


v4l2_fract = _lib.v4l2_fract
v4l2_timecode = _lib.v4l2_timecode
v4l2_plane = _lib.v4l2_plane
v4l2_frmsize_discrete = _lib.v4l2_frmsize_discrete
v4l2_frmival_stepwise = _lib.v4l2_frmival_stepwise
v4l2_frmivalenum = _lib.v4l2_frmivalenum
v4l2_vbi_format = _lib.v4l2_vbi_format


class v4l2_capability(ctypes.Structure):
    # v4l2-python3: has reserved[4] where the header has device_caps + reserved[3].  The
    # size matches, so VIDIOC_QUERYCAP works, but device_caps (the capabilities of this
    # node, as opposed to the whole driver) cannot be read, and with a media controller
    # driver like vimc the node's own caps are the ones that matter.
    _fields_ = [
        ("driver", ctypes.c_char * 16),
        ("card", ctypes.c_char * 32),
        ("bus_info", ctypes.c_char * 32),
        ("version", u32),
        ("capabilities", u32),
        ("device_caps", u32),
        ("reserved", u32 * 3),
    ]


class _v4l2_pix_format_enc(ctypes.Union):
    _fields_ = [("ycbcr_enc", u32), ("hsv_enc", u32)]


class v4l2_pix_format(ctypes.Structure):
    # v4l2-python3: the 2.6.34 struct, 32 bytes, ending at priv.  The header's is 48: flags,
    # ycbcr_enc/hsv_enc, quantization and xfer_func follow.  v4l2_format's 200-byte union
    # hides the difference from the ioctl size, so G_FMT/S_FMT "work", but the colorimetry
    # a driver reports is unreachable and cannot be set.
    _anonymous_ = ("_enc",)
    _fields_ = [
        ("width", u32),
        ("height", u32),
        ("pixelformat", u32),
        ("field", u32),
        ("bytesperline", u32),
        ("sizeimage", u32),
        ("colorspace", u32),
        ("priv", u32),
        ("flags", u32),
        ("_enc", _v4l2_pix_format_enc),
        ("quantization", u32),
        ("xfer_func", u32),
    ]


class v4l2_plane_pix_format(ctypes.Structure):
    # v4l2-python3: not packed.  The C struct is __attribute__((packed)); its size happens
    # to be the same, but the alignment is 1 in C and 4 in v4l2-python3.
    _pack_ = 1
    _fields_ = [("sizeimage", u32), ("bytesperline", u32), ("reserved", u16 * 6)]


class _v4l2_pix_format_mplane_enc(ctypes.Union):
    _fields_ = [("ycbcr_enc", u8), ("hsv_enc", u8)]


class v4l2_pix_format_mplane(ctypes.Structure):
    # v4l2-python3: the ycbcr_enc/hsv_enc union is a named member "_u" instead of an
    # anonymous one (so fmt.ycbcr_enc does not exist), and the struct is not packed.
    _pack_ = 1
    _anonymous_ = ("_enc",)
    _fields_ = [
        ("width", u32),
        ("height", u32),
        ("pixelformat", u32),
        ("field", u32),
        ("colorspace", u32),
        ("plane_fmt", v4l2_plane_pix_format * VIDEO_MAX_PLANES),
        ("num_planes", u8),
        ("flags", u8),
        ("_enc", _v4l2_pix_format_mplane_enc),
        ("quantization", u8),
        ("xfer_func", u8),
        ("reserved", u8 * 7),
    ]


class v4l2_clip(ctypes.Structure):
    # Redefined only because its rect is the corrected v4l2_rect.
    pass


v4l2_clip._fields_ = [("c", v4l2_rect), ("next", ctypes.POINTER(v4l2_clip))]


class v4l2_window(ctypes.Structure):
    # Redefined only because its rect is the corrected v4l2_rect.  Its pointers are what
    # give v4l2_format's union 8-byte alignment on LP64 (fmt at offset 8, not 4); a
    # v4l2_format that left the overlay member out would be 204 bytes and every format
    # ioctl number would be wrong.
    _fields_ = [
        ("w", v4l2_rect),
        ("field", u32),
        ("chromakey", u32),
        ("clips", ctypes.POINTER(v4l2_clip)),
        ("clipcount", u32),
        ("bitmap", ctypes.c_void_p),
        ("global_alpha", u8),
    ]


class v4l2_sliced_vbi_format(ctypes.Structure):
    # v4l2-python3: service_lines is c_uint16 * 2 * 24, which ctypes reads as [24][2]; C
    # has [2][24] (two fields of 24 lines).  Same size, transposed indices.
    _fields_ = [
        ("service_set", u16),
        ("service_lines", (u16 * 24) * 2),
        ("io_size", u32),
        ("reserved", u32 * 2),
    ]


class v4l2_sdr_format(ctypes.Structure):
    # v4l2-python3: not packed (C: __attribute__((packed))); only the alignment differs.
    _pack_ = 1
    _fields_ = [("pixelformat", u32), ("buffersize", u32), ("reserved", u8 * 24)]


class v4l2_meta_format(ctypes.Structure):
    # v4l2-python3: not packed (C: __attribute__((packed))); only the alignment differs.
    _pack_ = 1
    _fields_ = [("dataformat", u32), ("buffersize", u32)]


class _v4l2_format_fmt(ctypes.Union):
    _fields_ = [
        ("pix", v4l2_pix_format),
        ("pix_mp", v4l2_pix_format_mplane),
        ("win", v4l2_window),
        ("vbi", v4l2_vbi_format),
        ("sliced", v4l2_sliced_vbi_format),
        ("sdr", v4l2_sdr_format),
        ("meta", v4l2_meta_format),
        ("raw_data", u8 * 200),
    ]


class v4l2_format(ctypes.Structure):
    # v4l2-python3's outer layout is right (208 bytes on LP64); it is redefined so that
    # fmt.pix and fmt.pix_mp are the corrected structs above.
    _fields_ = [("type", u32), ("fmt", _v4l2_format_fmt)]


class v4l2_fmtdesc(ctypes.Structure):
    # v4l2-python3: type is a signed c_int (C: __u32), and reserved[4] where the header has
    # mbus_code + reserved[3].  mbus_code is how a test asks an MC-centric capture node such
    # as vimc's "which pixel formats go with this media bus code".
    _fields_ = [
        ("index", u32),
        ("type", u32),
        ("flags", u32),
        ("description", ctypes.c_char * 32),
        ("pixelformat", u32),
        ("mbus_code", u32),
        ("reserved", u32 * 3),
    ]


class v4l2_requestbuffers(ctypes.Structure):
    # v4l2-python3: reserved[2] where the header has capabilities, flags and reserved[3].
    # capabilities (V4L2_BUF_CAP_*) says which memory types the queue supports, which is
    # how a test knows whether DMABUF export is worth trying.
    _fields_ = [
        ("count", u32),
        ("type", u32),
        ("memory", u32),
        ("capabilities", u32),
        ("flags", u8),
        ("reserved", u8 * 3),
    ]


class _v4l2_buffer_m(ctypes.Union):
    _fields_ = [
        ("offset", u32),
        ("userptr", ctypes.c_ulong),
        ("planes", ctypes.POINTER(v4l2_plane)),
        ("fd", s32),
    ]


class _v4l2_buffer_request(ctypes.Union):
    _fields_ = [("request_fd", s32), ("reserved", u32)]


class v4l2_buffer(ctypes.Structure):
    # v4l2-python3: the size is right (88 on LP64) but the tail is the 2.6.34 one: "input"
    # where the header has reserved2, and a plain "reserved" where it has the anonymous
    # request_fd/reserved union; timestamp is the timeval with secs/usecs names.
    _anonymous_ = ("_request",)
    _fields_ = [
        ("index", u32),
        ("type", u32),
        ("bytesused", u32),
        ("flags", u32),
        ("field", u32),
        ("timestamp", timeval),
        ("timecode", v4l2_timecode),
        ("sequence", u32),
        ("memory", u32),
        ("m", _v4l2_buffer_m),
        ("length", u32),
        ("reserved2", u32),
        ("_request", _v4l2_buffer_request),
    ]


class v4l2_exportbuffer(ctypes.Structure):
    # v4l2-python3: missing (VIDIOC_EXPBUF came with Linux 3.8).
    _fields_ = [
        ("type", u32),
        ("index", u32),
        ("plane", u32),
        ("flags", u32),
        ("fd", s32),
        ("reserved", u32 * 11),
    ]


class v4l2_create_buffers(ctypes.Structure):
    # v4l2-python3: missing (VIDIOC_CREATE_BUFS came with Linux 3.2).
    _fields_ = [
        ("index", u32),
        ("count", u32),
        ("memory", u32),
        ("format", v4l2_format),
        ("capabilities", u32),
        ("flags", u32),
        ("reserved", u32 * 6),
    ]


class v4l2_frmsize_stepwise(ctypes.Structure):
    # v4l2-python3: the fields are min_width, min_height, step_width, min_height, ...: the
    # second field is named min_height instead of max_width.  ctypes keeps the later
    # min_height, so that one reads correctly, but the four bytes at offset 4 have no name
    # and the maximum width of a stepwise range cannot be read at all.
    _fields_ = [
        ("min_width", u32),
        ("max_width", u32),
        ("step_width", u32),
        ("min_height", u32),
        ("max_height", u32),
        ("step_height", u32),
    ]


class _v4l2_frmsizeenum_u(ctypes.Union):
    _fields_ = [("discrete", v4l2_frmsize_discrete), ("stepwise", v4l2_frmsize_stepwise)]


class v4l2_frmsizeenum(ctypes.Structure):
    # Redefined only because its stepwise member is the corrected struct.
    _anonymous_ = ("_u",)
    _fields_ = [
        ("index", u32),
        ("pixel_format", u32),
        ("type", u32),
        ("_u", _v4l2_frmsizeenum_u),
        ("reserved", u32 * 2),
    ]


class v4l2_selection(ctypes.Structure):
    # v4l2-python3: missing, as are VIDIOC_G/S_SELECTION.
    _fields_ = [
        ("type", u32),
        ("target", u32),
        ("flags", u32),
        ("r", v4l2_rect),
        ("reserved", u32 * 9),
    ]


# ---------------------------------------------------------------------------------------------
# ioctls.  v4l2-python3 computes these through ctypes.c_int32, so every _IOR and _IOWR
# number comes out negative (VIDIOC_QUERYCAP is -0x7f97aa00, not 0x80685600).  fcntl.ioctl
# happens to mask them back, but they never equal the numbers in C, strace or a kernel log,
# and it has no EXPBUF, CREATE_BUFS, PREPARE_BUF or selection ioctls.  All are computed here.

VIDIOC_QUERYCAP = ioc.IOR("V", 0, v4l2_capability)
VIDIOC_ENUM_FMT = ioc.IOWR("V", 2, v4l2_fmtdesc)
VIDIOC_G_FMT = ioc.IOWR("V", 4, v4l2_format)
VIDIOC_S_FMT = ioc.IOWR("V", 5, v4l2_format)
VIDIOC_REQBUFS = ioc.IOWR("V", 8, v4l2_requestbuffers)
VIDIOC_QUERYBUF = ioc.IOWR("V", 9, v4l2_buffer)
VIDIOC_QBUF = ioc.IOWR("V", 15, v4l2_buffer)
VIDIOC_EXPBUF = ioc.IOWR("V", 16, v4l2_exportbuffer)
VIDIOC_DQBUF = ioc.IOWR("V", 17, v4l2_buffer)
VIDIOC_STREAMON = ioc.IOW("V", 18, ctypes.c_int)
VIDIOC_STREAMOFF = ioc.IOW("V", 19, ctypes.c_int)


class _encoder_cmd_raw(ctypes.Structure):
    _fields_ = [("data", u32 * 8)]


class _encoder_cmd_union(ctypes.Union):
    _fields_ = [("raw", _encoder_cmd_raw)]


class v4l2_encoder_cmd(ctypes.Structure):
    _anonymous_ = ("u",)
    _fields_ = [("cmd", u32), ("flags", u32), ("u", _encoder_cmd_union)]


class _decoder_cmd_stop(ctypes.Structure):
    _fields_ = [("pts", ctypes.c_uint64)]


class _decoder_cmd_start(ctypes.Structure):
    _fields_ = [("speed", s32), ("format", u32)]


class _decoder_cmd_raw(ctypes.Structure):
    _fields_ = [("data", u32 * 16)]


class _decoder_cmd_union(ctypes.Union):
    _fields_ = [("stop", _decoder_cmd_stop), ("start", _decoder_cmd_start),
                ("raw", _decoder_cmd_raw)]


class v4l2_decoder_cmd(ctypes.Structure):
    _anonymous_ = ("u",)
    _fields_ = [("cmd", u32), ("flags", u32), ("u", _decoder_cmd_union)]


# v4l2-python3 has no decoder commands; the encoder's are defined beside them.
VIDIOC_ENCODER_CMD = ioc.IOWR("V", 77, v4l2_encoder_cmd)
VIDIOC_DECODER_CMD = ioc.IOWR("V", 96, v4l2_decoder_cmd)
V4L2_ENC_CMD_STOP = 1
V4L2_DEC_CMD_STOP = 1
VIDIOC_G_INPUT = ioc.IOR("V", 38, ctypes.c_int)
VIDIOC_S_INPUT = ioc.IOWR("V", 39, ctypes.c_int)
VIDIOC_TRY_FMT = ioc.IOWR("V", 64, v4l2_format)
VIDIOC_LOG_STATUS = ioc.IO("V", 70)
VIDIOC_ENUM_FRAMESIZES = ioc.IOWR("V", 74, v4l2_frmsizeenum)
VIDIOC_ENUM_FRAMEINTERVALS = ioc.IOWR("V", 75, v4l2_frmivalenum)
VIDIOC_CREATE_BUFS = ioc.IOWR("V", 92, v4l2_create_buffers)
VIDIOC_PREPARE_BUF = ioc.IOWR("V", 93, v4l2_buffer)
VIDIOC_G_SELECTION = ioc.IOWR("V", 94, v4l2_selection)
VIDIOC_S_SELECTION = ioc.IOWR("V", 95, v4l2_selection)

# ---------------------------------------------------------------------------------------------
# Names for printing


def _names(prefix: str, skip: tuple[str, ...] = ()) -> dict[int, str]:
    return {
        value: name[len(prefix) :]
        for name, value in globals().items()
        if name.startswith(prefix) and not name.startswith(skip) and isinstance(value, int)
    }


V4L2_CAP_NAMES: dict[int, str] = _names("V4L2_CAP_")
V4L2_BUF_TYPE_NAMES: dict[int, str] = _names("V4L2_BUF_TYPE_")
V4L2_MEMORY_NAMES: dict[int, str] = _names("V4L2_MEMORY_", skip=("V4L2_MEMORY_FLAG_",))
V4L2_FIELD_NAMES: dict[int, str] = _names("V4L2_FIELD_")
V4L2_PIX_FMT_NAMES: dict[int, str] = _names(
    "V4L2_PIX_FMT_", skip=("V4L2_PIX_FMT_FLAG_", "V4L2_PIX_FMT_PRIV_MAGIC")
)


def caps_str(caps: int) -> str:
    """V4L2_CAP_* bits as "VIDEO_CAPTURE,STREAMING,IO_MC"."""
    return format_flags(caps, V4L2_CAP_NAMES)


def buf_flags_str(flags: int) -> str:
    """V4L2_BUF_FLAG_* bits as "QUEUED,DONE,TIMESTAMP_MONOTONIC"."""
    return format_flags(flags, V4L2_BUF_FLAG_NAMES)


# ---------------------------------------------------------------------------------------------
# Typed calls


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


# Enumerations end with EINVAL; a driver that never says so would keep a test spinning.
_ENUM_LIMIT = 4096


def _enum_guard(name: str, index: int) -> None:
    if index >= _ENUM_LIMIT:
        raise OSError(errno.EOVERFLOW, f"{name}: still answering at index {index}")


@dataclass(frozen=True)
class Capability:
    driver: str
    card: str
    bus_info: str
    version: int
    capabilities: int
    device_caps: int

    @property
    def caps(self) -> int:
        """The capabilities of this node: device_caps when the driver says it filled it
        (V4L2_CAP_DEVICE_CAPS, which current drivers always set), else the driver-wide
        capabilities."""
        if self.capabilities & V4L2_CAP_DEVICE_CAPS:
            return self.device_caps
        return self.capabilities

    def has(self, cap: int) -> bool:
        return self.caps & cap == cap

    @property
    def kernel_version(self) -> tuple[int, int, int]:
        return (self.version >> 16) & 0xFF, (self.version >> 8) & 0xFF, self.version & 0xFF


def querycap(fd: int) -> Capability:
    """VIDIOC_QUERYCAP."""
    cap = v4l2_capability()
    ioc.ioctl(fd, VIDIOC_QUERYCAP, cap, "VIDIOC_QUERYCAP")
    return Capability(
        driver=_text(cap.driver),
        card=_text(cap.card),
        bus_info=_text(cap.bus_info),
        version=cap.version,
        capabilities=cap.capabilities,
        device_caps=cap.device_caps,
    )


@dataclass(frozen=True)
class FmtDesc:
    index: int
    type: int
    flags: int
    description: str
    pixelformat: int
    mbus_code: int

    @property
    def fourcc(self) -> str:
        return fourcc_str(self.pixelformat)


def enum_fmt(
    fd: int, buf_type: int = V4L2_BUF_TYPE_VIDEO_CAPTURE, mbus_code: int = 0
) -> list[FmtDesc]:
    """VIDIOC_ENUM_FMT for every index; mbus_code restricts the list on nodes with
    V4L2_CAP_IO_MC (0 means all)."""
    found: list[FmtDesc] = []
    index = 0
    while True:
        _enum_guard("VIDIOC_ENUM_FMT", index)
        desc = v4l2_fmtdesc(index=index, type=buf_type, mbus_code=mbus_code)
        try:
            ioc.ioctl(fd, VIDIOC_ENUM_FMT, desc, "VIDIOC_ENUM_FMT")
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                return found
            raise
        found.append(
            FmtDesc(
                desc.index,
                desc.type,
                desc.flags,
                _text(desc.description),
                desc.pixelformat,
                desc.mbus_code,
            )
        )
        index += 1


@dataclass(frozen=True)
class PixFormat:
    """v4l2_pix_format.  To set the colorimetry fields, keep priv at the magic value and
    put V4L2_PIX_FMT_FLAG_SET_CSC in flags."""

    width: int
    height: int
    pixelformat: int
    field: int = V4L2_FIELD_ANY
    bytesperline: int = 0
    sizeimage: int = 0
    colorspace: int = V4L2_COLORSPACE_DEFAULT
    priv: int = V4L2_PIX_FMT_PRIV_MAGIC
    flags: int = 0
    ycbcr_enc: int = 0
    quantization: int = 0
    xfer_func: int = 0

    @property
    def fourcc(self) -> str:
        return fourcc_str(self.pixelformat)


@dataclass(frozen=True)
class PlaneFormat:
    sizeimage: int = 0
    bytesperline: int = 0


@dataclass(frozen=True)
class PixFormatMplane:
    width: int
    height: int
    pixelformat: int
    field: int = V4L2_FIELD_ANY
    colorspace: int = V4L2_COLORSPACE_DEFAULT
    planes: tuple[PlaneFormat, ...] = ()
    flags: int = 0
    ycbcr_enc: int = 0
    quantization: int = 0
    xfer_func: int = 0

    @property
    def fourcc(self) -> str:
        return fourcc_str(self.pixelformat)


def _format_struct(fmt: PixFormat | PixFormatMplane, buf_type: int) -> v4l2_format:
    out = v4l2_format(type=buf_type)
    if is_multiplanar(buf_type):
        if not isinstance(fmt, PixFormatMplane):
            raise TypeError(f"buffer type {buf_type} is multi-planar; pass a PixFormatMplane")
        mp = out.fmt.pix_mp
        mp.width, mp.height, mp.pixelformat = fmt.width, fmt.height, fmt.pixelformat
        mp.field, mp.colorspace, mp.flags = fmt.field, fmt.colorspace, fmt.flags
        mp.ycbcr_enc, mp.quantization, mp.xfer_func = (
            fmt.ycbcr_enc,
            fmt.quantization,
            fmt.xfer_func,
        )
        if len(fmt.planes) > VIDEO_MAX_PLANES:
            raise ValueError(f"{len(fmt.planes)} planes, at most {VIDEO_MAX_PLANES}")
        mp.num_planes = len(fmt.planes)
        for i, plane in enumerate(fmt.planes):
            mp.plane_fmt[i].sizeimage = plane.sizeimage
            mp.plane_fmt[i].bytesperline = plane.bytesperline
        return out
    if not isinstance(fmt, PixFormat):
        raise TypeError(f"buffer type {buf_type} is single-planar; pass a PixFormat")
    pix = out.fmt.pix
    for name in PixFormat.__dataclass_fields__:
        setattr(pix, name, getattr(fmt, name))
    return out


def _format_value(out: v4l2_format) -> PixFormat | PixFormatMplane:
    if is_multiplanar(out.type):
        mp = out.fmt.pix_mp
        planes = tuple(
            PlaneFormat(mp.plane_fmt[i].sizeimage, mp.plane_fmt[i].bytesperline)
            for i in range(min(mp.num_planes, VIDEO_MAX_PLANES))
        )
        return PixFormatMplane(
            width=mp.width,
            height=mp.height,
            pixelformat=mp.pixelformat,
            field=mp.field,
            colorspace=mp.colorspace,
            planes=planes,
            flags=mp.flags,
            ycbcr_enc=mp.ycbcr_enc,
            quantization=mp.quantization,
            xfer_func=mp.xfer_func,
        )
    pix = out.fmt.pix
    return PixFormat(**{name: getattr(pix, name) for name in PixFormat.__dataclass_fields__})


def _check_video_type(buf_type: int) -> None:
    if buf_type not in (
        V4L2_BUF_TYPE_VIDEO_CAPTURE,
        V4L2_BUF_TYPE_VIDEO_OUTPUT,
        V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
        V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
    ):
        raise ValueError(f"only video buffer types carry a pixel format, not {buf_type}")


def g_fmt(fd: int, buf_type: int = V4L2_BUF_TYPE_VIDEO_CAPTURE) -> PixFormat | PixFormatMplane:
    """VIDIOC_G_FMT for a video buffer type; a PixFormatMplane for the *_MPLANE types."""
    _check_video_type(buf_type)
    out = v4l2_format(type=buf_type)
    ioc.ioctl(fd, VIDIOC_G_FMT, out, "VIDIOC_G_FMT")
    return _format_value(out)


def s_fmt(
    fd: int, fmt: PixFormat | PixFormatMplane, buf_type: int = V4L2_BUF_TYPE_VIDEO_CAPTURE
) -> PixFormat | PixFormatMplane:
    """VIDIOC_S_FMT; returns the format as the driver adjusted it."""
    _check_video_type(buf_type)
    out = _format_struct(fmt, buf_type)
    ioc.ioctl(fd, VIDIOC_S_FMT, out, "VIDIOC_S_FMT")
    return _format_value(out)


def try_fmt(
    fd: int, fmt: PixFormat | PixFormatMplane, buf_type: int = V4L2_BUF_TYPE_VIDEO_CAPTURE
) -> PixFormat | PixFormatMplane:
    """VIDIOC_TRY_FMT; returns the format the driver would use, changing nothing."""
    _check_video_type(buf_type)
    out = _format_struct(fmt, buf_type)
    ioc.ioctl(fd, VIDIOC_TRY_FMT, out, "VIDIOC_TRY_FMT")
    return _format_value(out)


def reset_fmt(fd: int, buf_type: int) -> None:
    """VIDIOC_G_FMT then VIDIOC_S_FMT of what it returned, for any buffer type (VBI,
    SDR, metadata carry no pixel format): the node's own format, set by this fd."""
    out = v4l2_format(type=buf_type)
    ioc.ioctl(fd, VIDIOC_G_FMT, out, "VIDIOC_G_FMT")
    ioc.ioctl(fd, VIDIOC_S_FMT, out, "VIDIOC_S_FMT")


def g_fmt_raw(fd: int, buf_type: int) -> None:
    """VIDIOC_G_FMT for any buffer type, its answer dropped: a probe of the ioctl."""
    ioc.ioctl(fd, VIDIOC_G_FMT, v4l2_format(type=buf_type), "VIDIOC_G_FMT")


@dataclass(frozen=True)
class RequestBuffers:
    count: int
    capabilities: int
    flags: int


def reqbufs(
    fd: int,
    count: int,
    buf_type: int = V4L2_BUF_TYPE_VIDEO_CAPTURE,
    memory: int = V4L2_MEMORY_MMAP,
    flags: int = 0,
) -> RequestBuffers:
    """VIDIOC_REQBUFS; count 0 frees the queue's buffers.  Returns the count granted."""
    req = v4l2_requestbuffers(count=count, type=buf_type, memory=memory, flags=flags)
    ioc.ioctl(fd, VIDIOC_REQBUFS, req, "VIDIOC_REQBUFS")
    return RequestBuffers(req.count, req.capabilities, req.flags)


@dataclass(frozen=True)
class CreateBuffers:
    index: int
    count: int
    capabilities: int
    flags: int


def create_bufs(
    fd: int,
    count: int,
    fmt: PixFormat | PixFormatMplane,
    buf_type: int = V4L2_BUF_TYPE_VIDEO_CAPTURE,
    memory: int = V4L2_MEMORY_MMAP,
    flags: int = 0,
) -> CreateBuffers:
    """VIDIOC_CREATE_BUFS: add buffers sized for fmt; index is the first new one.  count 0
    only fills in capabilities."""
    _check_video_type(buf_type)
    req = v4l2_create_buffers(
        count=count, memory=memory, format=_format_struct(fmt, buf_type), flags=flags
    )
    ioc.ioctl(fd, VIDIOC_CREATE_BUFS, req, "VIDIOC_CREATE_BUFS")
    return CreateBuffers(req.index, req.count, req.capabilities, req.flags)


@dataclass(frozen=True)
class Plane:
    """One plane of a multi-planar buffer.  m is mem_offset, userptr or fd by memory."""

    bytesused: int = 0
    length: int = 0
    m: int = 0
    data_offset: int = 0


@dataclass(frozen=True)
class Buffer:
    """A v4l2_buffer.  m is the mmap offset, the user pointer or the dmabuf fd, by memory;
    for multi-planar buffers it is unused and planes holds one entry per plane."""

    index: int
    type: int
    memory: int
    bytesused: int
    flags: int
    field: int
    timestamp_ns: int
    sequence: int
    m: int
    length: int
    planes: tuple[Plane, ...] = ()

    @property
    def flags_str(self) -> str:
        return buf_flags_str(self.flags)


def _plane_m(plane: ctypes.Structure, memory: int) -> int:
    # plane is a v4l2_plane: v4l2-python3's, untyped, so it is named by its base class.
    if memory == V4L2_MEMORY_USERPTR:
        return plane.m.userptr
    if memory == V4L2_MEMORY_DMABUF:
        return plane.m.fd
    return plane.m.mem_offset


def _buffer_m(buf: v4l2_buffer, memory: int) -> int:
    if memory == V4L2_MEMORY_USERPTR:
        return buf.m.userptr
    if memory == V4L2_MEMORY_DMABUF:
        return buf.m.fd
    return buf.m.offset


class _BufferArg:
    """A v4l2_buffer and, for multi-planar types, the plane array it points to, kept
    together so the array lives as long as the ioctl that writes through the pointer."""

    def __init__(self, index: int, buf_type: int, memory: int) -> None:
        self.buf = v4l2_buffer(index=index, type=buf_type, memory=memory)
        self.planes: ctypes.Array | None = None
        if is_multiplanar(buf_type):
            self.planes = (v4l2_plane * VIDEO_MAX_PLANES)()
            self.buf.m.planes = ctypes.cast(self.planes, ctypes.POINTER(v4l2_plane))
            self.buf.length = VIDEO_MAX_PLANES

    def value(self) -> Buffer:
        buf = self.buf
        planes: tuple[Plane, ...] = ()
        if self.planes is not None:
            planes = tuple(
                Plane(p.bytesused, p.length, _plane_m(p, buf.memory), p.data_offset)
                for p in self.planes[: min(buf.length, VIDEO_MAX_PLANES)]
            )
        return Buffer(
            index=buf.index,
            type=buf.type,
            memory=buf.memory,
            bytesused=buf.bytesused,
            flags=buf.flags,
            field=buf.field,
            timestamp_ns=timestamp_ns(buf),
            sequence=buf.sequence,
            m=0 if self.planes is not None else _buffer_m(buf, buf.memory),
            length=buf.length,
            planes=planes,
        )


def querybuf(
    fd: int,
    index: int,
    buf_type: int = V4L2_BUF_TYPE_VIDEO_CAPTURE,
    memory: int = V4L2_MEMORY_MMAP,
) -> Buffer:
    """VIDIOC_QUERYBUF: for MMAP, m (or each plane's m) is the offset to pass to mmap."""
    arg = _BufferArg(index, buf_type, memory)
    ioc.ioctl(fd, VIDIOC_QUERYBUF, arg.buf, "VIDIOC_QUERYBUF")
    return arg.value()


def qbuf(
    fd: int,
    index: int,
    buf_type: int = V4L2_BUF_TYPE_VIDEO_CAPTURE,
    memory: int = V4L2_MEMORY_MMAP,
    *,
    m: int = 0,
    length: int = 0,
    bytesused: int = 0,
    planes: Sequence[Plane] = (),
) -> Buffer:
    """VIDIOC_QBUF.  For USERPTR pass the address as m and its size as length; for DMABUF
    the dmabuf fd as m.  Multi-planar types take planes instead, one per plane; without
    them all VIDEO_MAX_PLANES slots go in zeroed, which the kernel accepts for MMAP
    capture (it only needs length >= the buffer's plane count)."""
    arg = _BufferArg(index, buf_type, memory)
    buf = arg.buf
    buf.bytesused = bytesused
    if arg.planes is not None:
        if len(planes) > VIDEO_MAX_PLANES:
            raise ValueError(f"{len(planes)} planes, at most {VIDEO_MAX_PLANES}")
        if planes:
            buf.length = len(planes)
        for slot, plane in zip(arg.planes, planes, strict=False):
            slot.bytesused, slot.length, slot.data_offset = (
                plane.bytesused,
                plane.length,
                plane.data_offset,
            )
            if memory == V4L2_MEMORY_USERPTR:
                slot.m.userptr = plane.m
            elif memory == V4L2_MEMORY_DMABUF:
                slot.m.fd = plane.m
            else:
                slot.m.mem_offset = plane.m
    else:
        buf.length = length
        if memory == V4L2_MEMORY_USERPTR:
            buf.m.userptr = m
        elif memory == V4L2_MEMORY_DMABUF:
            buf.m.fd = m
    ioc.ioctl(fd, VIDIOC_QBUF, buf, "VIDIOC_QBUF")
    return arg.value()


def dqbuf(
    fd: int, buf_type: int = V4L2_BUF_TYPE_VIDEO_CAPTURE, memory: int = V4L2_MEMORY_MMAP
) -> Buffer:
    """VIDIOC_DQBUF.  Blocks unless fd is non-blocking (then EAGAIN when nothing is done).
    A buffer with V4L2_BUF_FLAG_ERROR set still counts as dequeued."""
    arg = _BufferArg(0, buf_type, memory)
    ioc.ioctl(fd, VIDIOC_DQBUF, arg.buf, "VIDIOC_DQBUF")
    return arg.value()


class CaptureQueue:
    """DQBUF and QBUF again on a single-planar capture queue, for a loop that runs
    once a frame (the first QBUF of each buffer is qbuf()'s).

    DQBUF's struct is copied from one made once, read in place and queued
    again as it is, instead of becoming a Buffer: in a TCG guest, building a
    struct from keywords and reading every field back was a large part of the
    CPU a frame cost the harness.
    """

    def __init__(self, fd: int, memory: int = V4L2_MEMORY_MMAP) -> None:
        self.fd = fd
        self._dequeued = bytes(v4l2_buffer(type=V4L2_BUF_TYPE_VIDEO_CAPTURE, memory=memory))

    def requeue(self, buf: v4l2_buffer) -> None:
        """VIDIOC_QBUF of a buffer as DQBUF returned it: the kernel filled in
        its index, memory and where it lives, as QBUF wants them."""
        ioc.ioctl(self.fd, VIDIOC_QBUF, buf, "VIDIOC_QBUF")

    def dqbuf(self) -> v4l2_buffer:
        """VIDIOC_DQBUF: the kernel's struct itself (see dqbuf() for blocking)."""
        buf = v4l2_buffer.from_buffer_copy(self._dequeued)
        ioc.ioctl(self.fd, VIDIOC_DQBUF, buf, "VIDIOC_DQBUF")
        return buf


def timestamp_ns(buf: v4l2_buffer) -> int:
    return buf.timestamp.tv_sec * 1_000_000_000 + buf.timestamp.tv_usec * 1000


def streamon(fd: int, buf_type: int = V4L2_BUF_TYPE_VIDEO_CAPTURE) -> None:
    """VIDIOC_STREAMON."""
    ioc.ioctl(fd, VIDIOC_STREAMON, ctypes.c_int(buf_type), "VIDIOC_STREAMON")


def streamoff(fd: int, buf_type: int = V4L2_BUF_TYPE_VIDEO_CAPTURE) -> None:
    """VIDIOC_STREAMOFF; also returns every queued buffer to the dequeued state."""
    ioc.ioctl(fd, VIDIOC_STREAMOFF, ctypes.c_int(buf_type), "VIDIOC_STREAMOFF")


def expbuf(
    fd: int,
    index: int,
    buf_type: int = V4L2_BUF_TYPE_VIDEO_CAPTURE,
    plane: int = 0,
    flags: int = os.O_RDWR | os.O_CLOEXEC,
) -> int:
    """VIDIOC_EXPBUF: a dmabuf fd for an MMAP buffer (the caller closes it).  Such an fd
    outliving the video device is exactly what unplug tests poke at."""
    exp = v4l2_exportbuffer(type=buf_type, index=index, plane=plane, flags=flags)
    ioc.ioctl(fd, VIDIOC_EXPBUF, exp, "VIDIOC_EXPBUF")
    return exp.fd


@dataclass(frozen=True)
class FrameSizeDiscrete:
    width: int
    height: int


@dataclass(frozen=True)
class FrameSizeStepwise:
    """A size range; type tells STEPWISE from CONTINUOUS (where both steps are 1)."""

    type: int
    min_width: int
    max_width: int
    step_width: int
    min_height: int
    max_height: int
    step_height: int


def enum_framesizes(fd: int, pixelformat: int) -> list[FrameSizeDiscrete | FrameSizeStepwise]:
    """VIDIOC_ENUM_FRAMESIZES: all discrete sizes, or the one stepwise/continuous range."""
    found: list[FrameSizeDiscrete | FrameSizeStepwise] = []
    index = 0
    while True:
        _enum_guard("VIDIOC_ENUM_FRAMESIZES", index)
        size = v4l2_frmsizeenum(index=index, pixel_format=pixelformat)
        try:
            ioc.ioctl(fd, VIDIOC_ENUM_FRAMESIZES, size, "VIDIOC_ENUM_FRAMESIZES")
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                return found
            raise
        if size.type == V4L2_FRMSIZE_TYPE_DISCRETE:
            found.append(FrameSizeDiscrete(size.discrete.width, size.discrete.height))
            index += 1
            continue
        sw = size.stepwise
        found.append(
            FrameSizeStepwise(
                size.type,
                sw.min_width,
                sw.max_width,
                sw.step_width,
                sw.min_height,
                sw.max_height,
                sw.step_height,
            )
        )
        # A range is the whole answer: index 1 is not asked for.
        return found


@dataclass(frozen=True)
class Rect:
    left: int
    top: int
    width: int
    height: int


def g_selection(fd: int, target: int, buf_type: int = V4L2_BUF_TYPE_VIDEO_CAPTURE) -> Rect:
    """VIDIOC_G_SELECTION.  For capture queues buf_type is the single-planar type even on
    multi-planar devices, as the API requires."""
    sel = v4l2_selection(type=buf_type, target=target)
    ioc.ioctl(fd, VIDIOC_G_SELECTION, sel, "VIDIOC_G_SELECTION")
    return Rect(sel.r.left, sel.r.top, sel.r.width, sel.r.height)


def s_selection(
    fd: int,
    target: int,
    rect: Rect,
    flags: int = 0,
    buf_type: int = V4L2_BUF_TYPE_VIDEO_CAPTURE,
) -> Rect:
    """VIDIOC_S_SELECTION; returns the rectangle the driver chose."""
    sel = v4l2_selection(
        type=buf_type,
        target=target,
        flags=flags,
        r=v4l2_rect(rect.left, rect.top, rect.width, rect.height),
    )
    ioc.ioctl(fd, VIDIOC_S_SELECTION, sel, "VIDIOC_S_SELECTION")
    return Rect(sel.r.left, sel.r.top, sel.r.width, sel.r.height)


# ---------------------------------------------------------------------------------------------
# What the layout test compares with the C header

C_HEADERS = ["linux/videodev2.h"]

C_STRUCTS = ioc.c_structs(globals(), ("v4l2_", "timeval"))

C_CONSTANTS = ioc.c_constants(globals(), ("V4L2_", "VIDIOC_", "VIDEO_MAX_"))


def s_input(fd: int, index: int) -> None:
    """VIDIOC_S_INPUT: select the device's input `index`."""
    ioc.ioctl(fd, VIDIOC_S_INPUT, ctypes.c_int(index), "VIDIOC_S_INPUT")


def encoder_stop(fd: int) -> None:
    """VIDIOC_ENCODER_CMD V4L2_ENC_CMD_STOP: drain the encoder."""
    ioc.ioctl(fd, VIDIOC_ENCODER_CMD, v4l2_encoder_cmd(cmd=V4L2_ENC_CMD_STOP),
              "VIDIOC_ENCODER_CMD")


def decoder_stop(fd: int) -> None:
    """VIDIOC_DECODER_CMD V4L2_DEC_CMD_STOP: drain the decoder."""
    ioc.ioctl(fd, VIDIOC_DECODER_CMD, v4l2_decoder_cmd(cmd=V4L2_DEC_CMD_STOP),
              "VIDIOC_DECODER_CMD")
