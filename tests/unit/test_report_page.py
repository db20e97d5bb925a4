"""The report page: findings first with how to run each again, the agent's steps
against the kernel's lines, the report marked in its console, and the charts;
opened in a real headless Chromium, which must render the charts and the
findings, and whose screenshot is kept in reports/test-report-page/.

Fed recorded results: a real vimc matrix and a real race series on Debian's
6.1 kernel (tests/data/reports/vimc-debian-6.1, recorded by `v4l2-unplug run`
and `run --race --repeat 3`), and the recorded debug boot of the injected
use-after-free for a failing scenario.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.host.report import html, reproducer
from harness.host.report.compare import compare
from harness.host.report.timeline import Source, race_events, scenario_events
from harness.pure.scenarios.attribution import attribute
from tests.unit.recorded_boot import ROOT, UAF_CONSOLE

RECORDED = ROOT / "tests/data/reports/vimc-debian-6.1"
RECORDED_AT = "/tmp/face-report-vm"  # where the recorded run wrote its report
SCREENSHOTS = ROOT / "reports/test-report-page"
UAF_SCENARIO = "video.raw_capture_0-opened--unbind"
NULL_DEREF = "BUG:null-ptr-deref:subdev_open"


def recorded(tmp: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The recorded matrix and race series, copied to `tmp` with their paths there."""
    shutil.copytree(RECORDED, tmp, dirs_exist_ok=True)
    for path in tmp.rglob("results.json"):
        path.write_text(path.read_text().replace(RECORDED_AT, str(tmp)))
    return (json.loads((tmp / "matrix/results.json").read_text()),
            json.loads((tmp / "race/results.json").read_text()))


def uaf_scenario() -> dict[str, Any]:
    """The injected use-after-free's scenario as results.json holds it, on the
    recorded console's clock (its markers are at 19.383825, 19.392360, 19.543459)."""
    findings = [f.to_dict() for owner, f in attribute(UAF_CONSOLE.read_text())
                if owner == UAF_SCENARIO]
    return {"name": UAF_SCENARIO, "verdict": "fail", "reason": findings[0]["title"], "boot": 1,
            "console": str(UAF_CONSOLE),
            "kernel_times": {"begin": 19.383825, "disrupt": 19.392360, "end": 19.543459},
            "contracts": [], "findings": findings,
            "steps": [{"op": "unbind", "target": "vimc.0", "seconds": 0.0981, "result": "ok",
                       "at": 19.3925}],
            "blocked_calls": []}


def run_doc(*scenarios: dict[str, Any], flavour: str = "debug") -> dict[str, Any]:
    return {"schema": 1, "tool": "v4l2-unplug", "driver": "vimc",
            "kernel": {"flavour": flavour, "release": "6.1.192", "image": "/cache/vmlinux"},
            "started": "2026-12-06T00:00:00Z", "duration_s": 30.0,
            "boots": [{"dir": str(UAF_CONSOLE.parent), "outcome": "done", "message": "",
                       "boot_seconds": 14.2}],
            "summary": {"pass": 0, "fail": len(scenarios)}, "boot_findings": [],
            "scenarios": list(scenarios)}


def test_the_recorded_run_is_what_the_schemas_describe(tmp_path: Path) -> None:
    from harness.host.report import schema

    matrix, series = recorded(tmp_path)
    schema.validate(matrix)
    schema.validate(series)
    race = json.loads((Path(series["races"][0]["dir"]) / "results.json").read_text())
    schema.validate(race)
    assert race["stats"]["planned_duration"] == 20.0
    step = matrix["scenarios"][0]["steps"][0]
    assert matrix["scenarios"][0]["kernel_times"]["disrupt"] < step["at"]


# --- how to run a finding again


def test_a_scenario_runs_again_alone_on_the_same_kernel() -> None:
    doc = run_doc()
    assert reproducer.scenario_command(doc, UAF_SCENARIO) == (
        f"v4l2-unplug run --driver vimc --kernel debug --scenario {UAF_SCENARIO}")
    board = {**doc, "kernel": {"flavour": "board", "release": "6.1", "image": "ssh://root@b"}}
    assert "--target ssh://root@b --scenario" in reproducer.scenario_command(board, "x")
    path = {**doc, "kernel": {"flavour": "tree", "release": "6.1", "image": "/my dir/bzImage",
                              "modules": "/cache/mods"}}
    assert "--kernel path --kernel-image '/my dir/bzImage' --modules /cache/mods --scenario" in (
        reproducer.scenario_command(path, "x"))


