"""`validate`: the same scenarios on a baseline and a patched kernel, and what changed.

Both kernels come from one tree (git commits or an unpacked source
directory) with vm/debug.config on top of tinyconfig:

    baseline = tree at --base  + base patches
    patched  = tree at --head  + base patches + patches

The patched kernel is derived from the baseline's build, so a driver patch
rebuilds a few objects (harness.host.kernels.tree). Repetitions alternate
between the kernels (baseline 1, patched 1, baseline 2, ...) so that
anything drifting over time hits both alike.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.host.kernels import debug, tree
from harness.host.kernels.emulation import guest_arch
from harness.host.kernels.kernel import Kernel
from harness.host.kernels.series import Patch, read_series
from harness.host.report import history, html, junit, results
from harness.host.report.compare import SIDE_LABELS, SIDES, Comparison, compare
from harness.pure.errors import HarnessError
from harness.pure.profiles import DEFAULT_DRIVER, get_profile
from harness.pure.scenarios.verdicts import SignatureStatus

SCHEMA = 1


@dataclass(frozen=True)
class Race:
    duration: float
    seed: int
    workers: int
    mode: str

    def to_dict(self) -> dict[str, Any]:
        return {"duration": self.duration, "seed": self.seed, "workers": self.workers,
                "mode": self.mode}


@dataclass
class Options:
    tree: Path
    base: str | None = None
    head: str | None = None
    base_patches: Sequence[Path] = ()
    patches: Sequence[Path] = ()
    scenarios: Sequence[str] | None = None  # None: the whole matrix
    race: Race | None = None
    repeat: int = 1
    driver: str = DEFAULT_DRIVER


@dataclass
class Side:
    name: str
    recipe: tree.Recipe
    state: tree.State | None = None
    kernel: Kernel | None = None
    runs: list[list[dict[str, Any]]] = field(default_factory=list)  # per repetition
    run_info: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return SIDE_LABELS[self.name]


def plan(opts: Options) -> dict[str, Side]:
    """Both recipes, checked before anything is built."""
    if opts.repeat < 1:
        raise HarnessError("--repeat must be at least 1")
    arch = guest_arch(get_profile(opts.driver))
    source = tree.open_source(opts.tree)
    if source.kind == "dir" and (opts.base or opts.head):
        raise HarnessError(f"--base/--head need a git tree; {source.path} is a plain directory")
    base_patches = tuple(read_series(opts.base_patches))
    patches = tuple(read_series(opts.patches))
    base_rev = source.resolve(opts.base)
    head_rev = source.resolve(opts.head) if opts.head else base_rev
    if not patches and head_rev == base_rev:
        raise HarnessError("nothing to compare: give --patch FILE, or --head REV on a git tree")
    return {
        "base": Side("base", tree.Recipe(source, base_rev, base_patches, arch)),
        "head": Side("head", tree.Recipe(source, head_rev, base_patches + patches, arch)),
    }


def build(sides: dict[str, Side]) -> None:
    """Build (or find) both kernels: the patched one derived from the baseline."""
    recipe = sides["base"].recipe
    fragment = debug.fragment_for(recipe.source.path, arch=recipe.arch)
    base, head = sides["base"], sides["head"]
    base.state = tree.build(base.recipe, fragment)
    head.state = tree.build(head.recipe, fragment, parent=base.state)
    for side in (base, head):
        assert side.state is not None
        side.kernel = tree.install(side.state, "tree")
        how = ("reused, nothing rebuilt" if side.state.reused
               else f"built in {side.state.seconds:.0f} s")
        print(f"{side.label:9} {side.recipe.describe()}\n          kernel "
              f"{side.kernel.release}, state {side.state.key[:12]}: {how}",
              file=sys.stderr, flush=True)
    if base.state and head.state and base.state.key == head.state.key:
        print("note: the patched tree has the same content as the baseline", file=sys.stderr)


Progress = Callable[[str], None]


def run_side(side: Side, opts: Options, repetition: int, out: Path,
             group: str) -> list[dict[str, Any]]:
    """One repetition on one kernel: the scenarios and/or the race; their documents."""
    from harness.host.progress import MatrixProgress, RaceProgress
    from harness.host.runner import run_race, run_scenarios
    from harness.host.targets.emulated import provision
    from harness.pure.scenarios.matrix import build_matrix, select

    assert side.kernel is not None
    profile = get_profile(opts.driver)
    target, kernel = provision(side.kernel, profile)
    docs = []
    tag = f"{side.label} {repetition}/{opts.repeat}"
    if opts.scenarios is not None or opts.race is None:
        chosen = select(build_matrix(profile), list(opts.scenarios or []))
        run_dir = out / side.name / f"run-{repetition:02d}"
        started = time.time()

        with MatrixProgress(len(chosen), tag) as bar:
            result = run_scenarios(target, profile.name, chosen, run_dir, bar.update)
        doc = results.write(result, kernel, profile.name, run_dir, started)
        history.record(doc, "validate", side.label, run_dir, group)
        docs.append(doc)
        side.run_info.append({"run": repetition, "kind": "scenarios", "dir": str(run_dir),
                              "summary": ", ".join(f"{n} {v}" for v, n in
                                                   doc["summary"].items() if n)})
    if opts.race is not None:
        r = opts.race
        run_dir = out / side.name / f"race-{repetition:02d}"
        started = time.time()
        print(f"[{tag}] race: seed {r.seed}, {r.duration:.0f} s", file=sys.stderr, flush=True)
        with RaceProgress(r.duration, f"{tag} race") as race_bar:
            race = run_race(target, profile.name, r.duration, r.seed, r.workers, r.mode,
                            run_dir, race_bar.update)
        doc = results.race_with_statistics(race, kernel, profile.name, started)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "results.json").write_text(json.dumps(doc, indent=1, default=str))
        results.write_pages(doc, run_dir)
        history.record(doc, "validate", side.label, run_dir, group)
        docs.append(doc)
        side.run_info.append({"run": repetition, "kind": "race", "dir": str(run_dir),
                              "summary": "; ".join(f["title"] for f in doc["findings"])
                              or f"no kernel report ({doc['outcome']})"})
    return docs


def validate(opts: Options, out: Path, build_only: bool = False) -> dict[str, Any]:
    """Build, run both sides, compare, and write the reports; returns validate.json."""
    started = time.time()
    sides = plan(opts)
    t0 = time.monotonic()
    build(sides)
    build_seconds = {name: s.state.seconds if s.state else 0.0 for name, s in sides.items()}
    build_total = time.monotonic() - t0
    if build_only:
        return {"build_s": round(build_total, 1),
                **{name: str(s.kernel.image) for name, s in sides.items() if s.kernel}}
    out.mkdir(parents=True, exist_ok=True)
    group = uuid.uuid4().hex[:12]
    t1 = time.monotonic()
    for repetition in range(1, opts.repeat + 1):
        for side in sides.values():
            side.runs.append(run_side(side, opts, repetition, out, group))
    runs_seconds = time.monotonic() - t1
    comparison = compare(sides["base"].runs, sides["head"].runs)
    doc = document(opts, sides, comparison, started,
                   {"build_base_s": round(build_seconds["base"], 1),
                    "build_head_s": round(build_seconds["head"], 1),
                    "build_total_s": round(build_total, 1),
                    "runs_s": round(runs_seconds, 1)})
    write(doc, sides, comparison, out)
    return doc


def document(opts: Options, sides: dict[str, Side], comparison: Comparison, started: float,
             timings: dict[str, float]) -> dict[str, Any]:
    """validate.json (schema documented in docs/results.md)."""
    names = sorted({n for s in sides.values() for reps in s.runs for d in reps
                    for n in (x["name"] for x in d.get("scenarios", []))})
    first = sides["base"].recipe.source
    return {
        "schema": SCHEMA,
        "tool": "v4l2-unplug",
        "command": "validate",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "driver": opts.driver,
        "tree": {"path": str(first.path), "kind": first.kind},
        "repeat": opts.repeat,
        "scenarios": names,
        "race": opts.race.to_dict() if opts.race else None,
        "timings": timings,
        "sides": {name: _side_dict(side) for name, side in sides.items()},
        **comparison.to_dict(),
    }


def _side_dict(side: Side) -> dict[str, Any]:
    assert side.state is not None and side.kernel is not None
    return {
        "label": side.label,
        "describe": side.recipe.describe(),
        "rev": side.recipe.source.resolve(side.recipe.rev),
        "patches": [_patch_dict(p) for p in side.recipe.patches],
        "kernel": {"release": side.kernel.release, "image": str(side.kernel.image),
                   "state": side.state.key, "config_hash": side.state.config_hash},
        "build": {"reused": side.state.reused, "seconds": round(side.state.seconds, 1),
                  "log": str(side.state.log), "dir": str(side.state.dir)},
        "runs": side.run_info,
    }


def _patch_dict(p: Patch) -> dict[str, Any]:
    return {"file": str(p.file), "number": p.number, "total": p.total, "subject": p.subject,
            "files": list(p.files)}


def write(doc: dict[str, Any], sides: dict[str, Side], comparison: Comparison,
          out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "validate.json").write_text(json.dumps(doc, indent=1, default=str))
    side_runs = {name: sides[name].runs for name in SIDES}
    (out / "validate.junit.xml").write_text(junit.validate_xml(doc, side_runs, comparison))
    (out / "validate.ktap").write_text(ktap(comparison))
    (out / "report.html").write_text(html.validate_page(doc, comparison, out))
    (out / "summary.txt").write_text(summary(doc, comparison) + "\n")


def ktap(comparison: Comparison) -> str:
    """KTAP: one test per scenario, failed where the patch introduced a signature."""
    per: dict[str, list[str]] = {}
    bad: set[str] = set()
    for sig in comparison.signatures:
        for name in sig.scenarios:
            per.setdefault(name, []).append(f"{sig.status}: {sig.title} [{sig.signature}]")
            if sig.status == SignatureStatus.INTRODUCED:
                bad.add(name)
    names = list(comparison.verdicts) + [n for n in per if n not in comparison.verdicts]
    lines = ["KTAP version 1", f"1..{len(names)}"]
    for i, name in enumerate(names, start=1):
        lines += [f"# {name}: {note}" for note in per.get(name, [])]
        lines.append(f"{'not ok' if name in bad else 'ok'} {i} {name}")
    return "\n".join(lines) + "\n"


def summary(doc: dict[str, Any], comparison: Comparison) -> str:
    rows = []
    for name in SIDES:
        s = doc["sides"][name]
        how = "reused" if s["build"]["reused"] else f"built in {s['build']['seconds']:.0f} s"
        rows.append(f"{s['label']:9} {s['describe']}")
        rows.append(f"{'':9} kernel {s['kernel']['release']}, state "
                    f"{s['kernel']['state'][:12]} ({how})")
    rows.append("")
    if not comparison.signatures:
        rows.append("no kernel report, broken contract or hang on either kernel")
    for sig in comparison.signatures:
        rows.append(f"{sig.status.upper():13} {sig.title}  [{sig.signature}]")
        rows.append(f"{'':13} baseline {len(sig.hits['base'])}/{sig.runs}, patched "
                    f"{len(sig.hits['head'])}/{sig.runs}; scenarios: "
                    + ", ".join(sig.scenarios))
    t = doc["timings"]
    rows += ["", f"result: {comparison.result} (exit status {comparison.exit_status})",
             f"time: builds {t['build_total_s']:.1f} s, runs {t['runs_s']:.1f} s, "
             f"total {doc['duration_s']:.1f} s"]
    return "\n".join(rows)
