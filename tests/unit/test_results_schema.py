"""The JSON Schemas of results.json (scenario run and race) and validate.json, checked
against what the project's own writers produce from recorded kernel consoles.

No VM boots: a stand-in for QemuTarget replays recorded consoles
(tests/data/consoles, tests/data/kmsg/scenarios) with the agent's events, so
the real runner (attribution, verdicts, markers), results.write(),
race_doc() and validate() build the documents that are checked.
"""

from __future__ import annotations

import copy
import json
import signal
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from harness.host.interrupts import Interrupted
from harness.host.kernels.kernel import Kernel
from harness.host.kernels.tree import KERNEL_TREE_FILES, State
from harness.host.kmsg_cli import main as kmsg_main
from harness.host.race_series import RacePlan
from harness.host.report import compare, results
from harness.host.report.schema import (
    KINDS,
    SchemaViolation,
    format_path,
    kind_of,
    schema,
    validate,
)
from harness.host.runner import run_race, run_scenarios
from harness.host.targets.run import Deadlines, GuestRun, Outcome
from harness.host.validate import validation
from harness.pure.kmsg.report import parse_log
from harness.pure.profiles import get_profile
from harness.pure.scenarios.contracts import CONTRACTS, STALE_IOCTL_ERRNOS, ContractResult
from harness.pure.scenarios.matrix import build_matrix, select
from harness.pure.scenarios.model import After, Disruption, NodeKind, Scenario, Stage
from harness.pure.scenarios.verdicts import PatchResult, SignatureStatus, Verdict
from harness.target.scenarios.disrupt import Step
from harness.target.scenarios.nodes import errno_name
from tests.unit.recorded_boot import UAF_CONSOLE, clean_boot, marker

ROOT = Path(__file__).resolve().parents[2]
RACE_CONSOLE = ROOT / "tests/data/kmsg/scenarios/race_subdev_open_null_deref_debian.log"
PATCH = ROOT / "vm/patches/vimc-capture-free-at-unregister.patch"

OPENED = "video.raw_capture_0-opened--unbind"  # the recorded console's KASAN report
BLOCKED = "video.raw_capture_0-blocked_dqbuf--unbind"
ALL_NODES = "all_nodes_open_streaming--unbind_rmmod"
TOPOLOGY = "media-in_g_topology--unbind"



# --- what the agent reports, built with the executor's own classes


def agent_record(s: Scenario, status: str = "done") -> dict[str, Any]:
    """A scenario-result record shaped as harness.target.scenarios.executor.execute() makes it."""
    if status == "error":
        return {"name": s.name, "status": "error", "contracts": [],
                "error": f"StageNotReached: {s.holds[0].label} returned ok at once",
                "traceback": "Traceback (most recent call last):\n  ...\nStageNotReached\n"}
    steps = [Step("unbind", "vimc.0", 0.0, 0.0132, "ok")]
    if s.disruption is Disruption.UNBIND_RMMOD:
        steps.append(Step("rmmod", "vimc", 0.0, 0.0411, "ok"))
    contracts = [ContractResult("disruption-completes", True, "every step returned",
                                measured={st.op: st.seconds for st in steps})]
    calls = []
    for h in s.holds:
        if h.stage.blocking:
            calls.append({"node": h.label, "what": "VIDIOC_DQBUF", "loop": False,
                          "returned": True, "latency": 0.0138, "result": "ENODEV", "calls": 1,
                          "errnos": {"ENODEV": 1}})
            contracts.append(ContractResult(
                "blocked-call-returns", True, "VIDIOC_DQBUF returned ENODEV after 0.0138 s",
                subject=h.label, measured={"latency": 0.0138, "result": "ENODEV"}))
        elif h.stage.looping:
            calls.append({"node": h.label, "what": "MEDIA_IOC_G_TOPOLOGY", "loop": True,
                          "returned": True, "latency": 0.0201, "result": "EIO", "calls": 812,
                          "errnos": {"ok": 811, "EIO": 1}})
    after: dict[str, dict[str, Any]] = {}
    for h in s.holds:
        seen: dict[str, Any] = {}
        if After.STALE_IOCTLS in s.after:
            name = errno_name(min(STALE_IOCTL_ERRNOS[h.kind]))
            seen["stale_ioctls"] = {"QUERYCAP": name, "G_FMT": name}
            contracts.append(ContractResult("stale-ioctl-errno", True, f"all failed with {name}",
                                            subject=h.label, measured=seen["stale_ioctls"]))
        if After.TOUCH_MMAP in s.after and h.stage.maps_buffers:
            seen["touch_mmap"] = "ok"
            contracts.append(ContractResult("mmap-survives", True, "reading the mappings: ok",
                                            subject=h.label))
        if After.POLL in s.after:
            seen["poll"] = ["POLLERR", "POLLHUP"]
        if After.MUNMAP in s.after:
            seen["munmap"] = "ok"
        if After.CLOSE in s.after:
            seen["close"] = "ok"
            contracts.append(ContractResult("close-succeeds", True, "close: ok", subject=h.label))
        after[h.label] = seen
    if s.disruption is Disruption.UNBIND_RMMOD:
        contracts.append(ContractResult("rmmod-refuses-or-completes", True,
                                        "rmmod while open: ok", measured={"result": "ok"}))
    contracts.append(ContractResult("nothing-left-behind", True,
                                    "no node, media device or module reference left",
                                    measured={"refcnt": 0}))
    contracts.append(ContractResult("driver-recovers", True, "11 nodes back; reopened all",
                                    measured={"nodes": 11}))
    return {"name": s.name, "contracts": [c.to_dict() for c in contracts],
            "steps": [st.to_dict() for st in steps], "calls": calls, "after": after,
            "taint_before": 0, "taint_after": 0, "status": status}


