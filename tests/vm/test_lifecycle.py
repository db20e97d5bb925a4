"""Neither Ctrl-C nor a killed harness leaves a QEMU process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _qemu_pids(marker: Path) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"qemu-system.*{marker}"], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


def _wait(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_no_qemu_survives_the_harness(flavour: str, kernel, tmp_path: Path, sig: int) -> None:
    if flavour != "debian":
        pytest.skip("one flavour is enough: QEMU's lifetime does not depend on the kernel")
    report = tmp_path / "report"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.host.cli", "run", "--kernel", flavour, "--report",
         str(report), "--scenario", "idle--cycles5"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert _wait(lambda: _qemu_pids(report), 60), "QEMU never started"
        time.sleep(1.0)
        os.kill(proc.pid, sig)
        proc.wait(timeout=30)
        assert _wait(lambda: not _qemu_pids(report), 15), "QEMU outlived the harness"
        if sig == signal.SIGINT:
            assert proc.returncode == 130
            assert proc.stderr is not None  # stderr=PIPE
            assert "Traceback" not in proc.stderr.read()
        # the console of the interrupted boot is kept
        assert (report / "boot-01" / "console.log").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in _qemu_pids(report):
            os.kill(pid, signal.SIGKILL)
