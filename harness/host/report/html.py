"""One self-contained HTML page per run, and one per validation.

Everything is inline (styles, report texts, console excerpts): the page
can be attached to a CI job or mailed and still shows everything. There is
no script. Links join the parts: a scenario's row links to its findings,
a finding links back to its scenario and to the console log beside the
page; the validation page links each signature to its reports on both
sides and to every run's own page.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.host.report.compare import SIDE_LABELS, SIDES, Comparison, SignatureDiff
from harness.pure.race.rates import number

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:110em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f0f0f0}
pre{background:#f7f7f7;border:1px solid #ddd;padding:.5em;overflow-x:auto;font-size:12px}
.pass,.fixed{color:#176117}.fail,.introduced,.unmasked,.hang,.error{color:#a31515;font-weight:bold}
.inconclusive,.narrowed{color:#8a5a00;font-weight:bold}.still-present,.not-run{color:#555}
.sig{font-family:monospace}.finding{border-left:4px solid #ccc;padding-left:1em;margin:1em 0}
.hl{background:#fff3b0}
"""

# Console lines shown before a report's first line, and after its last.
EXCERPT_BEFORE = 20
EXCERPT_AFTER = 5


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def anchor(prefix: str, name: str) -> str:
    return f"{prefix}-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}"


def _page(title: str, body: Iterable[str]) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _link(target: str | None, base: Path, text: str) -> str:
    """A link to a file, relative to the page's directory, or plain text when unknown."""
    if not target:
        return esc(text)
    path = Path(target)
    try:
        rel = os.path.relpath(path.resolve(), base.resolve())
    except ValueError:
        rel = str(path)
    return f'<a href="{esc(rel)}">{esc(text)}</a>'


def console_excerpt(console: str | None, line: int | None, text: str) -> str | None:
    """The console around a report: what ran before it, the report, a little after."""
    if not console or not line:
        return None
    try:
        lines = Path(console).read_text(errors="replace").splitlines()
    except OSError:
        return None
    start = max(0, line - 1 - EXCERPT_BEFORE)
    end = min(len(lines), line - 1 + len(text.splitlines()) + EXCERPT_AFTER)
    return "\n".join(lines[start:end])


# What a finding's `extra` holds, in the order shown, with the label shown
# (harness.pure.kmsg.report.Finding.extra); keys not named here follow under their own names.
EXTRA_LABELS = {
    "access": "access",
    "size": "size (bytes)",
    "alloc_frame": "allocated by",
    "free_frame": "freed by",
    "cache": "slab cache",
    "otype": "object type",
    "hint": "object hint",
    "what": "what",
    "file": "source",
    "secs": "blocked (s)",
    "count": "count",
    "reason": "reason",
    "kasan": "KASAN saw",
    "panic": "led to panic",
    "unnamed_frame": "unnamed frame",
}


def _details(f: dict[str, Any]) -> list[tuple[str, str]]:
    """A finding's fields beyond its title line, as (label, value) rows."""
    rows: list[tuple[str, str]] = []
    if f.get("kind"):
        rows.append(("kind", f["kind"]))
    if f.get("guilty_rule"):
        rows.append(("guilty frame from", f["guilty_rule"]))
    if f.get("task") is not None or f.get("pid") is not None:
        task = f"{f.get('task') or '?'} (pid {f['pid'] if f.get('pid') is not None else '?'})"
        rows.append(("task", task + (f" on CPU {f['cpu']}" if f.get("cpu") is not None else "")))
    if f.get("timestamp") is not None:
        rows.append(("time", f"{f['timestamp']:.6f} s"))
    if f.get("taint") is not None:
        rows.append(("taint", " ".join(f["taint"]) or "not tainted"))
    if f.get("corrupted"):
        rows.append(("corrupted", f.get("corrupted_reason") or "yes"))
    extra = f.get("extra") or {}
    for key in [*(k for k in EXTRA_LABELS if k in extra), *(k for k in extra
                                                            if k not in EXTRA_LABELS)]:
        rows.append((EXTRA_LABELS.get(key, key), extra[key]))
    if f.get("skipped"):
        rows.append(("frames passed over", ", ".join(f"{s['frame']} ({s['rule']})"
                                                     for s in f["skipped"])))
    return rows


