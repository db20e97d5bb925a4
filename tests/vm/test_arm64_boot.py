"""Debian's arm64 kernel boots on QEMU's virt board under TCG and the agent
runs in it on the guest's own arm64 userland, with the checkout and the
virtualenv's packages from the host. Real boots, nothing mocked."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.host.kernels.kernel import Kernel
from harness.host.targets.qemu import Deadlines, QemuTarget

# TCG runs arm64 several times slower than x86 guests; boot to the agent is
# ~8 s (debian-arm64) and ~14 s (debug-arm64, KASAN) on two busy cores, so
# these are generous.
ARM64_DEADLINES = Deadlines(boot=180, idle=120, total=600)

PROBE = """
import ctypes.util, platform, sys
import pyudev, v4l2
import harness
ctx = pyudev.Context()
print(platform.machine(), sys.version_info[:2] == (3, 11))
print(harness.__file__)
print(ctypes.util.find_library("udev"))
print(len(list(ctx.list_devices(subsystem="virtio"))) > 0)
"""


_kernels: dict[str, Kernel] = {}


def _kernel(flavour: str) -> Kernel:
    from harness.host.kernels.flavours import get_kernel

    if flavour not in _kernels:
        _kernels[flavour] = get_kernel(flavour)
    return _kernels[flavour]


@pytest.fixture(scope="module")
def arm64_kernel() -> Kernel:
    return _kernel("debian-arm64")


@pytest.mark.parametrize("arm64_flavour", ["debian-arm64", "debug-arm64"])
def test_agent_runs_on_the_arm64_guest(arm64_flavour: str, tmp_path: Path) -> None:
    arm64_kernel = _kernel(arm64_flavour)
    tasks: list[dict[str, Any]] = [
        {"task": "uname"},
        {"task": "command", "args": {"argv": ["python3.11", "-c", PROBE]}},
        # the agent's modprobe and rmmod are kmod's, the guest's own
        {"task": "command", "args": {"argv": ["modprobe", "-V"]}},
        {"task": "command", "args": {"argv": ["sh", "-c",
                                              "modprobe -v videobuf2_dma_contig && "
                                              "lsmod | grep -c ^videobuf2_dma_contig && "
                                              "rmmod videobuf2_dma_contig && echo removed"]}},
    ]
    run = QemuTarget(arm64_kernel).run(tasks, tmp_path, ARM64_DEADLINES)
    assert run.outcome == "done", run.console_tail()
    assert run.boot_seconds is not None and run.boot_seconds < ARM64_DEADLINES.boot
    uname, probe, kmod, modules = (r["data"] for r in run.results())
    assert uname["machine"] == "aarch64" and uname["release"] == arm64_kernel.release

    lines = probe["stdout"].split("\n")
    assert probe["status"] == 0, probe["stderr"]
    assert lines[0] == "aarch64 True"
    # the checkout comes from the host at its own path
    assert lines[1].startswith(str(Path(__file__).resolve().parents[2]))
    assert lines[2] == "libudev.so.1"
    assert lines[3] == "True"

    assert kmod["stdout"].startswith("kmod version")
    assert modules["status"] == 0, modules["stderr"]
    assert "removed" in modules["stdout"]

    # the events channel: every event is a JSON line, in order
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()
              if line.strip()]
    assert [e["event"] for e in events][0] == "ready" and events[-1]["event"] == "done"
    # the console is the PL011's, whole, with the kernel's own banner
    console = run.console()
    assert "Linux version " + arm64_kernel.release in console
    assert "Machine model: linux,dummy-virt" in console
    if arm64_flavour == "debian-arm64":
        assert "slub_debug=FZPU" in console  # no KASAN: poisoned slabs instead
    else:
        assert "KernelAddressSanitizer initialized" in console
    cmdline = (tmp_path / "qemu.cmdline").read_text()
    assert "qemu-system-aarch64" in cmdline and "-machine virt" in cmdline


def test_hung_arm64_agent_gets_a_blocked_task_dump(arm64_kernel: Kernel, tmp_path: Path) -> None:
    # The virt board has no PS/2 keyboard: sysrq goes in through a virtio one.
    run = QemuTarget(arm64_kernel).run(
        [{"task": "command", "args": {"argv": ["sleep", "600"], "timeout": 900}}],
        tmp_path,
        Deadlines(boot=180, idle=5, total=400),
    )
    assert run.outcome == "hang"
    assert "sysrq: Show Blocked State" in run.console()


def test_device_tree_hook(arm64_kernel: Kernel, tmp_path: Path) -> None:
    """The target boots a device tree it is given: QEMU's own for the same
    machine, dumped, compiled again (QEMU pads its dump to 1 MiB, which the
    board does not boot) and passed back with -dtb, boots the same board."""
    target = QemuTarget(arm64_kernel)
    argv = target.machine_args()
    argv[argv.index("-machine") + 1] += f",dumpdtb={tmp_path / 'dumped.dtb'}"
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    dtb = tmp_path / "virt.dtb"
    subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dtb", "-o", str(dtb),
                    str(tmp_path / "dumped.dtb")], check=True, timeout=60)
    run = QemuTarget(arm64_kernel, dtb=dtb).run([{"task": "uname"}], tmp_path / "run",
                                                ARM64_DEADLINES)
    assert run.outcome == "done", run.console_tail()
    assert f"-dtb {dtb}" in (tmp_path / "run" / "qemu.cmdline").read_text()