def test_a_race_runs_again_with_its_seed_and_the_duration_it_was_given() -> None:
    stats = {"seed": 7, "mode": "rmmod", "kinds": ["video"], "duration": 0.3,
             "planned_duration": 120.0, "workers": [{"worker": 0}, {"worker": 1}]}
    doc = {**run_doc(flavour="debian"), "mode": "race", "stats": stats}
    assert reproducer.race_command(doc) == (
        "v4l2-unplug run --driver vimc --kernel debian --race --seed 7 --duration 120 "
        "--workers 2 --race-mode rmmod --race-nodes video")
    # an agent that did not send its plan: the default, the race stops at its report anyway
    old = {**doc, "stats": {"seed": 3, "duration": 0.3, "mode": "unbind",
                            "kinds": ["video", "media", "subdev"], "workers": [{}, {}, {}]}}
    assert reproducer.race_command(old) == (
        "v4l2-unplug run --driver vimc --kernel debian --race --seed 3 --duration 60")
    assert reproducer.race_command({**doc, "stats": {"error": "no vimc"}}) is None


# --- the agent against the kernel


def test_a_scenario_s_steps_stand_between_the_kernel_s_lines() -> None:
    events = scenario_events(uaf_scenario())
    order = [(e.source, e.text.split(":")[0]) for e in events]
    assert order[:3] == [(Source.KERNEL, "v4l2-unplug"), (Source.KERNEL, "v4l2-unplug"),
                         (Source.AGENT, "unbind vimc.0")]
    # the report came while the unbind ran, before the scenario's end marker
    report = next(e for e in events if e.signature)
    assert report.signature == "KASAN:use-after-free:media_gobj_destroy"
    assert 19.3925 < report.at < 19.543459 and events[-1].text.endswith("scenario ends")


def test_a_race_shows_the_cycles_under_way_at_its_report(tmp_path: Path) -> None:
    _, series = recorded(tmp_path)
    race = json.loads((Path(series["races"][0]["dir"]) / "results.json").read_text())
    events = race_events(race)
    assert events[0].source == Source.KERNEL and "race begins" in events[0].text
    cycles = [e for e in events if e.text.startswith("cycle ")]
    report = next(e for e in events if e.signature == NULL_DEREF)
    assert cycles and all(c.at <= report.at for c in cycles)


# --- the page


def test_findings_come_first_with_the_report_marked_in_its_console(tmp_path: Path) -> None:
    page = html.run_page(run_doc(uaf_scenario()), tmp_path)
    assert page.index('id="findings"') < page.index('id="charts"') < page.index(">Scenarios<")
    # the report's header line, most marked; its guilty frame marked where it is named
    head = re.search(r'<span class="l hl head">.*?</span></span>|<span class="l hl head">.*?\n',
                     page)
    assert head and "BUG: KASAN: use-after-free in __list_del_entry_valid" in head.group(0)
    assert '<b class="guilty">media_gobj_destroy</b>' in page
    assert page.count('class="l hl"') > 50  # the rest of the report's lines
    assert (f'<code class="cmd">v4l2-unplug run --driver vimc --kernel debug --scenario '
            f"{UAF_SCENARIO}</code>") in page
    assert '<td class="agent">unbind vimc.0: ok after 98.1 ms</td>' in page