def _finding_block(f: dict[str, Any], fid: str, scenario: str | None, console: str | None,
                   base: Path, back: str | None) -> list[str]:
    out = [f'<div class="finding" id="{fid}">',
           f"<h3>{esc(f['title'])}</h3>",
           f"<p>signature <span class=\"sig\">{esc(f['signature'])}</span>, "
           f"class {esc(f.get('class', '?'))}"
           + (f", guilty frame <code>{esc(f['guilty_frame'])}</code>"
              if f.get("guilty_frame") else "")
           + (f', in scenario <a href="#{back}">{esc(scenario)}</a>' if back and scenario
              else (f", in {esc(scenario)}" if scenario else ""))
           + (f", console {_link(console, base, Path(console).name)}"
              + (f" line {f['line']}" if f.get("line") else "") if console else "")
           + "</p>"]
    details = _details(f)
    if details:
        out += ['<table class="details">',
                *(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in details),
                "</table>"]
    out += ["<h4>Report</h4>", f"<pre>{esc(f.get('text', ''))}</pre>"]
    excerpt = console_excerpt(console, f.get("line"), f.get("text", ""))
    if excerpt:
        out += ["<h4>Console excerpt</h4>", f"<pre>{esc(excerpt)}</pre>"]
    out.append("</div>")
    return out


def run_page(doc: dict[str, Any], report_dir: Path) -> str:
    """A run's results.json as a page: summary, scenario table, every finding."""
    kernel = doc.get("kernel", {})
    title = f"v4l2-unplug {doc.get('driver', '')} on {kernel.get('release', '?')}"
    body = [f"<h1>{esc(title)}</h1>", "<table>"]
    for key, value in (("kernel", f"{kernel.get('flavour', '')} {kernel.get('release', '')}"),
                       ("image", kernel.get("image", "")), ("started", doc.get("started", "")),
                       ("duration", f"{doc.get('duration_s', '?')} s")):
        body.append(f"<tr><th>{esc(key)}</th><td>{esc(value)}</td></tr>")
    if "summary" in doc:
        counts = ", ".join(f'<span class="{esc(v)}">{n} {esc(v)}</span>'
                           for v, n in doc["summary"].items() if n)
        body.append(f"<tr><th>scenarios</th><td>{counts}</td></tr>")
    body.append("</table>")
    findings: list[str] = []
    if doc.get("mode") == "race":
        stats = doc.get("stats", {})
        body.append(f"<h2>Race</h2><p>seed {esc(stats.get('seed', '?'))}, "
                    f"{esc(stats.get('cycles', '?'))} {esc(stats.get('mode', ''))} cycles in "
                    f"{esc(stats.get('duration', '?'))} s, guest {esc(doc.get('outcome', '?'))}"
                    "</p>")
        for i, f in enumerate(doc.get("findings", []), start=1):
            findings += _finding_block(f, f"f-race-{i}", "race", doc.get("console"),
                                       report_dir, None)
    rows = []
    for s in doc.get("scenarios", []):
        sid = anchor("scn", s["name"])
        links = []
        for i, f in enumerate(s.get("findings", []), start=1):
            fid = anchor("f", f"{s['name']}-{i}")
            links.append(f'<a href="#{fid}">{esc(f["title"])}</a>')
            findings += _finding_block(f, fid, s["name"], s.get("console"), report_dir, sid)
        broken = [f"contract {c['contract']}: {c.get('detail', '')}"
                  for c in s.get("contracts", []) if not c.get("passed", True)]
        detail = "<br>".join(links + [esc(b) for b in broken]) or esc(s.get("reason", ""))
        rows.append(f'<tr id="{sid}"><td>{esc(s["name"])}</td>'
                    f'<td class="{esc(s["verdict"])}">{esc(s["verdict"])}</td>'
                    f"<td>{detail}</td><td>{_link(s.get('console'), report_dir, 'console')}"
                    "</td></tr>")
    if rows:
        body += ["<h2>Scenarios</h2>",
                 "<table><tr><th>scenario</th><th>verdict</th><th>findings</th><th>log</th></tr>",
                 *rows, "</table>"]
    for i, f in enumerate(doc.get("boot_findings", []), start=1):
        findings += _finding_block(f, f"f-boot-{i}", "(boot)", None, report_dir, None)
    body += ["<h2>Findings</h2>", *(findings or ["<p>No kernel reports.</p>"])]
    return _page(title, body)


