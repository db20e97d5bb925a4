"""Kernel log -> findings: cut reports out of the log, title and sign them.

parse_log() finds report headers (classify.PATTERNS), collects each report's
lines, and turns the report into a Finding: class, syzbot-style title,
guilty frame, task, taint, and a signature for deduplication.

Signature format: "<class>:<kind>:<function>", e.g.
"KASAN:use-after-free:v4l2_ioctl", "WARNING:warning:vb2_queue_release",
"HUNG_TASK:task-hung:cec_claim_log_addrs". It holds no address, offset,
module or clone suffix, so the same crash signs the same on every run and on
x86 and arm64. <function> is "?" when the report has no usable frame and
"-" for reports whose title names none (kernel panics: their kind is the
panic reason). A NULL dereference caught by KASAN's shadow check signs as
"BUG:null-ptr-deref:<function>" whether the kernel said "general protection
fault" (x86) or "unable to handle kernel paging request" (arm64).

Report boundaries. With CONFIG_PRINTK_CALLER every line names its writer
([T123] / [C1]) and a report only takes lines of its own writer, so two
CPUs' reports interleaved line by line come apart. Without caller ids a
report takes every kernel line (timestamped, if its header was) until its
end marker ("---[ end trace", the closing "=====" of KASAN/UBSAN) or, for
report types that print none (lockdep, hung task, stalls, kmemleak, ...),
until its stack is complete. A report whose end never came is flagged as
corrupted, as is one without a stack, or one cut short by another report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.pure.kmsg.classify import (
    CONSEQUENCE_PANIC,
    HUNG_TASK_HEAD,
    HUNG_TASK_TAIL,
    PREFILTER,
    BugClass,
    End,
    HeaderMatch,
    Pattern,
    classify,
    classify_glued,
)
from harness.pure.kmsg.frames import (
    Choice,
    Frame,
    Section,
    canonical_func,
    choose,
    choose_hung,
    choose_stall,
    parse_frame,
    parse_pc,
    parse_sections,
)
from harness.pure.kmsg.lines import Line, LineTable

_END_TRACE_RE = re.compile(r"^\s*---\[ end trace(?: [0-9a-f]+)? \]---")
_END_PANIC_RE = re.compile(r"^\s*---\[ end Kernel panic")
_BANNER_RE = re.compile(r"^\s*={20,}\s*$")
_PREAMBLE_RE = re.compile(r"^\s*(?:-+\[ cut here \]-+|={20,}|-{20,})\s*$")
_CUT_HERE_RE = re.compile(r"^\s*-+\[ cut here \]-+\s*$")
_SECTION_START_RE = re.compile(
    r"^\s*(?:Call [Tt]race:|Backtrace:|backtrace(?: \(crc [0-9a-f]+\))?:)\s*$"
)
_TRACE_LINE_RE = re.compile(
    r"^\s*(?:</?(?:IRQ|TASK|NMI|SOFTIRQ)>|<EOI>|\? |(?:RIP|RSP|RAX|RBX|RCX|RDX|RSI|RDI|RBP"
    r"|R\d{1,2}|FS|GS|CS|DS|ES|CR\d|DR\d|PKRU|Code)\s*:|---- interrupt)"
)
_ADDRESS_RE = re.compile(r"(?:0x)?[0-9a-f]{8,16}")
_TIMESTAMP_IN_TEXT_RE = re.compile(r"\[\s*\d+\.\d{6}\]")
_KASAN_NULL_RE = re.compile(r"^\s*KASAN: null-ptr-deref in range")
_AT_RE = re.compile(r"\bat:\s*(?P<rest>.*)$")
# slub_debug's allocation track: "Allocated in f+0x1/0x2 [mod] age=3 cpu=0 pid=1"
# (2.6: "INFO: Allocated in ..."), its stack on the lines below it.
_SLUB_ALLOC_RE = re.compile(r"^\s*(?:INFO: )?Allocated in (?P<frame>\S.*)$")
_IRQ_ENTRY_RE = re.compile(
    r"^(?:el1h?_(?:64_)?irq\w*|el1_interrupt\w*|asm_sysvec_\w+|apic_timer_interrupt|call_on_irq_stack)$"
)

_CPU_RE = re.compile(
    r"\bCPU: (?P<cpu>\d+) (?:UID: \d+ )?PID: (?P<pid>\d+) Comm: (?P<comm>.+?)"
    r"(?: Kdump: loaded)? (?P<taint>Not tainted|Tainted: [A-Z ]*[A-Z])(?=\s|$)"
)
_OLD_PID_RE = re.compile(r"^\s*Pid: (?P<pid>\d+), comm: (?P<comm>\S+)")
# The hung-task line ("      Not tainted 6.1.0 #1") and lockdep's kernel
# ident line, which puts the release first ("6.1.192 #1 Not tainted").
_TAINT_LINE_RE = re.compile(
    r"^\s*(?:\S+ #\S+ )?(?P<taint>Not tainted|Tainted: [A-Z ]*[A-Z])(?=\s|$)"
)
_TAINT_NAMES_RE = re.compile(r"\[([A-Z])\]=[A-Z_]+")
_BY_TASK_RE = re.compile(r"\bby task (?P<comm>.+)/(?P<pid>\d+)\s*$")
_KMEMLEAK_COMM_RE = re.compile(r'^\s*comm "(?P<comm>.*)", pid (?P<pid>\d+)')
_SCHED_TASK_RE = re.compile(r"^\s*task:(?P<comm>\S+)\s+state:.*?\bpid:\s*(?P<pid>\d+)")
# lockdep names the task as comm/pid ("kworker/0:1/12 is trying to acquire
# lock:"); reports such as "lock held when returning to user space" print
# no CPU line to take it from.
_LOCKDEP_TASK_RE = re.compile(
    r"^\s*(?P<comm>\S.*?)/(?P<pid>\d+)(?: \[HC\S*\])? (?:is (?:trying|leaving|freeing|exiting)"
    r"|just changed|takes:)"
)

# A report that never reaches its end is cut off after this many of its lines,
# so a lost end marker cannot make one report swallow the rest of the log.
_MAX_REPORT_LINES = 2000
# Types that end with their stack give up waiting for it after this many lines.
_MAX_LINES_BEFORE_STACK = 400
# Messages of other writers a stack may be interrupted by and still go on.
_MAX_FOREIGN_LINES = 3
# Lines between two headers that still make one report ("cut here" between
# a list_del message and its "kernel BUG at lib/list_debug.c").
_MAX_HEADER_GAP = 3
# Lines of other writers stepped over are not the report's, but they still
# cost time: a report is not looked for further away than this.
_MAX_SCAN_LINES = 20000


@dataclass
class Finding:
    """One kernel bug report found in the log.

    `extra` holds what only some report types have: "alloc_frame" and
    "free_frame" (first useful frame of KASAN's allocation and free stacks),
    "access" and "size" (KASAN), "otype" and "hint" (ODEBUG), "what" (refcount
    and list messages, SLUB), "cache" (SLUB), "file" (WARNING, UBSAN, kernel BUG), "secs" (hung
    task), "kasan" (a fault KASAN identified as a NULL dereference),
    "panic" (the reason of the kernel panic this report led to) and
    "unnamed_frame" (the address the blame fell on when the kernel printed
    no symbol for it, e.g. a leak from a module's freed __init code).
    """

    bug_class: BugClass
    title: str
    kind: str
    signature: str
    guilty_frame: str | None
    guilty_rule: str | None  # where the frame was taken from: "call-trace", "pc", ...
    text: str  # the report's lines, printk prefixes removed
    raw: str  # the same lines as captured
    line: int  # 1-based line number of the header in the input
    timestamp: float | None = None  # printk time of the report's first line
    comm: str | None = None
    pid: int | None = None
    cpu: int | None = None
    taint: frozenset[str] | None = None  # taint letters, empty when "Not tainted"
    context: str | None = None  # printk caller id ("T123", "C1") when printed
    corrupted: bool = False
    corrupted_reason: str | None = None
    primary: bool = False
    skipped: tuple[tuple[str, str], ...] = ()  # frames passed over: (symbol, rule)
    extra: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape of a finding, wherever one is written: results.json
        (scenario runs and races), validate.json's examples and `kmsg --json`;
        the HTML and JUnit pages and the history read it back from those.

        The first fields are the ones results.json had from its first version,
        in their order and under their names (the task is "task", not "comm");
        docs/results.md and harness/host/report/schemas/ describe every field.
        """
        return {
            "title": self.title,
            "class": str(self.bug_class),
            "signature": self.signature,
            "guilty_frame": self.guilty_frame,
            "guilty_rule": self.guilty_rule,
            "timestamp": self.timestamp,
            "task": self.comm,
            "pid": self.pid,
            "cpu": self.cpu,
            "taint": sorted(self.taint) if self.taint is not None else None,
            "corrupted": self.corrupted,
            "line": self.line,
            "kind": self.kind,
            "primary": self.primary,
            "corrupted_reason": self.corrupted_reason,
            "context": self.context,
            "skipped": [{"frame": sym, "rule": rule} for sym, rule in self.skipped],
            "extra": dict(self.extra),
            "text": self.text,
            "raw": self.raw,
        }


@dataclass
class FindingGroup:
    """Findings that share a signature: the first one stands for all."""

    signature: str
    first: Finding
    occurrences: list[Finding]

    @property
    def count(self) -> int:
        return len(self.occurrences)

    @property
    def primary(self) -> bool:
        return any(f.primary for f in self.occurrences)

    def to_dict(self) -> dict[str, Any]:
        d = self.first.to_dict()
        d["primary"] = self.primary
        d["count"] = self.count
        d["lines"] = [f.line for f in self.occurrences]
        return d


def dedup(findings: Iterable[Finding]) -> list[FindingGroup]:
    """Merge findings with the same signature, in order of first appearance."""
    groups: dict[str, FindingGroup] = {}
    for f in findings:
        group = groups.get(f.signature)
        if group is None:
            groups[f.signature] = FindingGroup(f.signature, f, [f])
        else:
            group.occurrences.append(f)
    return list(groups.values())


# --- finding the reports ------------------------------------------------------


@dataclass(slots=True)
class _Header:
    index: int
    line: Line
    match: HeaderMatch

    @property
    def pattern(self) -> Pattern:
        return self.match.pattern


@dataclass(slots=True)
class _Report:
    headers: list[_Header]
    indices: list[int]  # lines of the report, in order
    ended_by: str  # "end-marker", "stack", "next-report", "eof", "too-long"
    stack_done: bool
    # Lines of the report before it that arrived inside this one (two CPUs
    # oopsing at once, without caller ids to tell their lines apart).
    interleaved: bool = False


def _find_headers(text: str, table: LineTable) -> list[_Header]:
    headers: list[_Header] = []
    index = 0
    pos = 0
    last = -1
    for m in PREFILTER.finditer(text):
        # Line numbers by counting newlines between hits: linear overall,
        # and no per-line work for the lines without a hit.
        index += text.count("\n", pos, m.start())
        pos = m.start()
        if index == last or index >= len(table):
            continue
        last = index
        line = table[index]
        match = classify(line.text)
        if match is None and HUNG_TASK_HEAD.match(line.text) and index + 1 < len(table):
            following = table[index + 1].text
            if HUNG_TASK_TAIL.match(following):
                # the newline inside the name, as an escape: one line of text
                joined = line.text.lstrip() + "\\n" + following
                match = classify(joined)
                if match is not None:
                    line = table.replace(index, line, joined)
        if match is None and len(line.text) > 8:
            glued = classify_glued(line.text)
            if glued is not None:
                match, start = glued
                line = table.replace(index, line, line.text[start:])
        if match is not None:
            headers.append(_Header(index, line, match))
    return headers


def parse_log(text: str) -> list[Finding]:
    """Every bug report in a console capture or dmesg text, in order."""
    table = LineTable(text)
    headers = _find_headers(text, table)
    by_index = {h.index: h for h in headers}
    consumed: set[int] = set()  # headers merged into an earlier report
    used: set[int] = set()  # lines that belong to a report
    printed: set[tuple[float, str, str]] = set()
    findings: list[Finding] = []
    previous: _Report | None = None
    for header in headers:
        if header.index in consumed:
            continue
        line = header.line
        if line.timestamp is not None and (line.timestamp, line.context, line.text) in printed:
            # The same printk record again: syslog echoing to a terminal,
            # or the console replaying a message it interrupted.
            continue
        reason = header.match.groups.get("reason", "")
        if header.pattern.name == "panic" and findings and CONSEQUENCE_PANIC.search(reason):
            # panic_on_oops, panic_on_warn, hung_task_panic: the report that
            # caused it is already a finding.
            findings[-1].extra.setdefault("panic", reason.strip())
            continue
        # A report that expects an end marker and was cut short by this one
        # may still print that marker among this one's first lines.
        cut = (previous is not None and previous.ended_by == "next-report"
               and previous.headers[0].pattern.end is not End.STACK)
        report = _collect(table, header, by_index, consumed, used, after_cut=cut)
        previous = report
        used.update(report.indices)
        for i in report.indices:
            ln = table[i]
            if ln.timestamp is not None:
                printed.add((ln.timestamp, ln.context, ln.text))
        finding = _to_finding(table, report)
        if header.pattern.name == "panic" and CONSEQUENCE_PANIC.search(reason):
            # "Fatal exception" with nothing before it: the oops itself was lost.
            lost = "the report that caused this panic is not in the log"
            finding.corrupted = True
            finding.corrupted_reason = "; ".join(filter(None, (lost, finding.corrupted_reason)))
        findings.append(finding)
    if any(f.kind == "memory-leak" for f in findings):
        # The dmesg summary line only matters when the leaks themselves
        # are not in the log.
        findings = [f for f in findings if f.kind != "summary"]
    if findings:
        findings[0].primary = True
    return findings


def _preamble(table: LineTable, index: int, context: str, used: set[int]) -> tuple[list[int], int]:
    """The lines a report prints before its header, and its banner's width.

    WARN(cond, msg) prints "cut here", then its message, then the WARNING
    line; KASAN, UBSAN and lockdep open with a "=====" banner, and KASAN and
    UBSAN close with the same one.
    """
    before: list[int] = []
    i = index - 1
    while i >= 0 and len(before) < 3 and index - i <= 12:
        if table[i].context == context:
            if i in used:
                break
            before.insert(0, i)
        i -= 1
    width = next(
        (len(table[j].text.strip()) for j in reversed(before) if _BANNER_RE.match(table[j].text)),
        0,
    )
    for n, j in enumerate(before):
        if _CUT_HERE_RE.match(table[j].text):
            return before[n:], width
    banners: list[int] = []
    for j in reversed(before):
        if not _PREAMBLE_RE.match(table[j].text):
            break
        banners.insert(0, j)
    return banners, width


def _absorbs(headers: Sequence[_Header], other: _Header, frames_seen: bool, gap: int) -> bool:
    """Whether a header inside an open report is part of it."""
    if other.pattern.secondary:
        # "Internal error: Oops", "Kernel panic - not syncing" inside a report
        return True
    # Headers of one class right after one another are one report: the
    # message and the WARNING line of a WARN(), "BUG: memory leak" and its
    # object. The same header twice is two reports, the first one cut short,
    # unless the first is a symboliser's "[inline]" expansion of the second.
    # Further apart they are two reports anyway.
    if frames_seen or gap > _MAX_HEADER_GAP:
        return False
    if other.pattern.bug_class != headers[0].pattern.bug_class:
        return False
    prev = headers[-1]
    if other.match.origin != prev.match.origin:
        return True
    if other.pattern.name == "memory-leak":
        return "size" not in prev.match.groups
    return "[inline]" in prev.line.text


def _is_end(end: End, text: str, banner: int) -> bool:
    if "---[" not in text and "=====" not in text:
        return False
    if end is End.TRACE:
        return bool(_END_TRACE_RE.match(text) or _END_PANIC_RE.match(text))
    if end is End.BANNER:
        if _BANNER_RE.match(text):
            # a lockdep banner of another width opens the next report
            return banner == 0 or len(text.strip()) == banner
        return bool(_END_TRACE_RE.match(text))
    if end is End.PANIC:
        return bool(_END_PANIC_RE.match(text))
    return False


def _collect(
    table: LineTable,
    header: _Header,
    by_index: dict[int, _Header],
    consumed: set[int],
    used: set[int],
    after_cut: bool = False,
) -> _Report:
    """The lines of the report opened by `header`. `after_cut`: the report
    before it was cut short by this one, so its end marker may still come,
    among this report's first lines."""
    pattern = header.pattern
    context = header.line.context
    indices, banner = _preamble(table, header.index, context, used)
    indices.append(header.index)
    headers = [header]
    if pattern.stack == "none":
        return _Report(headers, indices, "end-marker", True)
    tail = pattern.tail or _SECTION_START_RE
    # End.STACK types: 0 waiting for the final stack, 1 waiting for its first
    # frame, 2 inside it. The report ends at the first line after it.
    state = 0
    frames_seen = False
    nmi_backtrace = False
    ended_by = "eof"
    waited = 0
    last_header = len(indices)
    interleaved = False
    pc_seen = False
    foreign = 0
    in_trace = False  # inside a Call Trace, where only frames and trace lines belong
    foreign_run = 0  # other writers' lines in it since its last frame
    i = header.index + 1
    stop = min(len(table), header.index + _MAX_SCAN_LINES)
    while i < stop:
        ln = table[i]
        if ln.context != context and not (nmi_backtrace and ln.cpu_context):
            i += 1
            continue
        other = by_index.get(i)
        if other is not None and i not in consumed:
            if _absorbs(headers, other, frames_seen, len(indices) - last_header):
                consumed.add(i)
                headers.append(other)
                indices.append(i)
                last_header = len(indices)
                i += 1
                continue
            ended_by = "next-report"
            break
        text = ln.text
        is_frame = _is_frame(text)
        if pattern.end is End.STACK:
            if state == 2 and not (is_frame or _TRACE_LINE_RE.match(text)):
                if foreign < _MAX_FOREIGN_LINES and _frame_follows(table, i, context, by_index):
                    # another writer's message printed into the middle of
                    # the stack (no caller ids to tell it apart): step over it
                    foreign += 1
                    i += 1
                    continue
                ended_by = "stack"
                break
            if state == 0:
                waited += 1
                if tail.match(text):
                    state = 1
                elif waited > _MAX_LINES_BEFORE_STACK:
                    ended_by = "too-long"
                    break
            elif state == 1 and is_frame:
                state = 2
        if pattern.end is not End.STACK:
            if _SECTION_START_RE.match(text):
                in_trace = True
            elif is_frame:
                foreign_run = 0
            elif in_trace and not _TRACE_LINE_RE.match(text):
                if (foreign_run < _MAX_FOREIGN_LINES and not _is_end(pattern.end, text, banner)
                        and _frame_follows(table, i, context, by_index)):
                    # as above, for a report that waits for its end marker; a
                    # long trace can be interrupted more than once
                    foreign_run += 1
                    i += 1
                    continue
                in_trace = False
        if (after_cut and not (frames_seen or pc_seen) and pattern.end is not End.STACK
                and _is_end(pattern.end, text, banner)):
            # An end marker before this report has shown a single register or
            # frame is the cut report's own: it ended here, on another CPU.
            interleaved = True
            i += 1
            continue
        indices.append(i)
        frames_seen = frames_seen or is_frame
        pc_seen = pc_seen or parse_pc(text) is not None
        if "Sending NMI from CPU" in text:
            # Backtraces of the other CPUs follow, each under its own [Cn].
            nmi_backtrace = True
        if _is_end(pattern.end, text, banner):
            ended_by = "end-marker"
            break
        if len(indices) > _MAX_REPORT_LINES:
            ended_by = "too-long"
            break
        i += 1
    else:
        if stop < len(table):
            ended_by = "too-long"
    return _Report(headers, indices, ended_by, state == 2, interleaved)


def _frame_follows(table: LineTable, i: int, context: str, by_index: dict[int, _Header]) -> bool:
    """Whether the next line of the same writer after line i is a stack frame."""
    for j in range(i + 1, min(len(table), i + 8)):
        ln = table[j]
        if ln.context != context:
            continue
        return j not in by_index and _is_frame(ln.text)
    return False


def _is_frame(text: str) -> bool:
    if parse_frame(text) is not None:
        return True
    pc = parse_pc(text)
    return pc is not None and pc[1] is not None


# --- turning a report into a finding -------------------------------------------


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def _to_finding(table: LineTable, report: _Report) -> Finding:
    header = report.headers[0]
    pattern = header.pattern
    lines = [table[i] for i in report.indices]
    texts = [ln.text for ln in lines]
    at = report.indices.index(header.index)
    sections = [s for s in parse_sections(lines) if s.line > at]

    fields = _Fields(header.match.groups)
    if pattern.fields is not None:
        fields.update(pattern.fields(header.match.groups, texts[at + 1 :]))
    choice, rule = _guilty(pattern, report, texts, sections, at)
    frame = canonical_func(choice.frame.func) if choice.frame is not None else None

    template = pattern.title
    if frame is None:
        template = template.replace(" in {frame}", "")
    fields["frame"] = frame or ""
    title = template.format_map(fields)
    kind = re.sub(r"\s+", "-", pattern.kind.format_map(fields).strip()) or pattern.name

    sig_class: str = str(pattern.bug_class)
    extra: dict[str, str] = {}
    if pattern.stack == "fault-site" and any(_KASAN_NULL_RE.match(t) for t in texts[at : at + 12]):
        # KASAN turns a NULL dereference into a fault on the shadow address,
        # reported as #GP on x86 and as a paging request on arm64.
        sig_class, kind = str(BugClass.BUG), "null-ptr-deref"
        extra["kasan"] = "null-ptr-deref"
    sig_frame = (frame or "?") if pattern.frame_in_title else "-"
    signature = f"{sig_class}:{kind}:{sig_frame}"

    extra.update(_extra(pattern, fields, sections))
    if choice.unnamed is not None:
        extra["unnamed_frame"] = choice.unnamed.symbol
    for h in report.headers[1:]:
        if h.pattern.name == "panic":
            # panic_on_warn and friends, printed inside the report itself
            extra.setdefault("panic", h.match.groups.get("reason", "").strip())
    comm, pid, cpu, taint = _task(pattern, header.match.groups, texts, header.line)
    reasons = _corruption(pattern, report, texts, sections, at, choice)
    timestamp = next((ln.timestamp for ln in lines if ln.timestamp is not None), None)
    return Finding(
        bug_class=pattern.bug_class,
        title=title,
        kind=kind,
        signature=signature,
        guilty_frame=frame,
        guilty_rule=rule,
        text="\n".join(texts),
        raw="\n".join(table.raw(i).rstrip("\r") for i in report.indices),
        line=header.index + 1,
        timestamp=timestamp,
        comm=comm,
        pid=pid,
        cpu=cpu,
        taint=taint,
        context=header.line.context if header.line.context[:1] in ("T", "C") else None,
        corrupted=bool(reasons),
        corrupted_reason="; ".join(reasons) if reasons else None,
        skipped=choice.skipped,
        extra=extra,
    )


def _first(sections: Sequence[Section], *kinds: str) -> Section | None:
    return next((s for s in sections if s.kind in kinds and s.frames), None)


def _guilty(
    pattern: Pattern,
    report: _Report,
    texts: Sequence[str],
    sections: Sequence[Section],
    at: int,
) -> tuple[Choice, str | None]:
    """The guilty frame and the name of the place it was found."""
    skip = pattern.skip
    strategy = pattern.stack
    trace = _first(sections, "call-trace", "bare")
    candidates: list[tuple[str, list[Frame]]] = []

    func = report.headers[0].match.groups.get("func", "")
    # a bare address ("corrupted in: ffffffffa0012345") names no function
    header_frame = None if _ADDRESS_RE.fullmatch(func) else parse_frame(func + "+0x0/0x0")
    if strategy in ("kasan", "header"):
        # The function the sanitizer names, then the access stack: KMSAN and
        # KFENCE print their frames with no "Call Trace:" line above them.
        if header_frame is not None:
            candidates.append(("header", [header_frame]))
        if strategy == "kasan":
            stack = trace if trace is not None else _first(sections, "bare")
            if stack is not None:
                candidates.append(("call-trace", stack.frames))
    elif strategy == "fault-site":
        seq: list[tuple[str, Frame]] = []
        for h in report.headers:
            named = h.match.groups.get("func")
            f = parse_frame(named) if named and h.pattern.stack == "fault-site" else None
            if f is not None:
                seq.append(("warning-line", f))
        first_trace = trace.line if trace is not None else len(texts)
        for s in sections:
            if s.kind == "pc" and s.line < first_trace:
                seq.extend(("pc", f) for f in s.frames)
        if trace is not None:
            seq.extend(("call-trace", f) for f in trace.frames)
        else:
            lr = _first(sections, "lr")
            if lr is not None:
                seq.extend(("lr", f) for f in lr.frames)
        choice, origin = _choose_tagged(seq, skip)
        if choice.frame is None and choice.unnamed is None:
            # Every frame is machinery (a crash inside the workqueue core,
            # the allocator, a lock): the crash site itself is the answer.
            site = next((f for name, f in seq if name in ("warning-line", "pc")), None)
            if site is not None:
                return Choice(site, choice.skipped), "crash-site"
        return choice, origin
    elif strategy == "lockdep":
        site = _lockdep_site(pattern, texts, at)
        if site is not None:
            candidates.append(("lockdep-site", [site]))
        final = _last_trace(sections, texts)
        if final is not None:
            candidates.append(("call-trace", final.frames))
    elif strategy == "stall":
        skipped_stall: list[tuple[str, str]] = []
        for name, frames in _stall_candidates(sections, trace, texts):
            choice = choose_stall(frames, skip)
            skipped_stall.extend(choice.skipped)
            if choice.frame is not None:
                return Choice(choice.frame, tuple(skipped_stall)), name
        return Choice(None, tuple(skipped_stall)), None
    elif strategy == "hung":
        if trace is not None:
            choice = choose_hung(trace.frames, skip)
            return choice, ("call-trace" if choice.frame is not None else None)
    elif strategy == "slub":
        # Whatever finds the damage (the next free, the next allocation of
        # the object, a validate run) is rarely what did it; the object's
        # owner is, and its allocation track names it.
        candidates.extend(_slub_alloc_track(texts, sections, at))
        calls = _first(sections, "call-trace")
        if calls is not None:
            candidates.append(("call-trace", calls.frames))
    elif strategy == "page-owner":
        for s in sections:
            if s.kind == "aux" and texts[s.line].lstrip().startswith("page last allocated"):
                candidates.append(("page-owner", s.frames))
                break
    elif strategy == "marker-line":
        m = next((m for t in texts[at + 1 :] if pattern.marker and (m := pattern.marker.search(t))),
                 None)
        last = parse_frame(m.group("func") + "+0x0/0x0") if m is not None else None
        if last is not None:
            candidates.append(("marker-line", [last]))
    elif strategy == "backtrace":
        bt = _first(sections, "backtrace")
        if bt is not None:
            candidates.append(("backtrace", bt.frames))
    elif strategy == "call-trace" and trace is not None:
        candidates.append(("call-trace", trace.frames))

    skipped: list[tuple[str, str]] = []
    for name, frames in candidates:
        # lockdep names the site itself ("at: f+0x1/0x2"): only the row's
        # own words apply to it, as in the reference
        choice = choose(frames, skip, common=name != "lockdep-site")
        skipped.extend(choice.skipped)
        if choice.frame is not None:
            rule = name + ("/syscall-fallback" if choice.syscall_fallback else "")
            return Choice(choice.frame, tuple(skipped), choice.syscall_fallback), rule
        if choice.unnamed is not None:
            return Choice(None, tuple(skipped), unnamed=choice.unnamed), None
    return Choice(None, tuple(skipped)), None


def _choose_tagged(
    seq: Sequence[tuple[str, Frame]], skip: Sequence[str]
) -> tuple[Choice, str | None]:
    choice = choose([f for _, f in seq], skip)
    if choice.frame is None:
        return choice, None
    origin = next(name for name, f in seq if f is choice.frame)
    return choice, origin + ("/syscall-fallback" if choice.syscall_fallback else "")


def _lockdep_site(pattern: Pattern, texts: Sequence[str], at: int) -> Frame | None:
    """The frame on the "at:" line lockdep prints after its marker line."""
    start = at + 1
    if pattern.marker is not None:
        start = next(
            (i for i in range(at + 1, len(texts)) if pattern.marker.search(texts[i])), start
        )
    for i in range(start, min(start + 12, len(texts))):
        m = _AT_RE.search(texts[i])
        if m is None:
            continue
        rest = m.group("rest") or (texts[i + 1] if i + 1 < len(texts) else "")
        frame = parse_frame(rest)
        # symbolised lockdep output names the inlined function first
        if frame is not None and not frame.inline:
            return frame
    return None


def _slub_alloc_track(
    texts: Sequence[str], sections: Sequence[Section], at: int
) -> list[tuple[str, list[Frame]]]:
    """The frames of a SLUB report's "Allocated in" line and the stack under it."""
    for i in range(at + 1, len(texts)):
        m = _SLUB_ALLOC_RE.match(texts[i])
        if m is None:
            continue
        frame = parse_frame(m.group("frame"), i)
        frames = [frame] if frame is not None else []
        below = next((s for s in sections if s.line == i + 1 and s.kind == "bare"), None)
        if below is not None:
            frames += below.frames
        return [("alloc-track", frames)] if frames else []
    return []


def _last_trace(sections: Sequence[Section], texts: Sequence[str]) -> Section | None:
    """The Call Trace under lockdep's "stack backtrace:"."""
    marker = next((i for i, t in enumerate(texts) if t.startswith("stack backtrace:")), None)
    for s in sections:
        if s.kind in ("call-trace", "bare") and s.frames and (marker is None or s.line > marker):
            return s
    return None


_NMI_TARGETS_RE = re.compile(r"Sending NMI from CPU (?P<src>\d+) to CPUs (?P<dst>[\d,-]+)")
_NMI_FOR_RE = re.compile(r"^\s*NMI backtrace for cpu (?P<cpu>\d+)")


def _stall_candidates(
    sections: Sequence[Section], trace: Section | None, texts: Sequence[str] = ()
) -> list[tuple[str, list[Frame]]]:
    """Where a stalled or locked-up CPU was: the context the interrupt hit.

    An RCU stall reported by the grace-period kthread ("detected stalls on
    CPUs/tasks") prints its own stack too, which says nothing: the stalled
    CPU's stack is the NMI backtrace the reporter asked for.
    """
    out: list[tuple[str, list[Frame]]] = []
    targets: set[str] = set()
    for t in texts:
        m = _NMI_TARGETS_RE.search(t) if "Sending NMI" in t else None
        if m is not None:
            targets.update(re.findall(r"\d+", m.group("dst")))
            break
    if targets:
        for i, t in enumerate(texts):
            m = _NMI_FOR_RE.match(t)
            if m is None or m.group("cpu") not in targets:
                continue
            stack = next(
                (s for s in sections if s.line > i and s.kind in ("call-trace", "bare", "pc")),
                None,
            )
            if stack is None:
                continue
            after = [s for s in sections if s.line >= stack.line and s.kind != "pc"]
            frames = list(stack.frames) if stack.kind == "pc" else []
            if stack.kind == "pc" and after:
                frames += after[0].frames
            elif stack.kind != "pc":
                pcs = [n for n, f in enumerate(stack.frames) if f.pc]
                frames = stack.frames[pcs[0] :] if pcs else stack.frames
            if frames:
                out.append(("stalled-cpu", frames))
                break
    if trace is not None:
        pcs = [n for n, f in enumerate(trace.frames) if f.pc]
        if pcs:
            out.append(("interrupted-pc", trace.frames[pcs[0] :]))
    pc = next((s for s in sections if s.kind == "pc" and s.frames), None)
    if pc is not None and (trace is None or pc.line < trace.line):
        out.append(("pc", pc.frames + (trace.frames if trace is not None else [])))
    if trace is not None:
        if trace.irq_end is not None:
            out.append(("interrupted-context", trace.frames[trace.irq_end :]))
        entry = next((n for n, f in enumerate(trace.frames) if _IRQ_ENTRY_RE.match(f.func)), None)
        if entry is not None:
            out.append(("interrupted-context", trace.frames[entry + 1 :]))
        out.append(("call-trace", trace.frames))
    return out


def _extra(pattern: Pattern, fields: dict[str, str], sections: Sequence[Section]) -> dict[str, str]:
    extra: dict[str, str] = {}
    keys = ("access", "size", "otype", "hint", "what", "file", "secs", "count", "reason", "cache")
    for key in keys:
        value = fields.get(key, "").strip()
        if value:
            extra[key] = value
    if pattern.bug_class is BugClass.KASAN:
        # Where the object came from and went: the first useful frame of the
        # allocation and free stacks.
        for kind, key in (("alloc", "alloc_frame"), ("free", "free_frame")):
            stack = _first(sections, kind)
            if stack is not None:
                choice = choose(stack.frames, ("slub",))
                if choice.frame is not None:
                    extra[key] = choice.frame.func
    return extra


def _task(
    pattern: Pattern, groups: dict[str, str], texts: Sequence[str], header: Line
) -> tuple[str | None, int | None, int | None, frozenset[str] | None]:
    comm: str | None = groups.get("comm")
    pid = int(groups["pid"]) if "pid" in groups else None
    cpu = int(groups["cpu"]) if "cpu" in groups else None
    taint: set[str] | None = None
    for text in texts:
        m = _CPU_RE.search(text) if "CPU: " in text else None
        if m is not None:
            if pattern.bug_class is not BugClass.HUNG_TASK:
                # The CPU line names the task that hit the bug; for a hung
                # task it is the watchdog, and the header names the victim.
                comm, pid = m.group("comm"), int(m.group("pid"))
                cpu = int(m.group("cpu"))
            taint = _taint_letters(m.group("taint"))
            break
    else:
        for text in texts:
            m = (
                _OLD_PID_RE.match(text)
                or _BY_TASK_RE.search(text)
                or _KMEMLEAK_COMM_RE.match(text)
                or _SCHED_TASK_RE.match(text)
                or _LOCKDEP_TASK_RE.match(text)
            )
            if m is not None and comm is None:
                comm, pid = m.group("comm"), int(m.group("pid"))
            t = _TAINT_LINE_RE.match(text)
            if t is not None and taint is None:
                taint = _taint_letters(t.group("taint"))
    for text in texts:
        if "Tainted: [" in text and text.lstrip().startswith("Tainted: ["):
            taint = (taint or set()) | set(_TAINT_NAMES_RE.findall(text))
    if cpu is None and header.context.startswith("C"):
        cpu = int(header.context[1:])
    return comm, pid, cpu, frozenset(taint) if taint is not None else None


def _taint_letters(field_text: str) -> set[str]:
    if field_text.startswith("Not"):
        return set()
    # "G" only says that no proprietary module is loaded: not a taint.
    return {c for c in field_text.removeprefix("Tainted:") if c.isalpha() and c != "G"}


# panic() prints its "---[ end Kernel panic" line only when it is not going
# to reboot. With panic=N (or panic=-1, as our QEMU boots use) the machine
# resets right after the panic notifiers, the last of which print the kernel
# offset (x86, arm64), or after "Rebooting in N seconds..".
_PANIC_LAST_RE = re.compile(r"^\s*(?:Kernel Offset: |Rebooting in -?\d+ seconds)")


def _panic_finished(pattern: Pattern, report: _Report, texts: Sequence[str]) -> bool:
    """A panic whose log ends where a rebooting kernel stops printing."""
    return (
        pattern.end is End.PANIC
        and report.ended_by == "eof"
        and any(_PANIC_LAST_RE.match(t) for t in texts[-8:])
    )


def _corruption(
    pattern: Pattern,
    report: _Report,
    texts: Sequence[str],
    sections: Sequence[Section],
    at: int,
    choice: Choice,
) -> list[str]:
    reasons: list[str] = []
    if report.interleaved:
        reasons.append("interleaved with the report before it (no caller ids)")
    if _TIMESTAMP_IN_TEXT_RE.search(texts[at]):
        reasons.append("garbled header: another line is mixed into it")
    has_frames = any(s.frames for s in sections)
    if pattern.needs_stack and not has_frames:
        reasons.append("no stack trace")
    if pattern.end is End.STACK:
        if pattern.needs_stack and has_frames and not report.stack_done:
            if report.ended_by == "next-report":
                reasons.append("next report began before this one's stack")
    elif report.ended_by != "end-marker" and not _panic_finished(pattern, report, texts):
        reasons.append(
            {
                "next-report": "next report began before this one ended",
                "eof": "no end marker: the log ends inside the report",
            }.get(report.ended_by, "no end marker")
        )
    if pattern.frame_in_title and has_frames and choice.frame is None and choice.unnamed is None:
        # A whole report whose frames are all machinery is not damaged: a
        # preempt count leaked to the return to user space is caught in
        # schedule() under the syscall exit, with nothing else on the stack.
        # Only "? " guesses, or a report cut short, leave the stack in doubt.
        if not (choice.skipped and report.ended_by in ("end-marker", "stack")):
            reasons.append("no usable frame in the stack")
    for s in sections:
        # Types that may come without a stack may also come with an empty
        # one: a double fault on an overrun stack has nothing left to unwind.
        if pattern.needs_stack and s.kind in ("call-trace", "alloc", "free", "backtrace"):
            if not s.frames and not s.unavailable and s.line < len(texts) - 1:
                reasons.append(f"no frames after '{texts[s.line].strip()}'")
    return list(dict.fromkeys(reasons))
