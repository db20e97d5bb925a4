"""Prove the ctypes layouts in harness.target.uapi against the kernel's own headers.

Each harness.target.uapi module lists what it mirrors: C_HEADERS, C_STRUCTS (C struct name, ctypes
class) and C_CONSTANTS (C macro, enumerator or expression, Python value).  From those lists
this test writes a C program that prints, for every struct, its size and alignment, and for
every field (nested struct members, anonymous union members and array elements included)
its offset, its size and, for integer scalars, whether it is signed; and the value of every
constant and ioctl number.  gcc compiles it against /usr/include, and the output is compared
with ctypes, entry by entry.  Nothing about a layout is taken on trust.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

import pytest

from harness.target.uapi import ioc, media, subdev, videodev2

MODULES: list[ModuleType] = [ioc, media, subdev, videodev2]

# ctypes type codes of the integer scalars; lower case is signed.
_INT_CODES = "bBhHiIlLqQ"


@dataclass(frozen=True)
class FieldProbe:
    struct: str  # "struct v4l2_format"
    path: str  # C member designator: "fmt.pix_mp.plane_fmt[0].bytesperline"
    offset: int  # Python offset from the start of the struct
    size: int
    signed: int  # 1 or 0 for integer scalars, -1 for anything else


@dataclass(frozen=True)
class StructProbe:
    name: str
    cls: type
    fields: tuple[FieldProbe, ...]


def _signedness(ctype: type) -> int:
    code = getattr(ctype, "_type_", None)
    if isinstance(code, str) and code in _INT_CODES:
        return int(code.islower())
    return -1


def _element(array: type[ctypes.Array]) -> type[ctypes._CData]:
    # typeshed declares Array._type_ as an instance property; ctypes sets it on the class.
    return array._type_  # type: ignore[return-value]


def _walk(struct: str, ctype: type, path: str, offset: int) -> Iterator[FieldProbe]:
    """Every member reachable from ctype by name or [0], as C designators.

    Members listed in _anonymous_ are C anonymous unions or structs: they have no name of
    their own, so their members are reached through the parent's path, exactly as in C.
    Pointers are not followed; their targets are separate structs.
    """
    if issubclass(ctype, ctypes.Structure | ctypes.Union):
        anonymous = set(getattr(ctype, "_anonymous_", ()))
        for name, member_type, *_ in ctype._fields_:
            member_offset = offset + getattr(ctype, name).offset
            if name in anonymous:
                yield from _walk(struct, member_type, path, member_offset)
                continue
            member_path = f"{path}.{name}" if path else name
            yield FieldProbe(
                struct,
                member_path,
                member_offset,
                ctypes.sizeof(member_type),
                _signedness(member_type),
            )
            yield from _walk(struct, member_type, member_path, member_offset)
    elif issubclass(ctype, ctypes.Array):
        element = _element(ctype)
        element_path = f"{path}[0]"
        yield FieldProbe(struct, element_path, offset, ctypes.sizeof(element), _signedness(element))
        yield from _walk(struct, element, element_path, offset)


def _members(ctype: type) -> list[tuple[str, type]]:
    """(name, type) of the members reachable directly on ctype, with anonymous members
    flattened into their parent as C does."""
    assert issubclass(ctype, ctypes.Structure | ctypes.Union)  # so are anonymous members
    members: list[tuple[str, type]] = []
    anonymous = set(getattr(ctype, "_anonymous_", ()))
    for name, member_type, *_ in ctype._fields_:
        members.extend(_members(member_type) if name in anonymous else [(name, member_type)])
    return members


def _duplicates(ctype: type, path: str = "") -> Iterator[str]:
    """Members declared twice.  ctypes accepts that silently and every access by name
    reaches the last one, so an offset check by name cannot see the first."""
    if issubclass(ctype, ctypes.Array):
        yield from _duplicates(_element(ctype), f"{path}[0]")
        return
    if not issubclass(ctype, ctypes.Structure | ctypes.Union):
        return
    members = _members(ctype)
    names = [name for name, _ in members]
    for name in sorted({n for n in names if names.count(n) > 1}):
        yield f"{path}.{name}" if path else name
    for name, member_type in members:
        yield from _duplicates(member_type, f"{path}.{name}" if path else name)


def _structs() -> list[StructProbe]:
    seen: dict[str, StructProbe] = {}
    for module in MODULES:
        for name, cls in module.C_STRUCTS:
            if name in seen:
                assert seen[name].cls is cls, f"{name} is defined twice in harness.target.uapi"
                continue
            seen[name] = StructProbe(name, cls, tuple(_walk(name, cls, "", 0)))
    return list(seen.values())


def _constants() -> list[tuple[str, str, int]]:
    return [
        (module.__name__, c_name, value)
        for module in MODULES
        for c_name, value in module.C_CONSTANTS
    ]


STRUCTS = _structs()
CONSTANTS = _constants()
FIELDS = [f for s in STRUCTS for f in s.fields]


def _c_program() -> str:
    """A C program printing one line per probe, tagged with the probe's index."""
    headers = ["stdio.h", "stddef.h"] + sorted({h for m in MODULES for h in m.C_HEADERS})
    lines = [f"#include <{h}>" for h in headers]
    lines.append("int main(void)\n{")
    for i, probe in enumerate(STRUCTS):
        lines.append(f'\tprintf("S {i} %zu %zu\\n", sizeof({probe.name}), _Alignof({probe.name}));')
    for i, f in enumerate(FIELDS):
        member = f"((({f.struct} *)0)->{f.path})"
        signed = f"((__typeof__{member})-1 < 0)" if f.signed >= 0 else "-1"
        lines.append(
            f'\tprintf("F {i} %zu %zu %d\\n", offsetof({f.struct}, {f.path}), '
            f"sizeof{member}, (int){signed});"
        )
    for i, (_, c_name, _) in enumerate(CONSTANTS):
        lines.append(f'\tprintf("C {i} %lld %zu\\n", (long long)({c_name}), sizeof({c_name}));')
    lines.append("\treturn 0;\n}\n")
    return "\n".join(lines)


