"""The `debug` flavour: the same Debian linux-source, built with the detectors on.

tinyconfig plus vm/debug.config keeps the build to a few minutes on two cores
while turning on everything that makes a lifetime bug loud: KASAN with
allocation and free stacks, lockdep, list and object debugging, hung-task
detection. The build tree is kept so that out-of-tree modules (a patched
vimc) build against it without rebuilding the kernel.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from harness import cache
from harness.errors import KernelError
from harness.kernels.debian import current_release
from harness.kernels.kernel import Kernel
from harness.kernels.outoftree import VIMC, with_module
from harness.kernels.source import source_tree

FRAGMENT = Path(__file__).resolve().parents[2] / "vm" / "debug.config"

# Routing PCI interrupts through ACPI link objects takes ten seconds per
# virtio device in this configuration (measured: KASAN + lockdep slow the
# AML interpreter to a crawl); the MP table routes them just as well.
CMDLINE = ("acpi=noirq",)


def fragment_options(text: str) -> dict[str, str]:
    """CONFIG_FOO=value lines of a config fragment ('n' for '=n' and 'is not set')."""
    opts: dict[str, str] = {}
    for line in text.splitlines():
        if m := re.match(r"(CONFIG_\w+)=(.*)$", line.strip()):
            opts[m.group(1)] = m.group(2)
        elif m := re.match(r"# (CONFIG_\w+) is not set", line.strip()):
            opts[m.group(1)] = "n"
    return opts


def unmet_options(wanted: dict[str, str], config_text: str) -> list[str]:
    """Fragment options that Kconfig dropped (an unmet dependency, a typo)."""
    have = fragment_options(config_text)
    return [
        f"{k}={v} (got {have.get(k, 'n')})" for k, v in wanted.items() if have.get(k, "n") != v
    ]


def _make(src: Path, out: Path, log: Path, *targets: str, extra: Sequence[str] = ()) -> None:
    cc = ["CC=ccache gcc"] if shutil.which("ccache") else []
    argv = ["make", "-C", str(src), f"O={out}", "ARCH=x86_64", f"-j{os.cpu_count() or 1}"]
    env = {**os.environ, "LC_ALL": "C", "CCACHE_DIR": str(cache.cache_root() / "ccache")}
    with log.open("a") as f:
        f.write(f"$ {' '.join(argv + cc + list(extra) + list(targets))}\n")
        f.flush()
        proc = subprocess.run(
            argv + cc + list(extra) + list(targets), stdout=f, stderr=subprocess.STDOUT, env=env
        )
    if proc.returncode != 0:
        raise KernelError(f"debug kernel build failed ({' '.join(targets)}); build log: {log}")


def build_tree(src: Path, fragment_text: str, key: str) -> Path:
    """Configure and build in a cached O= directory; return it."""
    out = cache.cache_root() / "build" / f"debug-{key}"
    done = out / ".v4l2-unplug-built"
    if done.exists():
        return out
    cache.ensure_space(out.parent, 8 << 30)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "build.log"
    log.write_text("")
    print(f"building the debug kernel once (several minutes); log: {log}", file=sys.stderr)
    (out / "fragment.config").write_text(fragment_text)
    _make(src, out, log, "tinyconfig")
    subprocess.run(
        [str(src / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(out),
         str(out / ".config"), str(out / "fragment.config")],
        cwd=src, stdout=log.open("a"), stderr=subprocess.STDOUT, check=True,
    )
    _make(src, out, log, "olddefconfig")
    unmet = unmet_options(fragment_options(fragment_text), (out / ".config").read_text())
    if unmet:
        raise KernelError(f"{FRAGMENT.name}: Kconfig did not take: {', '.join(unmet)}")
    _make(src, out, log, "bzImage", "modules")
    done.touch()
    return out


def provide(patches: Sequence[Path] = ()) -> Kernel:
    rel = current_release()
    src = source_tree(rel.version)
    fragment_text = FRAGMENT.read_text()
    key = f"{rel.version}-{cache.digest(fragment_text)}"
    out = build_tree(src, fragment_text, key)

    def install(dest: Path) -> None:
        _make(src, out, out / "build.log", "modules_install",
              extra=[f"INSTALL_MOD_PATH={dest}", "INSTALL_MOD_STRIP=1", "DEPMOD=/sbin/depmod"])
        shutil.copy2(out / "arch/x86/boot/bzImage", dest / "bzImage")
        for link in dest.glob("lib/modules/*/build"):
            link.unlink()
        for link in dest.glob("lib/modules/*/source"):
            link.unlink()

    root = cache.entry(f"kernels/debug-{key}", install)
    release = (out / "include/config/kernel.release").read_text().strip()
    kernel = Kernel(
        flavour="debug", release=release, image=root / "bzImage", modules_root=root,
        cmdline=CMDLINE,
    )
    if patches:
        kernel = with_module(kernel, kbuild=out, tree=src, module=VIMC, patches=patches)
    return kernel
