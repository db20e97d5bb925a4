"""The run history: what is recorded, when a scenario started or stopped failing, which
signatures are flaky, and the `history` command that shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.host.report import history

UAF = "KASAN:use-after-free:media_gobj_destroy"
SCN = "video.raw_capture_0-opened--unbind"


def finding(sig: str = UAF) -> dict[str, Any]:
    return {"signature": sig, "title": "KASAN: use-after-free Read in media_gobj_destroy",
            "class": "KASAN", "text": "BUG: KASAN ..."}


def doc(image: Path, failing: bool, flavour: str = "debug") -> dict[str, Any]:
    return {
        "schema": 1, "driver": "vimc", "started": "2025-11-22T00:00:00Z", "duration_s": 30.0,
        "kernel": {"flavour": flavour, "release": "6.1.192", "image": str(image)},
        "boot_findings": [],
        "scenarios": [
            {"name": SCN, "verdict": "fail" if failing else "pass",
             "reason": "", "kernel_times": {"begin": 1.0, "end": 3.25}, "contracts": [],
             "findings": [finding()] if failing else []},
            {"name": "media-opened--unbind", "verdict": "pass", "reason": "",
             "kernel_times": {}, "contracts": [], "findings": []},
        ],
    }


def kernel(tmp: Path, name: str, commit: str | None = None) -> Path:
    d = tmp / name
    d.mkdir()
    (d / "bzImage").write_bytes(name.encode() * 100)
    if commit:
        (d / "build-info.json").write_text(json.dumps(
            {"commit": commit, "patches": ["fix.patch"], "config_hash": "c0ffee"}))
    return d / "bzImage"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path / "data" / "v4l2-unplug" / "history.sqlite3"


def test_the_database_lives_in_the_users_data_directory(db: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert history.db_path() == db
    monkeypatch.delenv("XDG_DATA_HOME")
    assert history.db_path() == Path.home() / ".local/share/v4l2-unplug/history.sqlite3"


def test_a_run_is_recorded_with_its_kernel_and_timings(db: Path, tmp_path: Path) -> None:
    image = kernel(tmp_path, "k1", commit="abc123def456")
    run_id = history.record(doc(image, failing=True), "run", "", tmp_path / "report")
    assert run_id == 1 and db.exists()
    with history.connect() as conn:
        (run,) = history.runs(conn)
        assert run["kernel_commit"] == "abc123def456" and run["config_hash"] == "c0ffee"
        assert run["image_hash"] and run["verdicts"] == {"fail": 1, "pass": 1}
        assert json.loads(run["kernel_patches"]) == ["fix.patch"]
        rows = conn.execute("SELECT scenario, verdict, seconds FROM results "
                            "ORDER BY scenario").fetchall()
        assert [tuple(r) for r in rows] == [("media-opened--unbind", "pass", None),
                                            (SCN, "fail", 2.25)]
        sig = conn.execute("SELECT * FROM signatures").fetchone()
        assert (sig["scenario"], sig["signature"], sig["count"]) == (SCN, UAF, 1)


def test_an_older_database_gets_the_new_columns(db: Path, tmp_path: Path) -> None:
    import sqlite3

    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as conn:
        conn.executescript(history.SCHEMA.replace("    kernel_id      TEXT,"
                                                  "              -- image and module tree:"
                                                  " the same kernel, or not\n", ""))
    assert "kernel_id" not in {r[1] for r in sqlite3.connect(db).execute(
        "PRAGMA table_info(runs)")}
    assert history.record(doc(kernel(tmp_path, "k"), False)) == 1
    with history.connect() as conn:
        assert history.runs(conn)[0]["kernel_id"]


def test_changes_say_when_a_scenario_started_and_stopped_failing(db: Path,
                                                                  tmp_path: Path) -> None:
    old, new, fixed = (kernel(tmp_path, n) for n in ("old", "new", "fixed"))
    for image, failing in ((old, False), (old, False), (new, True), (new, True),
                           (fixed, False)):
        history.record(doc(image, failing))
    with history.connect() as conn:
        changes = history.changes(conn)
    assert [(c.scenario, c.started_failing, c.run["id"], c.previous["id"]) for c in changes] == [
        (SCN, True, 3, 2), (SCN, False, 5, 4)]
    assert changes[0].signatures == (UAF,) and changes[1].signatures == (UAF,)


def test_series_keep_a_validations_two_kernels_apart(db: Path, tmp_path: Path) -> None:
    base, head = kernel(tmp_path, "base"), kernel(tmp_path, "head")
    for _ in range(3):
        history.record(doc(base, True, "tree"), "validate", "baseline")
        history.record(doc(head, False, "tree"), "validate", "patched")
    with history.connect() as conn:
        assert history.changes(conn) == []


def test_flaky_signatures_are_those_seen_in_some_runs_on_one_kernel(db: Path,
                                                                     tmp_path: Path) -> None:
    racy, solid = kernel(tmp_path, "racy"), kernel(tmp_path, "solid")
    for failing in (True, False, True):
        history.record(doc(racy, failing))
    for _ in range(2):
        history.record(doc(solid, True))
    with history.connect() as conn:
        (f,) = history.flaky(conn)
    assert (f.scenario, f.signature, f.hits, f.runs) == (SCN, UAF, 2, 3)


def test_race_documents_are_recorded_as_one_scenario(db: Path, tmp_path: Path) -> None:
    race = {"mode": "race", "driver": "vimc", "kernel": {"flavour": "debug", "release": "6.1"},
            "stats": {"duration": 60.0}, "findings": [finding()], "outcome": "done"}
    history.record(race, "run")
    with history.connect() as conn:
        (run,) = history.runs(conn)
        assert run["command"] == "race" and run["verdicts"] == {"fail": 1}


def test_a_database_that_cannot_be_written_does_not_fail_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    assert history.record(doc(kernel(tmp_path, "k"), False)) is None
    assert "run not recorded in history" in capsys.readouterr().err


def test_history_command_lists_runs_changes_and_flaky(db: Path, tmp_path: Path) -> None:
    old, new = kernel(tmp_path, "old"), kernel(tmp_path, "new", commit="feedbeef" * 5)
    for image, failing in ((old, False), (new, True), (new, False), (new, True)):
        history.record(doc(image, failing))
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, "-m", "harness.host.cli", "history"],
                          capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"{SCN}: started failing in run 2" in out
    assert "@feedbeeffeed" in out  # the kernel commit at the change
    assert f"{SCN}: stopped failing in run 3" in out
    assert f"{UAF}] in 2/3 runs" in out
    js = subprocess.run([sys.executable, "-m", "harness.host.cli", "history", "--json",
                         "--scenario",
                         SCN], capture_output=True, text=True, env=env, timeout=60)
    data = json.loads(js.stdout)
    assert [c["change"] for c in data["changes"]] == ["started failing", "stopped failing",
                                                      "started failing"]
    assert data["flaky"][0]["signature"] == UAF


def test_history_with_nothing_recorded(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "empty")}
    proc = subprocess.run([sys.executable, "-m", "harness.host.cli", "history"],
                          capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 0 and "no runs recorded yet" in proc.stdout
