"""A V4L2 sub-device node on the target, and how media-ctl prints its pads.

Reading a pad's state (format, frame interval, selection rectangles) happens
on the target; the result is plain data that travels to the host, where
`render_pad` turns it into the `[fmt:... crop:...]` lines of `media-ctl -p`.
The name tables below are media-ctl's (libv4l2subdev), not the kernel's, so
that the text compares equal to what a kernel developer already reads.
"""

from __future__ import annotations

import ctypes
import errno
import os
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any

from harness.target.uapi import ioc, subdev
from harness.target.uapi import videodev2 as v4l2

FIELD_NAMES = (
    "any", "none", "top", "bottom", "interlaced", "seq-tb", "seq-bt", "alternate",
    "interlaced-tb", "interlaced-bt",
)
COLORSPACE_NAMES = {
    0: "default", 1: "smpte170m", 2: "smpte240m", 3: "rec709", 5: "470m", 6: "470bg",
    7: "jpeg", 8: "srgb", 9: "oprgb", 10: "bt2020", 11: "raw", 12: "dcip3",
}
XFER_FUNC_NAMES = ("default", "709", "srgb", "oprgb", "smpte240m", "smpte2084", "dcip3", "none")
YCBCR_ENC_NAMES = {
    0: "default", 1: "601", 2: "709", 3: "xv601", 4: "xv709", 6: "bt2020", 7: "bt2020c",
    8: "smpte240m",
}
QUANTIZATION_NAMES = ("default", "full-range", "lim-range")

# The selection targets media-ctl asks for, in its order, with its labels.
SELECTION_TARGETS = (
    ("crop.bounds", v4l2.V4L2_SEL_TGT_CROP_BOUNDS),
    ("crop", v4l2.V4L2_SEL_TGT_CROP),
    ("compose.bounds", v4l2.V4L2_SEL_TGT_COMPOSE_BOUNDS),
    ("compose", v4l2.V4L2_SEL_TGT_COMPOSE),
)


def _name(names: tuple[str, ...] | dict[int, str], value: int) -> str:
    if isinstance(names, dict):
        return names.get(value, "unknown")
    return names[value] if 0 <= value < len(names) else "unknown"


def media_ctl_code(code: int) -> str:
    """A media bus code as media-ctl prints it; media-ctl says "unknown" where we'd say hex."""
    name = subdev.mbus_code_name(code)
    return "unknown" if name.startswith("0x") else name


def code_from_name(name: str) -> int:
    """The media bus code for a name as media-ctl prints it ("SGRBG8_1X8")."""
    for code, known in subdev.MEDIA_BUS_FMT_NAMES.items():
        if known == name:
            return code
    raise ValueError(f"unknown media bus code {name!r}")


