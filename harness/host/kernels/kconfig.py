"""Finding the configuration a kernel was built with, wherever its flavour
or its user left it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from harness.host.kernels.kernel import Kernel
from harness.pure.bootparams import parse_config

__all__ = ["config_candidates", "config_file", "kernel_config"]


def config_candidates(kernel: Kernel) -> Iterator[Path]:
    """Where each kind of kernel keeps its .config, most specific first."""
    rel = kernel.release
    yield kernel.module_dir / "config"                        # Debian from sid on
    yield kernel.modules_root / "boot" / f"config-{rel}"      # Debian up to trixie
    yield kernel.modules_root / "config"                      # a tree the harness built
    if kernel.kbuild is not None:
        yield kernel.kbuild / ".config"
    yield kernel.module_dir / "build" / ".config"             # modules_install's link
    image = kernel.image
    yield image.parent / f"config-{rel}"                      # an installed /boot
    yield image.parent / ".config"
    # <O>/arch/<arch>/boot/bzImage or Image
    if len(image.parents) > 3 and image.parent.name == "boot":
        yield image.parents[3] / ".config"


def config_file(kernel: Kernel) -> Path | None:
    return next((p for p in config_candidates(kernel) if p.is_file()), None)


def kernel_config(kernel: Kernel) -> dict[str, str] | None:
    """The kernel's options, or None when its configuration is nowhere to be found."""
    path = config_file(kernel)
    return parse_config(path.read_text(errors="replace")) if path is not None else None
