"""`validate --race` on Debian's 6.1 with the project's injected lifetime bug.

Both sides boot the debian flavour; the patched side's vimc is built with
vm/patches/vimc-capture-free-at-unregister.patch. The patch does not touch
subdev_open(), whose NULL dereference ends most races on both sides within a
few cycles, so whatever the luck of two short races a side, that signature
must never come out fixed: a few cycles of patched racing, stopped early by
the injected bug or by subdev_open itself, decide nothing. Every status must
rest on the numbers beside it, and those must be the races' own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.host.report.schema import validate as check_schema

ROOT = Path(__file__).resolve().parents[2]
BUG = ROOT / "vm/patches/vimc-capture-free-at-unregister.patch"
SUBDEV_OPEN = "BUG:null-ptr-deref:subdev_open"
REPEAT, DURATION = 1, 8


def test_a_patch_that_does_not_touch_a_crash_never_fixes_it(flavour: str,
                                                            tmp_path: Path) -> None:
    if flavour != "debian":
        pytest.skip("races Debian's kernel (the debug flavour races too slowly to be short)")
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.host.cli", "validate", "--kernel", "debian",
         "--patch", str(BUG), "--race", "--repeat", str(REPEAT), "--duration", str(DURATION),
         "--seed", "1", "--report", str(out)],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")})
    assert proc.returncode in (0, 1, 3, 4, 5, 6), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    doc = json.loads((out / "validate.json").read_text())
    check_schema(doc, "validate")
    assert doc["exit_status"] == proc.returncode and doc["kernel"] == "debian"
    assert doc["race"]["seed"] == 1 and doc["rounds"] == REPEAT

    # each side's exposure is the sum of its races' own, as each race wrote it
    races = {side: [json.loads((out / side / f"race-{i:02d}/results.json").read_text())
                    for i in range(1, REPEAT + 1)] for side in ("base", "head")}
    assert [r["stats"]["seed"] for r in races["head"]] == list(range(1, REPEAT + 1))
    for side, docs in races.items():
        measured = [r["exposure"] for r in docs if r.get("exposure")]
        assert measured, f"no {side} race recorded its exposure"
        cycles = sum(e["cycles"] for e in measured)
        for sig in doc["signatures"]:
            assert sig[side]["exposure"] == cycles, (side, sig["signature"])
            assert sig[side]["hits"] == sum(
                any(h["signature"] == sig["signature"] for h in e["first_hits"])
                for e in measured)

    statuses = {s["signature"]: s for s in doc["signatures"]}
    assert statuses, "two races a side on 6.1 and no kernel report: the race did not race"
    for sig in doc["signatures"]:
        t = sig["tests"]
        if sig["status"] == "fixed":
            # only where the numbers show a tenfold fall
            assert sig["head"]["hits"] == 0 and t["fell_by_factor"] <= t["alpha"]
        if sig["status"] == "inconclusive" and sig["needed"]:
            assert sig["needed"]["exposure"] > 0
    if SUBDEV_OPEN in statuses:
        assert statuses[SUBDEV_OPEN]["status"] in ("still-present", "inconclusive"), \
            statuses[SUBDEV_OPEN]
    assert doc["result"] != "fixed"
    summary = (out / "summary.txt").read_text()
    assert f"result: {doc['result']} (exit status {doc['exit_status']})" in summary
