"""A target lost from outside the guest (QEMU killed, a connection dropped) is an
error with its cause, retried once on a fresh boot, and never a kernel finding
or a driver failure; a kernel report outweighs it.

The boots replay recorded consoles (tests/data/consoles) with the agent's
events; what is under test is the host's reading of them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.host.kernels.kernel import Kernel
from harness.host.report import history, results
from harness.host.report.compare import compare, hits
from harness.host.runner import run_scenarios
from harness.host.targets.run import Deadlines, GuestRun, Outcome
from harness.pure.profiles import get_profile
from harness.pure.scenarios.matrix import build_matrix, select
from harness.pure.scenarios.verdicts import Verdict
from tests.unit.recorded_boot import UAF_CONSOLE, clean_boot, marker

OPENED = "video.raw_capture_0-opened--unbind"  # the recorded console's KASAN report
BLOCKED = "video.raw_capture_0-blocked_dqbuf--unbind"
IDLE = "idle--unbind_bind"
KILLED = "QEMU was killed by SIGKILL from outside the guest (a user, the host's OOM killer)"



class LosingGuest:
    """Each boot runs the pending scenarios until `lose(boot, name)` says QEMU was
    killed while `name` ran; with `report=True` the kernel printed the recorded
    KASAN report for it first."""

    def __init__(self, lose: Callable[[int, str], bool], report: bool = False,
                 lost_boots: frozenset[int] | set[int] = frozenset()):
        self.lose = lose
        self.lost_boots = lost_boots
        self.report = report
        self.boots = 0

    def run(self, tasks: list[dict[str, Any]], run_dir: Path,
            deadlines: Deadlines | None = None,
            on_event: Callable[[dict[str, Any], GuestRun], None] | None = None) -> GuestRun:
        self.boots += 1
        run_dir.mkdir(parents=True, exist_ok=True)
        result = GuestRun(run_dir=run_dir, boot_seconds=1.9)
        console = clean_boot()
        events: list[dict[str, Any]] = [{"event": "ready"}]
        t = 30.0
        by_name = {s.name: s for s in build_matrix(get_profile("vimc"))}
        scenarios = tasks[0]["args"]["scenarios"]
        if self.boots in self.lost_boots:
            result.end(Outcome.LOST, KILLED)
            scenarios = []
        for d in scenarios:
            name = d["name"]
            t += 1.0
            events.append({"event": "scenario-start", "scenario": name})
            if self.lose(self.boots, name):
                if self.report:
                    lines = UAF_CONSOLE.read_text().splitlines()
                    console = lines[:next(i for i, x in enumerate(lines)
                                          if "scenario " + OPENED + " end" in x)]
                else:
                    console.append(marker(t, f"scenario {name} begin"))
                result.end(Outcome.LOST, KILLED)
                break
            console += [marker(t, f"scenario {name} begin"),
                        marker(t + 0.1, f"scenario {name} disrupt"),
                        marker(t + 0.4, f"scenario {name} end")]
            events.append({"event": "scenario-result", "scenario": name,
                           "record": {"name": by_name[name].name, "status": "done",
                                      "contracts": []}})
        else:
            if result.outcome is not Outcome.LOST:
                events.append({"event": "done"})
                result.outcome = Outcome.DONE
        result.console_path.write_text("\n".join(console) + "\n")
        for event in events:
            result.events.append(event)
            if on_event is not None:
                on_event(event, result)
        return result


def _run(tmp_path: Path, guest: LosingGuest, names: list[str]) -> dict[str, Any]:
    chosen = select(build_matrix(get_profile("vimc")), names)
    kernel = Kernel("debian", "6.1.192", tmp_path / "bzImage", tmp_path / "modules")
    result = run_scenarios(guest, "vimc", chosen, tmp_path / "report")
    return results.write(result, kernel, "vimc", tmp_path / "report", 1_763_769_600.0)


def _verdicts(doc: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["verdict"] for s in doc["scenarios"]}


def test_a_scenario_lost_once_runs_again_on_a_fresh_boot(tmp_path: Path) -> None:
    guest = LosingGuest(lambda boot, name: boot == 1 and name == BLOCKED)
    doc = _run(tmp_path, guest, [IDLE, BLOCKED, OPENED])
    assert guest.boots == 2
    assert _verdicts(doc) == {IDLE: "pass", BLOCKED: "pass", OPENED: "pass"}
    blocked = doc["scenarios"][1]
    assert blocked["lost_before"] == [KILLED] and blocked["boot"] == 2
    assert "lost" not in blocked and blocked["reason"] == ""
    assert [b["outcome"] for b in doc["boots"]] == ["lost", "done"]


def test_lost_twice_is_an_error_with_its_cause_and_no_finding(tmp_path: Path) -> None:
    guest = LosingGuest(lambda boot, name: name == BLOCKED)
    doc = _run(tmp_path, guest, [IDLE, BLOCKED, OPENED])
    assert guest.boots == 3  # BLOCKED, again, then what was left
    assert _verdicts(doc) == {IDLE: "pass", BLOCKED: "error", OPENED: "pass"}
    blocked = doc["scenarios"][1]
    assert blocked["reason"] == f"guest lost: {KILLED}"
    assert blocked["lost"] == f"guest lost: {KILLED}"
    assert blocked["findings"] == [] and blocked["lost_before"] == [KILLED]
    # validate: no signature, on either side
    assert not [h for h in hits(doc, "head", 1) if h.scenario == BLOCKED]
    clean = {**doc, "scenarios": [{**s, "verdict": "pass"} if s["name"] == BLOCKED else s
                                  for s in doc["scenarios"]]}
    assert compare([[clean]], [[doc]]).signatures == []
    # history: an error is no data point, so no pass -> fail change appears
    db = tmp_path / "h.sqlite3"
    history.record(clean, path=db)
    history.record(doc, path=db)
    with history.connect(db) as conn:
        assert history.changes(conn) == []


def test_a_kernel_report_outweighs_a_lost_target(tmp_path: Path) -> None:
    guest = LosingGuest(lambda boot, name: boot == 1 and name == OPENED, report=True)
    doc = _run(tmp_path, guest, [OPENED, IDLE])
    opened = doc["scenarios"][0]
    assert opened["verdict"] == Verdict.FAIL
    assert opened["reason"].startswith("KASAN: use-after-free")
    assert "lost_before" not in opened  # not retried: the kernel had spoken
    assert [f["signature"] for f in opened["findings"]]
    assert guest.boots == 2 and _verdicts(doc)[IDLE] == "pass"


def test_a_boot_lost_before_any_scenario_is_tried_once_more(tmp_path: Path) -> None:
    # The agent said ready; QEMU was killed before the first scenario began.
    once = LosingGuest(lambda boot, name: False, lost_boots={1})
    assert _verdicts(_run(tmp_path / "once", once, [IDLE])) == {IDLE: "pass"}
    assert once.boots == 2
    twice = LosingGuest(lambda boot, name: False, lost_boots={1, 2})
    doc = _run(tmp_path / "twice", twice, [IDLE])
    assert twice.boots == 2
    assert _verdicts(doc) == {IDLE: "error"}
    assert doc["scenarios"][0]["reason"] == f"not run: guest lost: {KILLED}"


class LosingRaceGuest:
    """Race boots; the ones in `lost_boots` lose QEMU mid-race."""

    def __init__(self, lost_boots: set[int]):
        self.lost_boots = lost_boots
        self.boots = 0

    def run(self, tasks: list[dict[str, Any]], run_dir: Path,
            deadlines: Deadlines | None = None,
            on_event: Callable[[dict[str, Any], GuestRun], None] | None = None) -> GuestRun:
        self.boots += 1
        run_dir.mkdir(parents=True, exist_ok=True)
        result = GuestRun(run_dir=run_dir, boot_seconds=1.9)
        result.console_path.write_text("\n".join([*clean_boot(), marker(31.0, "race begin")]))
        if self.boots in self.lost_boots:
            result.events = [{"event": "ready"}, {"event": "race-progress", "cycles": 9}]
            result.end(Outcome.LOST, KILLED)
            return result
        stats = {"seed": 7, "mode": "unbind", "cycles": 40, "duration": 20.0,
                 "workers": [{"worker": 0, "iterations": 900, "results": {}}]}
        result.events = [{"event": "ready"}, {"event": "result", "data": stats},
                         {"event": "done"}]
        result.outcome = Outcome.DONE
        return result


def _race(tmp_path: Path, guest: LosingRaceGuest) -> dict[str, Any]:
    from harness.host.runner import run_race

    kernel = Kernel("debian", "6.1.192", tmp_path / "bzImage", tmp_path / "modules")
    race = run_race(guest, "vimc", 20.0, 7, 1, "unbind", tmp_path / "race")
    return results.race_doc(race, kernel, "vimc", 1_763_769_600.0)


def test_a_race_lost_once_runs_again(tmp_path: Path) -> None:
    guest = LosingRaceGuest({1})
    doc = _race(tmp_path, guest)
    assert guest.boots == 2
    assert (doc["verdict"], doc["lost_before"]) == (Verdict.PASS, [KILLED])


def test_a_race_lost_twice_is_an_error_not_a_failure(tmp_path: Path) -> None:
    guest = LosingRaceGuest({1, 2})
    doc = _race(tmp_path, guest)
    assert guest.boots == 2
    assert (doc["verdict"], doc["reason"]) == (Verdict.ERROR, f"guest lost: {KILLED}")
    assert not list(hits(doc, "head", 1))
