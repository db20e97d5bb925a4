"""`validate`: the same scenarios on a baseline and a patched kernel, and what changed.

Both kernels come from one tree (git commits or an unpacked source
directory) with vm/debug.config on top of tinyconfig:

    baseline = tree at --base  + base patches
    patched  = tree at --head  + base patches + patches

or, with --kernel FLAVOUR, both are that flavour's kernel and the patches go
to the driver's modules, built out of tree (as `run --patch` builds them):

    baseline = FLAVOUR with the driver + base patches
    patched  = FLAVOUR with the driver + base patches + patches

The patched kernel is derived from the baseline's build, so a driver patch
rebuilds a few objects (harness.host.kernels.tree). Repetitions alternate
between the kernels (baseline 1, patched 1, baseline 2, ...) so that
anything drifting over time hits both alike; repetition i races seed
--seed + i - 1 on both. With a budget, rounds go on after --repeat until
every signature is decided or the budget would be overrun.
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
from harness.host.race_series import RacePlan
from harness.host.report import history, html, junit, results
from harness.host.report.compare import SIDE_LABELS, SIDES, Comparison, compare
from harness.pure.errors import HarnessError
from harness.pure.profiles import DEFAULT_DRIVER, get_profile
from harness.pure.race.rates import CONFIDENCE
from harness.pure.race.status import look_alpha
from harness.pure.scenarios.verdicts import SignatureStatus

SCHEMA = 2


@dataclass
class Options:
    tree: Path | None = None  # the tree form: both kernels built from it
    kernel: str | None = None  # the flavour form: this flavour, the driver's modules patched
    base: str | None = None
    head: str | None = None
    base_patches: Sequence[Path] = ()
    patches: Sequence[Path] = ()
    scenarios: Sequence[str] | None = None  # None: the whole matrix
    race: RacePlan | None = None
    repeat: int = 1
    driver: str = DEFAULT_DRIVER
    budget: float | None = None  # seconds of running (not building) to decide in
    confidence: float = CONFIDENCE


@dataclass
class Side:
    name: str
    recipe: tree.Recipe | None  # the tree form
    patches: tuple[Patch, ...] = ()  # the flavour form: the driver's patches
    flavour: str | None = None
    state: tree.State | None = None
    kernel: Kernel | None = None
    runs: list[list[dict[str, Any]]] = field(default_factory=list)  # per repetition
    run_info: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return SIDE_LABELS[self.name]

    def describe(self) -> str:
        if self.recipe is not None:
            return self.recipe.describe()
        extra = " + " + ", ".join(p.label for p in self.patches) if self.patches else ""
        return f"kernel {self.flavour}, driver modules built out of tree{extra}"


def plan(opts: Options) -> dict[str, Side]:
    """Both recipes, checked before anything is built."""
    if opts.repeat < 1:
        raise HarnessError("--repeat must be at least 1")
    if (opts.tree is None) == (opts.kernel is None):
        raise HarnessError("give one of --tree SRC (build both kernels) or --kernel FLAVOUR "
                           "(patch only the driver's modules)")
    if opts.budget is not None and opts.race is None:
        raise HarnessError("--budget races on until every signature is decided: it needs --race")
    base_patches = tuple(read_series(opts.base_patches))
    patches = tuple(read_series(opts.patches))
    if opts.kernel is not None:
        if opts.base or opts.head:
            raise HarnessError("--base/--head pick commits of --tree; with --kernel give "
                               "--patch FILE")
        if not patches:
            raise HarnessError("nothing to compare: give --patch FILE")
        return {"base": Side("base", None, base_patches, opts.kernel),
                "head": Side("head", None, base_patches + patches, opts.kernel)}
    assert opts.tree is not None
    arch = guest_arch(get_profile(opts.driver))
    source = tree.open_source(opts.tree)
    if source.kind == "dir" and (opts.base or opts.head):
        raise HarnessError(f"--base/--head need a git tree; {source.path} is a plain directory")
    base_rev = source.resolve(opts.base)
    head_rev = source.resolve(opts.head) if opts.head else base_rev
    if not patches and head_rev == base_rev:
        raise HarnessError("nothing to compare: give --patch FILE, or --head REV on a git tree")
    return {
        "base": Side("base", tree.Recipe(source, base_rev, base_patches, arch)),
        "head": Side("head", tree.Recipe(source, head_rev, base_patches + patches, arch)),
    }


def build(sides: dict[str, Side], driver: str = DEFAULT_DRIVER) -> None:
    """Build (or find) both kernels: the patched one derived from the baseline."""
    base, head = sides["base"], sides["head"]
    if base.recipe is None or head.recipe is None:
        _build_modules(sides, driver)
        return
    fragment = debug.fragment_for(base.recipe.source.path, arch=base.recipe.arch)
    base.state = tree.build(base.recipe, fragment)
    head.state = tree.build(head.recipe, fragment, parent=base.state)
    for side in (base, head):
        assert side.state is not None
        side.kernel = tree.install(side.state, "tree")
        how = ("reused, nothing rebuilt" if side.state.reused
               else f"built in {side.state.seconds:.0f} s")
        print(f"{side.label:9} {side.describe()}\n          kernel "
              f"{side.kernel.release}, state {side.state.key[:12]}: {how}",
              file=sys.stderr, flush=True)
    if base.state and head.state and base.state.key == head.state.key:
        print("note: the patched tree has the same content as the baseline", file=sys.stderr)


def _build_modules(sides: dict[str, Side], driver: str) -> None:
    """The flavour form: the flavour's kernel, the driver's modules built with each
    side's patches (cached by their content, like `run --patch`)."""
    from harness.host.targets.emulated import provision_kernel

    profile = get_profile(driver)
    for side in sides.values():
        assert side.flavour is not None
        started = time.monotonic()
        files = list(dict.fromkeys(p.file for p in side.patches))
        side.kernel = provision_kernel(side.flavour, profile, files)
        print(f"{side.label:9} {side.describe()}\n          kernel {side.kernel.release} "
              f"({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)


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
    tag = (f"{side.label} {repetition}/{opts.repeat}" if repetition <= opts.repeat
           else f"{side.label} {repetition}, budget")
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
        seed = r.seed + repetition - 1
        run_dir = out / side.name / f"race-{repetition:02d}"
        started = time.time()
        print(f"[{tag}] race: seed {seed}, {r.duration:.0f} s", file=sys.stderr, flush=True)
        with RaceProgress(r.duration, f"{tag} race") as race_bar:
            race = run_race(target, profile.name, r.duration, seed, r.workers, r.mode,
                            run_dir, race_bar.update,
                            kinds=list(r.kinds) if r.kinds else None)
        doc = results.race_with_statistics(race, kernel, profile.name, started)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "results.json").write_text(json.dumps(doc, indent=1, default=str))
        results.write_pages(doc, run_dir)
        history.record(doc, "validate", side.label, run_dir, group)
        docs.append(doc)
        e = doc.get("exposure")
        where = (f"{e['cycles']} cycle{'s' * (e['cycles'] != 1)}, {e['seconds']:.1f} s"
                 if e else "no exposure recorded")
        side.run_info.append({"run": repetition, "kind": "race", "seed": seed,
                              "dir": str(run_dir),
                              "summary": f"seed {seed}, {where}: " + (
                                  "; ".join(dict.fromkeys(f["title"] for f in doc["findings"]))
                                  or f"no kernel report ({doc['outcome']})")})
    return docs


