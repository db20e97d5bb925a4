"""Device trees for emulated boards: QEMU's own tree plus the nodes a profile needs.

QEMU generates the device tree of its `virt` machine from the command line
(CPUs, memory, GIC, virtio transports), so the tree a driver profile needs is
derived from it rather than written by hand: QEMU dumps its tree for the very
machine arguments the guest will boot with, dtc decompiles it, a fragment
kept in vm/ (device-tree source with a few ${...} values) is appended as a
second root block, which dtc merges, and the result is compiled back. The
values are placed from the dumped tree itself: the register window of an
emulated device sits at the top of guest RAM, whatever `-m` says.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from string import Template

from harness.host import cache
from harness.pure.errors import HarnessError

# A window carved from the top of RAM for register blocks that nothing
# decodes (a reserved-memory no-map region), 1 MiB below the end.
WINDOW_BELOW_TOP = 0x100000
# Register blocks in the window are this far apart (one per emulated device).
BLOCK_STRIDE = 0x1000
DTC_TIMEOUT = 60.0
DUMP_TIMEOUT = 60.0


class DeviceTreeError(HarnessError):
    """A device tree could not be dumped, parsed or compiled."""


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DeviceTreeError(f"{name} not found: install the {package} package")
    return path


# The options that shape the generated tree. Everything else is left out of
# the dump: -dtb would be dumped back, chardevs and sockets would be opened,
# and /chosen (bootargs, initrd) is rewritten by QEMU at every boot anyway.
# PCI devices do not appear in the tree (the guest enumerates them).
SHAPING_OPTIONS = ("-machine", "-M", "-cpu", "-m", "-smp")


def dump_argv(qemu_argv: Sequence[str], out: Path) -> list[str]:
    """A command line that makes QEMU write the tree `qemu_argv` would boot with to `out`."""
    argv = [qemu_argv[0]] if qemu_argv else []
    machine = False
    for opt, value in zip(qemu_argv[1:], qemu_argv[2:], strict=False):
        if opt not in SHAPING_OPTIONS:
            continue
        if opt in ("-machine", "-M"):
            value, machine = f"{value},dumpdtb={out}", True
        argv += [opt, value]
    if not machine:
        raise DeviceTreeError("the QEMU command line has no -machine option to dump a tree from")
    return argv


def dump_qemu_dts(qemu_argv: Sequence[str]) -> str:
    """QEMU's own device tree for `qemu_argv`, as source."""
    with tempfile.TemporaryDirectory() as tmp:
        dtb = Path(tmp) / "qemu.dtb"
        argv = dump_argv(qemu_argv, dtb)
        try:
            proc = subprocess.run(argv + ["-display", "none"], capture_output=True, text=True,
                                  timeout=DUMP_TIMEOUT)
        except FileNotFoundError:
            raise DeviceTreeError(f"{argv[0]} not found") from None
        if not dtb.exists():
            raise DeviceTreeError(f"QEMU did not dump its device tree: "
                                  f"{proc.stderr.strip() or proc.returncode}")
        return decompile(dtb)


def decompile(dtb: Path) -> str:
    proc = subprocess.run([_tool("dtc", "device-tree-compiler"), "-q", "-I", "dtb", "-O", "dts",
                           str(dtb)], capture_output=True, text=True, timeout=DTC_TIMEOUT)
    if proc.returncode != 0:
        raise DeviceTreeError(f"dtc could not decompile {dtb}: {proc.stderr.strip()}")
    return proc.stdout


def compile_dts(source: str, out: Path) -> None:
    proc = subprocess.run(
        [_tool("dtc", "device-tree-compiler"), "-q", "-I", "dts", "-O", "dtb", "-o", str(out), "-"],
        input=source, capture_output=True, text=True, timeout=DTC_TIMEOUT,
    )
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["(no output)"])[0]
        raise DeviceTreeError(f"dtc could not compile the synthesised tree: {first}")


def memory_range(dts: str) -> tuple[int, int]:
    """(base, size) of the first /memory node of a decompiled tree (2 address, 2 size cells,
    as QEMU's virt machine writes them)."""
    m = re.search(r"^\tmemory@[0-9a-f]+ \{.*?reg = <([^>]*)>;", dts, re.S | re.M)
    if not m:
        raise DeviceTreeError("the QEMU device tree has no /memory node with a reg property")
    cells = [int(c, 16) for c in m.group(1).split()]
    if len(cells) < 4:
        raise DeviceTreeError(f"unexpected /memory reg: <{m.group(1)}>")
    return (cells[0] << 32) | cells[1], (cells[2] << 32) | cells[3]


def placement(dts: str, blocks: int = 8) -> dict[str, str]:
    """The ${...} values of a fragment: the register window at the top of RAM
    (`window`, `window_hi`, `window_lo`) and block N inside it (`vinN`, `vinN_lo`)."""
    base, size = memory_range(dts)
    window = base + size - WINDOW_BELOW_TOP
    values = {"window": f"{window:x}", "window_hi": f"{window >> 32:#x}",
              "window_lo": f"{window & 0xFFFFFFFF:#x}"}
    for n in range(blocks):
        addr = window + n * BLOCK_STRIDE
        values[f"vin{n}"] = f"{addr:x}"
        values[f"vin{n}_lo"] = f"{addr & 0xFFFFFFFF:#x}"
    return values


def synthesize(base_dts: str, fragment: str) -> str:
    """`base_dts` with `fragment` (a root block with ${...} values) merged into it."""
    try:
        added = Template(fragment).substitute(placement(base_dts))
    except (KeyError, ValueError) as e:
        raise DeviceTreeError(f"device-tree fragment names an unknown value: {e}") from None
    return f"{base_dts.rstrip()}\n\n{added}"


def device_tree(qemu_argv: Sequence[str], fragment: Path) -> Path:
    """The compiled tree for `qemu_argv` plus `fragment`, cached by both."""
    if not fragment.is_file():
        raise DeviceTreeError(f"no device-tree fragment {fragment}")
    text = fragment.read_text()
    key = cache.digest(*qemu_argv, text)

    def build(dest: Path) -> None:
        base = dump_qemu_dts(qemu_argv)
        (dest / "qemu.dts").write_text(base)
        source = synthesize(base, text)
        (dest / "board.dts").write_text(source)
        compile_dts(source, dest / "board.dtb")

    return cache.entry(f"devicetree/{fragment.stem}-{key}", build) / "board.dtb"
