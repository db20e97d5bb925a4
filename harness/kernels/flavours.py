"""Kernel flavours, as data: one table says what each is and how to get it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import KernelError
from harness.kernels import debian, debug, debug_arm64, path
from harness.kernels.kernel import Kernel


@dataclass(frozen=True)
class Flavour:
    name: str
    summary: str
    provide: Callable[..., Kernel]
    needs_path: bool = False


FLAVOURS: dict[str, Flavour] = {
    f.name: f
    for f in (
        Flavour("debian", "Debian bookworm's current amd64 kernel, vimc built out of tree",
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


def get_kernel(
    name: str,
    image: Path | None = None,
    modules: Path | None = None,
    patches: Sequence[Path] = (),
) -> Kernel:
    try:
        flavour = FLAVOURS[name]
    except KeyError:
        raise KernelError(
            f"unknown kernel flavour {name!r}: choose one of {', '.join(FLAVOURS)}"
        ) from None
    for patch in patches:
        if not Path(patch).is_file():
            raise KernelError(f"patch {patch} does not exist: pass a diff against "
                              f"linux-source-6.1 (paths like a/drivers/media/...)")
    if flavour.needs_path:
        if patches:
            raise KernelError("--patch works with the debian and debug flavours; "
                              "apply it to your own tree for --kernel path")
        if image is None or modules is None:
            raise KernelError("--kernel path needs --kernel-image BZIMAGE and --modules DIR")
        return flavour.provide(image, modules)
    return flavour.provide(patches=patches)