def validate(opts: Options, out: Path, build_only: bool = False) -> dict[str, Any]:
    """Build, run both sides, compare, and write the reports; returns validate.json."""
    started = time.time()
    sides = plan(opts)
    t0 = time.monotonic()
    build(sides, opts.driver)
    build_seconds = {name: s.state.seconds if s.state else 0.0 for name, s in sides.items()}
    build_total = time.monotonic() - t0
    if build_only:
        return {"build_s": round(build_total, 1),
                **{name: str(s.kernel.image) for name, s in sides.items() if s.kernel}}
    out.mkdir(parents=True, exist_ok=True)
    group = uuid.uuid4().hex[:12]
    t1 = time.monotonic()
    repetition, looks, round_s = 0, 0, 0.0
    while True:
        round_start = time.monotonic()
        repetition += 1
        for side in sides.values():
            side.runs.append(run_side(side, opts, repetition, out, group))
        round_s = time.monotonic() - round_start
        if repetition < opts.repeat:
            continue
        if opts.budget is None:
            comparison = compare(sides["base"].runs, sides["head"].runs, opts.confidence)
            break
        # Each look at the evidence spends part of alpha (look_alpha): racing
        # on until the tests pass must not make a pass likelier than alpha.
        looks += 1
        comparison = compare(sides["base"].runs, sides["head"].runs, opts.confidence,
                             look_alpha(opts.confidence, looks))
        spent = time.monotonic() - t1
        if not comparison.undecided:
            break
        if spent + round_s > opts.budget:
            print(f"budget: {spent:.0f} s of {opts.budget:.0f} s spent, a round takes "
                  f"{round_s:.0f} s: stopping with {len(comparison.undecided)} undecided",
                  file=sys.stderr, flush=True)
            break
        print(f"budget: {len(comparison.undecided)} undecided after {repetition} rounds "
              f"({spent:.0f} s of {opts.budget:.0f} s): another round", file=sys.stderr,
              flush=True)
    runs_seconds = time.monotonic() - t1
    doc = document(opts, sides, comparison, started,
                   {"build_base_s": round(build_seconds["base"], 1),
                    "build_head_s": round(build_seconds["head"], 1),
                    "build_total_s": round(build_total, 1),
                    "runs_s": round(runs_seconds, 1)},
                   {"budget_s": opts.budget, "rounds": repetition, "looks": looks}
                   if opts.budget is not None else None)
    write(doc, sides, comparison, out)
    return doc


