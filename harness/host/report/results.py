"""The report directory of a run: results.json, KTAP, and a summary table.

results.json is the stable, complete record (schema version in the file);
the KTAP file speaks the kernel's own test-output format, so kernel CI tools
read a run like a kselftest; summary.txt is what the terminal showed.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.host.kernels.kernel import Kernel
from harness.host.race_verdict import judge_doc
from harness.host.runner import Outcome, RaceResult, RunResult
from harness.pure.race.exposure import Exposure, begin_time, measure
from harness.pure.race.rates import Tally, tally
from harness.pure.scenarios.record import ScenarioRecord, Status
from harness.pure.scenarios.verdicts import Verdict

if TYPE_CHECKING:
    from harness.host.race_series import Series
    from harness.host.targets.base import BoardKernel

SCHEMA = 1


def kernel_dict(kernel: Kernel | BoardKernel) -> dict[str, Any]:
    """The kernel a run booted, as results.json names it: with its module tree
    when it has one, so `--kernel path` can boot it again (harness.host.report.reproducer)."""
    modules = getattr(kernel, "modules_root", None)
    return {"flavour": kernel.flavour, "release": kernel.release, "image": str(kernel.image),
            **({"modules": str(modules)} if modules is not None else {})}


def outcome_dict(o: Outcome) -> dict[str, Any]:
    rec = o.record or ScenarioRecord(o.scenario.name, Status.ERROR)
    return {
        "name": o.scenario.name,
        "verdict": o.verdict,
        "reason": o.reason,
        "boot": o.boot,
        "console": o.console,
        "kernel_times": o.kernel_times,
        "scenario": o.scenario.to_dict(),
        "contracts": [c.to_dict() for c in rec.contracts],
        "findings": [f.to_dict() for f in o.findings],
        "steps": [s.to_dict() for s in rec.steps or []],
        "blocked_calls": [c.to_dict() for c in rec.calls or []],
        "after": rec.after or {},
        "error": rec.error,
        "traceback": rec.traceback,
        # The target lost from outside: the cause, which no kernel finding outweighed.
        **({"lost": rec.error} if rec.status == Status.LOST else {}),
        **({"lost_before": o.lost_before} if o.lost_before else {}),
    }


def write(result: RunResult, kernel: Kernel | BoardKernel, driver: str, report_dir: Path,
          started: float, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    counts = Counter(o.verdict for o in result.outcomes)
    doc = {
        "schema": SCHEMA,
        "tool": "v4l2-unplug",
        "driver": driver,
        "kernel": kernel_dict(kernel),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "boots": [{"dir": str(b.run_dir), "outcome": b.outcome, "message": b.message,
                   "boot_seconds": b.boot_seconds} for b in result.boots],
        "summary": {str(v): counts.get(v, 0) for v in Verdict},
        "boot_findings": [f.to_dict() for f in result.boot_findings],
        "scenarios": [outcome_dict(o) for o in result.outcomes],
        **({"interrupted": result.interrupted.name} if result.interrupted else {}),
        **(extra or {}),
    }
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "results.json").write_text(json.dumps(doc, indent=1, default=str))
    (report_dir / "results.ktap").write_text(ktap(result))
    (report_dir / "summary.txt").write_text(summary(result) + "\n")
    write_pages(doc, report_dir)
    return doc


def write_pages(doc: dict[str, Any], report_dir: Path) -> None:
    """The JUnit XML and HTML views of a results.json document."""
    from harness.host.report import html, junit

    (report_dir / "results.junit.xml").write_text(junit.run_xml(doc))
    (report_dir / "report.html").write_text(html.run_page(doc, report_dir))


def race_exposure(result: RaceResult) -> Exposure | None:
    """The race's exposure (None when the agent sent no counts)."""
    return measure(result.stats, result.findings, begin_time(result.boot.console()))


def race_tally(exposures: list[Exposure | None], expected: Sequence[str] = ()) -> Tally:
    """Per-signature rates over races, and the bound on each `expected` signature
    that was not seen; races without counts are named, not counted."""
    measured = [e for e in exposures if e is not None]
    return tally(measured, expected, unmeasured=len(exposures) - len(measured))


def race_with_statistics(result: RaceResult, kernel: Kernel | BoardKernel, driver: str,
                         started: float, expected: Sequence[str] = ()) -> dict[str, Any]:
    """What `run --race` and `validate --race` write: race_doc() with the race's
    exposure and its per-signature rates (docs/race-statistics.md)."""
    exposure = race_exposure(result)
    return {**race_doc(result, kernel, driver, started),
            "exposure": exposure.to_dict() if exposure else None,
            "rates": race_tally([exposure], expected).to_dict()}


