"""parse_log and dedup on whole logs: boundaries, order, noise, signatures."""

from __future__ import annotations

import json
from itertools import zip_longest
from pathlib import Path

import pytest

from harness.pure.kmsg import BugClass, Finding, dedup, parse_log

DATA = Path(__file__).resolve().parents[1] / "data" / "kmsg"


def _load(name: str) -> str:
    return (DATA / name).read_text()


def _bare(name: str) -> str:
    """A capture's messages without their printk prefixes (and without \\r)."""
    from harness.pure.kmsg.lines import parse_line

    return "\n".join(parse_line(line).text for line in _load(name).splitlines()) + "\n"


# Captured in our VM: a KASAN use-after-free with its allocation and free stacks.
UAF = "lkdtm/lkdtm_READ_AFTER_FREE.log"
UAF_TITLE = "KASAN: use-after-free Read in lkdtm_READ_AFTER_FREE"


def _stamp(text: str, start: float = 100.0, caller: str | None = None) -> str:
    """The log as a serial console with printk times (and caller ids) prints it."""
    out = []
    for n, line in enumerate(text.splitlines()):
        prefix = f"[{start + n * 0.000013:12.6f}]"
        if caller is not None:
            prefix += f"[{caller:>6}]"
        out.append(f"{prefix} {line}")
    return "\n".join(out) + "\n"


def _key(f: Finding) -> tuple[str, str, str | None, bool]:
    return (f.title, f.signature, f.guilty_frame, f.corrupted)


# --- order, primary, dedup ---------------------------------------------------


REFCOUNT_TYPES = ("INC_OVERFLOW", "DEC_ZERO", "DEC_AND_TEST_NEGATIVE", "ADD_ZERO")


def test_findings_in_order_first_is_primary() -> None:
    # The four excerpts follow each other on one console (the "warn" boot).
    text = "".join(_load(f"lkdtm/lkdtm_REFCOUNT_{t}.log") for t in REFCOUNT_TYPES)
    findings = parse_log(text)
    assert [f.guilty_frame for f in findings] == [f"lkdtm_REFCOUNT_{t}" for t in REFCOUNT_TYPES]
    assert [f.primary for f in findings] == [True, False, False, False]
    assert [f.line for f in findings] == sorted(f.line for f in findings)
    groups = dedup(findings)
    assert [g.primary for g in groups] == [True, False, False, False]


def test_dedup_counts_and_keeps_first() -> None:
    # The hung-task detector reporting the same task on three scans.
    hung = _bare("lkdtm/lkdtm_HUNG_TASK.log")
    start = hung.index("INFO: task ")
    report = hung[start:]
    n = report.count("\n")
    groups = dedup(parse_log(report * 3))
    assert [(g.signature, g.count) for g in groups] == [("HUNG_TASK:task-hung:direct_entry", 3)]
    assert groups[0].first.pid == 61
    assert groups[0].to_dict()["lines"] == [1, 1 + n, 1 + 2 * n]

    groups = dedup(parse_log(_load("handwritten/kmemleak_crc_several_x86.log")))
    assert [(g.first.guilty_frame, g.count) for g in groups] == [
        ("vimc_ent_sd_register", 1),
        ("media_add_link", 2),
    ]


def test_same_crash_twice_is_one_group() -> None:
    text = _bare(UAF)
    findings = parse_log(text + "usb 1-1: new high-speed USB device\n" + text)
    assert len(findings) == 2
    assert not any(f.corrupted for f in findings)
    (group,) = dedup(findings)
    assert group.count == 2
    assert group.first is findings[0]
    assert group.first.primary and not findings[1].primary
    assert group.to_dict()["count"] == 2


# --- report boundaries ----------------------------------------------------------


