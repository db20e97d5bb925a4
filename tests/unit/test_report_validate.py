"""Baseline against patched: statuses, hit rates, exit statuses, and the JUnit and HTML
views of it, from run documents built on a recorded console of the injected bug.

The HTML pages are also opened in a real headless Chromium (Debian's
`chromium` package, in vm/host-packages.txt, which `make test` installs);
without it those tests are skipped and say why.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.host.report import html, junit
from harness.host.report.compare import EXIT, compare
from harness.pure.kmsg.report import parse_log
from harness.pure.scenarios.attribution import attribute
from harness.pure.scenarios.verdicts import PatchResult

CONSOLE = Path(__file__).resolve().parents[1] / "data/consoles/injected_uaf_debug.console.log"
UAF = "KASAN:use-after-free:media_gobj_destroy"
BUGGY = "video.raw_capture_0-opened--unbind"
CLEAN = "media-opened--unbind"


def uaf_findings() -> list[dict[str, Any]]:
    return [f.to_dict() for owner, f in attribute(CONSOLE.read_text()) if owner == BUGGY]


def scenario(name: str, findings: list[dict[str, Any]] | None = None,
             broken: str | None = None) -> dict[str, Any]:
    findings = findings or []
    contracts = [{"contract": "close-succeeds", "passed": True, "detail": "close() = 0"}]
    if broken:
        contracts.append({"contract": broken, "passed": False, "detail": "DQBUF still blocked"})
    verdict = "fail" if findings or broken else "pass"
    return {"name": name, "verdict": verdict,
            "reason": "; ".join(f["title"] for f in findings), "boot": 1,
            "console": str(CONSOLE), "kernel_times": {"begin": 10.0, "end": 12.5},
            "contracts": contracts, "findings": findings}


def run(*scenarios: dict[str, Any], release: str = "6.1.192") -> dict[str, Any]:
    counts = {v: sum(s["verdict"] == v for s in scenarios)
              for v in ("pass", "fail", "hang", "error", "not-run")}
    return {"schema": 1, "tool": "v4l2-unplug", "driver": "vimc",
            "kernel": {"flavour": "tree", "release": release, "image": "/nonexistent"},
            "started": "2025-11-22T00:00:00Z", "duration_s": 42.0, "summary": counts,
            "boot_findings": [], "scenarios": list(scenarios)}


def bad() -> dict[str, Any]:
    return run(scenario(BUGGY, uaf_findings()), scenario(CLEAN))


def good() -> dict[str, Any]:
    return run(scenario(BUGGY), scenario(CLEAN))


def test_a_bug_the_patch_adds_is_introduced() -> None:
    # a scenario run is one unit: 0 of 5 against 5 of 5, P = 0.5⁵ under equal rates
    c = compare([[good()]] * 5, [[bad()]] * 5)
    (sig,) = c.signatures
    assert (sig.signature, sig.status) == (UAF, "introduced")
    assert sig.title == "KASAN: use-after-free Read in media_gobj_destroy"
    assert list(sig.scenarios) == [BUGGY]
    assert c.result == "introduced" and c.exit_status == EXIT[PatchResult.INTRODUCED] == 1
    assert c.verdicts[BUGGY] == {"base": ["pass"] * 5, "head": ["fail"] * 5}
    d = c.to_dict()["signatures"][0]
    assert d["tests"]["rose"] == pytest.approx(0.5 ** 5)
    assert d["unit"] == {"name": "runs", "per": 1, "fix_factor": 1.0, "by_seconds": False}


def test_one_run_a_side_is_inconclusive_and_says_how_many_more_would_do() -> None:
    c = compare([[good()]], [[bad()]])
    (sig,) = c.signatures
    assert sig.status == "inconclusive"
    assert c.result == "inconclusive" and c.exit_status == 4
    d = c.to_dict()["signatures"][0]
    # the baseline must run clean until 0.05 ≥ (1 / (1 + runs))¹: 19 runs, 18 more
    assert d["needed"] == {"side": "base", "exposure": 18.0, "stretches": 18,
                           "seconds": pytest.approx(18 * 42.0)}


def test_a_bug_the_patch_removes_is_fixed() -> None:
    c = compare([[bad()]] * 5, [[good()]] * 5)
    (sig,) = c.signatures
    assert sig.status == "fixed" and (sig.rate("base"), sig.rate("head")) == ("5/5 runs",
                                                                            "0/5 runs")
    assert c.exit_status == 3


def test_hit_rates_tell_a_flaky_race_from_a_fixed_bug() -> None:
    # 2 of 3 baseline runs, none patched: not proven fixed
    c = compare([[bad()], [good()], [bad()]], [[good()], [good()], [good()]])
    (sig,) = c.signatures
    assert sig.status == "inconclusive"
    assert (len(sig.hits["base"]), len(sig.hits["head"]), sig.runs) == (2, 0, 3)
    assert c.result == "inconclusive" and c.exit_status == 4
    d = c.to_dict()["signatures"][0]
    assert (d["base"]["hits"], d["base"]["runs"], d["base"]["exposure"]) == (2, 3, 3)
    assert d["base"]["rate"] == pytest.approx(2 / 3)
    assert d["needed"]["side"] == "head"


def test_still_present_and_unchanged() -> None:
    c = compare([[bad()]], [[bad()]])
    assert [s.status for s in c.signatures] == ["still-present"]
    assert c.result == "unchanged" and c.exit_status == 0
    assert compare([[good()]], [[good()]]).signatures == []


def test_introduced_outranks_fixed_and_contracts_are_signatures() -> None:
    base = run(scenario(BUGGY, uaf_findings()), scenario(CLEAN))
    head = run(scenario(BUGGY), scenario(CLEAN, broken="blocked-call-returns"))
    c = compare([[base]] * 5, [[head]] * 5)
    assert {s.signature: s.status for s in c.signatures} == {
        "CONTRACT:blocked-call-returns": "introduced", UAF: "fixed"}
    assert c.result == "introduced"
    # each side's example is the report as results.json holds it; a contract has none
    sigs = {d["signature"]: d for d in c.to_dict()["signatures"]}
    example = sigs[UAF]["examples"]["base"]
    assert example["finding"] == uaf_findings()[0]
    assert example["finding"]["extra"]["free_frame"] == "vimc_unregister_subdevs"
    assert sigs["CONTRACT:blocked-call-returns"]["examples"]["head"]["finding"] is None


def race_doc(findings: list[dict[str, Any]], cycles: int, censored: bool,
             role: str | None = None) -> dict[str, Any]:
    hits = [{"signature": f["signature"], "seconds": 1.0, "cycle": cycles} for f in findings]
    return {"mode": "race", "driver": "vimc", "kernel": {}, "outcome": "done",
            "findings": findings, "console": str(CONSOLE),
            "stats": {"seed": 7, "cycles": cycles, "workers": [{"worker": 0, "iterations": 900}]},
            "exposure": {"seed": 7, "seconds": cycles / 10, "cycles": cycles,
                         "iterations": 900, "censored": censored, "first_hits": hits},
            **({"role": role} if role else {})}


def test_race_documents_count_as_their_own_scenario_in_cycles() -> None:
    race = race_doc(uaf_findings(), 12, True)
    clean = race_doc([], 300, False)
    c = compare([[good(), clean]] * 3, [[good(), race]] * 3)
    (sig,) = c.signatures
    assert sig.status == "introduced" and list(sig.scenarios) == ["race"]
    assert c.verdicts["race"] == {"base": ["pass"] * 3, "head": ["fail"] * 3}
    d = c.to_dict()["signatures"][0]
    assert d["unit"]["name"] == "cycles"
    assert (d["base"]["exposure"], d["head"]["exposure"]) == (900, 36)
    assert d["head"]["rate"] == pytest.approx(3 / 36 * 1000)


def test_a_race_without_exposure_is_not_counted() -> None:
    race = {**race_doc(uaf_findings(), 12, True), "exposure": None}
    c = compare([[race_doc([], 300, False)]], [[race]])
    (sig,) = c.signatures
    assert sig.status == "inconclusive" and c.unmeasured == {"base": 0, "head": 1}


def test_a_kcsan_race_in_the_crash_function_makes_a_gone_crash_narrowed() -> None:
    crash = uaf_findings()
    kcsan = {"title": "KCSAN: data-race in media_gobj_destroy / media_device_unregister",
             "class": "KCSAN", "signature": "KCSAN:data-race:media_gobj_destroy"}
    base = [[race_doc(crash, 10, True)]] * 3
    head_clean = [[race_doc([], 300, False)]] * 3
    assert compare(base, head_clean).signatures[0].status == "fixed"
    # the same clean races, and a KCSAN build's race beside them, run as evidence
    head = [[race_doc([], 300, False), race_doc([kcsan], 50, True, role="evidence")]] * 3
    c = compare(base, head)
    assert [(s.signature, s.status) for s in c.signatures] == [(UAF, "narrowed")]
    assert c.result == "narrowed" and c.exit_status == 6
    assert c.to_dict()["signatures"][0]["remains"] == [
        "data race in media_device_unregister / media_gobj_destroy"]


def vdoc(c: Any, tmp: Path) -> dict[str, Any]:
    side = {"describe": "linux-source-6.1", "kernel": {"release": "6.1.192", "state": "ab" * 10,
                                                       "config_hash": "cafe"},
            "build": {"reused": True, "seconds": 0.0}, "runs": [
                {"run": 1, "kind": "scenarios", "dir": str(tmp / "x" / "run-01"),
                 "summary": "1 pass"}]}
    return {"tree": {"path": "/src/linux", "kind": "dir"}, "repeat": 1,
            "scenarios": [BUGGY, CLEAN], "race": None, "duration_s": 99.0,
            "timings": {"build_base_s": 0.0, "build_head_s": 61.0, "runs_s": 38.0},
            "sides": {"base": {**side}, "head": {**side}}, **c.to_dict()}


def test_junit_is_what_ci_systems_read() -> None:
    root = ET.fromstring(junit.run_xml(bad()))
    (suite,) = root.findall("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    failed = suite.find(f"testcase[@name='{BUGGY}']")
    assert failed is not None and failed.get("classname") == "vimc.tree"
    failure = failed.find("failure")
    assert failure is not None
    assert failure.get("message") == "KASAN: use-after-free Read in media_gobj_destroy"
    assert "Freed by task" in (failure.text or "")
    assert failed.get("time") == "2.500"


def test_validate_junit_fails_only_where_the_patch_introduced(tmp_path: Path) -> None:
    c = compare([[good()]] * 5, [[bad()]] * 5)
    root = ET.fromstring(junit.validate_xml(vdoc(c, tmp_path), {"base": [[good()]] * 5,
                                                                "head": [[bad()]] * 5}, c))
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"v4l2-unplug validate", *(f"{side} run {i}" for i in range(1, 6)
                                                     for side in ("baseline", "patched"))}
    verdict = suites["v4l2-unplug validate"]
    assert verdict.get("failures") == "1" and verdict.get("tests") == "2"
    failure = verdict.find(f"testcase[@name='{BUGGY}']/failure")
    assert failure is not None and "media_gobj_destroy" in (failure.get("message") or "")
    assert root.get("failures") == "6"  # the verdict, and each patched run's own failure


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"] or "")
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"] or "")


def check_links(page: str, here: Path) -> Links:
    links = Links()
    links.feed(page)
    for href in links.hrefs:
        if href.startswith("#"):
            assert href[1:] in links.ids, f"dangling link {href}"
        else:
            assert (here / href).exists(), f"link to a missing file {href}"
    return links


def test_run_page_has_each_finding_with_its_console_excerpt(tmp_path: Path) -> None:
    page = html.run_page(bad(), tmp_path)
    assert "KASAN: use-after-free Read in media_gobj_destroy" in page
    assert "Freed by task" in page  # the whole report
    # the excerpt reaches back before the report: the scenario's begin marker
    assert "Console excerpt" in page and f"scenario {BUGGY} begin" in page
    links = check_links(page, tmp_path)
    assert any(h.endswith(CONSOLE.name) for h in links.hrefs)
    # self-contained: nothing to fetch, nothing to run
    for needle in ("<script", "<link", "src=", "@import"):
        assert needle not in page


def row(label: str, value: str) -> str:
    """A row of a finding's details table as the page writes it."""
    return f"<tr><th>{html.esc(label)}</th><td>{html.esc(value)}</td></tr>"


