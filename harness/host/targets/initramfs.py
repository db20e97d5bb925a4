"""The initramfs the harness boots: static busybox, one init script, a few modules.

It exists only to reach the host's root over virtio-9p. Which modules it must
carry depends on the kernel: Debian's builds virtio, 9p and overlayfs as
modules, the debug flavour builds them in. So the list below names what the
guest needs, and modules.dep/modules.builtin of the booted kernel decide
what to pack and in which order.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness.host import cache
from harness.host.kernels import apt
from harness.host.kernels.kernel import Kernel
from harness.host.targets import pack
from harness.pure.arch import ARCHES, get_arch
from harness.pure.errors import KernelError

VM_DIR = Path(__file__).resolve().parents[3] / "vm"
INIT_SCRIPT = VM_DIR / "initramfs-init"

# What an x86 guest needs before it can mount the host root; each
# architecture's list is harness.pure.arch's `boot_modules`.
BOOT_MODULES = ARCHES["x86_64"].boot_modules


def _modname(path: str) -> str:
    return Path(path).name.split(".ko")[0].replace("-", "_")


def module_load_order(module_dir: Path, wanted: tuple[str, ...] = BOOT_MODULES) -> list[str]:
    """Relative .ko paths to insmod, dependencies first; built-ins are skipped."""
    deps: dict[str, tuple[str, list[str]]] = {}
    for line in (module_dir / "modules.dep").read_text().splitlines():
        target, _, rest = line.partition(":")
        deps[_modname(target)] = (target, rest.split())
    builtin_file = module_dir / "modules.builtin"
    builtin = (
        {_modname(p) for p in builtin_file.read_text().split()} if builtin_file.exists() else set()
    )
    order: list[str] = []

    def visit(name: str) -> None:
        if name in builtin or any(_modname(p) == name for p in order):
            return
        if name not in deps:
            raise KernelError(
                f"kernel {module_dir.name} has neither built in nor as a module: {name} "
                f"(the guest needs virtio-pci, virtio-console, 9p and overlayfs)"
            )
        path, requires = deps[name]
        for req in requires:
            visit(_modname(req))
        order.append(path)

    for name in wanted:
        visit(name)
    return order


def busybox(debian_arch: str | None = None) -> Path:
    """Static busybox for the guest's dpkg architecture (None: the host's)."""
    path = apt.unpacked("busybox-static", debian_arch) / "bin" / "busybox"
    if not path.is_file():
        raise KernelError(f"busybox-static unpacked without bin/busybox at {path}")
    return path


def build(kernel: Kernel, packed: Sequence[pack.Entry] = ()) -> Path:
    """A newc cpio for `kernel`, cached by its content. `packed`: files (host
    path, guest path) the init stacks above the host root
    (harness.host.targets.pack). Not compressed: under emulation, unpacking
    gzip costs more than QEMU's loading the bytes."""
    arch = get_arch(kernel.arch)
    bb = busybox(arch.debian)
    modules = module_load_order(kernel.module_dir, arch.boot_modules)
    key = cache.digest(
        bb.read_bytes(),
        INIT_SCRIPT.read_bytes(),
        *(m + cache.digest((kernel.module_dir / m).read_bytes()) for m in modules),
        pack.stamp(list(packed)),
    )
    out = cache.cache_root() / "initramfs" / f"{key}.cpio"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for d in ("bin", "dev", "proc", "sys", "modules"):
            (root / d).mkdir()
        shutil.copy2(bb, root / "bin/busybox")
        shutil.copy2(INIT_SCRIPT, root / "init")
        (root / "init").chmod(0o755)
        for m in modules:
            shutil.copy2(kernel.module_dir / m, root / "modules" / Path(m).name)
        (root / "modules/order").write_text("".join(Path(m).name + "\n" for m in modules))
        for host, guest in packed:
            dest = root / "pack" / guest.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(host, dest)
        names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        proc = subprocess.run(
            ["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"],
            input="\n".join(names).encode(),
            cwd=root,
            capture_output=True,
        )
        if proc.returncode != 0:
            raise KernelError(f"cpio failed: {proc.stderr.decode().strip()}")
        tmp_out = out.with_suffix(".tmp")
        tmp_out.write_bytes(proc.stdout)
        tmp_out.rename(out)
    return out