def _report_only(text: str) -> str:
    """From the report's first line (its banner) on: the trigger's own lines dropped."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("====="))
    return "\n".join(lines[start:]) + "\n"


def _interleave(*texts: str) -> list[str]:
    lines: list[str] = []
    for group in zip_longest(*(t.splitlines() for t in texts)):
        lines.extend(line for line in group if line is not None)
    return lines


def test_interleaved_cpus_are_separated_by_caller_id() -> None:
    kasan_text = _report_only(_bare("handwritten/kasan_uaf_symbolised_x86.log"))
    lockdep_text = _report_only(_bare("lkdtm/provoke_LOCKDEP_RECURSIVE.log"))
    kasan = _stamp(kasan_text, 50.0, "T18349")
    lockdep = _stamp(lockdep_text, 50.000005, "T694")
    findings = parse_log("\n".join(_interleave(kasan, lockdep)))
    assert [f.title for f in findings] == [
        "KASAN: slab-use-after-free Read in media_device_ioctl",
        "possible deadlock in provoke_lockdep_recursive",
    ]
    assert not any(f.corrupted for f in findings)
    assert [f.context for f in findings] == ["T18349", "T694"]
    # each report holds its own lines and nothing else
    assert findings[0].text.splitlines() == kasan_text.splitlines()
    assert set(findings[1].text.splitlines()) <= set(lockdep_text.splitlines())


def test_interleaved_without_caller_ids_is_flagged() -> None:
    kasan = _stamp(_report_only(_bare("handwritten/kasan_uaf_symbolised_x86.log")), 50.0)
    lockdep = _stamp(_report_only(_bare("lkdtm/provoke_LOCKDEP_RECURSIVE.log")), 50.000005)
    findings = parse_log("\n".join(_interleave(kasan, lockdep)))
    assert findings[0].bug_class is BugClass.KASAN
    assert findings[0].corrupted
    assert "next report began" in (findings[0].corrupted_reason or "")


@pytest.mark.parametrize(
    "name",
    [
        "lkdtm/lkdtm_READ_AFTER_FREE.log",
        "lkdtm/lkdtm_SLAB_FREE_DOUBLE.log",
        "lkdtm/lkdtm_CORRUPT_LIST_DEL_sid.log",
        "lkdtm/lkdtm_ACCESS_NULL_arm64.log",
        "lkdtm/provoke_LOCKDEP_RECURSIVE.log",
        "lkdtm/lkdtm_HUNG_TASK.log",
        "handwritten/kmemleak_crc_several_x86.log",
        "lkdtm/provoke_UBSAN_SHIFT.log",
        "lkdtm/lkdtm_SPINLOCKUP.log",
        "lkdtm/provoke_ODEBUG_FREE_ACTIVE.log",
        "scenarios/rcar_vin_unbind_open_node_arm64.log",
    ],
)
def test_timestamps_and_caller_ids_do_not_change_the_result(name: str) -> None:
    bare = _bare(name)
    plain = parse_log(bare)
    stamped = parse_log(_stamp(bare))
    called = parse_log(_stamp(bare, caller="T42"))
    assert [_key(f) for f in stamped] == [_key(f) for f in plain]
    assert [_key(f) for f in called] == [_key(f) for f in plain]
    assert all(f.timestamp is None for f in plain)
    assert all(f.timestamp is not None and f.timestamp >= 100.0 for f in stamped)
    assert all(f.context == "T42" for f in called)


def test_cut_off_report_is_flagged() -> None:
    lines = _report_only(_bare(UAF)).splitlines()
    (f,) = parse_log("\n".join(lines[:20]))
    assert f.title == UAF_TITLE
    assert f.corrupted
    assert "end marker" in (f.corrupted_reason or "")

    (f,) = parse_log("\n".join(lines[:4]))
    assert f.corrupted
    assert "no stack trace" in (f.corrupted_reason or "")


def test_report_without_stack_is_flagged_not_guessed() -> None:
    hung = _bare("lkdtm/lkdtm_HUNG_TASK.log")
    text = "\n".join(hung[hung.index("INFO: task ") :].splitlines()[:4])
    (f,) = parse_log(text)
    assert f.bug_class is BugClass.HUNG_TASK
    assert f.guilty_frame is None
    assert f.title == "INFO: task hung"
    assert f.signature == "HUNG_TASK:task-hung:?"
    assert f.corrupted and "no stack trace" in (f.corrupted_reason or "")

    (f,) = parse_log(
        "[  120.818093][    C0] BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 "
        "stuck for 56s!\n"
    )
    assert f.title == "BUG: workqueue lockup"
    assert f.guilty_frame is None
    # a report about a state: the reference expects no stack and names no function
    assert not f.corrupted


def test_next_report_before_the_end_marker() -> None:
    first = _bare("lkdtm/lkdtm_CORRUPT_LIST_DEL_sid.log").splitlines()[:30]
    text = "\n".join(first) + "\n" + _bare(UAF)
    a, b = parse_log(text)
    assert a.title == "BUG: corrupted list in lkdtm_CORRUPT_LIST_DEL"
    assert a.corrupted
    assert a.corrupted_reason == "next report began before this one ended"
    assert b.title == UAF_TITLE
    assert not b.corrupted


def test_garbled_header_is_flagged() -> None:
    # another CPU's line landed in the middle of the header
    lines = _stamp(_report_only(_bare(UAF))).splitlines()
    lines[1] = lines[1][: lines[1].index("lkdtm_READ_") + 11] + "[  100.000020] usb 1-1: USB dis"
    (f,) = parse_log("\n".join(lines))
    assert f.corrupted
    assert "garbled" in (f.corrupted_reason or "")
    assert f.guilty_frame == "lkdtm_READ_AFTER_FREE"  # the stack still says where


# --- noise -------------------------------------------------------------------------


def _with_agent_lines(lines: list[str]) -> str:
    """Another writer's line after every fifth line, and \r\n line ends."""
    noisy = []
    for n, line in enumerate(lines):
        noisy.append(line + "\r")
        if n % 5 == 2:
            noisy.append("agent: frame 1234 dequeued, 614400 bytes\r")
    return "\n".join(noisy)


