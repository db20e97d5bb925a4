"""ioctl request numbers (the _IOC family from <asm-generic/ioctl.h>) and the ioctl call.

A request number packs four fields into 32 bits::

    bits 31..30  direction (_IOC_NONE, _IOC_WRITE, _IOC_READ, or both)
    bits 29..16  size of the argument struct
    bits 15..8   type, the driver's "magic" character ('V' for V4L2, '|' for media)
    bits  7..0   number within that type

x86_64 and arm64 (and riscv64) use this generic encoding, so one set of numbers is right
for both the host and a guest of either architecture.  powerpc, mips, sparc and alpha use a
different split (13 size bits, 3 direction bits) and parisc swaps the read and write bits;
importing this module there raises ImportError rather than handing out request numbers the
kernel would reject or, worse, route to a different ioctl.

The size field is part of the number: a Python struct that is a few bytes too small gives a
different request number, and the kernel answers ENOTTY.  The layout test
(tests/unit/test_uapi_layout.py) compares every number here with the C macros.
"""

from __future__ import annotations

import ctypes
import fcntl
import platform
from typing import Any

# Architectures with their own asm/ioctl.h; everything else in Linux uses asm-generic.
_NON_GENERIC_ARCHES = ("ppc", "powerpc", "mips", "sparc", "alpha", "parisc")
if platform.machine().lower().startswith(_NON_GENERIC_ARCHES):
    raise ImportError(
        f"harness.target.uapi encodes ioctls with the asm-generic layout, "
        f"which {platform.machine()} does not use"
    )

IOC_NRBITS = 8
IOC_TYPEBITS = 8
IOC_SIZEBITS = 14
IOC_DIRBITS = 2

IOC_NRMASK = (1 << IOC_NRBITS) - 1
IOC_TYPEMASK = (1 << IOC_TYPEBITS) - 1
IOC_SIZEMASK = (1 << IOC_SIZEBITS) - 1
IOC_DIRMASK = (1 << IOC_DIRBITS) - 1

IOC_NRSHIFT = 0
IOC_TYPESHIFT = IOC_NRSHIFT + IOC_NRBITS
IOC_SIZESHIFT = IOC_TYPESHIFT + IOC_TYPEBITS
IOC_DIRSHIFT = IOC_SIZESHIFT + IOC_SIZEBITS

IOC_NONE = 0
IOC_WRITE = 1
IOC_READ = 2


def _type_code(type_: str | int) -> int:
    if isinstance(type_, str):
        if len(type_) != 1:
            raise ValueError(f"an ioctl type is one character, got {type_!r}")
        type_ = ord(type_)
    if not 0 <= type_ <= IOC_TYPEMASK:
        raise ValueError(f"ioctl type {type_!r} does not fit in {IOC_TYPEBITS} bits")
    return type_


def _arg_size(arg: type | int) -> int:
    size = arg if isinstance(arg, int) else ctypes.sizeof(arg)
    # The C macros refuse this at compile time (_IOC_TYPECHECK); here it would silently
    # spill into the direction bits.
    if not 0 <= size <= IOC_SIZEMASK:
        raise ValueError(f"ioctl argument size {size} does not fit in {IOC_SIZEBITS} bits")
    return size