def document(opts: Options, sides: dict[str, Side], comparison: Comparison, started: float,
             timings: dict[str, float],
             budget: dict[str, Any] | None = None) -> dict[str, Any]:
    """validate.json (schema documented in docs/results.md)."""
    names = sorted({n for s in sides.values() for reps in s.runs for d in reps
                    for n in (x["name"] for x in d.get("scenarios", []))})
    recipe = sides["base"].recipe
    return {
        "schema": SCHEMA,
        "tool": "v4l2-unplug",
        "command": "validate",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "driver": opts.driver,
        "tree": ({"path": str(recipe.source.path), "kind": recipe.source.kind}
                 if recipe is not None else None),
        "kernel": opts.kernel,
        "repeat": opts.repeat,
        "rounds": len(sides["base"].runs),
        "budget": budget,
        "scenarios": names,
        "race": opts.race.to_dict() if opts.race else None,
        "timings": timings,
        "sides": {name: _side_dict(side) for name, side in sides.items()},
        **comparison.to_dict(),
    }


def _side_dict(side: Side) -> dict[str, Any]:
    assert side.kernel is not None
    kernel = {"release": side.kernel.release, "image": str(side.kernel.image),
              "flavour": side.kernel.flavour}
    if side.recipe is None:
        return {"label": side.label, "describe": side.describe(), "rev": None,
                "patches": [_patch_dict(p) for p in side.patches],
                "kernel": {**kernel, "state": None, "config_hash": None},
                "build": None, "runs": side.run_info}
    assert side.state is not None
    return {
        "label": side.label,
        "describe": side.describe(),
        "rev": side.recipe.source.resolve(side.recipe.rev),
        "patches": [_patch_dict(p) for p in side.recipe.patches],
        "kernel": {**kernel, "state": side.state.key, "config_hash": side.state.config_hash},
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
    """KTAP: one test per scenario, failed where the patched kernel shows a
    signature the baseline did not (introduced, unmasked)."""
    per: dict[str, list[str]] = {}
    bad: set[str] = set()
    for sig in comparison.signatures:
        for name in sig.scenarios:
            per.setdefault(name, []).append(f"{sig.status}: {sig.title} [{sig.signature}]")
            if sig.status in (SignatureStatus.INTRODUCED, SignatureStatus.UNMASKED):
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
        rows.append(f"{s['label']:9} {s['describe']}")
        if s["build"] is None:
            rows.append(f"{'':9} kernel {s['kernel']['release']} ({s['kernel']['flavour']})")
        else:
            how = ("reused" if s["build"]["reused"]
                   else f"built in {s['build']['seconds']:.0f} s")
            rows.append(f"{'':9} kernel {s['kernel']['release']}, state "
                        f"{s['kernel']['state'][:12]} ({how})")
    for name in SIDES:
        for info in doc["sides"][name]["runs"]:
            if info["kind"] == "race":
                rows.append(f"{SIDE_LABELS[name]:9} race {info['run']}: {info['summary']}")
    unmeasured = {k: v for k, v in comparison.unmeasured.items() if v}
    for name, n in unmeasured.items():
        rows.append(f"{SIDE_LABELS[name]:9} {n} race{'s' * (n != 1)} recorded no exposure "
                    "(the race did not run, or the guest died): not counted")
    rows.append("")
    if not comparison.signatures:
        rows.append("no kernel report, broken contract or hang on either kernel")
    for sig in comparison.signatures:
        assert sig.decision is not None
        rows.append(f"{sig.status.upper():13} {sig.title}  [{sig.signature}]")
        rows += [f"{'':13} {line}" for line in sig.decision.lines()]
        rows.append(f"{'':13} scenarios: " + ", ".join(sig.scenarios))
    t = doc["timings"]
    tests = (f"tests at alpha {comparison.alpha:.3g}, intervals at "
             f"{comparison.confidence:.0%}")
    if doc.get("budget"):
        b = doc["budget"]
        tests += (f"; budget {b['budget_s']:.0f} s: {b['rounds']} rounds, "
                  f"{b['looks']} looks")
    rows += ["", tests,
             f"result: {comparison.result} (exit status {comparison.exit_status})",
             f"time: builds {t['build_total_s']:.1f} s, runs {t['runs_s']:.1f} s, "
             f"total {doc['duration_s']:.1f} s"]
    return "\n".join(rows)
