"""Every run, kept in an SQLite database: what ran on which kernel, and what broke.

The database is $XDG_DATA_HOME/v4l2-unplug/history.sqlite3 (by default
~/.local/share/v4l2-unplug/history.sqlite3). `v4l2-unplug run` and
`validate` record each run; `v4l2-unplug history` reads it back: the runs,
when each scenario started or stopped failing, and which signatures are
flaky (seen in some runs and not others of the same scenario on the same
kernel: the same image and module tree).

A series is the runs of one driver on one kernel flavour with one label
(the label tells a validation's baseline from its patched kernel), so a
scenario that fails on the patched kernel and passes on the baseline is not
reported as flipping back and forth. Recording never fails a run: a
database that cannot be written is reported on stderr and skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.host.race_verdict import judge_doc
from harness.host.report.compare import hits
from harness.pure.scenarios.verdicts import Verdict

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id             INTEGER PRIMARY KEY,
    started        TEXT NOT NULL,     -- ISO 8601, UTC
    duration_s     REAL,
    command        TEXT NOT NULL,     -- run | race | validate
    label          TEXT NOT NULL DEFAULT '',  -- validate: baseline | patched
    grp            TEXT,              -- shared by the runs of one validate
    driver         TEXT,
    flavour        TEXT,
    kernel_release TEXT,
    kernel_commit  TEXT,              -- the commit (or tree identity) a kernel was built from
    kernel_patches TEXT,              -- JSON list of the patches on top of it
    config_hash    TEXT,
    image_hash     TEXT,              -- the booted image's content
    kernel_id      TEXT,              -- image and module tree: the same kernel, or not
    report_dir     TEXT
);
CREATE TABLE IF NOT EXISTS results (
    run_id   INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    scenario TEXT NOT NULL,
    verdict  TEXT NOT NULL,           -- pass | fail | hang | error | not-run
    seconds  REAL,                    -- begin to end marker, kernel clock
    reason   TEXT,
    PRIMARY KEY (run_id, scenario)
);
CREATE TABLE IF NOT EXISTS signatures (
    run_id    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    scenario  TEXT NOT NULL,
    signature TEXT NOT NULL,
    title     TEXT,
    count     INTEGER NOT NULL,
    PRIMARY KEY (run_id, scenario, signature)
);
CREATE INDEX IF NOT EXISTS results_scenario ON results(scenario);
"""

# Columns added to a table after databases were first written; added in place.
ADDED_COLUMNS = {"runs": {"kernel_id": "TEXT",
                          # the signal that stopped the run (SIGINT, ...), or NULL
                          "interrupted": "TEXT"}}


def db_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"),
                                                           ".local", "share")
    return Path(base) / "v4l2-unplug" / "history.sqlite3"


@contextmanager
def connect(path: Path | None = None) -> Iterator[sqlite3.Connection]:
    path = path or db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=30)) as conn:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"{path} has schema {version}, newer than this "
                                        f"v4l2-unplug ({SCHEMA_VERSION})")
        conn.executescript(SCHEMA)
        for table, columns in ADDED_COLUMNS.items():
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in have:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        with conn:
            yield conn


def kernel_identity(image: str | None) -> dict[str, Any]:
    """Commit, patches and config of a kernel, from what its build left beside the image."""
    out: dict[str, Any] = {"commit": None, "patches": [], "config_hash": None,
                           "image_hash": None, "kernel_id": None}
    if not image or not Path(image).is_file():
        return out
    image_path = Path(image)
    out["image_hash"] = hashlib.sha256(image_path.read_bytes()).hexdigest()[:16]
    # A patched module leaves the image as it was; every module tree sits in its own
    # cache entry beside its image, so the image's path tells the module trees apart.
    out["kernel_id"] = hashlib.sha256(
        f"{image_path.resolve()}\0{out['image_hash']}".encode()).hexdigest()[:16]
    info = image_path.parent / "build-info.json"
    if info.is_file():
        data = json.loads(info.read_text())
        out.update(commit=data.get("commit") or data.get("identity"),
                   patches=data.get("patches", []), config_hash=data.get("config_hash"))
    else:
        configs = [image_path.parent / "config", *image_path.parent.glob("boot/config-*")]
        found = next((c for c in configs if c.is_file()), None)
        if found:
            out["config_hash"] = hashlib.sha256(found.read_bytes()).hexdigest()[:12]
    return out