def test_console_noise_and_carriage_returns() -> None:
    # With printk times, lines without one are another writer's, wherever they fall.
    bare = _bare("lkdtm/lkdtm_REFCOUNT_DEC_AND_TEST_NEGATIVE_sid.log")
    clean = _stamp(bare[bare.index("refcount_t:") :]).splitlines()
    (f,) = parse_log(_with_agent_lines(clean))
    (g,) = parse_log("\n".join(clean))
    assert _key(f) == _key(g)
    assert "agent:" not in f.text and "agent:" not in f.raw
    assert "\r" not in f.raw
    assert f.text == g.text


def test_other_writer_inside_a_bare_call_trace_keeps_the_stack() -> None:
    # Without printk times nothing tells another writer's line from the
    # kernel's, except inside a Call Trace, where only frames belong: the
    # stack goes on across it, and the guilty frame stays where it is.
    bare = _bare("lkdtm/lkdtm_REFCOUNT_DEC_AND_TEST_NEGATIVE_sid.log")
    clean = bare[bare.index("refcount_t:") :].splitlines()
    (f,) = parse_log(_with_agent_lines(clean))
    (g,) = parse_log("\n".join(clean))
    assert _key(f) == _key(g)
    trace = f.text[f.text.index("Call Trace:") : f.text.index("entry_SYSCALL_64")]
    assert "agent:" not in trace


def test_syslog_echo_of_a_report_line_is_not_another_report() -> None:
    (f,) = parse_log(_load("handwritten/kernel_bug_syslog_echo_arm64.log"))
    assert f.title == "kernel BUG in ovx_sensor_probe"
    assert not f.corrupted


def test_out_of_tree_taint_is_not_a_finding() -> None:
    assert parse_log(_load("boot_noise_oot_taint.log")) == []
    (f,) = parse_log(_load("synthetic_lkdtm_write_ro_x86.log"))
    assert f.taint == frozenset({"O"})  # information on the finding, not one itself


@pytest.mark.parametrize(
    ("cpu_line", "taint"),
    [
        ("CPU: 0 PID: 1 Comm: sh Not tainted 6.8.0 #1", frozenset()),
        ("CPU: 0 PID: 1 Comm: sh Tainted: G    B   W  OE      6.8.0 #1", frozenset("BWOE")),
        ("CPU: 1 UID: 0 PID: 1 Comm: sh Tainted: G             L      syzkaller #0", {"L"}),
        ("CPU: 0 PID: 1 Comm: kworker/u32:1 Kdump: loaded Tainted: P  D  6.1.0 #1", {"P", "D"}),
    ],
)
def test_taint_letters(cpu_line: str, taint: frozenset[str]) -> None:
    text = f"""------------[ cut here ]------------
WARNING: CPU: 0 PID: 1 at drivers/media/test/vimc.c:12 vimc_thing+0x1/0x2 [vimc]
{cpu_line}
Call Trace:
 vimc_thing+0x1/0x2 [vimc]
---[ end trace 0000000000000000 ]---
"""
    (f,) = parse_log(text)
    assert f.taint == frozenset(taint)
    assert f.title == "WARNING in vimc_thing"
    assert (f.comm, f.pid) == (cpu_line.split("Comm: ")[1].split()[0], 1)


