"""`kmsg FILE [--json]`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.host.kmsg_cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "kmsg"


def test_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DATA / "hung_task_cec_arm64.log")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "[primary] INFO: task hung in cec_claim_log_addrs  (x3)"
    assert "  class:     HUNG_TASK" in out
    assert "  signature: HUNG_TASK:task-hung:cec_claim_log_addrs" in out
    assert "  guilty:    cec_claim_log_addrs (call-trace)" in out
    assert "  task:      syz-executor398 (pid 6279)" in out
    assert "  taint:     B" in out


def test_human_output_several_groups(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DATA / "warning_and_rcu_stall_rpi_journal.log")]) == 0
    out = capsys.readouterr().out
    assert "[primary] WARNING in dev_watchdog  (x1)" in out
    assert "\nINFO: rcu detected stall in ath9k_rx_tasklet  (x1)" in out
    assert "  time:      line 8, 739.813864s" in out
    assert "  task:      swapper/3 (pid 0) on CPU 3" in out


def test_corrupted_is_shown(capsys: pytest.CaptureFixture[str]) -> None:
    main([str(DATA / "panic_vfs_root_firecracker.log")])
    assert "  corrupted: no end marker" in capsys.readouterr().out


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DATA / "kmemleak_radio_keene.log"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(d["guilty_frame"], d["count"]) for d in data] == [
        ("v4l2_ctrl_handler_init_class", 1),
        ("v4l2_ctrl_new", 2),
        ("handler_new_ref", 2),
    ]
    assert data[0]["primary"] and not data[1]["primary"]
    assert data[0]["class"] == "KMEMLEAK"
    assert data[0]["task"] == "kworker/0:6"  # results.json's name for it


def test_json_has_what_only_some_reports_have(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DATA / "odebug_cec_transmit.log"), "--json"]) == 0
    (d,) = json.loads(capsys.readouterr().out)
    assert d["extra"]["otype"] == "timer_list" and d["kind"]
    assert d["raw"].count("\n") == d["text"].count("\n")


def test_no_findings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DATA / "boot_noise_oot_taint.log")]) == 0
    assert capsys.readouterr().out.strip() == "no kernel bug reports found"
    assert main([str(DATA / "boot_noise_oot_taint.log"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    data = (DATA / "ubsan_shift_mceusb.log").read_bytes() + b"\xff\xfe garbage\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["-"]) == 0
    assert "UBSAN: shift-out-of-bounds in mceusb_dev_printdata" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["missing.log", ""])
def test_unreadable_file(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / name  # "" is the directory itself
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"kmsg: error: cannot read {path}: ")


def test_unreadable_file_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness.host.kmsg_cli", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