def record(doc: dict[str, Any], command: str = "run", label: str = "",
           report_dir: Path | str | None = None, group: str | None = None,
           path: Path | None = None) -> int | None:
    """Store one run's results.json document; returns the run's id (None if it failed)."""
    try:
        return _record(doc, command, label, report_dir, group, path)
    except (sqlite3.Error, OSError, ValueError) as e:
        print(f"v4l2-unplug: warning: run not recorded in history ({path or db_path()}): {e}",
              file=sys.stderr)
        return None


def _record(doc: dict[str, Any], command: str, label: str, report_dir: Path | str | None,
            group: str | None, path: Path | None) -> int:
    kernel = doc.get("kernel", {})
    ident = kernel_identity(kernel.get("image"))
    if doc.get("mode") == "race":
        command = "race" if command == "run" else command
    with connect(path) as conn:
        cur = conn.execute(
            "INSERT INTO runs (started, duration_s, command, label, grp, driver, flavour,"
            " kernel_release, kernel_commit, kernel_patches, config_hash, image_hash, kernel_id,"
            " report_dir, interrupted) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (doc.get("started", ""), doc.get("duration_s"), command, label, group,
             doc.get("driver"), kernel.get("flavour"), kernel.get("release"), ident["commit"],
             json.dumps(ident["patches"]), ident["config_hash"], ident["image_hash"],
             ident["kernel_id"], str(report_dir) if report_dir else None,
             doc.get("interrupted")),
        )
        run_id = cur.lastrowid
        assert run_id is not None
        rows = []
        for s in doc.get("scenarios", []):
            times = s.get("kernel_times") or {}
            seconds = (round(times["end"] - times["begin"], 3)
                       if times.get("end") is not None and times.get("begin") is not None
                       else None)
            rows.append((run_id, s["name"], s["verdict"], seconds, s.get("reason", "")))
        if doc.get("mode") == "race":
            verdict, reason = judge_doc(doc)
            rows.append((run_id, "race", verdict, doc.get("stats", {}).get("duration"), reason))
        conn.executemany("INSERT INTO results VALUES (?,?,?,?,?)", rows)
        counts: dict[tuple[str, str], list[Any]] = {}
        for hit in hits(doc, "base", 1):
            key = (hit.scenario, hit.finding["signature"])
            counts.setdefault(key, [hit.finding.get("title", ""), 0])[1] += 1
        conn.executemany("INSERT INTO signatures VALUES (?,?,?,?,?)",
                         [(run_id, sc, sig, title, n) for (sc, sig), (title, n) in counts.items()])
        return run_id


# --- reading it back

@dataclass(frozen=True)
class Change:
    scenario: str
    series: str
    started_failing: bool  # False: stopped failing
    run: dict[str, Any]  # the first run with the new state
    previous: dict[str, Any]  # the last run with the old state
    signatures: tuple[str, ...]  # what it failed with (at the change, or before it stopped)


@dataclass(frozen=True)
class Flaky:
    scenario: str
    signature: str
    title: str
    hits: int
    runs: int
    kernel: str


def series_name(run: dict[str, Any]) -> str:
    parts = [run["driver"] or "?", run["flavour"] or "?"]
    if run["label"]:
        parts.append(run["label"])
    return "/".join(parts)


def kernel_name(run: dict[str, Any]) -> str:
    text = run["kernel_release"] or "?"
    commit = str(run["kernel_commit"] or "")
    if commit:
        text += f" @{commit[:12] if re.fullmatch(r'[0-9a-f]{40}', commit) else commit}"
    patches = json.loads(run["kernel_patches"] or "[]")
    if patches:
        text += " + " + ", ".join(patches)
    if run["config_hash"]:
        text += f" config {run['config_hash'][:8]}"
    return text


