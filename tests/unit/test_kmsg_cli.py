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
    assert main([str(DATA / "lkdtm/lkdtm_ACCESS_NULL_arm64.log")]) == 0
    out = capsys.readouterr().out
    title = "BUG: unable to handle kernel paging request in lkdtm_ACCESS_NULL"
    assert out.splitlines()[0] == f"[primary] {title}  (x1)"
    assert "  class:     BUG" in out
    assert "  signature: BUG:null-ptr-deref:lkdtm_ACCESS_NULL" in out
    assert "  guilty:    lkdtm_ACCESS_NULL (pc)" in out
    assert "  task:      sh (pid 64)" in out
    assert "  taint:     D" in out


def test_human_output_several_groups(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DATA / "handwritten/kern_log_warning_then_rcu_stall_arm64.log")]) == 0
    out = capsys.readouterr().out
    assert "[primary] WARNING in unplugcam_stop_streaming  (x1)" in out
    assert "\nINFO: rcu detected stall in unplugcam_watchdog_fn  (x1)" in out
    assert "  time:      line 4, 1204.552004s" in out
    assert "  task:      cam-capture (pid 1877) on CPU 2" in out
    assert "  time:      line 31, 1231.604417s" in out
    assert "  task:      swapper/1 (pid 0)\n" in out


def test_corrupted_is_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "cut.log"
    lines = (DATA / "lkdtm/lkdtm_WARNING_sid.log").read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:30]))  # the console lost the rest
    main([str(log)])
    assert "  corrupted: no end marker" in capsys.readouterr().out


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DATA / "handwritten/kmemleak_crc_several_x86.log"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(d["guilty_frame"], d["count"]) for d in data] == [
        ("vimc_ent_sd_register", 1),
        ("media_add_link", 2),
    ]
    assert data[0]["primary"] and not data[1]["primary"]
    assert data[0]["class"] == "KMEMLEAK"
    assert data[0]["task"] == "v4l2-unplug"  # results.json's name for it


def test_json_has_what_only_some_reports_have(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DATA / "lkdtm/provoke_ODEBUG_FREE_ACTIVE.log"), "--json"]) == 0
    (d,) = json.loads(capsys.readouterr().out)
    assert d["extra"]["otype"] == "timer_list" and d["kind"]
    assert d["raw"].count("\n") == d["text"].count("\n")


def test_no_findings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DATA / "boot_noise_oot_taint.log")]) == 0
    assert capsys.readouterr().out.strip() == "no kernel bug reports found"
    assert main([str(DATA / "boot_noise_oot_taint.log"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    data = (DATA / "lkdtm/provoke_UBSAN_SHIFT.log").read_bytes() + b"\xff\xfe garbage\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["-"]) == 0
    assert "UBSAN: shift-out-of-bounds in provoke_direct_write" in capsys.readouterr().out


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
