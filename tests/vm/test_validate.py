"""`validate` on the real Debian linux-source with the project's injected lifetime bug.

The baseline is the Debian source as it is: the same tree state as the
debug flavour, which `make kernels` has built, so it is found, not built.
The patched kernel is derived from that build (vimc-capture.c and a link:
a minute or two the first time, nothing afterwards). Only the one
scenario that exposes the bug runs, once per kernel: one run a side is
found and reported with its numbers, and is too little to call anything
introduced or fixed (five runs a side are the fewest that can).

- bug patch on top:                 the KASAN report, inconclusive (exit 4): seen
                                    1 of 1 patched runs, 18 more clean baseline runs decide it
- bug as --base-patch + its revert: inconclusive too, never fixed; the patched
                                    tree's content is the pristine tree's, so that kernel is
                                    the debug build again
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUG = ROOT / "vm/patches/vimc-capture-free-at-unregister.patch"
FIX = ROOT / "vm/patches/vimc-capture-free-at-unregister-revert.patch"
SCENARIO = "video.raw_capture_0-opened--unbind"
UAF = "KASAN:use-after-free:media_gobj_destroy"

def debian_source() -> Path:
    from harness.host.kernels.debian import current_release
    from harness.host.kernels.source import source_tree

    return source_tree(current_release().version)


def validate(out: Path, data: Path, *args: str) -> tuple[subprocess.CompletedProcess[str],
                                                        dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "harness.host.cli", "validate", "--tree", str(debian_source()),
         "--scenario", SCENARIO, "--report", str(out), *args],
        capture_output=True, text=True, timeout=1500,
        # the history of test runs stays out of the user's
        env={**os.environ, "XDG_DATA_HOME": str(data)},
    )
    doc = json.loads((out / "validate.json").read_text()) if (out / "validate.json").exists() \
        else {}
    return proc, doc


@pytest.fixture
def introduced(flavour: str, session_once, tmp_path_factory: pytest.TempPathFactory):
    """One validation of the bug patch per test session, shared by every test
    (on any xdist worker) that reads it."""
    if flavour != "debug":
        pytest.skip("validate builds the debug configuration: runs with the debug flavour")

    def produce() -> dict[str, Any]:
        out = tmp_path_factory.mktemp("validate-introduced")
        proc, doc = validate(out / "report", out / "data", "--patch", str(BUG))
        return {"returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr,
                "doc": doc, "out": str(out)}

    done = session_once("validate-introduced", produce)
    proc = subprocess.CompletedProcess([], done["returncode"], done["stdout"], done["stderr"])
    return proc, done["doc"], Path(done["out"])


def test_injected_bug_is_found_and_one_run_is_too_few_to_call_it_introduced(
        introduced) -> None:
    proc, doc, out = introduced
    assert proc.returncode == 4, proc.stderr[-3000:]
    assert doc["result"] == "inconclusive" and doc["exit_status"] == 4
    sig = next(s for s in doc["signatures"] if s["signature"] == UAF)
    assert sig["status"] == "inconclusive"
    assert sig["title"] == "KASAN: use-after-free Read in media_gobj_destroy"
    assert [s["name"] for s in sig["scenarios"]] == [SCENARIO]
    assert (sig["base"]["hits"], sig["head"]["hits"]) == (0, 1)
    assert sig["unit"]["name"] == "runs" and sig["tests"]["rose"] == 0.5
    assert sig["needed"]["side"] == "base" and sig["needed"]["exposure"] == 18
    assert "vimc_capture_unregister" in sig["examples"]["head"]["text"]
    # the baseline is the debug flavour's build, found and not rebuilt
    assert doc["sides"]["base"]["build"]["reused"] is True
    assert doc["sides"]["head"]["patches"][0]["file"].endswith(BUG.name)
    # what CI reads
    report = out / "report"
    assert f"INCONCLUSIVE  KASAN: use-after-free Read in media_gobj_destroy  [{UAF}]" \
        in proc.stdout
    assert "to decide: about 18 more baseline runs (18 runs" in proc.stdout
    suite = ET.parse(report / "validate.junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert f"# {SCENARIO}: inconclusive: KASAN" in (report / "validate.ktap").read_text()
    # and history recorded both kernels' runs
    db = out / "data/v4l2-unplug/history.sqlite3"
    assert db.is_file()


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="chromium is not installed (apt-get install chromium)")
def test_the_validate_page_opens_in_chromium_and_shows_the_finding(introduced) -> None:
    _, _, out = introduced
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
             "--dump-dom", (out / "report/report.html").resolve().as_uri()],
            capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert not [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    dom = proc.stdout
    assert "v4l2-unplug validate: " in dom and "inconclusive" in dom
    assert "KASAN: use-after-free Read in media_gobj_destroy" in dom
    assert "Freed by task" in dom and f"scenario {SCENARIO} begin" in dom


def test_its_revert_in_one_run_a_side_is_never_called_a_fix(flavour: str,
                                                            tmp_path: Path) -> None:
    if flavour != "debug":
        pytest.skip("validate builds the debug configuration: runs with the debug flavour")
    proc, doc = validate(tmp_path / "report", tmp_path / "data",
                         "--base-patch", str(BUG), "--patch", str(FIX))
    assert proc.returncode == 4, proc.stderr[-3000:]
    assert doc["result"] == "inconclusive"
    sig = next(s for s in doc["signatures"] if s["signature"] == UAF)
    assert sig["status"] == "inconclusive" and [s["name"] for s in sig["scenarios"]] == [SCENARIO]
    assert (sig["base"]["hits"], sig["head"]["hits"]) == (1, 0)
    assert sig["needed"]["side"] == "head" and sig["needed"]["exposure"] == 18
    # bug + revert is the pristine tree: the debug flavour's build again, nothing built
    head = doc["sides"]["head"]
    assert head["build"]["reused"] is True and head["kernel"]["state"] == debug_state()


def debug_state() -> str:
    from harness.host.kernels.flavours import get_kernel

    image = get_kernel("debug").image
    return json.loads((image.parent / "build-info.json").read_text())["state"]


def test_a_patch_that_does_not_apply_names_its_hunk(tmp_path: Path) -> None:
    # the revert on the pristine tree: its first hunk expects the bug's lines
    proc = subprocess.run(
        [sys.executable, "-m", "harness.host.cli", "validate", "--tree", str(debian_source()),
         "--patch", str(FIX), "--build-only"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (f"patch {FIX.name} does not apply: hunk #1 of 2 in "
            "drivers/media/test-drivers/vimc/vimc-capture.c (@@ -339,7 +339,11 @@)") in proc.stderr