@dataclass
class CResults:
    structs: dict[int, tuple[int, int]]
    fields: dict[int, tuple[int, int, int]]
    constants: dict[int, tuple[int, int]]


@pytest.fixture(scope="module")
def c_results(tmp_path_factory: pytest.TempPathFactory) -> CResults:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed, so the layouts cannot be checked against C")
    workdir = tmp_path_factory.mktemp("uapi_layout")
    source = workdir / "layout.c"
    binary = workdir / "layout"
    source.write_text(_c_program())
    build = subprocess.run(
        [gcc, "-std=gnu11", "-Wall", "-O0", "-o", str(binary), str(source)],
        capture_output=True,
        text=True,
    )
    if build.returncode != 0:
        pytest.fail(
            "the generated C does not compile; a Python name has no C counterpart in the "
            "installed headers (linux-libc-dev), or a header is missing:\n"
            f"{_first_errors(build.stderr)}\nsource: {source}",
            pytrace=False,
        )
    run = subprocess.run([str(binary)], capture_output=True, text=True, check=True)
    results = CResults({}, {}, {})
    for line in run.stdout.splitlines():
        tag, index, *values = line.split()
        numbers = [int(v) for v in values]
        if tag == "S":
            results.structs[int(index)] = (numbers[0], numbers[1])
        elif tag == "F":
            results.fields[int(index)] = (numbers[0], numbers[1], numbers[2])
        else:
            results.constants[int(index)] = (numbers[0], numbers[1])
    return results


def _first_errors(stderr: str, limit: int = 40) -> str:
    errors = [line for line in stderr.splitlines() if "error" in line]
    return "\n".join(errors[:limit] or stderr.splitlines()[:limit])


def _field_index() -> dict[str, list[int]]:
    by_struct: dict[str, list[int]] = {}
    for i, f in enumerate(FIELDS):
        by_struct.setdefault(f.struct, []).append(i)
    return by_struct


FIELD_INDEX = _field_index()