def runs(conn: sqlite3.Connection, limit: int | None = None,
         scenario: str | None = None) -> list[dict[str, Any]]:
    """Runs, newest first, each with its verdict counts."""
    where, args = ("WHERE id IN (SELECT run_id FROM results WHERE scenario = ?)",
                   [scenario]) if scenario else ("", [])
    sql = (f"SELECT * FROM runs {where} ORDER BY id DESC"
           + (" LIMIT ?" if limit else ""))
    rows = [dict(r) for r in conn.execute(sql, [*args, *([limit] if limit else [])])]
    for r in rows:
        r["verdicts"] = {v: n for v, n in conn.execute(
            "SELECT verdict, COUNT(*) FROM results WHERE run_id = ? GROUP BY verdict", (r["id"],))}
    return rows


def changes(conn: sqlite3.Connection, scenario: str | None = None) -> list[Change]:
    """Where a scenario went from passing to failing or back, within its series."""
    all_runs = {r["id"]: r for r in (dict(x) for x in conn.execute("SELECT * FROM runs"))}
    sigs: dict[tuple[int, str], list[str]] = {}
    for row in conn.execute("SELECT run_id, scenario, signature FROM signatures"):
        sigs.setdefault((row["run_id"], row["scenario"]), []).append(row["signature"])
    sql = "SELECT run_id, scenario, verdict FROM results"
    args: list[Any] = []
    if scenario:
        sql += " WHERE scenario = ?"
        args.append(scenario)
    last: dict[tuple[str, str], tuple[bool, int]] = {}
    out = []
    for row in conn.execute(sql + " ORDER BY run_id", args):
        if not Verdict(row["verdict"]).judges_the_driver:
            continue
        run = all_runs[row["run_id"]]
        key = (row["scenario"], series_name(run))
        failing = row["verdict"] != Verdict.PASS
        before = last.get(key)
        if before is not None and before[0] != failing:
            blame_run = row["run_id"] if failing else before[1]
            out.append(Change(row["scenario"], key[1], failing, run, all_runs[before[1]],
                              tuple(sigs.get((blame_run, row["scenario"]), []))))
        last[key] = (failing, row["run_id"])
    return out


def flaky(conn: sqlite3.Connection, scenario: str | None = None) -> list[Flaky]:
    """Signatures seen in some but not all runs of a scenario on one kernel image."""
    sql = """
        SELECT r.scenario, s.signature, MAX(s.title) AS title, u.kernel_id,
               MAX(u.kernel_release) AS release,
               COUNT(DISTINCT s.run_id) AS hits,
               (SELECT COUNT(*) FROM results r2 JOIN runs u2 ON u2.id = r2.run_id
                 WHERE r2.scenario = r.scenario AND u2.kernel_id = u.kernel_id
                   AND r2.verdict IN ({judging})) AS total
          FROM results r JOIN runs u ON u.id = r.run_id
          JOIN signatures s ON s.run_id = r.run_id AND s.scenario = r.scenario
         WHERE u.kernel_id IS NOT NULL {where}
         GROUP BY r.scenario, s.signature, u.kernel_id
        HAVING hits < total
         ORDER BY r.scenario, s.signature
    """
    where = "AND r.scenario = :scenario" if scenario else ""
    judging = [v for v in Verdict if v.judges_the_driver]
    args = {"scenario": scenario, **{f"v{i}": str(v) for i, v in enumerate(judging)}}
    named = ", ".join(f":v{i}" for i in range(len(judging)))
    return [Flaky(r["scenario"], r["signature"], r["title"], r["hits"], r["total"],
                  f"{r['release']} kernel {r['kernel_id'][:8]}")
            for r in conn.execute(sql.format(where=where, judging=named), args)]