def test_run_page_shows_what_only_some_reports_have(tmp_path: Path) -> None:
    page = html.run_page(bad(), tmp_path)
    # KASAN: the access, and where the object was allocated and freed
    for label, value in (("kind", "use-after-free"), ("access", "Read"), ("size (bytes)", "8"),
                         ("allocated by", "vimc_capture_add"),
                         ("freed by", "vimc_unregister_subdevs"),
                         ("task", "python3 (pid 64) on CPU 0"), ("taint", "O")):
        assert row(label, value) in page, label
    # ODEBUG's object type and SLUB's cache, from recorded consoles of their own
    data = CONSOLE.parents[1] / "kmsg"
    odebug = parse_log((data / "lkdtm/provoke_ODEBUG_FREE_ACTIVE.log").read_text())[0].to_dict()
    slub = next(f.to_dict() for f in parse_log(
        (data / "scenarios/rcar_vin_blocked_dqbuf_unbind_slub_arm64.log").read_text())
        if f.bug_class == "SLUB")
    page = html.run_page(run(scenario(BUGGY, [odebug, slub])), tmp_path)
    assert row("object type", "timer_list") in page and row("what", "free active") in page
    assert row("slab cache", "kmalloc-4k") in page


def test_validate_page_links_signatures_scenarios_and_reports(tmp_path: Path) -> None:
    c = compare([[good()]], [[bad()]])
    doc = vdoc(c, tmp_path)
    for side, run_doc in (("base", good()), ("head", bad())):
        run_dir = tmp_path / side / "run-01"
        run_dir.mkdir(parents=True)
        (run_dir / "report.html").write_text(html.run_page(run_doc, run_dir))
        (run_dir / "results.json").write_text("{}")
        doc["sides"][side]["runs"][0]["dir"] = str(run_dir)
    page = html.validate_page(doc, c, tmp_path)
    assert 'class="inconclusive">inconclusive' in page
    assert "0/1 runs: 0 [0, 3.69]" in page and "1/1 runs: 1.00 [0.0253, 5.57]" in page
    links = check_links(page, tmp_path)
    assert "#sig-1" in links.hrefs and "#" + html.anchor("scn", BUGGY) in links.hrefs
    assert "head/run-01/report.html" in links.hrefs
    assert row("allocated by", "vimc_capture_add") in page  # the patched side's report