# --- signatures --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x86", "arm64", "signature"),
    [
        # both captured from our own VMs (lkdtm/, see the README there)
        (
            "lkdtm/lkdtm_ACCESS_NULL.log",
            "lkdtm/lkdtm_ACCESS_NULL_arm64.log",
            "BUG:null-ptr-deref:lkdtm_ACCESS_NULL",
        ),
        (
            "lkdtm/lkdtm_WRITE_RO.log",
            "lkdtm/lkdtm_WRITE_RO_arm64.log",
            "BUG:paging-request:lkdtm_WRITE_RO",
        ),
    ],
)
def test_x86_and_arm64_sign_the_same_crash_alike(x86: str, arm64: str, signature: str) -> None:
    (a,) = parse_log(_load(x86))
    (b,) = parse_log(_load(arm64))
    assert a.signature == b.signature == signature
    assert a.guilty_frame == b.guilty_frame


def test_signature_has_no_addresses_offsets_or_modules() -> None:
    for log in DATA.rglob("*.log"):
        for f in parse_log(log.read_text(errors="replace")):
            assert "+0x" not in f.signature and "[" not in f.signature, f.signature
            assert f.signature.count(":") >= 2


def test_question_mark_frames_are_dropped() -> None:
    (f,) = parse_log(_load("lkdtm/lkdtm_REFCOUNT_DEC_AND_TEST_NEGATIVE_sid.log"))
    assert f.guilty_frame == "lkdtm_REFCOUNT_DEC_AND_TEST_NEGATIVE"
    assert f.taint == frozenset({"W"})  # "Tainted: [W]=WARN" agrees with the CPU line
    assert ("refcount_warn_saturate", "refcount") in f.skipped
    assert all(sym not in ("__warn", "report_bug") for sym, _ in f.skipped)

    text = """BUG: sleeping function called from invalid context at kernel/locking/mutex.c:283
CPU: 0 PID: 77 Comm: vivid-000-vid-c Not tainted 6.8.0 #1
Call Trace:
 <TASK>
 ? vivid_thread_vid_cap+0x10/0x400 [vivid]
 dump_stack_lvl+0x1/0x2
 __might_resched+0x1/0x2
 mutex_lock_nested+0x1/0x2
 vivid_stop_generating_vid_cap+0x44/0x100 [vivid]
 </TASK>
"""
    (f,) = parse_log(text)
    assert f.guilty_frame == "vivid_stop_generating_vid_cap"


def test_warn_message_after_the_warning_line() -> None:
    # Some architectures print the WARN() message after the WARNING line.
    text = """------------[ cut here ]------------
WARNING: CPU: 1 PID: 0 at lib/refcount.c:28 refcount_warn_saturate+0x1/0x2
refcount_t: underflow; use-after-free.
CPU: 1 PID: 0 Comm: swapper/1 Tainted: G      D W         5.18.0 #47
Call Trace:
 refcount_warn_saturate+0x1/0x2
 drv_put+0x1/0x2
---[ end trace 0000000000000000 ]---
"""
    (f,) = parse_log(text)
    assert f.bug_class is BugClass.REFCOUNT
    assert f.title == "WARNING: refcount bug in drv_put"
    assert f.taint == frozenset({"D", "W"})


def test_consequence_panic_is_folded_into_the_report() -> None:
    (f,) = parse_log(_load("lkdtm/lkdtm_ACCESS_NULL_sid_panic.log"))
    assert f.extra["panic"] == "Fatal exception"
    (f,) = parse_log("[  1.000000] Kernel panic - not syncing: Fatal exception\n")
    assert f.title == "kernel panic: Fatal exception"
    assert f.corrupted


def test_kmemleak_summary_only_when_the_leaks_are_not_shown() -> None:
    summary = (
        "[  45.000000] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)\n"
    )
    (f,) = parse_log(summary)
    assert f.bug_class is BugClass.KMEMLEAK
    assert f.title == "kmemleak: new suspected memory leaks"
    assert not f.corrupted
    leaks = _load("handwritten/kmemleak_crc_several_x86.log").splitlines()[1:]
    findings = parse_log(summary + _stamp("\n".join(leaks), 46.0))
    assert len(findings) == 3
    assert all(f.kind == "memory-leak" for f in findings)


def test_kasan_alloc_and_free_frames() -> None:
    (f,) = parse_log(_load(UAF))
    assert f.extra["alloc_frame"] == "lkdtm_READ_AFTER_FREE"
    assert f.extra["free_frame"] == "lkdtm_READ_AFTER_FREE"
    assert f.extra["access"] == "Read"
    # symbolised stacks: inlined callers are not frames of their own
    (f,) = parse_log(_load("handwritten/kasan_uaf_symbolised_x86.log"))
    assert (f.extra["alloc_frame"], f.extra["free_frame"]) == ("vimc_probe", "vimc_remove")