@pytest.mark.parametrize(
    "index", range(len(STRUCTS)), ids=[s.name.removeprefix("struct ") for s in STRUCTS]
)
def test_struct_layout(c_results: CResults, index: int) -> None:
    probe = STRUCTS[index]
    problems = []
    c_size, c_align = c_results.structs[index]
    py_size, py_align = ctypes.sizeof(probe.cls), ctypes.alignment(probe.cls)
    for path in _duplicates(probe.cls):
        problems.append(f"{probe.name} field {path}: declared more than once in Python")
    if c_size != py_size:
        problems.append(f"{probe.name}: C sizeof {c_size}, Python sizeof {py_size}")
    if c_align != py_align:
        problems.append(f"{probe.name}: C alignment {c_align}, Python alignment {py_align}")
    for i in FIELD_INDEX.get(probe.name, []):
        f = FIELDS[i]
        c_offset, c_fsize, c_signed = c_results.fields[i]
        if c_offset != f.offset:
            problems.append(
                f"{probe.name} field {f.path}: C offset {c_offset}, Python offset {f.offset}"
            )
        if c_fsize != f.size:
            problems.append(f"{probe.name} field {f.path}: C size {c_fsize}, Python size {f.size}")
        if c_signed != f.signed:
            kinds = {1: "signed", 0: "unsigned", -1: "not an integer"}
            problems.append(
                f"{probe.name} field {f.path}: C is {kinds[c_signed]}, Python is {kinds[f.signed]}"
            )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("module", [m.__name__ for m in MODULES])
def test_constants(c_results: CResults, module: str) -> None:
    problems = []
    for i, (owner, c_name, value) in enumerate(CONSTANTS):
        if owner != module:
            continue
        c_value, c_size = c_results.constants[i]
        # Compare bit patterns in the width of the C expression: (0xf << 28) is an int in
        # C and so negative, yet as a mask for a __u32 it is 0xf0000000, which is the value
        # Python code needs.
        mask = (1 << (8 * c_size)) - 1
        if value & mask != c_value & mask or value.bit_length() > 8 * c_size:
            problems.append(f"{c_name}: C {c_value & mask:#x} ({c_size} bytes), Python {value:#x}")
    assert not problems, "\n".join(problems)


# The parts of the API the harness relies on; if one of them is renamed or dropped, the
# tests above would silently compare less, so their presence is checked by name.
REQUIRED_STRUCTS = {
    "struct media_device_info",
    "struct media_v2_topology",
    "struct media_v2_entity",
    "struct media_v2_interface",
    "struct media_v2_intf_devnode",
    "struct media_v2_pad",
    "struct media_v2_link",
    "struct media_link_desc",
    "struct media_pad_desc",
    "struct media_entity_desc",
    "struct media_links_enum",
    "struct v4l2_subdev_capability",
    "struct v4l2_mbus_framefmt",
    "struct v4l2_subdev_format",
    "struct v4l2_subdev_selection",
    "struct v4l2_subdev_mbus_code_enum",
    "struct v4l2_subdev_frame_size_enum",
    "struct v4l2_capability",
    "struct v4l2_format",
    "struct v4l2_pix_format",
    "struct v4l2_pix_format_mplane",
    "struct v4l2_fmtdesc",
    "struct v4l2_requestbuffers",
    "struct v4l2_buffer",
    "struct v4l2_plane",
    "struct v4l2_exportbuffer",
    "struct v4l2_create_buffers",
    "struct v4l2_frmsizeenum",
}
REQUIRED_CONSTANTS = {
    "MEDIA_IOC_DEVICE_INFO",
    "MEDIA_IOC_G_TOPOLOGY",
    "MEDIA_IOC_SETUP_LINK",
    "MEDIA_IOC_ENUM_ENTITIES",
    "MEDIA_IOC_ENUM_LINKS",
    "MEDIA_ENT_ID_FLAG_NEXT",
    "MEDIA_LNK_FL_LINK_TYPE",
    "MEDIA_LNK_FL_DATA_LINK",
    "MEDIA_LNK_FL_INTERFACE_LINK",
    "MEDIA_LNK_FL_ANCILLARY_LINK",
    "VIDIOC_SUBDEV_QUERYCAP",
    "VIDIOC_SUBDEV_G_FMT",
    "VIDIOC_SUBDEV_S_FMT",
    "VIDIOC_SUBDEV_G_SELECTION",
    "VIDIOC_SUBDEV_S_SELECTION",
    "VIDIOC_SUBDEV_ENUM_MBUS_CODE",
    "VIDIOC_SUBDEV_ENUM_FRAME_SIZE",
    "V4L2_SUBDEV_FORMAT_TRY",
    "V4L2_SUBDEV_FORMAT_ACTIVE",
    "VIDIOC_QUERYCAP",
    "VIDIOC_G_FMT",
    "VIDIOC_S_FMT",
    "VIDIOC_TRY_FMT",
    "VIDIOC_ENUM_FMT",
    "VIDIOC_REQBUFS",
    "VIDIOC_QUERYBUF",
    "VIDIOC_QBUF",
    "VIDIOC_DQBUF",
    "VIDIOC_STREAMON",
    "VIDIOC_STREAMOFF",
    "VIDIOC_EXPBUF",
    "VIDIOC_CREATE_BUFS",
    "VIDIOC_ENUM_FRAMESIZES",
    "V4L2_CAP_DEVICE_CAPS",
    "V4L2_CAP_IO_MC",
    "V4L2_CAP_STREAMING",
    "V4L2_CAP_READWRITE",
    "V4L2_CAP_VIDEO_CAPTURE",
    "V4L2_CAP_VIDEO_CAPTURE_MPLANE",
    "V4L2_CAP_META_CAPTURE",
    "V4L2_MEMORY_MMAP",
    "V4L2_MEMORY_USERPTR",
    "V4L2_MEMORY_DMABUF",
}