@dataclass(frozen=True)
class PadState:
    """What media-ctl shows for one pad: its active format, frame interval (if the
    subdev has one) and the selection rectangles the driver answers for."""

    format: subdev.MbusFormat
    interval: tuple[int, int] | None = None
    # label ("crop.bounds", "crop", ...) -> (left, top, width, height), in media-ctl's order
    selections: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": asdict(self.format),
            "interval": list(self.interval) if self.interval else None,
            "selections": {k: list(v) for k, v in self.selections.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PadState:
        interval = d.get("interval")
        return cls(
            format=subdev.MbusFormat(**d["format"]),
            interval=(interval[0], interval[1]) if interval else None,
            selections={k: (v[0], v[1], v[2], v[3]) for k, v in d.get("selections", {}).items()},
        )


def g_frame_interval(fd: int, pad: int) -> tuple[int, int] | None:
    """VIDIOC_SUBDEV_G_FRAME_INTERVAL as (numerator, denominator); None if the subdev
    has no frame interval (ENOTTY, EINVAL)."""
    arg = subdev.v4l2_subdev_frame_interval(pad=pad)
    try:
        ioc.ioctl(fd, subdev.VIDIOC_SUBDEV_G_FRAME_INTERVAL, arg,
                  "VIDIOC_SUBDEV_G_FRAME_INTERVAL")
    except OSError as e:
        if e.errno in (errno.ENOTTY, errno.EINVAL):
            return None
        raise
    return arg.interval.numerator, arg.interval.denominator


def read_pad(fd: int, pad: int) -> PadState | None:
    """A pad's state the way media-ctl reads it: nothing at all if G_FMT fails, and
    each selection target only where the driver answers."""
    try:
        fmt = subdev.g_fmt(fd, pad)
        # Like media-ctl, a frame interval that fails other than "not supported"
        # leaves the whole pad out.
        interval = g_frame_interval(fd, pad)
    except OSError:
        return None
    selections = {}
    for label, target in SELECTION_TARGETS:
        try:
            r = subdev.g_selection(fd, pad, target)
        except OSError:
            continue
        selections[label] = (r.left, r.top, r.width, r.height)
    return PadState(fmt, interval, selections)


def render_pad(state: PadState) -> list[str]:
    """The `\\t\\t[fmt:...]` lines media-ctl -p prints under a subdev pad."""
    f = state.format
    text = f"\t\t[fmt:{media_ctl_code(f.code)}/{f.width}x{f.height}"
    if state.interval is not None and any(state.interval):
        text += f"@{state.interval[0]}/{state.interval[1]}"
    if f.field:
        text += f" field:{_name(FIELD_NAMES, f.field)}"
    if f.colorspace:
        text += f" colorspace:{_name(COLORSPACE_NAMES, f.colorspace)}"
        if f.xfer_func:
            text += f" xfer:{_name(XFER_FUNC_NAMES, f.xfer_func)}"
        if f.ycbcr_enc:
            text += f" ycbcr:{_name(YCBCR_ENC_NAMES, f.ycbcr_enc)}"
        if f.quantization:
            text += f" quantization:{_name(QUANTIZATION_NAMES, f.quantization)}"
    lines = [text]
    for label, _ in SELECTION_TARGETS:
        if label in state.selections:
            left, top, width, height = state.selections[label]
            # media-ctl prints the offsets with %u: a negative left shows as 2**32 - n.
            lines.append(
                f"\t\t {label}:({ctypes.c_uint32(left).value},{ctypes.c_uint32(top).value})"
                f"/{width}x{height}"
            )
    lines[-1] += "]"
    return lines


def describe_format(f: subdev.MbusFormat) -> str:
    """"SGRBG8_1X8/640x480", the way media-ctl -V spells a format."""
    return f"{media_ctl_code(f.code)}/{f.width}x{f.height}"


class SubdevNode:
    """An open /dev/v4l-subdev*; a context manager that closes it."""

    def __init__(self, path: str, name: str = ""):
        self.path = path
        self.name = name or path
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)

    def __enter__(self) -> SubdevNode:
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

    def querycap(self) -> subdev.SubdevCapability:
        return subdev.querycap(self.fd)

    def g_fmt(self, pad: int) -> subdev.MbusFormat:
        return subdev.g_fmt(self.fd, pad)

    def set_format(self, pad: int, code: int, width: int, height: int) -> subdev.MbusFormat:
        """S_FMT of code and size only: field and colorimetry stay what the pad has, so a
        driver that validates colorimetry across links sees nothing else change."""
        current = subdev.g_fmt(self.fd, pad)
        want = subdev.MbusFormat(
            width=width, height=height, code=code, field=current.field,
            colorspace=current.colorspace, ycbcr_enc=current.ycbcr_enc,
            quantization=current.quantization, xfer_func=current.xfer_func,
        )
        return subdev.s_fmt(self.fd, pad, want)

    def pad_state(self, pad: int) -> PadState | None:
        return read_pad(self.fd, pad)

    def mbus_codes(self, pad: int) -> list[int]:
        return [c.code for c in subdev.enum_mbus_codes(self.fd, pad)]