def write_race(result: RaceResult, kernel: Kernel | BoardKernel, driver: str,
               report_dir: Path, started: float,
               expected: Sequence[str] = ()) -> dict[str, Any]:
    """A race's report directory: results.json (race_with_statistics()), KTAP,
    JUnit and HTML; the document it wrote."""
    doc = race_with_statistics(result, kernel, driver, started, expected)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "results.json").write_text(json.dumps(doc, indent=1, default=str))
    (report_dir / "results.ktap").write_text(race_ktap(doc))
    write_pages(doc, report_dir)
    return doc


def race_doc(result: RaceResult, kernel: Kernel | BoardKernel, driver: str,
             started: float) -> dict[str, Any]:
    """results.json of a race run."""
    verdict, reason = result.verdict
    return {"schema": SCHEMA, "tool": "v4l2-unplug", "mode": "race", "driver": driver,
            "kernel": kernel_dict(kernel),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "duration_s": round(time.time() - started, 1),
            "stats": result.stats, "findings": [f.to_dict() for f in result.findings],
            "console": str(result.boot.console_path), "outcome": result.boot.outcome,
            "message": result.boot.message, "verdict": verdict, "reason": reason,
            **({"lost_before": result.lost_before} if result.lost_before else {}),
            **({"interrupted": result.interrupted.name} if result.interrupted else {})}


def race_ktap(doc: dict[str, Any]) -> str:
    """A race run in KTAP: one test, its kernel reports as diagnostics."""
    stats = doc.get("stats", {})
    findings = doc.get("findings", [])
    name = f"race_seed_{stats.get('seed', 0)}_{stats.get('mode', 'unbind')}"
    lines = ["KTAP version 1", "1..1"]
    if "error" in stats:
        lines.append(f"# {name}: {stats['error']}")
    else:
        lines.append(f"# {name}: {stats.get('cycles', 0)} cycles in {stats.get('duration', 0)} s"
                     f" ({stats.get('cycles_per_second', 0)}/s); workers "
                     + ", ".join(f"{w['worker']}: {w['per_second']}/s"
                                 for w in stats.get("workers", [])))
    for f in findings:
        lines.append(f"# {name}: {f['title']} [{f['signature']}]")
    for key in ("stuck_disruption", "stuck_workers"):
        if stats.get(key):
            lines.append(f"# {name}: {key.replace('_', ' ')}: {stats[key]}")
    verdict, reason = judge_doc(doc)
    if reason and not findings:
        lines.append(f"# {name}: {reason}")
    failed = verdict != Verdict.PASS
    lines.append(f"{'not ok' if failed else 'ok'} 1 {name}")
    return "\n".join(lines) + "\n"


def ktap(result: RunResult) -> str:
    """KTAP version 1 (Documentation/dev-tools/ktap.rst)."""
    lines = ["KTAP version 1", f"1..{len(result.outcomes)}"]
    for i, o in enumerate(result.outcomes, start=1):
        ok = "ok" if o.verdict == Verdict.PASS else "not ok"
        directive = " # SKIP not run" if o.verdict == Verdict.NOT_RUN else ""
        for detail in ([o.reason] if o.reason else []):
            lines.append(f"# {o.scenario.name}: {detail}")
        lines.append(f"{ok} {i} {o.scenario.name}{directive}")
    return "\n".join(lines) + "\n"


def summary(result: RunResult, width: int = 110) -> str:
    name_w = max((len(o.scenario.name) for o in result.outcomes), default=10)
    rows = [f"{'scenario':{name_w}}  {'verdict':7}  detail"]
    for o in result.outcomes:
        detail = o.reason or _pass_detail(o)
        room = max(20, width - name_w - 11)
        rows.append(f"{o.scenario.name:{name_w}}  {o.verdict:7}  {detail[:room]}")
    counts = Counter(o.verdict for o in result.outcomes)
    rows.append("")
    rows.append(", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
    if result.interrupted:
        rows.append(f"interrupted by {result.interrupted.name}: the verdicts above are what "
                    f"finished before it")
    if result.boot_findings:
        rows.append(f"kernel reports before any scenario: "
                    f"{'; '.join(f.title for f in result.boot_findings)}")
    return "\n".join(rows)


def _pass_detail(o: Outcome) -> str:
    rec = o.record or ScenarioRecord(o.scenario.name, Status.DONE)
    latencies = [c.latency for c in rec.calls or [] if not c.loop and c.latency is not None]
    parts = [f"{len(rec.contracts)} contracts held"]
    if latencies:
        parts.append(f"blocked call woke after {max(latencies):.3f} s")
    return ", ".join(parts)


def race_series_doc(series: Series, kernel: Kernel | BoardKernel, driver: str,
                    started: float) -> dict[str, Any]:
    """results.json of `run --race --repeat N`: each race in brief (its own
    results.json is in its directory) and the rates over all of them."""
    return {"schema": SCHEMA, "tool": "v4l2-unplug", "mode": "race", "driver": driver,
            "kernel": kernel_dict(kernel),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "duration_s": round(time.time() - started, 1),
            "repeat": len(series.races),
            "races": [r.to_dict() for r in series.races],
            "rates": series.tally.to_dict()}
