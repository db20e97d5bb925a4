"""What a guest kernel is, once it has been fetched or built."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import KernelError


@dataclass(frozen=True)
class Kernel:
    """A bootable kernel image and the module tree that belongs to it.

    `modules_root` holds `lib/modules/<release>/` with `modules.dep` in it;
    the guest bind-mounts `<modules_root>/lib/modules` over `/lib/modules`.
    """

    flavour: str
    release: str
    image: Path
    modules_root: Path
    arch: str = "x86_64"
    # Extra kernel command line the flavour wants (e.g. slub_debug for a
    # kernel without KASAN).
    cmdline: tuple[str, ...] = ()

    @property
    def module_dir(self) -> Path:
        return self.modules_root / "lib" / "modules" / self.release

    def describe(self) -> str:
        return f"{self.flavour} {self.release} ({self.image})"


def check_image(path: Path) -> None:
    """Refuse anything that is not an x86 boot image before QEMU sees it."""
    try:
        with path.open("rb") as f:
            header = f.read(0x206)
    except OSError as e:
        raise KernelError(f"cannot read kernel image {path}: {e.strerror}") from None
    # Documentation/x86/boot.rst: "HdrS" at 0x202 marks a bzImage.
    if len(header) < 0x206 or header[0x202:0x206] != b"HdrS":
        raise KernelError(
            f"{path} is not a Linux x86 kernel image (no 'HdrS' boot header): "
            f"pass arch/x86/boot/bzImage from a kernel build"
        )


def release_of_modules(modules_root: Path) -> str:
    """The one release directory under `<root>/lib/modules`."""
    base = modules_root / "lib" / "modules"
    releases = sorted(p.name for p in base.glob("*") if (p / "modules.dep").exists()) if (
        base.is_dir()
    ) else []
    if len(releases) != 1:
        found = ", ".join(releases) or "none"
        raise KernelError(
            f"expected exactly one lib/modules/<release>/ with modules.dep under {modules_root} "
            f"(found: {found}); run 'make modules_install INSTALL_MOD_PATH={modules_root}'"
        )
    return releases[0]
