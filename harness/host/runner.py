"""Run scenarios on a target over as few boots as possible (host side).

One boot runs scenarios until one leaves the kernel unfit (a new taint, a
hang, a task stuck in the kernel); the next boot resumes after it. Every
boot's console, events and command line stay in the report directory, and
every kernel report is attributed to the scenario that was running.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.host.interrupts import Interrupted
from harness.host.race_verdict import RaceFacts, judge
from harness.host.targets.base import Target
from harness.host.targets.qemu import Deadlines, GuestRun
from harness.host.targets.run import Outcome as RunOutcome
from harness.pure.delays import DelayPlan
from harness.pure.errors import GuestError
from harness.pure.kmsg.report import Finding
from harness.pure.markers import RACE_BEGIN
from harness.pure.scenarios.attribution import BOOT, attribute, markers
from harness.pure.scenarios.contracts import ContractResult
from harness.pure.scenarios.model import Scenario
from harness.pure.scenarios.record import ScenarioRecord, Status
from harness.pure.scenarios.verdicts import Verdict
from harness.target.scenarios.executor import SCENARIO_DEADLINE

# The verdict of a scenario whose process did not finish, by how it ended.
ENDED: dict[Status | None, Verdict] = {Status.HANG: Verdict.HANG, Status.ERROR: Verdict.ERROR,
                                       Status.CRASHED: Verdict.FAIL, Status.LOST: Verdict.ERROR,
                                       Status.INTERRUPTED: Verdict.INTERRUPTED}
ENDED_WITH_FINDINGS = {**ENDED, Status.LOST: Verdict.FAIL, Status.INTERRUPTED: Verdict.FAIL}

# What became of the scenario under way when a boot ended, by the boot's outcome;
# any other outcome: the guest crashed under it.
IN_FLIGHT = {RunOutcome.HANG: Status.HANG, RunOutcome.LOST: Status.LOST,
             RunOutcome.INTERRUPTED: Status.INTERRUPTED}

# Once the kernel has reported and gone quiet, the agent stops the scenario
# within seconds (AFTER_REPORT_QUIET, then REAP_TIMEOUT in the executor) and
# says so; silent this long, it is stuck with the kernel, and the boot a hang.
# Roomy: on a busy host an oopsed arm64 guest has taken 16 s to answer.
AGENT_AFTER_REPORT = 30.0

# A scenario (or a boot that started none) cut short from outside the target
# runs again on a fresh boot this many times before its error stands.
LOST_RETRIES = 1


@dataclass
class Outcome:
    scenario: Scenario
    verdict: Verdict = Verdict.NOT_RUN
    record: ScenarioRecord | None = None  # None until the target reports it
    findings: list[Finding] = field(default_factory=list)
    boot: int = 0
    console: str = ""
    reason: str = ""
    # Why earlier boots lost the target under it, when it ran again on a fresh one.
    lost_before: list[str] = field(default_factory=list)
    # printk times of the agent's markers (begin, disrupt, end): the scenario's
    # steps on the kernel's clock, next to its findings' timestamps
    kernel_times: dict[str, float | None] = field(default_factory=dict)

    @property
    def failed_contracts(self) -> list[ContractResult]:
        return self.record.failed_contracts if self.record else []

    def judge(self) -> None:
        status = self.record.status if self.record else None
        # The kernel's reports say what broke; a hang or a lost process is
        # what it did to the scenario, so it comes after them. A target lost
        # from outside explains nothing away: with a kernel report it fails.
        ended = (ENDED_WITH_FINDINGS if self.findings else ENDED).get(status)
        if ended is not None:
            self.verdict = ended
            titles = [f.title for f in self.findings]
            error = self.record.error if self.record else None
            self.reason = "; ".join(filter(None, [*titles, error or ""]))
        elif self.findings or self.failed_contracts:
            self.verdict = Verdict.FAIL
            parts = [f.title for f in self.findings]
            parts += [f"{c.contract}: {c.detail}" for c in self.failed_contracts]
            self.reason = "; ".join(parts)
        else:
            # A scenario judged again (on the boot that retried it) keeps no
            # reason of the earlier verdict.
            self.verdict, self.reason = Verdict.PASS, ""


@dataclass
class RunResult:
    outcomes: list[Outcome]
    boots: list[GuestRun]
    boot_findings: list[Finding]  # reports before any scenario began
    # The signal that stopped the run; the outcomes are what finished before it.
    interrupted: Interrupted | None = None

    @property
    def failed(self) -> bool:
        # A run of no scenario exercised nothing: its silence is not a pass.
        return (bool(self.boot_findings) or not self.outcomes or self.interrupted is not None
                or any(o.verdict != Verdict.PASS for o in self.outcomes))


Progress = Callable[[Outcome, int, int], None]


def run_scenarios(
    target: Target,
    driver: str,
    scenarios: list[Scenario],
    report_dir: Path,
    progress: Progress | None = None,
) -> RunResult:
    outcomes = {s.name: Outcome(s) for s in scenarios}
    pending = list(scenarios)
    boots: list[GuestRun] = []
    boot_findings: list[Finding] = []
    try:
        _boots(target, driver, scenarios, report_dir, progress, outcomes, pending, boots,
               boot_findings)
    except Interrupted as stop:
        # What finished keeps its verdict, the scenario under way is
        # `interrupted`, the rest stay `not-run`; the caller writes the report.
        return RunResult([outcomes[s.name] for s in scenarios], boots, boot_findings, stop)
    return RunResult([outcomes[s.name] for s in scenarios], boots, boot_findings)


def _boots(target: Target, driver: str, scenarios: list[Scenario], report_dir: Path,
           progress: Progress | None, outcomes: dict[str, Outcome], pending: list[Scenario],
           boots: list[GuestRun], boot_findings: list[Finding]) -> None:
    """Boot after boot until nothing is pending (run_scenarios' loop)."""
    done = 0
    lost_boots = 0  # boots lost from outside before any scenario started
    while pending:
        boot = len(boots) + 1
        deadlines = Deadlines(boot=180, idle=SCENARIO_DEADLINE + 60,
                              total=300 + 90 * len(pending), after_report=AGENT_AFTER_REPORT)
        def live(event: dict[str, Any], run: GuestRun) -> None:
            # A first verdict as each scenario ends, from the console so far;
            # reports printed later are attributed again when the boot ends.
            nonlocal done
            if event["event"] != "scenario-result" or progress is None:
                return
            o = outcomes[event["scenario"]]
            o.record = ScenarioRecord.from_dict(event["record"])
            o.findings = [f for owner, f in attribute(run.console()) if owner == o.scenario.name]
            o.judge()
            done += 1
            progress(o, done, len(scenarios))

        stop: Interrupted | None = None
        try:
            run = target.run(
                [{"task": "scenarios",
                  "args": {"driver": driver, "scenarios": [s.to_dict() for s in pending]}}],
                report_dir / f"boot-{boot:02d}",
                deadlines,
                on_event=live,
            )
        except Interrupted as e:
            if e.run is None:
                raise
            # The boot is stopped; what it did is judged below like any other's.
            run, stop = e.run, e
        boots.append(run)
        started, finished = _follow_events(run, outcomes, boot)
        for o in outcomes.values():
            if o.scenario.name in started:
                o.findings = []
        for m in markers(run.console()):
            if m.scenario in outcomes:
                outcomes[m.scenario].kernel_times[m.step] = m.time
        for owner, finding in attribute(run.console()):
            if owner == BOOT:
                boot_findings.append(finding)
            elif owner in outcomes:
                outcomes[owner].findings.append(finding)
        in_flight = [n for n in started if n not in finished]
        again: list[Scenario] = []
        for name in finished + in_flight:
            o = outcomes[name]
            o.boot, o.console = boot, str(run.console_path)
            before = o.verdict
            if name in in_flight:
                o.record = ScenarioRecord(name, IN_FLIGHT.get(run.outcome, Status.CRASHED),
                                          error=f"guest {run.outcome}: {run.message}")
            o.judge()
            if (o.record and o.record.status == Status.LOST and o.verdict == Verdict.ERROR
                    and len(o.lost_before) < LOST_RETRIES):
                # Cut short from outside and the kernel said nothing: it proved
                # nothing either way, so it runs again on a fresh boot.
                o.lost_before.append(run.message)
                o.verdict, o.record = Verdict.NOT_RUN, None
                again.append(o.scenario)
                continue
            if progress and (name in in_flight or o.verdict != before):
                if name in in_flight:
                    done += 1
                progress(o, done, len(scenarios))
        if stop is not None:
            raise stop
        if not started:
            if run.outcome == RunOutcome.LOST and lost_boots < LOST_RETRIES:
                lost_boots += 1
                continue
            # Nothing ran in this boot: another boot would end the same way.
            if run.outcome == RunOutcome.BOOT_FAILED:
                raise GuestError(
                    f"the guest never came up ({run.message}); console: {run.console_path}",
                    console_tail=run.console_tail(), report_dir=str(report_dir),
                )
            why = (f"guest {run.outcome}: {run.message}" if run.outcome == RunOutcome.LOST
                   else f"agent failed ({_agent_error(run)})")
            for s in pending:
                outcomes[s.name].reason = f"not run: {why}"
                outcomes[s.name].verdict = Verdict.ERROR
            break
        ran = set(started)
        pending = again + [s for s in pending if s.name not in ran]


def _follow_events(run: GuestRun, outcomes: dict[str, Outcome],
                   boot: int) -> tuple[list[str], list[str]]:
    started: list[str] = []
    finished: list[str] = []
    for event in run.events:
        if event["event"] == "scenario-start":
            started.append(event["scenario"])
        elif event["event"] == "scenario-result":
            outcomes[event["scenario"]].record = ScenarioRecord.from_dict(event["record"])
            finished.append(event["scenario"])
    return started, finished


def _agent_error(run: GuestRun) -> str:
    for e in run.results():
        if e["event"] == "error":
            return e["message"]
    return run.message or run.outcome


@dataclass
class RaceResult:
    stats: dict[str, Any]
    findings: list[Finding]
    boot: GuestRun
    lost_before: list[str] = field(default_factory=list)  # why earlier boots were lost
    interrupted: Interrupted | None = None

    @property
    def verdict(self) -> tuple[Verdict, str]:
        return judge(RaceFacts(self.stats, [f.title for f in self.findings], self.boot.outcome,
                               self.boot.message))

    @property
    def failed(self) -> bool:
        return self.verdict[0] != Verdict.PASS


def run_race(target: Target, driver: str, duration: float, seed: int, workers: int,
             mode: str, report_dir: Path,
             progress: Callable[[dict[str, Any]], None] | None = None,
             kinds: list[str] | None = None, delays: DelayPlan | None = None) -> RaceResult:
    """One boot of race mode (one more when something outside the guest ended
    the first and the kernel said nothing); every report after the race began
    is its finding, but a KCSAN report only in the profile's code (its
    `kcsan_scope`). `delays` (--amplify) needs the delay module in the target's
    kernel (harness.host.kernels.emulation.with_delays)."""
    from harness.pure.kmsg.report import parse_log
    from harness.pure.profiles import get_profile

    scope = get_profile(driver).kcsan_scope

    def live(event: dict[str, Any], run: GuestRun) -> None:
        if progress and event["event"] == "race-progress":
            # The kernel reports so far, for the live count (the race stops at the
            # first, so a count above 0 is seen only as it ends).
            progress({**event, "reports": len(race_findings(run.console(), scope))})

    lost_before: list[str] = []
    stop: Interrupted | None = None
    while True:
        try:
            run = target.run(
                [{"task": "race", "args": {"driver": driver, "duration": duration, "seed": seed,
                                           "workers": workers, "mode": mode, "kinds": kinds,
                                           "delays": delays.to_dict() if delays else None}}],
                report_dir / f"boot-{len(lost_before) + 1:02d}",
                Deadlines(boot=180, idle=SCENARIO_DEADLINE + 60, total=duration + 600),
                on_event=live,
            )
        except Interrupted as e:
            if e.run is None:
                raise
            run, stop = e.run, e
            break
        if (run.outcome != RunOutcome.LOST or len(lost_before) >= LOST_RETRIES
                or parse_log(run.console())):
            break
        lost_before.append(run.message)
    if run.outcome == RunOutcome.BOOT_FAILED:
        raise GuestError(f"the guest never came up ({run.message})",
                         console_tail=run.console_tail(), report_dir=str(report_dir))
    stats: dict[str, Any] = _exposure_so_far(run) if stop is not None else {}
    for event in run.results():
        if event["event"] == "result":
            stats = event["data"]
        else:
            stats = {"error": event["message"]}
    if delays is not None and "delays" not in stats:
        # The guest never reported: the plan it was given is still what ran.
        stats["delays"] = delays.to_dict()
    return RaceResult(stats, race_findings(run.console(), scope), run, lost_before, stop)


def race_findings(console: str, scope: Sequence[str] = ()) -> list[Finding]:
    """The kernel reports in a race boot's console after the race began; a KCSAN
    report only with a frame in `scope` (the profile's kcsan_scope) when given."""
    from harness.pure.kmsg.report import parse_log
    from harness.pure.kmsg.scope import in_scope

    race_start = next((i for i, line in enumerate(console.splitlines(), 1)
                       if RACE_BEGIN in line), 0)
    return [f for f in parse_log(console) if f.line > race_start and in_scope(f, scope)]


def _exposure_so_far(run: GuestRun) -> dict[str, Any]:
    """What an interrupted race did, from its last progress event (every 5 s):
    the exposure a report of it can claim."""
    last = next((e for e in reversed(run.events) if e["event"] == "race-progress"), None)
    if last is None:
        return {"cycles": 0, "duration": 0.0, "workers": []}
    elapsed = float(last["elapsed"]) or 1.0
    return {"cycles": last["cycles"], "duration": last["elapsed"],
            "cycles_per_second": round(last["cycles"] / elapsed, 2),
            "workers": [{"worker": i, "iterations": n, "results": {},
                         "per_second": round(n / elapsed, 1)}
                        for i, n in enumerate(last["iterations"])],
            "partial": "counted at the last progress event before the interrupt"}
