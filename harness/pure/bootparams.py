"""Kernel parameters a kernel's configuration calls for when it boots under
emulation, as a table: what the project learned about booting under TCG,
applied to every kernel whose configuration matches, the flavours' and a
user's own alike."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["BOOT_RULES", "BootRule", "boot_params", "parse_config"]


def parse_config(text: str) -> dict[str, str]:
    """CONFIG_FOO=value lines of a .config or fragment ('n' for '=n' and 'is not set')."""
    opts: dict[str, str] = {}
    for line in text.splitlines():
        if m := re.match(r"(CONFIG_\w+)=(.*)$", line.strip()):
            opts[m.group(1)] = m.group(2)
        elif m := re.match(r"# (CONFIG_\w+) is not set", line.strip()):
            opts[m.group(1)] = "n"
    return opts


@dataclass(frozen=True)
class BootRule:
    """`params` for a kernel on one of `arches` built with every option in
    `when` (as y or m) and none in `unless`."""

    params: tuple[str, ...]
    when: tuple[str, ...]
    why: str
    arches: tuple[str, ...] = ("x86_64", "aarch64")
    unless: tuple[str, ...] = ()

    def applies(self, config: Mapping[str, str], arch: str) -> bool:
        def on(option: str) -> bool:
            return config.get(option, "n") in ("y", "m")

        return (arch in self.arches and all(on(o) for o in self.when)
                and not any(on(o) for o in self.unless))


BOOT_RULES: tuple[BootRule, ...] = (
    BootRule(
        ("acpi=noirq",), when=("CONFIG_ACPI",), arches=("x86_64",),
        why="Routing PCI interrupts through ACPI link objects (LNKA-LNKD) waits "
            "seconds per virtio device under TCG: measured 7 s each on the 6.1 "
            "debug build and 14 s on 7.2, 57 s to the agent in all. QEMU's MP "
            "table routes them just as well.",
    ),
)


def boot_params(config: Mapping[str, str], arch: str,
                rules: tuple[BootRule, ...] = BOOT_RULES) -> tuple[str, ...]:
    """The parameters every matching rule asks for, in table order, once each."""
    params: list[str] = []
    for rule in rules:
        if rule.applies(config, arch):
            params.extend(p for p in rule.params if p not in params)
    return tuple(params)
