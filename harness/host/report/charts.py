"""The report page's charts, drawn by matplotlib as inline SVG.

Why matplotlib and SVG: the page must open offline, from a CI artifact or a
mail, with nothing fetched and nothing run. An inline SVG is part of the
document itself: no script (a JS charting library would have to be inlined
whole, some megabytes per page, and mail clients and CI viewers strip
scripts), it scales and prints sharply, its text stays text (searchable,
copyable), and the browser test finds the charts in the DOM. matplotlib is
the plotting library most kernel developers already know, well kept, and
draws without a display (its SVG backend, no pyplot state).

Each chart takes typed rows the page builds from results.json; none reads a
document itself. Colours are the page's: a verdict or a signature status has
one colour wherever it is drawn.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

VERDICT_COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "hang": "#6a1b9a",
                   "error": "#ef6c00", "not-run": "#9e9e9e", "interrupted": "#616161"}
STATUS_COLOURS = {"introduced": "#c62828", "fixed": "#2e7d32", "flaky": "#b8860b",
                  "still-present": "#616161"}
SIDE_COLOURS = {"base": "#78909c", "head": "#1565c0"}
FINDING_COLOUR = "#c62828"
BOOTING_COLOUR = "#cfd8dc"

WIDTH = 9.0  # inches; the page scales the SVG to its column
ROW = 0.26  # inches per row of a chart with one row per item
LABEL_CHARS = 60  # longer row labels are cut in the middle


@dataclass(frozen=True)
class Wake:
    """A call blocked in the kernel when the device went, and how long it took to return."""

    scenario: str
    call: str  # "VIDIOC_DQBUF", "poll", ...
    latency: float | None  # seconds; None: still blocked at the bound
    result: str


@dataclass(frozen=True)
class Span:
    """A scenario on its boot's kernel clock."""

    scenario: str
    begin: float
    end: float | None  # None: it never ended (the kernel crashed, a deadline passed)
    verdict: str


@dataclass
class Lane:
    """One boot: when the agent was ready, what ran on it, and when the kernel reported."""

    boot: int
    outcome: str
    ready: float | None  # seconds to the agent's ready event
    spans: list[Span] = field(default_factory=list)
    reports: list[float] = field(default_factory=list)  # printk times of findings


@dataclass(frozen=True)
class Rate:
    """A signature's hits per `per` disruption cycles, with its interval."""

    signature: str
    hits: int
    rate: float | None  # None: no cycle of exposure
    low: float | None
    high: float | None


@dataclass(frozen=True)
class SideBySide:
    """A signature's hits over the runs of each side of a validation."""

    signature: str
    status: str
    base: int
    head: int
    runs: int


def _short(label: str) -> str:
    if len(label) <= LABEL_CHARS:
        return label
    half = (LABEL_CHARS - 1) // 2
    return label[:half] + "…" + label[-half:]


