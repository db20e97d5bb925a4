"""The serial console against a QEMU guest's serial line, reached through a
host pty that outlives the guest's resets (`v4l2-unplug serve`): pexpect
logs in and runs scenarios there; with an SSH target it keeps the kernel's
panic when the network dies with the kernel, and the power-cycle command
brings the board back."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.vm.test_ssh_target import cli, debian_only, free_port, keypair, verdicts

SCENARIOS = ["idle--unbind_bind", "video.raw_capture_0-streaming--rmmod"]
CRASH: list[dict[str, Any]] = [
    {"task": "uname"},
    {"task": "command", "args": {"argv": ["sh", "-c", "echo c > /proc/sysrq-trigger"]}}]


def test_serial_console_runs_scenarios_and_survives_a_panic(request: pytest.FixtureRequest,
                                                            tmp_path: Path) -> None:
    debian_only(request)
    from harness.host.targets.serial import SerialConsole
    from harness.host.targets.served import ServeProcess
    from harness.host.targets.ssh import SshTarget

    key = keypair(tmp_path)
    port = free_port()
    with ServeProcess("debian", port, key.with_suffix(".pub"), tmp_path / "serve") as served:
        # The agent over the serial line itself: login, push, events between kernel lines.
        picked = [a for name in SCENARIOS for a in ("--scenario", name)]
        run = cli("run", "--target", f"serial:{served.serial}", "--report",
                  str(tmp_path / "serial"), *picked)
        assert run.returncode == 0, run.stderr
        assert verdicts(tmp_path / "serial") == dict.fromkeys(SCENARIOS, "pass")
        console = (tmp_path / "serial" / "boot-01" / "console.log").read_text()
        assert f"v4l2-unplug: scenario {SCENARIOS[1]} disrupt" in console
        assert '{"event"' not in console  # events are taken out of the console log
        events = (tmp_path / "serial" / "boot-01" / "events.jsonl").read_text()
        assert '"event": "done"' in events

        # SSH runs the agent, the serial console keeps the log: a panic kills
        # the network with the kernel, the console still has it.
        notes: list[str] = []
        console_dev = SerialConsole(served.serial)
        board = SshTarget(f"ssh://root@127.0.0.1:{port}", key, served.power_cycle, console_dev,
                          notes.append)
        try:
            first_boot = board.boot_id(timeout=15)
            crashed = board.run(CRASH, tmp_path / "ssh" / "boot-01")
            assert crashed.outcome == "crashed", crashed.message
            assert "Kernel panic - not syncing: sysrq triggered crash" in crashed.console()
            assert crashed.message == "the kernel panicked"

            # The next run brings the board back with the power-cycle command.
            started = time.monotonic()
            again = board.run([{"task": "uname"}], tmp_path / "ssh" / "boot-02")
            assert again.outcome == "done", again.message
            assert board.boot_id(timeout=15) not in (None, first_boot)
            assert any("power cycle: kill -HUP" in n for n in notes), notes
            assert "Linux version" in again.console()  # the new boot's log, from its start
            assert time.monotonic() - started < 120
        finally:
            board.close()
        assert json.loads((tmp_path / "serve" / "serve.json").read_text())["boot"] >= 2
