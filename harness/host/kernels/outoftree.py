"""Building one driver out of tree and laying it over a kernel's module tree.

This is how a driver profile gets modules a kernel lacks (vimc on Debian's
amd64 kernel, rcar-vin on its arm64 one), and how any flavour gets a patched
driver without rebuilding the kernel: copy the driver's sources, apply the
patches, build against the kernel's build tree (Debian's headers or the
debug kernel's O= directory), and drop the .ko into `updates/`, which depmod
ranks above `kernel/`. What to build is the profile's (`out_of_tree`). A
kernel for another architecture (an arm64 guest on an x86 host) gets the
same with the cross-compiling make variables (`make_vars`), which the
caller derives from the kernel's architecture.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from harness.host import cache
from harness.host.kernels.kernel import Kernel
from harness.host.kernels.patches import apply_patches
from harness.host.kernels.toolchain import wrap_make
from harness.host.kernels.tree import kbuild_in_place
from harness.pure.errors import KernelError
from harness.pure.profiles import OutOfTreeModule


def depmod(root: Path, release: str) -> None:
    depmod_bin = shutil.which("depmod") or "/sbin/depmod"
    proc = subprocess.run([depmod_bin, "-b", str(root), release], capture_output=True, text=True)
    if proc.returncode != 0:
        raise KernelError(f"depmod failed for {release}: {proc.stderr.strip()}")


# Where a kernel's out-of-tree modules keep their Module.symvers, so a module
# built later links against the symbols of one built before (vim2m against
# v4l2-mem2mem, on a kernel that has neither).
SYMVERS = "symvers"


def build_module(
    kbuild: Path, tree: Path, module: OutOfTreeModule, patches: Sequence[Path], out: Path,
    make_vars: Sequence[str] = (), cross_compile: str = "",
    extra_symbols: Sequence[Path] = (),
) -> list[Path]:
    """Build `module` from `tree` against `kbuild`; return its .ko files (inside `out`).
    `cross_compile` is the prefix `make_vars` cross-compiles with, if any;
    `extra_symbols` are the Module.symvers of modules it may use."""
    work = out / module.name
    shutil.copytree(tree / module.subdir, work)
    if module.only:
        # kbuild reads Kbuild before Makefile.
        (work / "Kbuild").write_text(f"obj-m := {' '.join(f'{o}.o' for o in module.only)}\n")
    # Patches are written against the whole tree (a/drivers/media/...).
    apply_patches(work, patches, strip=len(Path(module.subdir).parts) + 1)
    config = [f"{module.config}=m"] if module.config else []
    if module.defines:
        config.append("KCFLAGS=" + " ".join(f"-D{d}" for d in module.defines))
    if extra_symbols:
        config.append("KBUILD_EXTRA_SYMBOLS=" + " ".join(map(str, extra_symbols)))
    with kbuild_in_place(kbuild) as where:
        make = ["make", "-C", str(where), f"M={work}", *config, *make_vars, "modules"]
        proc = subprocess.run(
            wrap_make(where, make, [out], cross_compile),
            capture_output=True,
            text=True,
            env={**os.environ, "LC_ALL": "C"},
        )
    log = out / f"{module.name}-build.log"
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        kept = cache.cache_root() / "logs" / f"{module.name}-build.log"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, kept)
        raise KernelError(f"building {module.name} out of tree failed; see {kept}")
    return [work / f"{name}.ko" for name in module.modules]


def with_module(
    base: Kernel,
    kbuild: Path,
    tree: Path,
    module: OutOfTreeModule,
    patches: Sequence[Path] = (),
    flavour: str | None = None,
    make_vars: Sequence[str] = (),
    cross_compile: str = "",
) -> Kernel:
    """`base` with `module` rebuilt from `tree` (+ patches) in `updates/`."""
    sources = tree / module.subdir
    symvers = sorted((base.modules_root / SYMVERS).glob("*.symvers"))
    key = cache.digest(
        str(base.modules_root),
        *(p.read_bytes() for p in sorted(sources.iterdir()) if p.is_file()),
        *(Path(p).read_bytes() for p in patches),
        *make_vars,
        *module.defines,
        *module.only,
    )

    def build(dest: Path) -> None:
        moddir = dest / "lib/modules" / base.release
        # Hard links: the module tree is hundreds of MB and never written to.
        shutil.copytree(base.module_dir, moddir, copy_function=os.link, symlinks=True)
        with tempfile.TemporaryDirectory(dir=dest) as tmp:
            (moddir / "updates").mkdir(exist_ok=True)
            for ko in build_module(kbuild, tree, module, patches, Path(tmp), make_vars,
                                   cross_compile, symvers):
                shutil.copy2(ko, moddir / "updates" / ko.name)
            (dest / SYMVERS).mkdir()
            for earlier in symvers:
                shutil.copy2(earlier, dest / SYMVERS / earlier.name)
            built = Path(tmp) / module.name / "Module.symvers"
            if built.is_file():
                shutil.copy2(built, dest / SYMVERS / f"{module.name}.symvers")
        depmod(dest, base.release)
        os.link(base.image, dest / base.image.name)

    name = flavour or base.flavour
    root = cache.entry(f"kernels/{name}-{base.release}-{module.name}-{key}", build)
    return replace(base, flavour=name, image=root / base.image.name, modules_root=root)
