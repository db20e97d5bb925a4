"""Kernel flavours, as data: one table says what each is and how to get it.

A flavour is a kernel as its maker ships it; the modules a driver profile
needs on top, and a user's --patch, are added by harness.host.targets.emulated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.host.kernels import debian, debug, debug_arm64, path
from harness.host.kernels.kernel import Kernel
from harness.pure.errors import KernelError


@dataclass(frozen=True)
class Flavour:
    name: str
    summary: str
    provide: Callable[..., Kernel]
    needs_path: bool = False


FLAVOURS: dict[str, Flavour] = {
    f.name: f
    for f in (
        Flavour("debian", "Debian bookworm's current amd64 kernel and its headers",
                debian.provide),
        Flavour("debug", "linux-source-6.1 with KASAN, lockdep, list/object debugging, LKDTM",
                debug.provide),
        Flavour("path", "your own bzImage and module tree (--kernel-image, --modules)",
                path.provide, needs_path=True),
        Flavour("debian-arm64", "Debian bookworm's current arm64 kernel (QEMU virt board, TCG), "
                "booted with slub_debug", debian.provide_arm64),
        Flavour("debug-arm64", "the debug flavour cross-built for arm64 guests (KASAN, lockdep)",
                debug_arm64.provide),
    )
}


def get_kernel(name: str, image: Path | None = None, modules: Path | None = None) -> Kernel:
    """Flavour `name` as it comes (`image` and `modules` for the path flavour)."""
    try:
        flavour = FLAVOURS[name]
    except KeyError:
        raise KernelError(
            f"unknown kernel flavour {name!r}: choose one of {', '.join(FLAVOURS)}"
        ) from None
    if flavour.needs_path:
        if image is None or modules is None:
            raise KernelError("--kernel path needs --kernel-image BZIMAGE and --modules DIR")
        return flavour.provide(image, modules)
    return flavour.provide()
