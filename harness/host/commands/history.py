"""`v4l2-unplug history`: recorded runs, when scenarios started or stopped failing,
and which signatures are flaky."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def run(args: argparse.Namespace) -> int:
    from harness.host.report import history

    path = args.db or history.db_path()
    if not path.exists():
        print(f"no runs recorded yet ({path})")
        return 0
    with history.connect(path) as conn:
        runs = history.runs(conn, args.limit, args.scenario)
        changes = history.changes(conn, args.scenario)
        flaky = history.flaky(conn, args.scenario)
    if args.json:
        print(json.dumps({
            "database": str(path),
            "runs": runs,
            "changes": [{"scenario": c.scenario, "series": c.series,
                         "change": "started failing" if c.started_failing else "stopped failing",
                         "run": c.run["id"], "started": c.run["started"],
                         "kernel": history.kernel_name(c.run),
                         "previous_run": c.previous["id"],
                         "previous_kernel": history.kernel_name(c.previous),
                         "signatures": list(c.signatures)} for c in changes],
            "flaky": [vars(f) for f in flaky],
        }, indent=1))
        return 0
    print(f"runs ({path}), newest first:")
    print(f"{'id':>5}  {'started':20}  {'command':8}  {'label':12}  {'verdicts':16}  kernel")
    for r in runs:
        print(f"{r['id']:>5}  {r['started']:20}  {r['command']:8}  {r['label'] or '-':12}  "
              f"{_verdicts(r):16}  {r['flavour']} {history.kernel_name(r)}")
    print("\nchanges (per driver/flavour/label series):")
    for c in changes:
        what = "started failing" if c.started_failing else "stopped failing"
        sigs = f"  [{', '.join(c.signatures)}]" if c.signatures else ""
        print(f"  {c.scenario}: {what} in run {c.run['id']} ({c.run['started']}, "
              f"{history.kernel_name(c.run)}); before: run {c.previous['id']} "
              f"({history.kernel_name(c.previous)}), series {c.series}{sigs}")
    if not changes:
        print("  none")
    print("\nflaky signatures (seen in some runs, not all, of one scenario on one kernel):")
    for f in flaky:
        print(f"  {f.scenario}: {f.title} [{f.signature}] in {f.hits}/{f.runs} runs on "
              f"{f.kernel}")
    if not flaky:
        print("  none")
    return 0


def _verdicts(r: dict[str, Any]) -> str:
    return ", ".join(f"{n} {v}" for v, n in sorted(r["verdicts"].items())) or "-"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("history", help="recorded runs, scenarios that started or stopped "
                       "failing, flaky signatures")
    p.add_argument("--scenario", metavar="NAME", help="only runs and changes of this scenario")
    p.add_argument("--limit", type=int, default=20, metavar="N",
                   help="list the N newest runs (default 20)")
    p.add_argument("--db", type=Path, help="database (default: "
                   "$XDG_DATA_HOME/v4l2-unplug/history.sqlite3)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)
