"""One self-contained HTML page per run, and one per validation.

Findings come first: one card per signature with its title, class and
guilty frame, the command that runs it again, what the agent did against
what the kernel said on one clock (harness.host.report.timeline), and the
report highlighted in its console excerpt. Charts follow (drawn by
harness.host.report.charts as inline SVG), then the scenario table.

Everything is inline (styles, charts, report texts, console excerpts): the
page can be attached to a CI job or mailed and still shows everything, and
there is no script: a reproducer is copied by selecting it (one click
selects the whole command). Links join the parts: a finding links to its
scenarios' rows and to the console log beside the page; the validation page
links each signature to its reports on both sides and to every run's own page.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.host.report import charts, reproducer
from harness.host.report.compare import SIDE_LABELS, SIDES, Comparison, SignatureDiff
from harness.host.report.timeline import Event, Source, race_events, scenario_events
from harness.pure.scenarios.contracts import BLOCKED_CALL_BOUND

STYLE = """
:root{--line:#d7dde2;--muted:#5f6b73;--bg2:#f5f7f8}
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;padding:1.2em 2em;color:#1d252b;
max-width:100em}
h1{font-size:1.55em;margin:.2em 0}h2{font-size:1.25em;margin-top:2em;
border-bottom:2px solid var(--line);padding-bottom:.2em}h3{margin:.1em 0 .3em}
h4{margin:1em 0 .3em;font-size:1em;color:var(--muted)}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid var(--line);padding:.2em .55em;text-align:left;vertical-align:top}
th{background:var(--bg2);font-weight:600}
pre{background:var(--bg2);border:1px solid var(--line);padding:.5em;overflow-x:auto;
font-size:12px;line-height:1.35}
.meta{color:var(--muted)}.chips{margin:.6em 0}
.chip{display:inline-block;border-radius:1em;padding:.1em .75em;margin:0 .35em .3em 0;
background:var(--bg2);border:1px solid var(--line);font-weight:600}
.chip.fail,.chip.findings{background:#fdecea;border-color:#f5c2bd}
.chip.pass{background:#eaf5ea;border-color:#bfe0c0}
.pass,.fixed{color:#2e7d32}.fail,.introduced,.hang,.error{color:#c62828;font-weight:bold}
.flaky{color:#8a5a00;font-weight:bold}.still-present,.not-run,.interrupted{color:#555}
.sig{font-family:ui-monospace,monospace;font-size:.92em}
.card{border:1px solid var(--line);border-left:6px solid #c62828;border-radius:4px;
padding:.7em 1.1em;margin:1.1em 0;background:#fff}
.card.other{border-left-color:#ef6c00}
.badge{display:inline-block;font-size:.8em;font-weight:700;border-radius:3px;
padding:0 .45em;margin-right:.4em;background:#37474f;color:#fff}
.cmd{display:block;user-select:all;-webkit-user-select:all;font-family:ui-monospace,monospace;
font-size:12.5px;background:#263238;color:#eceff1;padding:.45em .7em;border-radius:4px;
white-space:pre-wrap;word-break:break-all;cursor:text}
.excerpt .l{display:block}.excerpt .hl{background:#fff3b0}
.excerpt .hl.head{background:#ffd54f;font-weight:bold}.excerpt .n{color:#90a4ae;
user-select:none;-webkit-user-select:none}
.excerpt .guilty{background:#ef9a9a;border-radius:2px}
.timeline td.at{font-family:ui-monospace,monospace;text-align:right;white-space:nowrap}
.timeline td.kernel{background:#fff8e1}.timeline td.agent{background:#e3f2fd}
.timeline tr.this td.kernel{font-weight:bold;color:#b71c1c}
figure{margin:1em 0 2em}figcaption{color:var(--muted);margin-top:.3em;max-width:60em}
svg.chart{width:100%;max-width:75em;height:auto;display:block}
nav ul{margin:.3em 0;padding-left:1.2em}
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
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
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


def _read_lines(console: str | None) -> list[str] | None:
    if not console:
        return None
    try:
        return Path(console).read_text(errors="replace").splitlines()
    except OSError:
        return None


def console_excerpt(console: str | None, f: dict[str, Any]) -> str | None:
    """The console around a report, as HTML: what ran before it, the report
    with its lines highlighted (its header most) and its guilty frame marked,
    a little after. None without the console or the report's line."""
    line = f.get("line")
    lines = _read_lines(console)
    if not lines or not line:
        return None
    first = line - 1
    own = set((f.get("raw") or f.get("text") or "").splitlines())
    length = len((f.get("raw") or f.get("text") or "").splitlines())
    start = max(0, first - EXCERPT_BEFORE)
    end = min(len(lines), first + length + EXCERPT_AFTER)
    guilty = f.get("guilty_frame")
    out = []
    for i in range(start, end):
        text = esc(lines[i])
        kind = ""
        if i == first:
            kind = " hl head"
        elif first < i < first + length + EXCERPT_AFTER and lines[i] in own:
            kind = " hl"
        if kind and guilty:
            text = text.replace(esc(guilty), f'<b class="guilty">{esc(guilty)}</b>')
        out.append(f'<span class="l{kind}"><span class="n">{i + 1:>6} </span>{text}</span>')
    return '<pre class="excerpt">' + "".join(out) + "</pre>"


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


def _timeline(events: Sequence[Event], signature: str) -> list[str]:
    """Agent and kernel side by side, times on the kernel's clock and from the first event."""
    if not events:
        return []
    zero = events[0].at
    rows = []
    for e in events:
        cls = ' class="this"' if e.signature == signature else ""
        cells = (f'<td class="kernel">{esc(e.text)}</td><td></td>' if e.source == Source.KERNEL
                 else f'<td></td><td class="agent">{esc(e.text)}</td>')
        rows.append(f'<tr{cls}><td class="at">{e.at:.6f}</td>'
                    f'<td class="at">+{(e.at - zero) * 1000:.1f} ms</td>{cells}</tr>')
    return ["<h4>What the agent did against what the kernel said</h4>",
            '<table class="timeline"><tr><th>kernel time (s)</th><th>since start</th>'
            "<th>kernel</th><th>agent</th></tr>", *rows, "</table>"]


def _finding_block(f: dict[str, Any], fid: str, scenario: str | None, console: str | None,
                   base: Path, back: str | None, command: str | None = None,
                   events: Sequence[Event] = (), also: Sequence[tuple[str, str | None,
                                                                      str | None]] = ()
                   ) -> list[str]:
    """One finding as a card. `also`: the other places the same signature was
    seen, as (scenario, its anchor, its reproducer)."""
    where = (f'<a href="#{back}">{esc(scenario)}</a>' if back and scenario
             else esc(scenario) if scenario else "")
    out = [f'<div class="finding card" id="{fid}">',
           f"<h3>{esc(f['title'])}</h3>",
           f'<p><span class="badge">{esc(f.get("class", "?"))}</span>'
           f'signature <span class="sig">{esc(f["signature"])}</span>'
           + (f", guilty frame <code>{esc(f['guilty_frame'])}</code>"
              if f.get("guilty_frame") else "")
           + (f", in {where}" if where else "")
           + (f", console {_link(console, base, Path(console).name)}"
              + (f" line {f['line']}" if f.get("line") else "") if console else "")
           + "</p>"]
    if command:
        out += ["<h4>Run it again</h4>", f'<code class="cmd">{esc(command)}</code>']
    if also:
        out += [f"<h4>Also in {len(also)} more</h4>", "<table>"]
        for name, link, cmd in also:
            label = f'<a href="#{link}">{esc(name)}</a>' if link else esc(name)
            out.append(f"<tr><td>{label}</td><td>"
                       + (f'<code class="cmd">{esc(cmd)}</code>' if cmd else "") + "</td></tr>")
        out.append("</table>")
    out += _timeline(events, f["signature"])
    details = _details(f)
    if details:
        out += ["<h4>Details</h4>", '<table class="details">',
                *(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in details),
                "</table>"]
    excerpt = console_excerpt(console, f)
    if excerpt:
        out += ["<h4>Console excerpt</h4>", excerpt,
                "<details><summary>Report text alone</summary>"
                f"<pre>{esc(f.get('text', ''))}</pre></details>"]
    else:
        out += ["<h4>Report</h4>", f"<pre>{esc(f.get('text', ''))}</pre>"]
    out.append("</div>")
    return out


# --- a run's page


@dataclass
class Occurrence:
    """A finding where it was seen: a scenario, a race or the boot."""

    finding: dict[str, Any]
    where: str
    back: str | None  # the anchor of its row on the page
    console: str | None
    command: str | None  # how to run it again
    events: list[Event] = field(default_factory=list)


def _races(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The single races a document holds: itself, or each race of a series
    (read back from its own results.json; a race whose file is gone is left out)."""
    if doc.get("mode") != "race":
        return []
    if "races" not in doc:
        return [doc]
    out = []
    for r in doc["races"]:
        try:
            out.append(json.loads((Path(r["dir"]) / "results.json").read_text()))
        except (OSError, ValueError, KeyError):
            continue
    return out


def race_anchor(race: dict[str, Any]) -> str:
    return anchor("race", str((race.get("stats") or {}).get("seed", "")))


def occurrences(docs: Sequence[dict[str, Any]]) -> list[Occurrence]:
    """Every kernel report of the documents, where it was seen, in their order."""
    out: list[Occurrence] = []
    for doc in docs:
        for f in doc.get("boot_findings", []):
            out.append(Occurrence(f, "the boot, before any scenario", None, None, None))
        for s in doc.get("scenarios", []):
            events = scenario_events(s)
            for f in s.get("findings", []):
                out.append(Occurrence(f, f"scenario {s['name']}", anchor("scn", s["name"]),
                                      s.get("console") or None,
                                      reproducer.scenario_command(doc, s["name"]), events))
        for race in _races(doc):
            seed = (race.get("stats") or {}).get("seed", "?")
            events = race_events(race)
            for f in race.get("findings", []):
                out.append(Occurrence(f, f"race seed {seed}", race_anchor(race),
                                      race.get("console"), reproducer.race_command(race),
                                      events))
    return out


def by_signature(found: Sequence[Occurrence]) -> list[list[Occurrence]]:
    """Occurrences grouped by signature, in order of first appearance; one per place."""
    groups: dict[str, list[Occurrence]] = {}
    for o in found:
        group = groups.setdefault(o.finding["signature"], [])
        if all(other.where != o.where for other in group):
            group.append(o)
    return list(groups.values())


def _other_failures(docs: Sequence[dict[str, Any]]
                    ) -> list[tuple[dict[str, Any], dict[str, Any], str]]:
    """Scenarios that failed without a kernel report: a broken contract, a hang,
    an error; as (document, scenario, what)."""
    out = []
    for doc in docs:
        for s in doc.get("scenarios", []):
            if s.get("findings") or s["verdict"] in ("pass", "not-run"):
                continue
            broken = [f"{c['contract']}: {c.get('detail', '')}"
                      for c in s.get("contracts", []) if not c.get("passed", True)]
            out.append((doc, s, "; ".join(broken) or s.get("reason") or s["verdict"]))
    return out


def _figure(title: str, svg: str, caption: str) -> list[str]:
    return [f"<h3>{esc(title)}</h3>", "<figure>", svg, f"<figcaption>{caption}</figcaption>",
            "</figure>"]


def wakes(docs: Sequence[dict[str, Any]]) -> list[charts.Wake]:
    """Calls that sat blocked in the kernel across an unplug (loops and calls
    that user space itself ended, on a device that stayed, are not wake-ups)."""
    return [charts.Wake(s["name"], c["what"], c.get("latency") if c.get("returned") else None,
                        c.get("result", ""))
            for doc in docs for s in doc.get("scenarios", [])
            for c in s.get("blocked_calls") or []
            if not c.get("loop") and not c.get("released")]


def lanes(doc: dict[str, Any]) -> list[charts.Lane]:
    """A scenario run's boots with their scenarios and reports."""
    out = [charts.Lane(i, b.get("outcome", "?"), b.get("boot_seconds"))
           for i, b in enumerate(doc.get("boots", []), start=1)]
    by_boot = {lane.boot: lane for lane in out}
    for s in doc.get("scenarios", []):
        lane = by_boot.get(s.get("boot", 0))
        times = s.get("kernel_times") or {}
        if lane is None or times.get("begin") is None:
            continue
        lane.spans.append(charts.Span(s["name"], times["begin"], times.get("end"), s["verdict"]))
        lane.reports += [f["timestamp"] for f in s.get("findings", [])
                         if f.get("timestamp") is not None]
    return out


def rates(doc: dict[str, Any]) -> list[charts.Rate]:
    tally = doc.get("rates") or {}
    rows = [*tally.get("signatures", []), *([tally["any_report"]] if "any_report" in tally
                                            else [])]
    return [charts.Rate(r["signature"], r["hits"], r.get("rate"), r.get("low"), r.get("high"))
            for r in rows]


def _charts(docs: Sequence[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    woke = wakes(docs)
    if woke:
        out += _figure("Blocked calls: how fast the unplug woke them",
                       charts.wake_latency(woke, BLOCKED_CALL_BOUND),
                       "Each call (DQBUF, poll, ...) that "
                       "was blocked in the kernel when the device went away: how long after "
                       "the unplug it returned, and with what. The contract allows "
                       f"{BLOCKED_CALL_BOUND:g} s; a cross at the bound is a call still "
                       "blocked there.")
    for doc in docs:
        boots = lanes(doc)
        if any(lane.spans for lane in boots):
            out += _figure("Scenarios on a timeline of boots", charts.boot_timeline(boots),
                           "One lane per boot on its "
                           "kernel's clock: grey up to the agent, then each scenario as a bar "
                           "coloured by its verdict, a triangle where the kernel reported. A "
                           "boot ends where a scenario crashed the kernel; the next boot "
                           "carries on. Hover a bar for its scenario.")
    for doc in docs:
        tally = doc.get("rates") or {}
        rows = rates(doc)
        if rows and (tally.get("exposure") or {}).get("cycles"):
            e = tally["exposure"]
            out += _figure(
                "Race rates per signature",
                charts.race_rates(rows, tally.get("per_cycles", 1000),
                                  tally.get("confidence", 0.95), e["cycles"]),
                f"Each signature's hits per {tally.get('per_cycles', 1000):,}"
                f" disruption cycles over {e['races']} race{'s' * (e['races'] != 1)} "
                f"({e['cycles']:,} cycles, {e['seconds']:.1f} s raced), with its exact "
                f"(Garwood) {tally.get('confidence', 0.95):.0%} interval. A signature not seen "
                "has only an upper bound: not seen is not gone.")
    return out


def _race_table(doc: dict[str, Any], report_dir: Path) -> list[str]:
    races = _races(doc)
    if not races:
        return []
    rows = []
    for race in races:
        s = race.get("stats") or {}
        e = race.get("exposure") or {}
        sigs = sorted({f["signature"] for f in race.get("findings", [])})
        here = Path(race.get("console") or ".").parent.parent
        page = here / "report.html" if here != report_dir and "races" in doc else None
        rows.append(
            f'<tr id="{race_anchor(race)}"><td>{esc(s.get("seed", "?"))}</td>'
            f"<td>{esc(s.get('cycles', '?'))}</td><td>{esc(s.get('duration', '?'))}</td>"
            f"<td>{esc(e.get('iterations', '?'))}</td>"
            f'<td class="{esc(race.get("verdict", ""))}">{esc(race.get("verdict", "?"))}</td>'
            f"<td>{esc(race.get('outcome', '?'))}</td>"
            f"<td>{'<br>'.join(esc(x) for x in sigs) or 'no kernel report'}</td>"
            f"<td>{_link(str(page) if page else None, report_dir, 'page' if page else '')}"
            f"{' ' if page else ''}{_link(race.get('console'), report_dir, 'console')}</td>"
            "</tr>")
    mode = (races[0].get("stats") or {}).get("mode", "")
    return [f"<h2>Races ({esc(mode)} cycles)</h2>",
            "<table><tr><th>seed</th><th>cycles</th><th>seconds</th><th>worker iterations"
            "</th><th>verdict</th><th>guest</th><th>signatures</th><th>log</th></tr>", *rows,
            "</table>"]


def run_page(doc: dict[str, Any], report_dir: Path,
             also: Sequence[dict[str, Any]] = ()) -> str:
    """A run as a page: its findings first, then charts, then every scenario.
    `also`: more documents of the same run shown on the same page (a race
    beside the matrix), each as results.json holds it."""
    docs = [doc, *also]
    kernel = doc.get("kernel", {})
    title = f"v4l2-unplug {doc.get('driver', '')} on {kernel.get('release', '?')}"
    groups = by_signature(occurrences(docs))
    others = _other_failures(docs)
    body = [f"<h1>{esc(title)}</h1>",
            f'<p class="meta">kernel {esc(kernel.get("flavour", ""))} '
            f"{esc(kernel.get('release', ''))} (<code>{esc(kernel.get('image', ''))}</code>), "
            f"started {esc(doc.get('started', ''))}, took {esc(doc.get('duration_s', '?'))} s"
            + "".join(f", {len(d.get('boots', []))} boot{'s' * (len(d.get('boots', [])) != 1)}"
                      for d in docs if d.get("boots")) + "</p>"]
    chips = [f'<span class="chip {"findings" if groups else "pass"}">{len(groups)} '
             f"finding{'s' * (len(groups) != 1)}</span>"]
    if others:
        chips.append(f'<span class="chip fail">{len(others)} other failure'
                     f"{'s' * (len(others) != 1)}</span>")
    for d in docs:
        for verdict, n in (d.get("summary") or {}).items():
            if n:
                chips.append(f'<span class="chip {esc(verdict)}">{n} {esc(verdict)}</span>')
        if d.get("mode") == "race":
            n = len(_races(d))
            chips.append(f'<span class="chip">{n} race{"s" * (n != 1)}</span>')
    body.append('<p class="chips">' + "".join(chips) + "</p>")
    if doc.get("interrupted"):
        body.append(f"<p class=\"fail\">interrupted by {esc(doc['interrupted'])}: what follows "
                    "is what finished before it</p>")

    body.append('<h2 id="findings">Findings</h2>')
    if groups:
        body += ["<nav><ul>", *(f'<li><a href="#{anchor("f", g[0].finding["signature"])}">'
                                f"{esc(g[0].finding['title'])}</a> "
                                f'<span class="sig">{esc(g[0].finding["signature"])}</span>, '
                                + (f"in {esc(g[0].where)}" if len(g) == 1
                                   else f"in {len(g)} places") + "</li>" for g in groups),
                 "</ul></nav>"]
    else:
        body.append("<p>No kernel reports.</p>")
    for g in groups:
        first = g[0]
        body += _finding_block(first.finding, anchor("f", first.finding["signature"]),
                               first.where, first.console, report_dir, first.back,
                               first.command, first.events,
                               [(o.where, o.back, o.command) for o in g[1:]])
    if others:
        body += ["<h3>Failures without a kernel report</h3>",
                 "<table><tr><th>scenario</th><th>verdict</th><th>what</th>"
                 "<th>run it again</th></tr>"]
        for d, s, what in others:
            body.append(f'<tr><td><a href="#{anchor("scn", s["name"])}">{esc(s["name"])}</a>'
                        f'</td><td class="{esc(s["verdict"])}">{esc(s["verdict"])}</td>'
                        f"<td>{esc(what)}</td><td><code class=\"cmd\">"
                        f"{esc(reproducer.scenario_command(d, s['name']))}</code></td></tr>")
        body.append("</table>")

    figures = _charts(docs)
    if figures:
        body += ['<h2 id="charts">At a glance</h2>', *figures]
    for d in docs:
        body += _race_table(d, report_dir)
        stats = d.get("stats") or {}
        if d.get("mode") == "race" and "races" not in d and "seed" not in stats:
            body.append(f"<p>The race did not run: {esc(stats.get('error') or d.get('message'))}"
                        "</p>")

    for d in docs:
        rows = []
        for s in d.get("scenarios", []):
            links = [f'<a href="#{anchor("f", f["signature"])}">{esc(f["title"])}</a>'
                     for f in s.get("findings", [])]
            broken = [f"contract {c['contract']}: {c.get('detail', '')}"
                      for c in s.get("contracts", []) if not c.get("passed", True)]
            detail = "<br>".join(links + [esc(b) for b in broken]) or esc(s.get("reason", ""))
            times = s.get("kernel_times") or {}
            took = (f"{times['end'] - times['begin']:.2f}"
                    if times.get("end") is not None and times.get("begin") is not None else "")
            rows.append(f'<tr id="{anchor("scn", s["name"])}"><td>{esc(s["name"])}</td>'
                        f'<td class="{esc(s["verdict"])}">{esc(s["verdict"])}</td>'
                        f"<td>{esc(s.get('boot', ''))}</td><td>{took}</td>"
                        f"<td>{detail}</td><td>{_link(s.get('console'), report_dir, 'console')}"
                        "</td></tr>")
        if rows:
            body += ["<h2>Scenarios</h2>",
                     "<table><tr><th>scenario</th><th>verdict</th><th>boot</th><th>seconds</th>"
                     "<th>findings</th><th>log</th></tr>", *rows, "</table>"]
    return _page(title, body)


def _rate(sig: SignatureDiff, side: str) -> str:
    return f"{len(sig.hits[side])}/{sig.runs}"


def validate_page(vdoc: dict[str, Any], comparison: Comparison, report_dir: Path) -> str:
    """The validation: both kernels, the signature diff, the scenario diff, each
    signature's reports on both sides, and links to every run's own page."""
    result = comparison.result
    title = f"v4l2-unplug validate: {result}"
    body = [f'<h1>v4l2-unplug validate: <span class="{esc(result)}">{esc(result)}</span></h1>',
            "<table>",
            f"<tr><th>exit status</th><td>{comparison.exit_status}</td></tr>",
            f"<tr><th>tree</th><td>{esc(vdoc['tree']['path'])} ({esc(vdoc['tree']['kind'])})"
            "</td></tr>"]
    for side in SIDES:
        s = vdoc["sides"][side]
        build = s["build"]
        how = "reused" if build["reused"] else f"built in {build['seconds']:.0f} s"
        body.append(f"<tr><th>{SIDE_LABELS[side]}</th><td>{esc(s['describe'])}<br>"
                    f"kernel {esc(s['kernel']['release'])}, state "
                    f"<code>{esc(s['kernel']['state'][:12])}</code>, config "
                    f"<code>{esc(s['kernel']['config_hash'])}</code>, {esc(how)}</td></tr>")
    runs = vdoc["repeat"]
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
                    "<th>baseline</th><th>patched</th><th>scenarios</th></tr>")
        for sig in comparison.signatures:
            scn = ", ".join(f'<a href="#{anchor("scn", n)}">{esc(n)}</a>' for n in sig.scenarios)
            body.append(f'<tr><td class="{sig.status}">{sig.status}</td>'
                        f'<td><a href="#{sig_ids[sig.signature]}">{esc(sig.title)}</a></td>'
                        f'<td class="sig">{esc(sig.signature)}</td><td>{_rate(sig, "base")}</td>'
                        f"<td>{_rate(sig, 'head')}</td><td>{scn}</td></tr>")
        body.append("</table>")
        rows = [charts.SideBySide(sig.signature, sig.status, len(sig.hits["base"]),
                                  len(sig.hits["head"]), sig.runs)
                for sig in comparison.signatures]
        body += _figure("Baseline against patched", charts.baseline_vs_patched(rows, SIDE_LABELS),
                        "For each signature, the share of "
                        f"the {comparison.runs} run{'s' * (comparison.runs != 1)} on each "
                        "side in which it appeared, and what that makes it.")
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
            where = hit.scenario if kind == "race" else f"scenario {hit.scenario}"
            body += _finding_block(hit.finding, f"{sig_ids[sig.signature]}-{side}", where,
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