def _figure(rows: float, min_height: float = 1.8) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, max(min_height, 0.9 + ROW * rows)), layout="constrained")
    ax = fig.add_subplot()
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def svg(fig: Figure, name: str, label: str, tips: dict[str, str] | None = None) -> str:
    """The figure as an <svg> element to inline: no XML prolog, sized by the page,
    ids unique to this chart, labelled for screen readers. `tips`: the text a
    browser shows on hovering the artist of each gid (a bar's scenario)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name,
                                "font.family": "sans-serif"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"',
                  rf'<svg\1 class="chart" id="chart-{name}" role="img"', text, count=1)
    from html import escape

    for gid, tip in (tips or {}).items():
        text = text.replace(f'<g id="{gid}">', f'<g id="{gid}"><title>{escape(tip)}</title>', 1)
    return text.replace(">", f"><title>{escape(label)}</title>", 1)


def wake_latency(wakes: Sequence[Wake], bound: float) -> str:
    """Each blocked call's wake-up after the unplug, per scenario (log scale),
    with the bound the contract allows; a call still blocked sits at the bound."""
    fig, ax = _figure(len(wakes))
    labels = [_short(f"{w.scenario}  {w.call}") for w in wakes]
    ys = range(len(wakes))
    floor = min([w.latency for w in wakes if w.latency] + [bound]) / 2
    woke = [(y, w, max(w.latency, floor)) for y, w in zip(ys, wakes, strict=True)
            if w.latency is not None]
    stuck = [y for y, w in zip(ys, wakes, strict=True) if w.latency is None]
    for y, w, x in woke:
        ax.hlines(y, floor, x, color="#90a4ae", linewidth=1.2)
        ax.annotate(f"{(w.latency or 0.0) * 1000:.1f} ms {w.result}", (x, y), xytext=(6, -3),
                    textcoords="offset points", fontsize=7, color="#455a64")
    if woke:
        ax.scatter([x for _, _, x in woke], [y for y, _, _ in woke],
                   color=VERDICT_COLOURS["pass"], zorder=3, s=28, label="returned")
    if stuck:
        ax.scatter([bound] * len(stuck), stuck, color=VERDICT_COLOURS["fail"], marker="X",
                   zorder=3, s=60, label="still blocked at the bound")
    ax.axvline(bound, color=VERDICT_COLOURS["fail"], linestyle="--", linewidth=0.8)
    ax.text(bound, 1.0, f" bound {bound:g} s", color=VERDICT_COLOURS["fail"], fontsize=7,
            va="bottom", transform=ax.get_xaxis_transform())
    ax.set_xscale("log")
    ax.set_xlim(floor / 1.5, bound * 4)
    ax.set_yticks(list(ys), labels, fontsize=7)
    ax.set_ylim(len(wakes) - 0.4, -0.6)
    ax.set_xlabel("seconds from the unplug to the call's return (log scale)")
    if stuck:
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.02), fontsize=7, frameon=False)
    return svg(fig, "wake-latency", "Blocked-call wake latency per scenario")


def boot_timeline(lanes: Sequence[Lane]) -> str:
    """Every boot as a lane on its kernel's clock: the boot up to the agent,
    each scenario as a bar coloured by its verdict, each kernel report as a mark."""
    fig, ax = _figure(len(lanes), min_height=1.6)
    seen: set[str] = set()

    def once(label: str) -> str | None:
        if label in seen:
            return None
        seen.add(label)
        return label

    right = 1.0
    tips: dict[str, str] = {}
    for y, lane in enumerate(lanes):
        if lane.ready:
            ax.barh(y, lane.ready, left=0, height=0.6, color=BOOTING_COLOUR,
                    label=once("boot to the agent"))
        for s in lane.spans:
            end = s.end if s.end is not None else s.begin + 0.5
            right = max(right, end)
            bars = ax.barh(y, max(end - s.begin, 0.05), left=s.begin, height=0.6,
                           color=VERDICT_COLOURS.get(s.verdict, "#9e9e9e"), edgecolor="white",
                           linewidth=0.4, label=once(s.verdict))
            gid = f"span-{len(tips)}"
            bars.patches[0].set_gid(gid)
            took = f"{s.end - s.begin:.2f} s" if s.end is not None else "never ended"
            tips[gid] = f"{s.scenario}: {s.verdict}, {took} (boot {lane.boot})"
        if lane.reports:
            right = max(right, *lane.reports)
            ax.scatter(lane.reports, [y] * len(lane.reports), marker="v", s=46, zorder=3,
                       color="black", label=once("kernel report"))
        if lane.outcome != "done":
            last = max((s.end if s.end is not None else s.begin for s in lane.spans),
                       default=lane.ready or 0.0)
            ax.text(last, y, f"  {lane.outcome}", va="center", fontsize=7,
                    color=VERDICT_COLOURS["fail"])
    ax.set_yticks(range(len(lanes)), [f"boot {lane.boot}" for lane in lanes], fontsize=7)
    ax.set_ylim(len(lanes) - 0.4, -0.6)
    ax.set_xlim(0, right * 1.08)
    ax.set_xlabel("kernel time (s since the boot)")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=7, frameon=False, ncols=8)
    return svg(fig, "boot-timeline", "Scenario durations on a timeline of boots", tips)


def race_rates(rates: Sequence[Rate], per: int, confidence: float, cycles: int) -> str:
    """Each signature's rate per `per` cycles with its exact interval (log
    scale); a signature not seen has only its upper bound."""
    fig, ax = _figure(len(rates))
    ys = list(range(len(rates)))
    highs = [r.high for r in rates if r.high]
    lows = [r.low for r in rates if r.low]
    floor = min(lows + [h / 20 for h in highs] or [1.0]) / 2
    for y, r in zip(ys, rates, strict=True):
        if r.high is None:
            continue
        if r.hits:
            assert r.rate is not None and r.low is not None
            ax.hlines(y, r.low, r.high, color="#1565c0", linewidth=2.2)
            ax.scatter([r.rate], [y], color="#0d47a1", s=36, zorder=3)
            ax.annotate(f"{r.rate:.3g} per {per:,}, interval {r.low:.3g} to {r.high:.3g} "
                        f"({r.hits} hit{'s' * (r.hits != 1)})", (r.high, y),
                        xytext=(6, -3), textcoords="offset points", fontsize=7)
        else:
            ax.annotate("", xy=(floor, y), xytext=(r.high, y),
                        arrowprops={"arrowstyle": "->", "color": "#78909c", "linewidth": 1.4})
            ax.scatter([r.high], [y], color="#78909c", marker="|", s=80)
            ax.annotate(f"not seen: < {r.high:.3g}", (r.high, y), xytext=(6, -3),
                        textcoords="offset points", fontsize=7, color="#546e7a")
    ax.set_xscale("log")
    ax.set_xlim(floor, max(highs + [10.0]) * 30)
    ax.set_yticks(ys, [_short(r.signature) for r in rates], fontsize=7)
    ax.set_ylim(len(rates) - 0.4, -0.6)
    ax.set_xlabel(f"hits per {per:,} disruption cycles, {confidence:.0%} exact interval "
                  f"(log scale; {cycles:,} cycles raced)")
    return svg(fig, "race-rates", "Race rate per signature with its interval")


def baseline_vs_patched(rows: Sequence[SideBySide], labels: dict[str, str]) -> str:
    """Each signature's share of runs on the baseline and on the patched kernel,
    its status written beside it."""
    fig, ax = _figure(len(rows) * 1.5)
    height = 0.36
    for y, r in enumerate(rows):
        for offset, side, hits in ((-height / 2, "base", r.base), (height / 2, "head", r.head)):
            share = hits / r.runs if r.runs else 0.0
            ax.barh(y + offset, share, height=height, color=SIDE_COLOURS[side],
                    label=labels[side] if y == 0 else None)
            ax.text(share, y + offset, f" {hits}/{r.runs}", va="center", fontsize=7)
        ax.text(1.12, y, r.status, va="center", fontsize=8, fontweight="bold",
                color=STATUS_COLOURS.get(r.status, "#616161"))
    ax.set_yticks(range(len(rows)), [_short(r.signature) for r in rows], fontsize=7)
    ax.set_ylim(len(rows) - 0.4, -0.6)
    ax.set_xlim(0, 1.35)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0", "¼", "½", "¾", "all"])
    ax.set_xlabel("share of runs in which the signature appeared")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=7, frameon=False, ncols=2)
    return svg(fig, "baseline-vs-patched", "Baseline against patched, per signature")