def test_the_charts_are_svg_inside_the_page(tmp_path: Path) -> None:
    matrix, series = recorded(tmp_path)
    page = html.run_page(matrix, tmp_path, [series])
    charts = re.findall(r'<svg[^>]*id="chart-([a-z-]+)"', page)
    assert charts == ["wake-latency", "boot-timeline", "race-rates"]
    # a bar of the timeline names its scenario when hovered
    assert re.search(r'<g id="span-0"><title>[^<]+: pass, [0-9.]+ s \(boot \d\)</title>', page)
    for needle in ("<script", "<link", "src=", "@import", "url(http"):
        assert needle not in page
    # the race's finding, with the command that replays its seed
    assert NULL_DEREF in page and "--race --seed" in page
    # every link within the page lands (a finding's races, a scenario's findings)
    ids = set(re.findall(r' id="([^"]+)"', page))
    inner = re.findall(r'<a href="#([^"]+)"', page)
    assert inner and [i for i in inner if i not in ids] == []


def test_a_race_series_page_reads_each_race(tmp_path: Path) -> None:
    _, series = recorded(tmp_path)
    page = html.run_page(series, tmp_path / "race")
    assert page.count('class="finding card"') == 1  # one signature, seen in every race
    assert f"in {len(series['races'])} places" in page
    assert 'id="chart-race-rates"' in page


def test_the_validate_page_charts_both_sides(tmp_path: Path) -> None:
    from tests.unit.test_report_validate import bad, good, vdoc

    c = compare([[good()]], [[bad()]])
    page = html.validate_page(vdoc(c, tmp_path), c, tmp_path)
    assert 'id="chart-baseline-vs-patched"' in page


# --- in a real browser

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                                 "(pip install -e '.[test]')")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install "
                    "chromium)")
def test_the_page_renders_its_findings_and_charts_in_chromium(tmp_path: Path) -> None:
    from PIL import Image

    matrix, series = recorded(tmp_path)
    path = tmp_path / "report.html"
    path.write_text(html.run_page(matrix, tmp_path, [series]))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "report.png"
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: errors.append(f"fetched {r.url}")
                if not r.url.startswith("file:") else None)
        page.goto(path.as_uri())
        # every chart drawn at a readable size, with its marks in it
        charts = page.eval_on_selector_all(
            "svg.chart", "els => els.map(e => ({id: e.id, w: e.getBoundingClientRect().width,"
            " h: e.getBoundingClientRect().height, marks: e.querySelectorAll('path, use')"
            ".length}))")
        assert [c["id"] for c in charts] == ["chart-wake-latency", "chart-boot-timeline",
                                             "chart-race-rates"]
        for c in charts:
            assert c["w"] > 600 and c["h"] > 100 and c["marks"] > 10, c
        # the finding is on screen first, and its command is copied whole by one click
        card = page.locator(".finding.card").first
        assert card.is_visible() and "subdev_open" in card.locator("h3").inner_text()
        top = page.locator("#findings").bounding_box()
        glance = page.locator("#charts").bounding_box()
        assert top and glance and top["y"] < glance["y"]
        command = card.locator("code.cmd").first
        command.click()
        assert page.evaluate("getSelection().toString()") == command.inner_text()
        assert page.locator(".excerpt .hl.head").first.is_visible()
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert errors == []
    (SCREENSHOTS / "report.html").write_text(path.read_text())
    with Image.open(shot) as image:
        width, height = image.size
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert width == 1400 and height > 2000
    assert colours is None or len(colours) > 50  # not a blank page


def test_charts_draw_what_did_not_happen() -> None:
    """A call still blocked at the bound, a boot a scenario crashed, a signature not
    seen: each drawn as such, not left out."""
    from harness.host.report import charts

    wake = charts.wake_latency([charts.Wake("a", "VIDIOC_DQBUF", None, "still blocked"),
                                charts.Wake("b", "poll", 0.02, "ok")], 5.0)
    assert "still blocked at the bound" in wake and "20.0 ms ok" in wake
    lane = charts.Lane(1, "crashed", 9.0, [charts.Span("x", 20.0, None, "fail")], [20.4])
    timeline = charts.boot_timeline([lane, charts.Lane(2, "done", 9.5)])
    assert "crashed" in timeline and "x: fail, never ended (boot 1)" in timeline
    rates = charts.race_rates([charts.Rate("BUG:null-ptr-deref:subdev_open", 0, 0.0, 0.0, 61.5)],
                              1000, 0.95, 60)
    assert "not seen: &lt; 61.5" in rates or "not seen: < 61.5" in rates