def race_stats(seed: int, console: str, cycles: int, duration: float) -> dict[str, Any]:
    """The race task's result, shaped as harness.target.scenarios.race.race() returns it; the
    first report is the recorded console's."""
    iterations = [4180, 3977, 4302]
    workers: list[dict[str, Any]] = [
        {"worker": i, "iterations": n, "per_second": round(n / duration, 1),
         "results": {"open:ok": n - 40, "open:ENODEV": 40, "QUERYCAP:ok": n // 2}}
        for i, n in enumerate(iterations)]
    first = None
    found = parse_log(console)
    if found:
        report = found[0]
        first = {"kernel_time": report.timestamp, "message": report.text.splitlines()[0],
                 "iterations": iterations, "cycle": cycles}
        # the worker whose open() oopsed was killed with it and never reported
        workers[1] = {"worker": 1, "iterations": iterations[1], "results": {},
                      "ended": "died (exit -9)", "per_second": round(iterations[1] / duration, 1)}
    return {"seed": seed, "mode": "unbind", "kinds": ["video", "media", "subdev"],
            "duration": duration, "cycles": cycles,
            "cycles_per_second": round(cycles / duration, 2),
            "steps": {"unbind:ok": cycles, "bind:ok": cycles - 1},
            "workers": workers, "stuck_disruption": None, "stuck_workers": [],
            "first_report": first, "stopped_early": first is not None,
            "cycle_starts": [round(i * duration / cycles, 3) for i in range(cycles)]}


class RecordedGuest:
    """Stands in for the QEMU target of a kernel: each boot writes a recorded console into
    the boot directory and replays the agent's events for the job it was given.

    Scenario jobs, on a buggy kernel: boot 1 runs OPENED (the recorded KASAN
    report) and stops, as the agent does after a taint; the next boot starts
    with the recorded race oops (a report before any scenario), runs BLOCKED
    (passes), ALL_NODES (an error in the agent) and hangs in TOPOLOGY. On a
    clean kernel every scenario passes in one boot.
    """

    def __init__(self, kernel: Kernel, buggy: bool = True, race_error: bool = False):
        self.kernel = kernel
        self.buggy = buggy
        self.race_error = race_error
        self.boots = 0

    def run(self, tasks: list[dict[str, Any]], run_dir: Path,
            deadlines: Deadlines | None = None,
            on_event: Callable[[dict[str, Any], GuestRun], None] | None = None) -> GuestRun:
        (task,) = tasks
        self.boots += 1
        run_dir.mkdir(parents=True, exist_ok=True)
        result = GuestRun(run_dir=run_dir, boot_seconds=1.9)
        if task["task"] == "race":
            console, events = self._race(task["args"])
        else:
            names = [d["name"] for d in task["args"]["scenarios"]]
            console, events = self._scenarios(names)
        result.console_path.write_text("\n".join(console) + "\n")
        (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
        result.outcome = Outcome.DONE if events[-1]["event"] == "done" else Outcome.HANG
        if result.outcome is Outcome.HANG:
            result.message = "the agent sent nothing for 180 s"
        for event in events:
            result.events.append(event)
            if on_event is not None:
                on_event(event, result)
        return result

    def _scenarios(self, names: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
        by_name = {s.name: s for s in build_matrix(get_profile("vimc"))}
        events: list[dict[str, Any]] = [{"event": "ready"}]
        if self.buggy and names[0] == OPENED:
            events += [{"event": "scenario-start", "scenario": OPENED},
                       {"event": "scenario-result", "scenario": OPENED,
                        "record": agent_record(by_name[OPENED])},
                       {"event": "result", "data": {"completed": 1, "stopped": "taint"}},
                       {"event": "done"}]
            return UAF_CONSOLE.read_text().splitlines(), events
        console = RACE_CONSOLE.read_text().splitlines() if self.buggy else clean_boot()
        t = 30.0
        for name in names:
            t += 1.0
            console.append(marker(t, f"scenario {name} begin"))
            events.append({"event": "scenario-start", "scenario": name})
            if self.buggy and name == TOPOLOGY:
                return console, events  # no result, no done: the boot hangs here
            console += [marker(t + 0.1, f"scenario {name} disrupt"),
                        marker(t + 0.4, f"scenario {name} end")]
            status = "error" if self.buggy and name == ALL_NODES else "done"
            events.append({"event": "scenario-result", "scenario": name,
                           "record": agent_record(by_name[name], status)})
        events += [{"event": "result", "data": {"completed": len(names), "stopped": ""}},
                   {"event": "done"}]
        return console, events

    def _race(self, args: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
        events: list[dict[str, Any]] = [{"event": "ready"}]
        if self.race_error:
            console = clean_boot()
            events.append({"event": "error", "task": "race",
                           "message": "RuntimeError: /dev/media0 lacks Sensor A",
                           "traceback": "Traceback ..."})
        else:
            if self.buggy:
                console = RACE_CONSOLE.read_text().splitlines()
            else:
                console = [*clean_boot(), marker(7.2, f"race begin seed={args['seed']} "
                                                      f"workers={args['workers']} mode=unbind")]
            cycles = 3 if self.buggy else 412
            duration = 0.31 if self.buggy else float(args["duration"])
            events.append({"event": "result", "task": "race",
                           "data": race_stats(args["seed"], "\n".join(console), cycles,
                                              duration)})
        events.append({"event": "done"})
        return console, events


def kernel(tmp: Path, flavour: str = "debug") -> Kernel:
    return Kernel(flavour, "6.1.192", tmp / "kernel" / "bzImage", tmp / "kernel" / "modules")


def written(path: Path) -> dict[str, Any]:
    """A document as a consumer reads it back."""
    return json.loads(path.read_text())


# --- fixtures: documents the writers wrote


@pytest.fixture
def run_doc(tmp_path: Path) -> dict[str, Any]:
    chosen = select(build_matrix(get_profile("vimc")), [OPENED, BLOCKED, ALL_NODES, TOPOLOGY])
    report = tmp_path / "report"
    result = run_scenarios(RecordedGuest(kernel(tmp_path)), "vimc", chosen, report)
    results.write(result, kernel(tmp_path), "vimc", report, 1_763_769_600.0)
    return written(report / "results.json")


def race_doc(tmp: Path, **guest: Any) -> dict[str, Any]:
    """As `v4l2-unplug run --race` writes it (harness/host/commands/run.py)."""
    report = tmp / "race"
    race = run_race(RecordedGuest(kernel(tmp), **guest), "vimc", 30.0, 7, 3,
                    "unbind", report)
    doc = results.race_with_statistics(race, kernel(tmp), "vimc", 1_763_769_600.0)
    report.mkdir(parents=True, exist_ok=True)
    (report / "results.json").write_text(json.dumps(doc, indent=1, default=str))
    return written(report / "results.json")


def fake_kernels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, buggy: str = "head") -> None:
    """validate's builds and VMs replaced: each side's kernel is a recorded guest,
    the `buggy` side's with the recorded KASAN report and race oops."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bad: list[Kernel] = []

    def build(sides: dict[str, validation.Side], driver: str = "vimc") -> None:
        for name, side in sides.items():
            state = State(tmp_path / "trees" / f"{name}-state", reused=name == "base",
                          seconds=0.0 if name == "base" else 61.4)
            (state.out / "include/config").mkdir(parents=True)
            (state.out / "include/config/kernel.release").write_text("6.1.192\n")
            (state.out / ".config").write_text("CONFIG_KASAN=y\n")
            side.state = state
            side.kernel = Kernel("tree", state.release, state.out / "arch/x86/boot/bzImage",
                                 state.dir / "modules")
            if name == buggy:
                bad.append(side.kernel)

    monkeypatch.setattr(validation, "build", build)
    monkeypatch.setattr("harness.host.targets.emulated.provision",
                        lambda k, profile: (RecordedGuest(k, buggy=any(k is p for p in bad)), k))


def linux_tree(tmp_path: Path) -> Path:
    linux = tmp_path / "linux"
    for name in KERNEL_TREE_FILES:
        (linux / name).parent.mkdir(parents=True, exist_ok=True)
        (linux / name).write_text("")
    return linux


@pytest.fixture
def validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`validate --patch PATCH --scenario ... --race` with the builds and the VMs
    replaced; everything else (plan, run_side, runner, writers, history) is real."""
    fake_kernels(tmp_path, monkeypatch)
    opts = validation.Options(tree=linux_tree(tmp_path), patches=[PATCH],
                              scenarios=[OPENED, BLOCKED], race=RacePlan(30.0, 7, 3, "unbind"))
    out = tmp_path / "validate"
    validation.validate(opts, out)
    return out


def test_a_budget_races_on_until_decided_each_look_stricter(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The baseline's race oopses at cycle 3, the patched one races 412 clean cycles.
    Look 1 (alpha 0.025): fell tenfold per cycle has P = (3 / (3 + 41.2))^1 = 0.068,
    undecided; look 2 (alpha 0.05/6): per cycle (6 / (6 + 82.4))^2 = 0.0046, but per
    second not yet; look 3 (alpha 0.05/12): both: fixed, and it stops."""
    fake_kernels(tmp_path, monkeypatch, buggy="base")
    opts = validation.Options(tree=linux_tree(tmp_path), patches=[PATCH],
                              race=RacePlan(30.0, 7, 3, "unbind"), budget=600.0)
    doc = validation.validate(opts, tmp_path / "validate")
    validate(written(tmp_path / "validate/validate.json"), "validate")
    assert doc["budget"] == {"budget_s": 600.0, "rounds": 3, "looks": 3}
    assert doc["rounds"] == 3 and doc["alpha"] == pytest.approx(0.05 / 12)
    sig = next(s for s in doc["signatures"] if s["signature"] == "BUG:null-ptr-deref:subdev_open")
    assert sig["status"] == "fixed" and (sig["base"]["exposure"], sig["head"]["exposure"]) == (
        9, 1236)
    by = sig["tests"]["by"]
    assert by["cycles"]["fell_by_factor"] == pytest.approx((9 / (9 + 123.6)) ** 3)
    assert sig["tests"]["fell_by_factor"] == max(t["fell_by_factor"] for t in by.values())
    assert [r["seed"] for r in doc["sides"]["head"]["runs"]] == [7, 8, 9]


def test_a_budget_spent_leaves_it_inconclusive_with_what_would_decide_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_kernels(tmp_path, monkeypatch, buggy="base")
    opts = validation.Options(tree=linux_tree(tmp_path), patches=[PATCH],
                              race=RacePlan(30.0, 7, 3, "unbind"), budget=0.001)
    doc = validation.validate(opts, tmp_path / "validate")
    assert doc["budget"]["rounds"] == 1 and doc["result"] == "inconclusive"
    assert doc["exit_status"] == 4
    sig = next(s for s in doc["signatures"] if s["signature"] == "BUG:null-ptr-deref:subdev_open")
    assert sig["needed"]["side"] == "head" and sig["needed"]["exposure"] > 0


# --- the schemas themselves


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_schema_is_a_valid_draft_2020_12_schema(kind: str) -> None:
    s = schema(kind)
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(s)


def test_definitions_shared_between_schemas_are_the_same() -> None:
    # Each file stands alone for consumers, so shared parts are copies: keep them equal.
    run, race, val = schema("results"), schema("race"), schema("validate")
    for name in ("finding", "kernel", "step", "boot_outcome", "utc_time"):
        assert race["$defs"][name] == run["$defs"][name], name
    for name in ("verdict", "utc_time", "finding"):
        assert val["$defs"][name] == run["$defs"][name], name


def test_the_schemas_enums_are_the_codes_values() -> None:
    d = schema("results")["$defs"]
    data = d["scenario_data"]["properties"]
    hold = data["holds"]["items"]["properties"]
    assert hold["kind"]["enum"] == [k.value for k in NodeKind]
    assert hold["stage"]["enum"] == [s.value for s in Stage]
    assert data["disruption"]["enum"] == [x.value for x in Disruption]
    assert data["after"]["items"]["enum"] == [a.value for a in After]
    assert d["contract"]["properties"]["contract"]["enum"] == list(CONTRACTS)
    assert d["verdict"]["enum"] == [v.value for v in Verdict]
    assert schema("results")["properties"]["summary"]["required"] == [v.value for v in Verdict]
    v = schema("validate")
    assert v["$defs"]["status"]["enum"] == [s.value for s in SignatureStatus]
    assert v["$defs"]["status"]["enum"] == list(compare.STATUSES)
    assert v["properties"]["result"]["enum"] == [r.value for r in PatchResult]
    assert set(v["properties"]["result"]["enum"]) == set(compare.EXIT)
    assert set(v["properties"]["exit_status"]["enum"]) == set(compare.EXIT.values())
    assert v["$defs"]["side"]["properties"]["label"]["enum"] == [
        compare.SIDE_LABELS[s] for s in compare.SIDES]


def test_the_schema_files_ship_with_the_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["harness.host.report"]
    package = ROOT / "harness" / "host" / "report"
    shipped = {p.name for g in globs for p in package.glob(g)}
    assert set(KINDS.values()) <= shipped
    assert "jsonschema" in pyproject["project"]["dependencies"]


# --- what the writers write


def test_a_scenario_runs_results_json_matches_its_schema(run_doc: dict[str, Any]) -> None:
    assert kind_of(run_doc) == "results"
    validate(run_doc, "results")
    # the document exercises what the schema describes
    verdicts = {s["name"]: s["verdict"] for s in run_doc["scenarios"]}
    assert verdicts == {OPENED: "fail", BLOCKED: "pass", ALL_NODES: "error", TOPOLOGY: "hang"}
    opened = run_doc["scenarios"][0]
    assert opened["findings"][0]["signature"] == "KASAN:use-after-free:media_gobj_destroy"
    assert set(opened["kernel_times"]) == {"begin", "disrupt", "end"}
    assert run_doc["boot_findings"][0]["signature"] == "BUG:null-ptr-deref:subdev_open"
    assert [b["outcome"] for b in run_doc["boots"]] == ["done", "hang"]
    blocked = run_doc["scenarios"][1]
    assert blocked["blocked_calls"] and blocked["after"]
    assert all(c["expectation"] and c["source"] for c in blocked["contracts"])


def test_a_kasan_reports_details_reach_results_json(run_doc: dict[str, Any]) -> None:
    (f,) = run_doc["scenarios"][0]["findings"]
    assert f["kind"] == "use-after-free" and f["primary"]
    assert (f["extra"]["access"], f["extra"]["size"]) == ("Read", "8")
    assert (f["extra"]["alloc_frame"], f["extra"]["free_frame"]) == (
        "vimc_capture_add", "vimc_unregister_subdevs")
    assert f["skipped"][0] == {"frame": "__list_del_entry_valid", "rule": "list"}
    assert f["raw"].splitlines()[1].endswith("BUG: KASAN: use-after-free in "
                                             "__list_del_entry_valid+0xe2/0x165")
    validate(run_doc, "results")


def test_kmsg_json_and_results_json_write_a_finding_alike(
        run_doc: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    # the scenario ran in the recorded console's boot: the same report on the same line
    assert kmsg_main([str(UAF_CONSOLE), "--json"]) == 0
    (group,) = json.loads(capsys.readouterr().out)
    assert (group.pop("count"), group.pop("lines")) == (1, [group["line"]])
    (f,) = run_doc["scenarios"][0]["findings"]
    assert list(group.items()) == list(f.items())


def test_a_race_runs_results_json_matches_its_schema(tmp_path: Path) -> None:
    doc = race_doc(tmp_path)
    assert kind_of(doc) == "race"
    validate(doc, "race")
    assert doc["findings"][0]["signature"] == "BUG:null-ptr-deref:subdev_open"
    assert doc["stats"]["first_report"]["message"].startswith("BUG: kernel NULL pointer")


def test_a_race_document_carries_its_exposure_and_rates(tmp_path: Path) -> None:
    doc = race_doc(tmp_path)
    # the recorded report came 7.552667 - 7.241734 s after the race began, in the
    # third of the RecordedGuest's cycles (begun at 0.0, 0.103 and 0.207 s)
    assert doc["exposure"] == {
        "seed": 7, "seconds": 0.311, "cycles": 3, "iterations": 4180 + 3977 + 4302,
        "censored": True,
        "first_hits": [{"signature": "BUG:null-ptr-deref:subdev_open", "seconds": 0.311,
                        "cycle": 3}]}
    rates = doc["rates"]
    assert rates["exposure"]["cycles"] == 3 and rates["unmeasured"] == 0
    (row,) = rates["signatures"]
    assert (row["signature"], row["hits"]) == ("BUG:null-ptr-deref:subdev_open", 1)
    assert row["rate"] == pytest.approx(1000 / 3)
    assert row["low"] < row["rate"] < row["high"]
    e = reject(broken(doc, lambda d: d["exposure"].pop("cycles")), "race")
    assert e.path == "exposure.cycles"
    e = reject(broken(doc, lambda d: d["rates"]["signatures"][0].update(hits=-1)), "race")
    assert e.path == "rates.signatures[0].hits"


def test_a_race_without_counts_has_no_exposure_and_says_so(tmp_path: Path) -> None:
    doc = race_doc(tmp_path, race_error=True)
    validate(doc, "race")
    assert doc["exposure"] is None
    assert doc["rates"]["unmeasured"] == 1 and doc["rates"]["exposure"]["races"] == 0
    assert doc["rates"]["any_report"]["rate"] is None


def series(tmp: Path, monkeypatch: pytest.MonkeyPatch, *extra: str, **guest: Any) -> Path:
    """`run --race --repeat 3` (harness/host/commands/race_repeat.py) on a RecordedGuest."""
    from harness.host.commands import race_repeat
    from harness.host.commands.run import register

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp / "data"))
    k = kernel(tmp, "debian")
    monkeypatch.setattr(race_repeat, "target_from_args", lambda args: (RecordedGuest(k, **guest),
                                                                       k))
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    out = tmp / "series"
    args = parser.parse_args(["run", "--race", "--repeat", "3", "--seed", "7", "--duration",
                              "20", "--report", str(out), *extra])
    assert args.func(args) == (1 if guest.get("buggy", True) else 0)
    return out


def test_a_race_series_writes_each_race_and_the_rates_over_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = series(tmp_path, monkeypatch)
    doc = written(out / "results.json")
    assert kind_of(doc) == "race"
    validate(doc, "race")
    assert doc["repeat"] == 3 and [r["seed"] for r in doc["races"]] == [7, 8, 9]
    for i, r in enumerate(doc["races"], start=1):
        assert r["dir"] == str(out / f"race-{i:02d}") and r["failed"]
        assert r["exposure"]["cycles"] == 3 and r["exposure"]["censored"]
        own = written(out / f"race-{i:02d}" / "results.json")
        validate(own, "race")
        assert own["stats"]["seed"] == r["seed"] and own["exposure"] == r["exposure"]
    (row,) = doc["rates"]["signatures"]
    assert (row["hits"], doc["rates"]["exposure"]["cycles"]) == (3, 9)
    assert row["rate"] == pytest.approx(3 / 9 * 1000)
    printed = capsys.readouterr().out
    assert "BUG:null-ptr-deref:subdev_open: 3 hits in 9 cycles (0.9 s, 3 races): 333 per" in printed
    assert printed.rstrip().endswith("FAIL: 3 of 3 races saw a kernel report, a stuck step, "
                                     "an interrupt or could not run")
    assert (out / "summary.txt").read_text().startswith("seed 7: 3 cycles, 0.3 s")
    e = reject(broken(doc, lambda d: d.pop("rates")), "race")
    assert e.path == "rates"
    e = reject(broken(doc, lambda d: d["races"][1].pop("exposure")), "race")
    assert e.path == "races[1].exposure"


def test_a_clean_series_passes_only_with_the_bound_it_supports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    info = "BUG:null-ptr-deref:media_device_get_info"
    out = series(tmp_path, monkeypatch, "--signature", info, buggy=False)
    doc = written(out / "results.json")
    validate(doc, "race")
    assert doc["rates"]["exposure"]["cycles"] == 3 * 412
    (row,) = doc["rates"]["signatures"]
    assert (row["signature"], row["hits"], row["seen"], row["low"]) == (info, 0, False, 0)
    printed = capsys.readouterr().out.rstrip().splitlines()
    assert (f"{info}: not seen in 1236 cycles (60.0 s, 3 races): rate < 2.98 per 1,000 "
            "cycles, 95%") in printed
    last = printed[-1]
    assert last == ("PASS: any kernel report: not seen in 1236 cycles (60.0 s, 3 races): "
                    "rate < 2.98 per 1,000 cycles, 95%")


@pytest.mark.parametrize("guest", [{"buggy": False}, {"race_error": True}],
                         ids=["clean", "agent-error"])
def test_clean_and_failed_races_match_too(tmp_path: Path, guest: dict[str, Any]) -> None:
    doc = race_doc(tmp_path, **guest)
    validate(doc)
    assert doc["findings"] == []


def test_validate_json_and_every_run_it_wrote_match(validated: Path) -> None:
    doc = written(validated / "validate.json")
    assert kind_of(doc) == "validate"
    validate(doc, "validate")
    assert doc["result"] == "introduced" and doc["exit_status"] == 1
    assert {s["signature"] for s in doc["signatures"]} >= {
        "KASAN:use-after-free:media_gobj_destroy", "BUG:null-ptr-deref:subdev_open"}
    assert doc["sides"]["head"]["patches"][0]["files"]
    kasan = next(s for s in doc["signatures"]
                 if s["signature"] == "KASAN:use-after-free:media_gobj_destroy")
    assert kasan["examples"]["head"]["finding"]["extra"]["alloc_frame"] == "vimc_capture_add"
    runs = sorted(validated.glob("*/*/results.json"))
    assert [p.relative_to(validated).parent.as_posix() for p in runs] == [
        "base/race-01", "base/run-01", "head/race-01", "head/run-01"]
    for path in runs:
        validate(written(path))


# --- and the check fails where it should


def broken(doc: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    edit(doc)
    return doc


def reject(doc: dict[str, Any], kind: str) -> SchemaViolation:
    with pytest.raises(SchemaViolation) as caught:
        validate(doc, kind)
    return caught.value


def test_a_wrong_verdict_is_named(run_doc: dict[str, Any]) -> None:
    e = reject(broken(run_doc, lambda d: d["scenarios"][2].update(verdict="passed")), "results")
    assert e.path == "scenarios[2].verdict"
    assert "'passed' is not one of" in str(e) and "scenarios[2].verdict" in str(e)


def test_a_missing_field_is_named(run_doc: dict[str, Any]) -> None:
    e = reject(broken(run_doc, lambda d: d["scenarios"][0]["findings"][0].pop("signature")),
               "results")
    assert e.path == "scenarios[0].findings[0].signature"
    assert "'signature' is a required property" in str(e)
    e = reject(broken(run_doc, lambda d: d.pop("summary")), "results")
    assert e.path == "summary"


def test_a_missing_contract_source_is_named(run_doc: dict[str, Any]) -> None:
    e = reject(broken(run_doc, lambda d: d["scenarios"][1]["contracts"][0].pop("source")),
               "results")
    assert e.path == "scenarios[1].contracts[0].source"


@pytest.mark.parametrize("edit, path", [
    (lambda d: d.update(duration_s="42"), "duration_s"),
    (lambda d: d["summary"].update(passed=1), "summary"),
    (lambda d: d["boots"][0].update(outcome="panicked"), "boots[0].outcome"),
    (lambda d: d["scenarios"][0]["scenario"]["holds"][0].update(stage="half_open"),
     "scenarios[0].scenario.holds[0].stage"),
    (lambda d: d["scenarios"][1]["after"]["video.raw_capture_0-blocked_dqbuf"].update(
        close=0), 'scenarios[1].after["video.raw_capture_0-blocked_dqbuf"].close'),
    (lambda d: d["scenarios"][0]["findings"][0].update(signature="media_gobj_destroy"),
     "scenarios[0].findings[0].signature"),
    (lambda d: d["scenarios"][0]["findings"][0]["extra"].update(size=8),
     "scenarios[0].findings[0].extra.size"),
    (lambda d: d["scenarios"][0]["findings"][0]["skipped"][0].pop("rule"),
     "scenarios[0].findings[0].skipped[0].rule"),
    (lambda d: d.update(started="yesterday"), "started"),
])
def test_wrong_types_enums_and_fields_are_rejected(run_doc: dict[str, Any],
                                                    edit: Callable[[dict[str, Any]], None],
                                                    path: str) -> None:
    assert reject(broken(run_doc, edit), "results").path == path


def test_unknown_fields_are_allowed_at_the_top_only(run_doc: dict[str, Any]) -> None:
    validate({**run_doc, "added_in_a_later_version": {"x": 1}}, "results")
    e = reject(broken(run_doc, lambda d: d["scenarios"][0].update(latency=1.0)), "results")
    assert e.path == "scenarios[0]" and "'latency' was unexpected" in str(e)


def test_the_first_bad_field_in_the_document_is_named(run_doc: dict[str, Any]) -> None:
    def two(d: dict[str, Any]) -> None:
        d["scenarios"][3]["verdict"] = "stuck"
        d["boots"][1]["boot_seconds"] = "slow"

    e = reject(broken(run_doc, two), "results")
    assert e.path == "boots[1].boot_seconds" and e.others == 1
    assert "(and 1 more problem)" in str(e)


def test_a_race_document_is_checked_as_a_race(tmp_path: Path) -> None:
    doc = race_doc(tmp_path)
    e = reject(broken(doc, lambda d: d["stats"].pop("workers")), "race")
    assert e.path == "stats.workers"
    e = reject(broken(doc, lambda d: d.update(outcome="panic")), "race")
    assert e.path == "outcome"
    # a race document is not a scenario run
    assert reject(doc, "results").path == "boots"


def test_validate_json_is_checked(validated: Path) -> None:
    doc = written(validated / "validate.json")
    e = reject(broken(doc, lambda d: d["signatures"][0].update(status="new")), "validate")
    assert e.path == "signatures[0].status"
    e = reject(broken(doc, lambda d: d["sides"]["head"]["kernel"].pop("state")), "validate")
    assert e.path == "sides.head.kernel.state"
    e = reject(broken(doc, lambda d: d["verdicts"][0]["head"].append("ok")), "validate")
    assert e.path == "verdicts[0].head[1]"


def test_kinds_and_paths() -> None:
    with pytest.raises(ValueError, match="unknown document kind"):
        validate({}, "summary")
    assert kind_of({"command": "validate"}) == "validate" and kind_of([]) == "results"
    assert format_path(()) == ""
    assert format_path(("counts", "still-present")) == "counts.still-present"
    assert format_path(("after", "media-opened", "poll", 0)) == "after.media-opened.poll[0]"
    e = reject({"schema": 1}, "validate")
    assert str(e).startswith("validate document: ")


class InterruptedSecondRace(RecordedGuest):
    """The first race as recorded; SIGINT comes during the second."""

    def run(self, tasks: list[dict[str, Any]], run_dir: Path,
            deadlines: Deadlines | None = None,
            on_event: Callable[[dict[str, Any], GuestRun], None] | None = None) -> GuestRun:
        if self.boots == 0:
            return super().run(tasks, run_dir, deadlines, on_event)
        self.boots += 1
        run_dir.mkdir(parents=True, exist_ok=True)
        result = GuestRun(run_dir=run_dir, boot_seconds=1.9)
        result.console_path.write_text("\n".join(
            [*clean_boot(), marker(7.2, "race begin seed=8 workers=3 mode=unbind")]) + "\n")
        result.events.append({"event": "race-progress", "cycles": 30, "elapsed": 5.1,
                              "iterations": [200, 210, 190]})
        result.end(Outcome.INTERRUPTED, "the harness got SIGINT")
        stop = Interrupted(signal.SIGINT)
        stop.run = result
        raise stop


def test_an_interrupted_series_reports_the_races_so_far(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from harness.host.commands import race_repeat

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    k = kernel(tmp_path, "debian")
    monkeypatch.setattr(race_repeat, "target_from_args",
                        lambda args: (InterruptedSecondRace(k), k))
    import argparse

    from harness.host.commands.run import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    out = tmp_path / "series"
    args = parser.parse_args(["run", "--race", "--repeat", "3", "--seed", "7",
                              "--report", str(out)])
    assert args.func(args) == 130
    doc = written(out / "results.json")
    validate(doc, "race")
    # the third race never began; the second's counts are only the last progress event's
    assert [r["seed"] for r in doc["races"]] == [7, 8]
    assert doc["races"][1]["exposure"] is None and doc["races"][1]["outcome"] == "interrupted"
    assert doc["rates"]["exposure"]["races"] == 1 and doc["rates"]["unmeasured"] == 1
    assert "not counted: 1 race that recorded no exposure" in capsys.readouterr().out
