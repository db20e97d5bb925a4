"""A run stopped by SIGINT, SIGTERM or SIGHUP still writes its whole report:
what finished with its verdict, the scenario under way `interrupted`, the rest
`not-run`, and a history row marked interrupted.

The boot replays a recorded console; it ends as run_job() ends a boot the
harness was told to stop (tests/unit/test_targets_run.py checks that part
with a real signal): the run's record on the Interrupted exception.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.host.interrupts import Interrupted
from harness.host.kernels.kernel import Kernel
from harness.host.report import history, results
from harness.host.report.schema import validate
from harness.host.runner import run_scenarios
from harness.host.targets.run import Deadlines, GuestRun, Outcome
from harness.pure.profiles import get_profile
from harness.pure.scenarios.matrix import build_matrix, select
from harness.pure.scenarios.verdicts import Verdict
from tests.unit.recorded_boot import UAF_CONSOLE, clean_boot, marker

IDLE = "idle--unbind_bind"
BLOCKED = "video.raw_capture_0-blocked_dqbuf--unbind"
OPENED = "video.raw_capture_0-opened--unbind"



class StoppedGuest:
    """Runs scenarios until `stop_at` begins, then is stopped by `signum`."""

    def __init__(self, stop_at: str, signum: int):
        self.stop_at = stop_at
        self.signum = signum
        self.boots = 0

    def run(self, tasks: list[dict[str, Any]], run_dir: Path,
            deadlines: Deadlines | None = None,
            on_event: Callable[[dict[str, Any], GuestRun], None] | None = None) -> GuestRun:
        self.boots += 1
        run_dir.mkdir(parents=True, exist_ok=True)
        result = GuestRun(run_dir=run_dir, boot_seconds=1.9)
        console = clean_boot()
        t = 30.0
        for d in tasks[0]["args"]["scenarios"]:
            name = d["name"]
            t += 1.0
            console.append(marker(t, f"scenario {name} begin"))
            result.events.append({"event": "scenario-start", "scenario": name})
            if name == self.stop_at:
                result.console_path.write_text("\n".join(console) + "\n")
                result.end(Outcome.INTERRUPTED, f"the harness got "
                                                f"{signal.Signals(self.signum).name}")
                stop = Interrupted(self.signum)
                stop.run = result
                raise stop
            console += [marker(t + 0.4, f"scenario {name} end")]
            event = {"event": "scenario-result", "scenario": name,
                     "record": {"name": name, "status": "done", "contracts": []}}
            result.events.append(event)
            result.console_path.write_text("\n".join(console) + "\n")
            if on_event is not None:
                on_event(event, result)
        raise AssertionError("the guest was to be stopped")


def test_the_report_is_written_from_what_finished(tmp_path: Path) -> None:
    chosen = select(build_matrix(get_profile("vimc")), [IDLE, BLOCKED, OPENED])
    guest = StoppedGuest(BLOCKED, signal.SIGTERM)
    report = tmp_path / "report"
    result = run_scenarios(guest, "vimc", chosen, report)
    assert guest.boots == 1  # no boot after the signal
    assert result.interrupted is not None and result.interrupted.exit_status == 143
    assert result.failed
    kernel = Kernel("debian", "6.1.192", tmp_path / "bzImage", tmp_path / "modules")
    results.write(result, kernel, "vimc", report, 1_763_769_600.0)
    doc = json.loads((report / "results.json").read_text())
    validate(doc)
    assert doc["interrupted"] == "SIGTERM"
    assert [(s["name"], s["verdict"]) for s in doc["scenarios"]] == [
        (IDLE, Verdict.PASS), (BLOCKED, Verdict.INTERRUPTED), (OPENED, Verdict.NOT_RUN)]
    assert doc["scenarios"][1]["reason"] == "guest interrupted: the harness got SIGTERM"
    assert doc["summary"] == {"pass": 1, "fail": 0, "hang": 0, "error": 0, "not-run": 1,
                              "interrupted": 1}
    assert [b["outcome"] for b in doc["boots"]] == ["interrupted"]
    ktap = (report / "results.ktap").read_text().splitlines()
    assert ktap[-3:] == [f"# {BLOCKED}: guest interrupted: the harness got SIGTERM",
                         f"not ok 2 {BLOCKED}", f"not ok 3 {OPENED} # SKIP not run"]
    summary = (report / "summary.txt").read_text()
    assert "interrupted by SIGTERM" in summary
    junit = (report / "results.junit.xml").read_text()
    assert 'type="interrupted"' in junit and "<skipped" in junit
    assert "interrupted" in (report / "report.html").read_text()
    db = tmp_path / "h.sqlite3"
    run_id = history.record(doc, "run", path=db)
    with history.connect(db) as conn:
        row = conn.execute("SELECT interrupted FROM runs WHERE id = ?", (run_id,)).fetchone()
        verdicts = dict(conn.execute("SELECT scenario, verdict FROM results").fetchall())
    assert row[0] == "SIGTERM"
    assert verdicts[BLOCKED] == "interrupted"


def test_a_kernel_report_outweighs_the_interrupt(tmp_path: Path) -> None:
    """The recorded KASAN report of OPENED, printed before the signal came."""

    class ReportThenStop(StoppedGuest):
        def run(self, tasks: list[dict[str, Any]], run_dir: Path,
                deadlines: Deadlines | None = None,
                on_event: Callable[[dict[str, Any], GuestRun], None] | None = None) -> GuestRun:
            run_dir.mkdir(parents=True, exist_ok=True)
            result = GuestRun(run_dir=run_dir, boot_seconds=1.9)
            lines = UAF_CONSOLE.read_text().splitlines()
            result.console_path.write_text("\n".join(
                lines[:next(i for i, x in enumerate(lines) if f"{OPENED} end" in x)]) + "\n")
            result.events.append({"event": "scenario-start", "scenario": OPENED})
            result.end(Outcome.INTERRUPTED, "the harness got SIGINT")
            stop = Interrupted(signal.SIGINT)
            stop.run = result
            raise stop

    chosen = select(build_matrix(get_profile("vimc")), [OPENED, IDLE])
    result = run_scenarios(ReportThenStop(OPENED, signal.SIGINT), "vimc", chosen, tmp_path)
    assert [o.verdict for o in result.outcomes] == [Verdict.FAIL, Verdict.NOT_RUN]
    assert result.outcomes[0].reason.startswith("KASAN: use-after-free")
    assert result.interrupted is not None and result.interrupted.exit_status == 130