def _rate(sig: SignatureDiff, side: str) -> str:
    """Hits over exposure, and the rate's interval (docs/race-statistics.md)."""
    assert sig.decision is not None
    n = sig.decision.base if side == "base" else sig.decision.head
    unit = sig.decision.unit
    if n.high is None:
        return esc(sig.rate(side))
    per = f"/{unit.per:,}" if unit.per != 1 else ""
    return esc(f"{sig.rate(side)}: {number(n.rate or 0.0)}{per} "
               f"[{number(n.low or 0.0)}, {number(n.high)}]")


def validate_page(vdoc: dict[str, Any], comparison: Comparison, report_dir: Path) -> str:
    """The validation: both kernels, the signature diff, the scenario diff, each
    signature's reports on both sides, and links to every run's own page."""
    result = comparison.result
    title = f"v4l2-unplug validate: {result}"
    body = [f'<h1>v4l2-unplug validate: <span class="{esc(result)}">{esc(result)}</span></h1>',
            "<table>",
            f"<tr><th>exit status</th><td>{comparison.exit_status}</td></tr>",
            (f"<tr><th>tree</th><td>{esc(vdoc['tree']['path'])} "
             f"({esc(vdoc['tree']['kind'])})</td></tr>" if vdoc.get("tree") else
             f"<tr><th>kernel</th><td>{esc(vdoc.get('kernel') or '?')}, the driver's "
             "modules patched</td></tr>")]
    for side in SIDES:
        s = vdoc["sides"][side]
        build = s["build"]
        if build is None:
            body.append(f"<tr><th>{SIDE_LABELS[side]}</th><td>{esc(s['describe'])}<br>"
                        f"kernel {esc(s['kernel']['release'])}</td></tr>")
            continue
        how = "reused" if build["reused"] else f"built in {build['seconds']:.0f} s"
        body.append(f"<tr><th>{SIDE_LABELS[side]}</th><td>{esc(s['describe'])}<br>"
                    f"kernel {esc(s['kernel']['release'])}, state "
                    f"<code>{esc(s['kernel']['state'][:12])}</code>, config "
                    f"<code>{esc(s['kernel']['config_hash'])}</code>, {esc(how)}</td></tr>")
    runs = vdoc.get("rounds", vdoc["repeat"])
    what = ", ".join(vdoc["scenarios"][:8]) + (" …" if len(vdoc["scenarios"]) > 8 else "")
    if vdoc.get("race"):
        what += (" race " if what else "race ") + ", ".join(
            f"{k} {v}" for k, v in vdoc["race"].items())
    body += [f"<tr><th>runs</th><td>{runs} per side: {esc(what)}</td></tr>",
             f"<tr><th>timings</th><td>{esc(_timings(vdoc))}</td></tr>", "</table>"]
    counts = comparison.counts
    body.append("<p>" + ", ".join(f'<span class="{s}">{counts[s]} {s}</span>'
                                  for s in counts) + "</p>")

    sig_ids = {sig.signature: f"sig-{i}" for i, sig in enumerate(comparison.signatures, 1)}
    body += ["<h2>Signatures: baseline against patched</h2>"]
    if comparison.signatures:
        body.append("<table><tr><th>status</th><th>title</th><th>signature</th>"
                    "<th>baseline</th><th>patched</th><th>why</th><th>scenarios</th></tr>")
        for sig in comparison.signatures:
            scn = ", ".join(f'<a href="#{anchor("scn", n)}">{esc(n)}</a>' for n in sig.scenarios)
            assert sig.decision is not None
            why = sig.decision.reason + "".join(f"; remains: {r}" for r in sig.decision.remains)
            body.append(f'<tr><td class="{sig.status}">{sig.status}</td>'
                        f'<td><a href="#{sig_ids[sig.signature]}">{esc(sig.title)}</a></td>'
                        f'<td class="sig">{esc(sig.signature)}</td><td>{_rate(sig, "base")}</td>'
                        f"<td>{_rate(sig, 'head')}</td><td>{esc(why)}</td><td>{scn}</td></tr>")
        body.append("</table>")
    else:
        body.append("<p>No kernel report, broken contract or hang on either side.</p>")

    body += ["<h2>Scenarios</h2>", "<table><tr><th>scenario</th><th>baseline</th>"
             "<th>patched</th><th>signatures</th></tr>"]
    per_scenario: dict[str, list[SignatureDiff]] = {}
    for sig in comparison.signatures:
        for name in sig.scenarios:
            per_scenario.setdefault(name, []).append(sig)
    names = list(comparison.verdicts) + [n for n in per_scenario if n not in comparison.verdicts]
    for name in names:
        verdicts = comparison.verdicts.get(name, {side: [] for side in SIDES})
        cells = "".join(
            "<td>" + " ".join(f'<span class="{esc(v)}">{esc(v)}</span>' for v in verdicts[side])
            + "</td>" for side in SIDES)
        sigs = "<br>".join(f'<a href="#{sig_ids[s.signature]}" class="{s.status}">'
                           f"{esc(s.status)}: {esc(s.title)}</a>"
                           for s in per_scenario.get(name, []))
        body.append(f'<tr id="{anchor("scn", name)}"><td>{esc(name)}</td>{cells}'
                    f"<td>{sigs}</td></tr>")
    body.append("</table>")

    body.append("<h2>Reports</h2>")
    for sig in comparison.signatures:
        body += [f'<section id="{sig_ids[sig.signature]}">',
                 f'<h3><span class="{sig.status}">{sig.status}</span>: {esc(sig.title)}</h3>',
                 f'<p class="sig">{esc(sig.signature)}: baseline {_rate(sig, "base")}, '
                 f"patched {_rate(sig, 'head')}; scenarios "
                 + ", ".join(f'<a href="#{anchor("scn", n)}">{esc(n)}</a> '
                             f"({len(r['base'])}/{sig.runs} → {len(r['head'])}/{sig.runs})"
                             for n, r in sig.scenarios.items()) + "</p>"]
        for side, hit in sig.examples.items():
            kind = "race" if hit.scenario == "race" else "scenarios"
            run_dir = next((Path(r["dir"]) for r in vdoc["sides"][side]["runs"]
                            if r["run"] == hit.run and r.get("kind", "scenarios") == kind), None)
            link = _link(str(run_dir / "report.html") if run_dir else None, report_dir,
                         f"{SIDE_LABELS[side]} run {hit.run}{' race' if kind == 'race' else ''}")
            body.append(f"<h4>On the {SIDE_LABELS[side]} kernel ({link})</h4>")
            body += _finding_block(hit.finding, f"{sig_ids[sig.signature]}-{side}", hit.scenario,
                                   hit.console, report_dir, anchor("scn", hit.scenario))
        body.append("</section>")

    body += ["<h2>Runs</h2>", "<ul>"]
    for side in SIDES:
        for run in vdoc["sides"][side]["runs"]:
            run_dir = Path(run["dir"])
            body.append(f"<li>{SIDE_LABELS[side]} run {run['run']}: "
                        f"{_link(str(run_dir / 'report.html'), report_dir, 'report')}, "
                        f"{_link(str(run_dir / 'results.json'), report_dir, 'results.json')}, "
                        f"{esc(run['summary'])}</li>")
    body.append("</ul>")
    return _page(title, body)


def _timings(vdoc: dict[str, Any]) -> str:
    t = vdoc["timings"]
    return (f"baseline build {t['build_base_s']:.1f} s, patched build {t['build_head_s']:.1f} s, "
            f"runs {t['runs_s']:.1f} s, total {vdoc['duration_s']:.1f} s")
