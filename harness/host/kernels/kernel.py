"""What a guest kernel is, once it has been fetched or built."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from harness.pure.errors import KernelError


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
    # The build tree out-of-tree modules build against (`make -C kbuild M=...`;
    # for a foreign arch add ARCH= and CROSS_COMPILE= from harness.pure.arch), when
    # the flavour has one.
    kbuild: Path | None = None
    # The source tree the kernel was built from, where out-of-tree modules take
    # their sources, when the flavour knows it (else harness.host.kernels.emulation
    # finds it from `kbuild` or the Debian version).
    source: Path | None = None

    @property
    def module_dir(self) -> Path:
        return self.modules_root / "lib" / "modules" / self.release

    def has_module(self, name: str) -> bool:
        """True if the module tree lists module `name`, built in or loadable."""
        # modprobe treats - and _ alike in module names; so does this.
        wanted = name.replace("-", "_")
        for listing in ("modules.dep", "modules.builtin"):
            path = self.module_dir / listing
            if not path.is_file():
                continue
            for line in path.read_text().splitlines():
                module = line.split(":", 1)[0].rsplit("/", 1)[-1].split(".ko", 1)[0]
                if module.replace("-", "_") == wanted:
                    return True
        return False

    def describe(self) -> str:
        return f"{self.flavour} {self.release} ({self.image})"


XEN_ELFNOTE_PHYS32_ENTRY = 18


def has_pvh_entry(path: Path) -> bool:
    """True for an x86-64 vmlinux with a PVH entry point (CONFIG_PVH), which QEMU
    boots directly, skipping firmware real mode and the decompressor."""
    with path.open("rb") as f:
        ident = f.read(64)
        if len(ident) < 64 or ident[:4] != b"\x7fELF" or ident[4] != 2:
            return False
        phoff, = struct.unpack_from("<Q", ident, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", ident, 0x36)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, _flags, p_offset, _va, _pa, p_filesz = struct.unpack("<IIQQQQ", f.read(40))
            if p_type != 4:  # PT_NOTE
                continue
            f.seek(p_offset)
            notes, pos = f.read(p_filesz), 0
            while pos + 12 <= len(notes):
                namesz, descsz, ntype = struct.unpack_from("<III", notes, pos)
                name = notes[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
                if name == b"Xen" and ntype == XEN_ELFNOTE_PHYS32_ENTRY:
                    return True
                pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def is_arm64_image(header: bytes) -> bool:
    """Documentation/arm64/booting.rst: an Image has "ARM\\x64" at offset 0x38."""
    return header[0x38:0x3C] == b"ARM\x64"


def check_image(path: Path) -> None:
    """Refuse anything that is not an x86 boot image before QEMU sees it."""
    try:
        with path.open("rb") as f:
            header = f.read(0x206)
        if header[:4] == b"\x7fELF" and has_pvh_entry(path):
            return
    except OSError as e:
        raise KernelError(f"cannot read kernel image {path}: {e.strerror}") from None
    # Documentation/x86/boot.rst: "HdrS" at 0x202 marks a bzImage.
    if len(header) < 0x206 or header[0x202:0x206] != b"HdrS":
        raise KernelError(
            f"{path} is not a Linux x86 kernel image (neither a bzImage with a 'HdrS' "
            f"boot header nor a vmlinux with a PVH entry): pass arch/x86/boot/bzImage"
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