@pytest.mark.parametrize("text", ["<script>alert(1)</script>", 'a "quoted" & <b>'])
def test_report_text_is_escaped(tmp_path: Path, text: str) -> None:
    f = {**uaf_findings()[0], "title": text, "text": text}
    page = html.run_page(run(scenario(BUGGY, [f])), tmp_path)
    assert text not in page and html.esc(text) in page


# --- in a real browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


def chromium(page: Path, *mode: str) -> tuple[str, str]:
    """Run headless Chromium on a file; (stdout, console messages it logged)."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr",
             "--v=0", *mode, page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = "\n".join(line for line in proc.stderr.splitlines() if ":CONSOLE" in line)
    return proc.stdout, console


def validate_report(tmp: Path) -> Path:
    c = compare([[good()]], [[bad()]])
    doc = vdoc(c, tmp)
    for side, run_doc in (("base", good()), ("head", bad())):
        run_dir = tmp / side / "run-01"
        run_dir.mkdir(parents=True)
        (run_dir / "report.html").write_text(html.run_page(run_doc, run_dir))
        doc["sides"][side]["runs"][0]["dir"] = str(run_dir)
    page = tmp / "report.html"
    page.write_text(html.validate_page(doc, c, tmp))
    return page


@needs_chromium
def test_a_console_error_would_be_seen(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><script>console.error("boom")</script>'
                    "</body></html>")
    _, console = chromium(page, "--dump-dom")
    assert "boom" in console


@needs_chromium
def test_validate_page_opens_and_shows_the_findings(tmp_path: Path) -> None:
    page = validate_report(tmp_path)
    dom, console = chromium(page, "--dump-dom")
    assert console == ""
    assert "v4l2-unplug validate: " in dom
    assert "KASAN: use-after-free Read in media_gobj_destroy" in dom
    assert "KASAN:use-after-free:media_gobj_destroy" in dom
    assert "Freed by task" in dom  # the full report
    assert f"scenario {BUGGY} begin" in dom  # the console excerpt
    assert 'href="#sig-1"' in dom and 'id="sig-1"' in dom


@needs_chromium
def test_run_page_opens_and_renders(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(html.run_page(bad(), tmp_path))
    dom, console = chromium(page, "--dump-dom")
    assert console == ""
    assert BUGGY in dom and "Console excerpt" in dom
    shot = tmp_path / "shot.png"
    chromium(page, f"--screenshot={shot}", "--window-size=1200,900")
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
