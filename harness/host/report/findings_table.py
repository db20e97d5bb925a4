"""One table of what a matrix run and a race found, each with the command that
reproduces it.

Read from the results.json documents the runs wrote (results.write() and
results.race_with_statistics()), so a recorded run renders the same table as
a live one. A row is one kernel report signature, wherever it was seen: the
first scenario that hit it names it and gives the reproducer (a scenario
replays alone, a race replays only as likely as it was); the other scenarios
and the race are counted beside it. A scenario that failed a contract without
a kernel report is a row per contract, and one that hung without a report a
row of its own. Scenarios that could not run (`error`, `not-run`) and a race
that could not start are not findings: shortfalls() names them. The commands
are the report page's (harness.host.report.reproducer), so the table and the
page give the same one.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from harness.host.report import reproducer
from harness.pure.scenarios.verdicts import Verdict

# No signature: a row that is merged with no other.
UNSIGNED = "-"


@dataclass(frozen=True)
class Row:
    title: str
    signature: str
    found_by: str  # the first scenario or race that saw it
    reproduce: str  # one command, pasted as is
    also: tuple[str, ...] = field(default_factory=tuple)  # others that saw it too

    def seen(self) -> str:
        """Where it was seen: the first, and how many more."""
        if not self.also:
            return self.found_by
        return f"{self.found_by} (+{len(self.also)} more)"


@dataclass(frozen=True)
class RaceAsked:
    """The seed and duration a race was asked for, for its reproducer when its
    stats lack them: a race that could not start sent none, and agents before
    `planned_duration` sent only how long the race ran."""

    seed: int
    duration: float


def race_command(doc: dict[str, Any], asked: RaceAsked | None = None) -> str:
    """reproducer.race_command(), with what the race was asked for filling in
    what its stats lack."""
    stats = doc.get("stats") or {}
    if asked is not None:
        stats = {"seed": asked.seed, **stats,
                 "planned_duration": stats.get("planned_duration") or asked.duration}
    command = reproducer.race_command({**doc, "stats": stats})
    if command is None:
        raise ValueError("a race without stats needs the seed and duration it was asked for")
    return command


def matrix_rows(doc: dict[str, Any]) -> list[Row]:
    """The findings of a scenario run, in the order the scenarios ran."""
    rows: list[Row] = []
    for f in doc.get("boot_findings", []):
        rows.append(Row(f["title"], f["signature"], "boot, before any scenario",
                        shlex.join([reproducer.PROG, "topology", "--driver",
                                    doc.get("driver") or "vimc",
                                    *reproducer.kernel_args(doc.get("kernel") or {})])))
    for s in doc.get("scenarios", []):
        verdict = s.get("verdict")
        if verdict in (Verdict.PASS, Verdict.ERROR, Verdict.NOT_RUN, Verdict.INTERRUPTED):
            continue
        name = s["name"]
        command = reproducer.scenario_command(doc, name)
        for f in s.get("findings", []):
            rows.append(Row(f["title"], f["signature"], f"scenario {name}", command))
        if s.get("findings"):
            continue
        broken = [c for c in s.get("contracts", []) if not c.get("passed", True)]
        for c in broken:
            rows.append(Row(f"{c['contract']}: {c.get('detail', '')}",
                            f"contract:{c['contract']}", f"scenario {name}", command))
        if not broken:
            rows.append(Row(f"{verdict}: {s.get('reason') or 'no kernel report'}", UNSIGNED,
                            f"scenario {name}", command))
    return rows


def race_rows(doc: dict[str, Any], asked: RaceAsked | None = None) -> list[Row]:
    """The findings of one race: each signature it saw, or what else made it fail."""
    stats = doc.get("stats") or {}
    first = stats.get("first_report") or {}
    where = f"race seed {stats['seed'] if 'seed' in stats else asked.seed if asked else '?'}"
    if first.get("cycle") is not None:
        where += f", cycle {first['cycle']}"
    command = race_command(doc, asked)
    rows = [Row(f["title"], f["signature"], where, command) for f in doc.get("findings", [])]
    if not rows and doc.get("verdict") in (Verdict.FAIL, Verdict.HANG):
        rows.append(Row(f"{doc['verdict']}: {doc.get('reason') or 'no kernel report'}",
                        UNSIGNED, where, command))
    return rows


def merge(rows: Iterable[Row]) -> list[Row]:
    """One row per signature, in order of first appearance; the first sighting
    names it and gives its reproducer, the rest are counted in `also`."""
    merged: dict[str, Row] = {}
    for n, row in enumerate(rows):
        key = row.signature if row.signature != UNSIGNED else f"{UNSIGNED}{n}"
        first = merged.get(key)
        if first is None:
            merged[key] = row
        elif row.found_by != first.found_by and row.found_by not in first.also:
            merged[key] = replace(first, also=(*first.also, row.found_by))
    return list(merged.values())


def findings(matrix: dict[str, Any] | None,
             races: Sequence[tuple[dict[str, Any], RaceAsked | None]] = ()) -> list[Row]:
    """Every finding of a matrix run and its races (document, what it was asked), merged."""
    rows = matrix_rows(matrix) if matrix else []
    for doc, asked in races:
        rows += race_rows(doc, asked)
    return merge(rows)


def render(rows: Sequence[Row]) -> str:
    """The table as text: a line per finding (signature, title), and under it
    where it was seen and its reproducer, each on a line of its own and never
    cut, so the command pastes as it is."""
    if not rows:
        return "No findings."
    index_w = len(str(len(rows)))
    sig_w = max(len("signature"), *(len(r.signature) for r in rows))
    out = [f"{'#':>{index_w}}  {'signature':{sig_w}}  title"]
    for n, r in enumerate(rows, start=1):
        out.append(f"{n:>{index_w}}  {r.signature:{sig_w}}  {r.title}")
        out.append(f"{'':{index_w}}  found by:  {r.seen()}")
        out.append(f"{'':{index_w}}  reproduce: {r.reproduce}")
    return "\n".join(out)


def to_dicts(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The rows as findings.json holds them."""
    return [{"title": r.title, "signature": r.signature, "found_by": r.found_by,
             "also": list(r.also), "reproduce": r.reproduce} for r in rows]


def shortfalls(matrix: dict[str, Any] | None,
               races: Sequence[dict[str, Any]] = ()) -> list[str]:
    """What the runs could not do, one line each: scenarios that ended
    `error` or never ran, a race that could not run or exercised nothing.
    Empty when the harness did its whole job, whatever it found."""
    out: list[str] = []
    if matrix is not None:
        for s in matrix.get("scenarios", []):
            if s.get("verdict") in (Verdict.ERROR, Verdict.NOT_RUN):
                out.append(f"scenario {s['name']}: {s['verdict']}"
                           f"{': ' + s['reason'] if s.get('reason') else ''}")
        if not matrix.get("scenarios"):
            out.append("the matrix ran no scenario")
    for doc in races:
        stats = doc.get("stats", {})
        # A race that could not start may still have kernel reports (its verdict
        # is then theirs): it exercised nothing all the same.
        if "error" in stats:
            out.append(f"race: could not run: {stats['error']}")
        elif doc.get("verdict") == Verdict.ERROR:
            out.append(f"race seed {stats.get('seed', '?')}: {doc.get('reason')}")
    return out
