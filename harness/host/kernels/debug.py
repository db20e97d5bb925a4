"""The `debug` flavour: the same Debian linux-source, built with the detectors on.

tinyconfig plus vm/debug.config keeps the build to a few minutes on two cores
while turning on everything that makes a lifetime bug loud: KASAN with
allocation and free stacks, lockdep, list and object debugging, hung-task
detection. An architecture whose guest is not a PC adds its board
(vm/debug-arm64.config: QEMU's virt board; Debian's arm64 kernel has no KASAN)
and is cross-built. The build is the root state of the Debian source in
harness.host.kernels.tree, the same one `validate` starts from when given that
source for that architecture, and its build tree is kept so that out-of-tree
modules (a patched driver) build against it without rebuilding the kernel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.host.kernels import tree
from harness.host.kernels.debian import current_release
from harness.host.kernels.kernel import Kernel
from harness.host.kernels.source import source_cached, source_tree
from harness.host.kernels.suites import Suite
from harness.host.kernels.tree import fragment_options, unmet_options
from harness.pure.arch import Arch
from harness.pure.errors import KernelError

__all__ = ["FRAGMENT", "KCSAN", "build_tree", "fragment_for", "fragment_options", "provide",
           "provide_kcsan", "unmet_options"]

VM_DIR = Path(__file__).resolve().parents[3] / "vm"
FRAGMENT = VM_DIR / "debug.config"
# A guest architecture's board, on top of vm/debug.config. It comes last, so
# its lines win in merge_config (the PC's ACPI and 8250 console "is not set").
BOARD_FRAGMENTS = {"aarch64": VM_DIR / "debug-arm64.config"}

# What newer kernels need on top of vm/debug.config: (first version, lines).
# Layered rather than merged so that 6.1's configuration, and every build
# cached under it, stays as it is.
LAYERS: tuple[tuple[tuple[int, int], str], ...] = (
    # tinyconfig selects SLUB_TINY from 6.2 on, and SLUB_TINY excludes both
    # SLUB_DEBUG and KASAN.
    ((6, 2), "# CONFIG_SLUB_TINY is not set\n"),
)


@dataclass(frozen=True)
class Variant:
    """The debug configuration with some detectors traded for others: the lines of
    vm/debug.config that `drop` matches go, `lines` come after the layers."""

    name: str
    drop: str  # a regex over whole lines of the fragment
    lines: str

    def apply(self, text: str) -> str:
        kept = "".join(line for line in text.splitlines(keepends=True)
                       if not re.match(self.drop, line))
        return kept + "\n" + self.lines


# KASAN and KCSAN exclude each other, so the kcsan flavours drop KASAN.
# KCSAN with its defaults (plain writes assumed atomic, a watchpoint every
# 4000 accesses) reported no data race in a 150 s vimc race on 6.1; strict,
# watching every 100th access, it reports the races of the media core and
# slows the race about 6x, which widens windows by itself. Reports are
# filtered to the profile's subsystem when the race reads them
# (harness.pure.kmsg.scope), not here: the configuration is one for every driver.
KCSAN = Variant(
    "kcsan",
    drop=r"CONFIG_KASAN\w*=",
    lines=("CONFIG_KCSAN=y\n"
           "CONFIG_KCSAN_STRICT=y\n"
           "CONFIG_KCSAN_SKIP_WATCH=100\n"),
)


def tree_version(src: Path) -> tuple[int, int]:
    """VERSION and PATCHLEVEL from a kernel tree's Makefile."""
    text = (src / "Makefile").read_text(errors="replace")[:2000]
    found = dict(re.findall(r"^(VERSION|PATCHLEVEL) = (\d+)", text, re.M))
    if len(found) != 2:
        raise KernelError(f"{src}/Makefile names no VERSION and PATCHLEVEL: not a kernel tree")
    return int(found["VERSION"]), int(found["PATCHLEVEL"])


def layered(version: tuple[int, int], base: str | None = None) -> str:
    """vm/debug.config (or `base`) with the layers kernel `version` needs."""
    text = FRAGMENT.read_text() if base is None else base
    return text + "".join("\n" + lines for since, lines in LAYERS if version >= since)


def fragment_text(arch: Arch = tree.DEFAULT_ARCH) -> str:
    """vm/debug.config and `arch`'s board fragment, if it has one."""
    board = BOARD_FRAGMENTS.get(arch.name)
    text = FRAGMENT.read_text()
    return text if board is None else text + "\n" + board.read_text() + "\n"


def fragment_for(src: Path, base: str | None = None, arch: Arch = tree.DEFAULT_ARCH,
                 variant: Variant | None = None) -> str:
    """The debug configuration for `arch` (or `base`) with the layers the tree's
    version needs, and `variant`'s trade of detectors."""
    text = layered(tree_version(src), fragment_text(arch) if base is None else base)
    return variant.apply(text) if variant else text


def build_tree(src: Path, fragment_text: str, key: str | None = None) -> Path:
    """The O= directory of `src` built with `fragment_text`. (`key` is not used: the
    tree's content names the build.)"""
    return tree.build(tree.Recipe(tree.DirSource(src), None), fragment_text).out


def _recipe(version: str, suite: Suite, arch: Arch) -> tree.Recipe:
    return tree.Recipe(tree.DirSource(source_tree(version, suite.apt)), None, arch=arch)


def version(suite: Suite, arch: Arch) -> str:
    """The linux-source version the suite's kernel is built from today."""
    return current_release(arch.debian, suite.apt).version


def cached(suite: Suite, arch: Arch, variant: Variant | None = None) -> bool:
    today = version(suite, arch)
    if not source_cached(today):
        return False
    recipe = _recipe(today, suite, arch)
    return tree.lookup(recipe, fragment_for(recipe.source.path, arch=arch,
                                            variant=variant)) is not None


def provide(name: str, suite: Suite, arch: Arch, variant: Variant | None = None) -> Kernel:
    recipe = _recipe(version(suite, arch), suite, arch)
    state = tree.build(recipe, fragment_for(recipe.source.path, arch=arch, variant=variant))
    return tree.install(state, name)


def provide_kcsan(name: str, suite: Suite, arch: Arch) -> Kernel:
    return provide(name, suite, arch, KCSAN)


def cached_kcsan(suite: Suite, arch: Arch) -> bool:
    return cached(suite, arch, KCSAN)
