"""Kernel flavours, as data: one table says what each is and how to get it.

A flavour is a kind of kernel (Debian's as it ships, or the debug
configuration built from Debian's linux-source) for one suite and one guest
architecture; `path` is a kernel of the user's. The modules a driver profile
needs on top, and a user's --patch, are added by harness.host.targets.emulated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.host.kernels import debian, debug, path
from harness.host.kernels.kernel import Kernel
from harness.host.kernels.suites import SUITES, Suite
from harness.pure.arch import Arch, get_arch
from harness.pure.errors import KernelError


@dataclass(frozen=True)
class Kind:
    """How a kernel of one suite and architecture is fetched or built."""

    name: str
    summary: str  # with {suite} for the suite's name
    provide: Callable[[str, Suite, Arch], Kernel]  # (flavour name, suite, arch)
    # The Debian version the suite carries today, and whether it is in the cache.
    version: Callable[[Suite, Arch], str]
    cached: Callable[[Suite, Arch], bool]
    # Guest architectures it is built for.
    arches: tuple[str, ...] = ("x86_64", "aarch64")


KINDS = (
    Kind("debian", "Debian {suite}'s current {arch} kernel and its headers",
         debian.provide, debian.version, debian.cached),
    Kind("debug", "linux-source of Debian {suite} built for {arch} with KASAN, lockdep, "
         "list/object debugging, LKDTM", debug.provide, debug.version, debug.cached),
    Kind("kcsan", "the debug kernel of Debian {suite} for {arch} with KCSAN (strict, "
         "watching every 100th access) in place of KASAN", debug.provide_kcsan,
         debug.version, debug.cached_kcsan, arches=("x86_64",)),
)

# Guest architectures, and what a flavour for each is called after its suite.
ARCH_SUFFIXES = (("x86_64", ""), ("aarch64", "-arm64"))


@dataclass(frozen=True)
class Flavour:
    name: str
    summary: str
    kind: Kind | None = None  # None: the path flavour
    suite: Suite | None = None
    arch: Arch | None = None

    @property
    def needs_path(self) -> bool:
        return self.kind is None

    def provide(self) -> Kernel:
        assert self.kind is not None and self.suite is not None and self.arch is not None
        return self.kind.provide(self.name, self.suite, self.arch)

    def version(self) -> str:
        assert self.kind is not None and self.suite is not None and self.arch is not None
        return self.kind.version(self.suite, self.arch)

    def cached(self) -> bool:
        assert self.kind is not None and self.suite is not None and self.arch is not None
        return self.kind.cached(self.suite, self.arch)


def _table() -> dict[str, Flavour]:
    table = {}
    for kind in KINDS:
        for arch_name, arch_suffix in ARCH_SUFFIXES:
            if arch_name not in kind.arches:
                continue
            arch = get_arch(arch_name)
            for suite in SUITES:
                name = f"{kind.name}{suite.suffix}{arch_suffix}"
                summary = kind.summary.format(suite=suite.name, arch=arch.debian)
                table[name] = Flavour(name, summary, kind, suite, arch)
    table["path"] = Flavour("path", "your own bzImage and module tree "
                            "(--kernel-image, --modules)")
    return table


FLAVOURS: dict[str, Flavour] = _table()


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
        return path.provide(image, modules)
    return flavour.provide()