def IOC(direction: int, type_: str | int, nr: int, size: int) -> int:
    """_IOC(dir, type, nr, size).  The result is unsigned, as in C (v4l2-python3 gets
    negative numbers for every _IOR/_IOWR request because it goes through c_int32)."""
    if not 0 <= direction <= IOC_DIRMASK:
        raise ValueError(f"ioctl direction {direction} does not fit in {IOC_DIRBITS} bits")
    if not 0 <= nr <= IOC_NRMASK:
        raise ValueError(f"ioctl number {nr} does not fit in {IOC_NRBITS} bits")
    return (
        (direction << IOC_DIRSHIFT)
        | (_type_code(type_) << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
        | (_arg_size(size) << IOC_SIZESHIFT)
    )


def IO(type_: str | int, nr: int) -> int:
    """_IO(type, nr): no argument."""
    return IOC(IOC_NONE, type_, nr, 0)


def IOR(type_: str | int, nr: int, arg: type | int) -> int:
    """_IOR(type, nr, argtype): the kernel writes the argument back to user space."""
    return IOC(IOC_READ, type_, nr, _arg_size(arg))


def IOW(type_: str | int, nr: int, arg: type | int) -> int:
    """_IOW(type, nr, argtype): the kernel only reads the argument."""
    return IOC(IOC_WRITE, type_, nr, _arg_size(arg))


def IOWR(type_: str | int, nr: int, arg: type | int) -> int:
    """_IOWR(type, nr, argtype): read and written."""
    return IOC(IOC_READ | IOC_WRITE, type_, nr, _arg_size(arg))


def ioc_dir(request: int) -> int:
    """_IOC_DIR(nr)."""
    return (request >> IOC_DIRSHIFT) & IOC_DIRMASK


def ioc_type(request: int) -> int:
    """_IOC_TYPE(nr)."""
    return (request >> IOC_TYPESHIFT) & IOC_TYPEMASK


def ioc_nr(request: int) -> int:
    """_IOC_NR(nr)."""
    return (request >> IOC_NRSHIFT) & IOC_NRMASK


def ioc_size(request: int) -> int:
    """_IOC_SIZE(nr)."""
    return (request >> IOC_SIZESHIFT) & IOC_SIZEMASK


def describe(request: int) -> str:
    """A request number as its fields, for logs: "_IOWR('V', 4, 208)"."""
    macro = {IOC_NONE: "_IO", IOC_READ: "_IOR", IOC_WRITE: "_IOW"}.get(ioc_dir(request), "_IOWR")
    type_ = ioc_type(request)
    shown = repr(chr(type_)) if 0x20 < type_ < 0x7F else hex(type_)
    if macro == "_IO":
        return f"_IO({shown}, {ioc_nr(request)})"
    return f"{macro}({shown}, {ioc_nr(request)}, {ioc_size(request)})"


def ioctl(fd: int, request: int, arg: Any, name: str) -> int:
    """fcntl.ioctl with the argument updated in place and the ioctl named in errors.

    arg is a ctypes object (or anything with a writable buffer); the kernel's answer lands
    in it.  An OSError keeps its errno (so it is still, say, a FileNotFoundError or
    InterruptedError) but its message starts with the ioctl's name: a bare "[Errno 19] No
    such device" from deep inside a test says nothing about which call failed.
    """
    try:
        return fcntl.ioctl(fd, request, arg, True)
    except OSError as exc:
        raise OSError(exc.errno, f"{name}: {exc.strerror}") from exc


def c_structs(namespace: dict[str, Any], prefixes: tuple[str, ...]) -> list[tuple[str, type]]:
    """(C struct name, ctypes class) for every struct class in a module's namespace whose
    name starts with one of the prefixes.  The Python class carries the C struct's name,
    so the list cannot drift from what the module actually defines."""
    found = []
    for name, value in namespace.items():
        if (
            name.startswith(prefixes)
            and isinstance(value, type)
            and issubclass(value, ctypes.Structure | ctypes.Union)
        ):
            keyword = "union" if issubclass(value, ctypes.Union) else "struct"
            found.append((f"{keyword} {name}", value))
    return found


def c_constants(namespace: dict[str, Any], prefixes: tuple[str, ...]) -> list[tuple[str, int]]:
    """(C macro or enumerator name, value) for every integer constant in a module's
    namespace whose name starts with one of the prefixes."""
    return [
        (name, value)
        for name, value in namespace.items()
        if name.startswith(prefixes) and isinstance(value, int) and not isinstance(value, bool)
    ]


C_HEADERS = ["linux/ioctl.h"]

C_STRUCTS: list[tuple[str, type]] = []

# The C names are the underscored macros; a few full requests pin down the bit positions
# at the edges of every field.
C_CONSTANTS: list[tuple[str, int]] = [
    ("_IOC_NRBITS", IOC_NRBITS),
    ("_IOC_TYPEBITS", IOC_TYPEBITS),
    ("_IOC_SIZEBITS", IOC_SIZEBITS),
    ("_IOC_DIRBITS", IOC_DIRBITS),
    ("_IOC_NRSHIFT", IOC_NRSHIFT),
    ("_IOC_TYPESHIFT", IOC_TYPESHIFT),
    ("_IOC_SIZESHIFT", IOC_SIZESHIFT),
    ("_IOC_DIRSHIFT", IOC_DIRSHIFT),
    ("_IOC_NONE", IOC_NONE),
    ("_IOC_READ", IOC_READ),
    ("_IOC_WRITE", IOC_WRITE),
    ("_IO('V', 0)", IO("V", 0)),
    ("_IO('|', 0x81)", IO("|", 0x81)),
    (
        "_IOC(_IOC_READ|_IOC_WRITE, 0xff, 0xff, 0x3fff)",
        IOC(IOC_READ | IOC_WRITE, 0xFF, 0xFF, 0x3FFF),
    ),
    ("_IOR('V', 1, char[16383])", IOR("V", 1, 16383)),
    ("_IOW('V', 2, int)", IOW("V", 2, ctypes.c_int)),
    ("_IOWR('V', 3, long long)", IOWR("V", 3, ctypes.c_longlong)),
    ("_IOC_DIR(_IOWR('V', 3, long long))", ioc_dir(IOWR("V", 3, ctypes.c_longlong))),
    ("_IOC_TYPE(_IOWR('V', 3, long long))", ioc_type(IOWR("V", 3, ctypes.c_longlong))),
    ("_IOC_NR(_IOWR('V', 3, long long))", ioc_nr(IOWR("V", 3, ctypes.c_longlong))),
    ("_IOC_SIZE(_IOWR('V', 3, long long))", ioc_size(IOWR("V", 3, ctypes.c_longlong))),
]
