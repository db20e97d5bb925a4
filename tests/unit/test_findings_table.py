"""The survey's findings table over recorded results (tests/data/survey/README.md):
one row per signature, the first sighting's reproducer, and reproducers that
`v4l2-unplug` parses back into the run that found them."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from harness.host.cli import build_parser
from harness.host.report.findings_table import (
    RaceAsked,
    Row,
    findings,
    matrix_rows,
    merge,
    race_command,
    race_rows,
    render,
    shortfalls,
)

DATA = Path(__file__).parent.parent / "data" / "survey"


def load(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


RACE = load("race-seed7-debug-sid.json")
VIMC = load("matrix-vimc-debug-sid.json")
RCAR = load("matrix-rcar-vin-debian-arm64.json")
ASKED = RaceAsked(7, 120.0)
REPRODUCE = "v4l2-unplug run --driver vimc --kernel debug-sid --race --seed 7 --duration 120"


def parsed(command: str) -> Any:
    """The argparse namespace `v4l2-unplug` makes of a pasted reproducer."""
    words = shlex.split(command)
    assert words[0] == "v4l2-unplug"
    return build_parser().parse_args(words[1:])


def test_the_race_finds_subdev_open_with_its_seed_and_cycle() -> None:
    rows = findings(VIMC, [(RACE, ASKED)])
    assert [(r.signature, r.found_by) for r in rows] == [
        ("BUG:null-ptr-deref:subdev_open", "race seed 7, cycle 1")]
    assert rows[0].title == "general protection fault in subdev_open"
    assert rows[0].reproduce == REPRODUCE


def test_a_race_reproducer_parses_back_into_the_same_race() -> None:
    args = parsed(race_rows(RACE, ASKED)[0].reproduce)
    assert (args.command, args.race, args.kernel, args.seed, args.duration, args.workers,
            args.race_mode, args.race_nodes, args.driver) == (
        "run", True, "debug-sid", 7, 120.0, 3, "unbind", None, "vimc")


def test_a_race_reproducer_names_every_setting_off_the_defaults() -> None:
    stats = {**RACE["stats"], "seed": 3, "planned_duration": 30.0, "mode": "rmmod",
             "kinds": ["video", "media"], "workers": RACE["stats"]["workers"][:1]}
    args = parsed(race_command({**RACE, "driver": "rcar-vin", "stats": stats}))
    assert (args.driver, args.seed, args.race_mode, args.race_nodes, args.workers,
            args.duration) == ("rcar-vin", 3, "rmmod", ["video", "media"], 1, 30.0)


def test_a_race_that_could_not_start_reproduces_with_the_seed_it_was_asked() -> None:
    # The guest could not load vimc: no counts, no seed in the stats, yet the
    # RCU stalls of a starved host are kernel reports of that boot.
    doc = {**RACE, "stats": {"error": "HarnessError: modprobe vimc did not return within 60 s"}}
    rows = race_rows(doc, RaceAsked(7, 30.0))
    assert {r.found_by for r in rows} == {"race seed 7"}
    assert rows[0].reproduce == REPRODUCE.replace("120", "30")
    assert shortfalls(VIMC, [doc]) == [
        "race: could not run: HarnessError: modprobe vimc did not return within 60 s"]


def test_a_scenario_finding_reproduces_with_that_scenario_alone() -> None:
    rows = matrix_rows(RCAR)
    first = rows[0]
    assert first.reproduce == ("v4l2-unplug run --driver rcar-vin --kernel debian-arm64 "
                               "--scenario video.vin0_output-opened--unbind")
    args = parsed(first.reproduce)
    assert (args.driver, args.kernel, args.scenario, args.race) == (
        "rcar-vin", "debian-arm64", ["video.vin0_output-opened--unbind"], False)


def test_one_row_per_signature_counting_the_other_scenarios() -> None:
    rows = findings(RCAR)
    signatures = [r.signature for r in rows]
    assert len(signatures) == len(set(signatures))
    listed = next(r for r in rows if r.signature == "LIST:corrupted-list:media_gobj_destroy")
    assert listed.found_by == "scenario video.vin0_output-opened--unbind"
    assert listed.also == ("scenario video.vin0_output-blocked_dqbuf--unbind",)
    assert listed.seen().endswith("(+1 more)")
    # Every kernel signature of every failed or hung scenario has its row.
    seen = {f["signature"] for s in RCAR["scenarios"] for f in s["findings"]}
    assert seen <= set(signatures)


def test_a_broken_contract_without_a_kernel_report_is_a_row() -> None:
    row = next(r for r in findings(RCAR) if r.signature.startswith("contract:"))
    assert row.signature == "contract:rebind-restores"
    assert row.found_by == "scenario idle--unbind_bind.vin0"
    assert "lacks VIN0 output" in row.title


def test_the_matrix_sighting_gives_the_reproducer_when_the_race_saw_it_too() -> None:
    race = {**RACE, "findings": [{**RACE["findings"][0],
                                  "signature": "BUG:paging-request:v4l2_ioctl"}]}
    rows = findings(RCAR, [(race, ASKED)])
    row = next(r for r in rows if r.signature == "BUG:paging-request:v4l2_ioctl")
    assert row.reproduce.endswith("--scenario video.vin0_output-opened--unbind.vin0")
    assert row.also == ("race seed 7, cycle 1",)


def test_passing_matrix_and_clean_race_make_no_row() -> None:
    clean = {**RACE, "findings": [], "verdict": "pass", "reason": "",
             "stats": {**RACE["stats"], "first_report": None}}
    assert findings(VIMC, [(clean, ASKED)]) == []
    assert render([]) == "No findings."


def test_unsigned_rows_stay_apart() -> None:
    hang = Row("hang: guest hang", "-", "scenario a", "v4l2-unplug run --scenario a")
    other = Row("hang: guest hang", "-", "scenario b", "v4l2-unplug run --scenario b")
    assert merge([hang, other]) == [hang, other]


def test_rendered_table_keeps_every_reproducer_whole_on_its_own_line() -> None:
    rows = findings(RCAR, [(RACE, ASKED)])
    text = render(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["#", "signature", "title"]
    for n, row in enumerate(rows, start=1):
        assert f"reproduce: {row.reproduce}" in [line.strip() for line in lines]
        assert any(line.split()[:2] == [str(n), row.signature] and line.endswith(row.title)
                   for line in lines)
    assert len(lines) == 1 + 3 * len(rows)


def test_what_the_runs_could_not_do() -> None:
    assert shortfalls(VIMC, [RACE]) == []
    assert shortfalls(RCAR, [RACE]) == []  # failures and hangs are findings, not shortfalls
    errored = {**VIMC, "scenarios": [{**VIMC["scenarios"][0], "verdict": "error",
                                      "reason": "stage not reached"}, *VIMC["scenarios"][1:]]}
    idle = {**RACE, "findings": [], "verdict": "error",
            "reason": "nothing exercised: the disruptor made no cycle"}
    assert shortfalls(errored, [idle]) == [
        f"scenario {VIMC['scenarios'][0]['name']}: error: stage not reached",
        "race seed 7: nothing exercised: the disruptor made no cycle"]
    assert shortfalls({**VIMC, "scenarios": []}) == ["the matrix ran no scenario"]
