"""Every NAME.log under tests/data/kmsg/ against its NAME.expect.json.

The expectation is either one object, checked against the primary (first)
finding, or a list checked against all findings in order. Only the keys
present are compared, so a capture can pin down just class, title, guilty
frame and signature. Captures from our own VM go to tests/data/kmsg/lkdtm/
and are picked up the same way (see the README there).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.pure.kmsg import Finding, parse_log

DATA = Path(__file__).resolve().parents[1] / "data" / "kmsg"
LOGS = (
    sorted(DATA.glob("*.log"))
    + sorted((DATA / "lkdtm").glob("*.log"))
    + sorted((DATA / "scenarios").glob("*.log"))
    + sorted((DATA / "handwritten").glob("*.log"))
)

KEYS = {
    "class",
    "title",
    "kind",
    "guilty_frame",
    "guilty_rule",
    "signature",
    "corrupted",
    "corrupted_reason",
    "comm",
    "pid",
    "cpu",
    "taint",
    "timestamp",
    "context",
    "line",
    "extra",
}


def _actual(f: Finding, keys: set[str]) -> dict[str, Any]:
    d = f.to_dict()
    # Expectations name the task as the Finding does (comm); its JSON shape says "task".
    d["comm"] = d["task"]
    out = {k: d[k] for k in keys if k != "extra"}
    return out


def _check(f: Finding, want: dict[str, Any], where: str) -> None:
    unknown = set(want) - KEYS
    assert not unknown, f"{where}: unknown keys {sorted(unknown)} (known: {sorted(KEYS)})"
    assert _actual(f, set(want)) == {k: v for k, v in want.items() if k != "extra"}, where
    for key, value in want.get("extra", {}).items():
        assert f.extra.get(key) == value, f"{where}: extra[{key!r}]"


@pytest.mark.parametrize("log", LOGS, ids=[str(p.relative_to(DATA)) for p in LOGS])
def test_corpus(log: Path) -> None:
    expect_file = log.with_name(log.name.removesuffix(".log") + ".expect.json")
    assert expect_file.exists(), f"write {expect_file.name} next to {log.name}"
    expected = json.loads(expect_file.read_text())
    findings = parse_log(log.read_text(encoding="utf-8", errors="replace"))
    if isinstance(expected, dict):
        assert findings, f"{log.name}: no finding"
        _check(findings[0], expected, log.name)
        assert findings[0].primary
    else:
        got = [f.title for f in findings]
        assert len(findings) == len(expected), f"{log.name}: findings {got}"
        for n, (f, want) in enumerate(zip(findings, expected, strict=True)):
            _check(f, want, f"{log.name}[{n}]")


def test_corpus_is_not_empty() -> None:
    assert len(LOGS) >= 20


def test_lkdtm_corpus_has_every_capture_of_its_script() -> None:
    from harness.host.corpus import CAPTURES

    have = {p.name.removesuffix(".log") for p in (DATA / "lkdtm").glob("*.log")}
    wanted = {name for c in CAPTURES for name in c.outputs}
    assert sorted(wanted - have) == []


def test_capture_script_cuts_one_excerpt_per_crash_type() -> None:
    from harness.host.corpus import Capture, guest_script, split_console

    capture = Capture("batch", ("WARNING", "BUG"))
    console = "".join(
        f"[{n:12.6f}] {text}\r\n"
        for n, text in enumerate(
            [
                "boot 1",
                "boot 2",
                "boot 3",
                "boot 4",
                "lkdtm: Performing direct entry WARNING",
                "WARNING: CPU: 0 PID: 1 at x.c:1 f+0x1/0x2",
                "lkdtm: Performing direct entry BUG",
                "kernel BUG at x.c:2!",
            ]
        )
    )
    parts = split_console(console, capture)
    assert list(parts) == ["lkdtm_WARNING", "lkdtm_BUG"]
    # three lines of context before the first type, none taken from another type
    assert parts["lkdtm_WARNING"].startswith("[    1.000000] boot 2\r\n")
    assert parts["lkdtm_WARNING"].endswith("f+0x1/0x2\r\n")
    assert parts["lkdtm_BUG"].startswith("[    6.000000] lkdtm: Performing direct entry BUG")
    assert "".join(parts.values()) in console
    script = guest_script(capture)
    assert script.index("echo WARNING >") < script.index("echo BUG >")


def test_provoke_captures_load_the_project_module() -> None:
    from harness.host.corpus import CAPTURES, PROVOKE_DIRECT, Capture, guest_script, markers

    capture = Capture("LOCKDEP_CIRCULAR", ("LOCKDEP_CIRCULAR",), provoke=True)
    assert capture.outputs == ("provoke_LOCKDEP_CIRCULAR",)
    assert markers(capture) == ["unplug-provoke: Performing direct entry LOCKDEP_CIRCULAR"]
    script = guest_script(capture)
    assert "modprobe unplug-provoke || exit 1" in script
    assert f"echo LOCKDEP_CIRCULAR > {PROVOKE_DIRECT}" in script
    # SLUB's checks need slub_debug on that boot's command line
    slub = [c for c in CAPTURES if c.provoke and c.name.startswith("SLUB_")]
    assert slub and all("slub_debug=FZPU" in c.cmdline for c in slub)


def test_every_provoke_trigger_is_captured() -> None:
    import re

    from harness.host.corpus import CAPTURES, PROJECT_ROOT

    source = (PROJECT_ROOT / "vm/provoke/unplug-provoke.c").read_text()
    triggers = set(re.findall(r'\{ "([A-Z_]+)", provoke_\w+ \}', source))
    captured = {t for c in CAPTURES if c.provoke for t in c.types}
    assert triggers and captured == triggers