def test_required_api_is_compared() -> None:
    structs = {s.name for s in STRUCTS}
    constants = {c_name for _, c_name, _ in CONSTANTS}
    assert not REQUIRED_STRUCTS - structs, sorted(REQUIRED_STRUCTS - structs)
    assert not REQUIRED_CONSTANTS - constants, sorted(REQUIRED_CONSTANTS - constants)


def test_vimc_formats_are_compared() -> None:
    """Every media bus code and pixel format vimc offers (vimc-common.c), and the YUV bus
    codes the harness configures, are checked."""
    constants = {c_name for _, c_name, _ in CONSTANTS}
    bayer = [f"S{o}{b}" for o in ("BGGR", "GBRG", "GRBG", "RGGB") for b in ("8", "10", "12")]
    pix = {f"V4L2_PIX_FMT_{n}" for n in ["RGB24", "BGR24", "ARGB32", *bayer]}
    pix |= {
        f"V4L2_PIX_FMT_{o}10{c}8"
        for o in ("SBGGR", "SGBRG", "SGRBG", "SRGGB")
        for c in ("ALAW", "DPCM")
    }
    mbus = {
        f"MEDIA_BUS_FMT_{n}"
        for n in [
            "RGB888_1X24",
            "RGB888_2X12_BE",
            "RGB888_2X12_LE",
            "RGB888_3X8",
            "RGB888_1X7X4_SPWG",
            "RGB888_1X7X4_JEIDA",
            "RGB888_1X32_PADHI",
            "GBR888_1X24",
            "BGR888_1X24",
            "BGR888_3X8",
            "ARGB8888_1X32",
            "YUYV8_2X8",
            "UYVY8_2X8",
            "YUYV8_1X16",
            "UYVY8_1X16",
        ]
    }
    for order in ("SBGGR", "SGBRG", "SGRBG", "SRGGB"):
        mbus |= {
            f"MEDIA_BUS_FMT_{order}8_1X8",
            f"MEDIA_BUS_FMT_{order}10_1X10",
            f"MEDIA_BUS_FMT_{order}12_1X12",
            f"MEDIA_BUS_FMT_{order}10_ALAW8_1X8",
            f"MEDIA_BUS_FMT_{order}10_DPCM8_1X8",
        }
    missing = (pix | mbus) - constants
    assert not missing, sorted(missing)


def test_generated_program_is_not_trivial() -> None:
    # Guards the generator itself: a bug that made _walk yield nothing would turn every
    # struct test into a sizeof-only check.
    assert len(FIELDS) > 5 * len(STRUCTS)
    paths = {(f.struct, f.path) for f in FIELDS}
    assert ("struct v4l2_format", "fmt.pix_mp.plane_fmt[0].bytesperline") in paths
    assert ("struct v4l2_buffer", "request_fd") in paths
    assert ("struct media_v2_interface", "devnode.minor") in paths
