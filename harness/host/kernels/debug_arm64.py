"""The `debug-arm64` flavour: the debug kernel for arm64 guests, cross-built.

Debian's arm64 kernel has no KASAN. This one is built from the same
linux-source as `debian-arm64` with `tinyconfig` + vm/debug.config (the
detectors) + vm/debug-arm64.config (QEMU's virt board instead of a PC),
cross-compiled with the prefix harness.pure.arch gives. The O= build tree is
kept: it is the `kbuild` out-of-tree modules cross-build against. Rebuilt
only when a fragment or the source version changes.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness.host import cache
from harness.host.kernels.debian import current_release
from harness.host.kernels.kernel import Kernel
from harness.host.kernels.source import series, source_tree
from harness.host.kernels.suites import Suite
from harness.host.kernels.tree import first_error, fragment_options, unmet_options
from harness.pure.arch import Arch, get_arch
from harness.pure.errors import KernelError

VM_DIR = Path(__file__).resolve().parents[3] / "vm"
FRAGMENTS = (VM_DIR / "debug.config", VM_DIR / "debug-arm64.config")
BUILT = ".v4l2-unplug-built"
# vm/debug.config's lines the arm64 build leaves out: --amplify's kprobes are
# for vimc's x86 guests, and without them the arm64 kernels already built
# keep their cache key.
X86_ONLY = "# run --race --amplify: vm/amplify's seeded delays sit on kprobes\nCONFIG_KPROBES=y\n"


def fragment_text(version: str | None = None) -> str:
    """Both fragments, the arm64 one last: its lines win in merge_config; then
    the layers Debian `version`'s kernel needs (harness.host.kernels.debug.LAYERS)."""
    text = "".join(p.read_text() + "\n" for p in FRAGMENTS).replace(X86_ONLY, "")
    if version is None:
        return text
    from harness.host.kernels.debug import layered

    return layered(series(version), text)


def make_argv(src: Path, out: Path, arch: Arch, *targets: str) -> list[str]:
    """make for `arch` in O=`out`; ccache in front of the cross compiler when present."""
    cc = [f"CC=ccache {arch.cross_compile}gcc"] if shutil.which("ccache") else []
    return ["make", "-C", str(src), f"O={out}", f"ARCH={arch.kernel}",
            f"CROSS_COMPILE={arch.cross_compile}", f"-j{os.cpu_count() or 1}", *cc, *targets]


def _make(src: Path, out: Path, arch: Arch, log: Path, *targets: str) -> None:
    argv = make_argv(src, out, arch, *targets)
    env = {**os.environ, "LC_ALL": "C", "CCACHE_DIR": str(cache.cache_root() / "ccache")}
    with log.open("a") as f:
        f.write(f"$ {' '.join(argv)}\n")
        f.flush()
        try:
            proc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=env)
        except FileNotFoundError:
            raise KernelError("make not found: run 'make setup'") from None
    if proc.returncode != 0:
        raise KernelError(f"debug-arm64 kernel build failed (make {' '.join(targets)}): "
                          f"{first_error(log)}; build log kept: {log}")


def build_tree(src: Path, text: str, arch: Arch, key: str) -> Path:
    """Configure and build in a cached O= directory; return it. Parallel test
    workers wait for one build instead of racing in the same directory."""
    out = cache.cache_root() / "build" / f"debug-{arch.debian}-{key}"
    if (out / BUILT).exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with (out.parent / f".debug-{arch.debian}-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / BUILT).exists():
            _build(src, text, arch, out)
    return out


def _build(src: Path, text: str, arch: Arch, out: Path) -> None:
    if shutil.which(f"{arch.cross_compile}gcc") is None:
        raise KernelError(f"{arch.cross_compile}gcc not found: install gcc-aarch64-linux-gnu "
                          f"(or run 'make setup')")
    cache.ensure_space(out.parent, 8 << 30)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "build.log"
    log.write_text("")
    print(f"building the debug-arm64 kernel once (many minutes); log: {log}", file=sys.stderr)
    (out / "fragment.config").write_text(text)
    _make(src, out, arch, log, "tinyconfig")
    with log.open("a") as f:
        proc = subprocess.run(
            [str(src / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(out),
             str(out / ".config"), str(out / "fragment.config")],
            cwd=src, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "ARCH": arch.kernel},
        )
    if proc.returncode != 0:
        raise KernelError(f"merging the debug-arm64 fragments failed; build log kept: {log}")
    _make(src, out, arch, log, "olddefconfig")
    unmet = unmet_options(fragment_options(text), (out / ".config").read_text())
    if unmet:
        raise KernelError(f"debug-arm64: Kconfig did not take: {', '.join(unmet)}")
    _make(src, out, arch, log, "Image", "modules")
    (out / BUILT).touch()


def _key(suite: Suite) -> tuple[str, str]:
    version = current_release(get_arch("aarch64").debian, suite.apt).version
    text = fragment_text(version)
    return version, f"{version}-{cache.digest(text)}"


def cached(suite: Suite) -> bool:
    arch = get_arch("aarch64")
    return (cache.cache_root() / "kernels" / f"debug-{arch.debian}-{_key(suite)[1]}").is_dir()


def provide(name: str, suite: Suite) -> Kernel:
    arch = get_arch("aarch64")
    version, key = _key(suite)
    src = source_tree(version, suite.apt)
    out = build_tree(src, fragment_text(version), arch, key)

    def install(dest: Path) -> None:
        argv = make_argv(src, out, arch, "modules_install")
        proc = subprocess.run(
            [*argv, f"INSTALL_MOD_PATH={dest}", "INSTALL_MOD_STRIP=1", "DEPMOD=/sbin/depmod"],
            capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"},
        )
        if proc.returncode != 0:
            raise KernelError(f"debug-arm64 modules_install failed: {proc.stderr.strip()[-300:]}")
        shutil.copy2(out / "arch/arm64/boot/Image", dest / "Image")
        for link in (*dest.glob("lib/modules/*/build"), *dest.glob("lib/modules/*/source")):
            link.unlink()

    root = cache.entry(f"kernels/debug-{arch.debian}-{key}", install)
    release = (out / "include/config/kernel.release").read_text().strip()
    return Kernel(flavour=name, release=release, image=root / "Image",
                  modules_root=root, arch=arch.name, kbuild=out, source=src)
