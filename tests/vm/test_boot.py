"""A real kernel boots, the agent runs in it, and every way a boot can end is reported."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.host.kernels.kernel import Kernel
from harness.host.targets.qemu import Deadlines, QemuTarget, raise_for_boot
from harness.pure.errors import GuestError


def test_topology_of_vimc(kernel: Kernel, tmp_path: Path) -> None:
    from harness.pure.profiles.vimc import VIMC
    from harness.target.device.graph import MediaGraph

    run = QemuTarget(kernel).run([{"task": "topology", "args": {"driver": "vimc"}}], tmp_path)
    assert run.outcome == "done", run.console_tail()
    (result,) = run.results()
    assert result["event"] == "result", result
    (data,) = result["data"]["graphs"]
    graph = MediaGraph.from_dict(data)
    assert graph.info.driver == "vimc"
    names = {e.name for e in graph.topology.entities}
    assert set(VIMC.entities) <= names
    # every capture entity and every subdev has a device node
    for name in ("Raw Capture 0", "Raw Capture 1", "RGB/YUV Capture"):
        assert (graph.devnode(name) or "").startswith("/dev/video")
    for name in ("Sensor A", "Debayer B", "Scaler"):
        assert (graph.devnode(name) or "").startswith("/dev/v4l-subdev")
    text = graph.render()
    assert '-> "Debayer A":0 [ENABLED,IMMUTABLE]' in text
    # the whole console is kept with the run
    console = run.console_path.read_text()
    assert "Linux version" in console and "vimc" in console


def test_guest_runs_the_booted_kernel_on_a_read_only_host(kernel: Kernel, tmp_path: Path) -> None:
    probe = tmp_path / "written-by-guest"
    script = (
        f"uname -r; touch {probe} && echo overlay-write-ok; "
        f"grep -E ' / overlay ' /proc/mounts >/dev/null && echo root-is-overlay"
    )
    run = QemuTarget(kernel).run(
        [{"task": "command", "args": {"argv": ["sh", "-c", script]}}], tmp_path / "run"
    )
    assert run.outcome == "done", run.console_tail()
    out = run.results()[0]["data"]["stdout"].split()
    assert out[0] == kernel.release
    assert "overlay-write-ok" in out and "root-is-overlay" in out
    # the write landed in the guest's tmpfs overlay, never on the host
    assert not probe.exists()


def test_agent_that_stops_talking_is_a_hang_with_blocked_task_dump(
    kernel: Kernel, tmp_path: Path
) -> None:
    run = QemuTarget(kernel).run(
        [{"task": "command", "args": {"argv": ["sleep", "600"], "timeout": 900}}],
        tmp_path,
        Deadlines(boot=120, idle=5, total=300),
    )
    assert run.outcome == "hang"
    assert "sent nothing for 5 s" in run.message
    # sysrq-w went in through the monitor before the kill and its output was kept
    assert "sysrq: Show Blocked State" in run.console()


def test_guest_that_never_comes_up_is_reported_with_its_console(
    kernel: Kernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.host.targets.qemu as qemu

    monkeypatch.setattr(qemu, "GUEST_INIT", Path("/nonexistent/guest-init"))
    broken = dataclasses.replace(kernel)
    run = QemuTarget(broken).run([{"task": "uname"}], tmp_path, Deadlines(boot=60))
    assert run.outcome == "boot-failed"
    with pytest.raises(GuestError) as err:
        raise_for_boot(run)
    assert "never came up" in str(err.value)
    assert "Linux version" in run.console()


def test_path_flavour_boots_a_kernel_the_user_names(tmp_path: Path) -> None:
    """--kernel path, as a user runs it: an image and an INSTALL_MOD_PATH with vimc
    in it (here Debian's image and the module tree the debian flavour built)."""
    import subprocess
    import sys

    from harness.host.targets.emulated import provision_kernel
    from harness.pure.profiles.vimc import VIMC

    own = provision_kernel("debian", VIMC)
    proc = subprocess.run(
        [sys.executable, "-m", "harness.host.cli", "topology", "--kernel", "path",
         "--kernel-image", str(own.image), "--modules", str(own.modules_root),
         "--report", str(tmp_path / "report")],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Sensor A" in proc.stdout
    assert "Raw Capture 0" in proc.stdout and "/dev/video" in proc.stdout
    consoles = list((tmp_path / "report").glob("**/console.log"))
    assert consoles and own.release in consoles[0].read_text()