def test_raw_and_stripped_text() -> None:
    bare = _bare("scenarios/race_subdev_open_gpf_kasan_debug.log")
    bare = bare[bare.index("general protection fault") :]
    (f,) = parse_log(_stamp(bare, 65.899519, "T6734"))
    raw, text = f.raw.splitlines(), f.text.splitlines()
    assert len(raw) == len(text)
    assert raw[0].startswith("[   65.899519][ T6734] general protection fault")
    assert text[0].startswith("general protection fault")
    assert f.timestamp == 65.899519
    assert f.context == "T6734"
    assert (f.comm, f.pid) == (parse_log(bare)[0].comm, parse_log(bare)[0].pid)


def test_findings_serialise_to_json() -> None:
    for log in DATA.rglob("*.log"):
        for group in dedup(parse_log(log.read_text(errors="replace"))):
            d = json.loads(json.dumps(group.to_dict()))
            assert d["class"] in {c.value for c in BugClass}
            assert d["count"] >= 1


def test_empty_and_garbage_input() -> None:
    assert parse_log("") == []
    assert parse_log("\n\n\r\n") == []
    assert parse_log("\x00\xff BUG WARNING INFO: UBSAN: list_del ODEBUG: refcount_t: \n") == []


def test_same_header_twice_is_two_reports() -> None:
    # A WARN_ON in a loop whose first report lost its stack.
    head = "WARNING: CPU: 0 PID: 77 at drivers/media/x.c:12 vivid_loop+0x1/0x2 [vivid]"
    text = f"""------------[ cut here ]------------
{head}
------------[ cut here ]------------
{head}
CPU: 0 PID: 77 Comm: vivid Not tainted 6.8.0 #1
Call Trace:
 vivid_loop+0x1/0x2 [vivid]
---[ end trace 0000000000000000 ]---
"""
    a, b = parse_log(text)
    assert a.title == b.title == "WARNING in vivid_loop"
    assert a.corrupted and not b.corrupted
    assert len(dedup([a, b])) == 1


def test_large_log_is_fast() -> None:
    # Boot-style noise around one report; the guard is loose on purpose, it
    # is there to catch per-line work creeping back in, not to benchmark.
    import time

    noise = "".join(
        f"[{n / 1000:12.6f}][  T{n % 300:>3}] usb 1-1: New USB device found, idVendor=0bc7\n"
        for n in range(40000)
    )
    text = noise + _stamp(_bare(UAF), 41.0, "T9") + noise
    start = time.perf_counter()
    (f,) = parse_log(text)
    elapsed = time.perf_counter() - start
    assert f.title == UAF_TITLE
    assert elapsed < 0.5 * len(text) / 1e6, f"{len(text) / 1e6:.1f} MB took {elapsed:.2f}s"


def _trace_report(header: str, *frames: str, end: str = "---[ end trace 0 ]---") -> str:
    lines = [header, "CPU: 0 PID: 7 Comm: t Not tainted 6.1.0 #1", "Call Trace:", " <TASK>"]
    lines += [f" {f}+0x1/0x2" for f in frames]
    return "\n".join([*lines, " </TASK>", end]) + "\n"


def test_generic_bug_titles_carry_no_addresses_or_counters() -> None:
    a = parse_log(_trace_report("BUG: Bad pagetable 0x1234 count 7", "vivid_foo"))
    b = parse_log(_trace_report("BUG: Bad pagetable 0xabcd count 9", "vivid_foo"))
    assert a[0].title == b[0].title == "BUG: Bad pagetable count in vivid_foo"
    assert a[0].signature == b[0].signature


def test_preemptible_and_stack_segment_rows() -> None:
    (f,) = parse_log(_trace_report(
        "BUG: using smp_processor_id() in preemptible [00000000] code: t/7",
        "dump_stack_lvl",
        "check_preemption_disabled",
        "debug_smp_processor_id",
        "vimc_streamer_thread",
    ))
    assert f.title == "BUG: using smp_processor_id() in preemptible code in vimc_streamer_thread"
    (f,) = parse_log(
        "stack segment: 0000 [#1] PREEMPT SMP KASAN\nCPU: 0 PID: 7 Comm: t Not tainted 6.1.0 #1\n"
        "RIP: 0010:media_entity_pipeline_start+0x1/0x2\nCall Trace:\n <TASK>\n"
        " vimc_capture_start_streaming+0x1/0x2\n </TASK>\n---[ end trace 0 ]---\n"
    )
    assert f.title == "stack segment fault in media_entity_pipeline_start"
