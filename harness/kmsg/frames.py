"""Stack frames, the stack sections of a report, and the guilty-frame rules.

A frame is reduced to its function name: offsets, module names and the
compiler's clone suffixes (.cold, .isra.0, .constprop.0, .part.0) are build
details that differ between kernels and architectures, while the function
is what a bug is about. That is what makes the signature of one crash the
same on x86 (" func+0x1f/0x30 [mod]") and arm64 (" func+0x1f/0x30", "pc : ...").

The guilty frame follows syzbot's convention: walk the frames from the
report's anchor (the RIP/pc line, the Call Trace, the kmemleak backtrace ...)
and take the first one that is not reporting, sanitizer, allocator, locking,
string-copy, printk, teardown or entry machinery. The rules doing the
skipping are data (SKIP_RULES, EXTRA_RULES): a named regex each, so the
reason a frame was passed over can be shown next to the result.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.kmsg.lines import Line

# " func+0x1f/0x30", " [<ffffffff81234567>] ? func+0x1f/0x30 [mod 1234abcd]",
# "[c000000000123456] [c000000000123456] func+0x1f/0x30 (unreliable)",
# " <c010397e> func+0x85/0x8f" (2.6 i386). Module build ids follow the name.
_FRAME_RE = re.compile(
    r"""^\s*(?:(?:\[<?(?:0x)?[0-9a-f]+>?\]|<[0-9a-f]+>)\s*){0,2}
    (?P<q>\?\s+)?
    (?P<sym>[A-Za-z_.$][\w.$]*)\+0x(?P<off>[0-9a-f]+)/0x(?P<size>[0-9a-f]+)
    (?:\s+\[(?P<mod>[\w-]+)(?:\s+[0-9a-f]+)?\])?
    (?P<rest>.*)$""",
    re.VERBOSE,
)
# Symbolised output (syzbot, decode_stacktrace.sh) adds inlined callers as
# lines without an offset: " v4l2_fh_init drivers/media/v4l2-core/v4l2-fh.c:25 [inline]"
# (older symbolisers left out the "[inline]").
_INLINE_RE = re.compile(
    r"^\s*(?P<sym>[A-Za-z_][\w.]*)\s+(?:\.?/)?[\w./-]+\.[chS]:\d+(?:\s+\[inline\])?\s*$"
)
# A return address the kernel could not name: code that is gone by the time
# the stack is printed (a module's __init text, an unloaded module), e.g.
# kmemleak's "    [<000000007dbbc020>] 0xffffffffa00082bb".
_UNNAMED_RE = re.compile(
    r"^\s*(?:\[<?(?:0x)?[0-9a-f]+>?\]\s*)?(?P<q>\?\s+)?(?P<addr>0x[0-9a-f]{8,16})\s*$"
)
UNNAMED = "?"  # Frame.func of such a frame
# arm32 unwinder: " show_stack from dump_stack_lvl+0x40/0x4c" is a frame for show_stack.
_ARM_FROM_RE = re.compile(r"^\s*(?P<sym>[A-Za-z_][\w.]*) from [\w.]+\+0x[0-9a-f]+/0x[0-9a-f]+")
# The faulting-instruction lines of the different architectures.
_PC_RE = re.compile(
    r"^\s*(?:(?P<x86>RIP|EIP|NIP|IP):\s*(?:(?P<seg>[0-9a-f]{4}):)?"
    r"|(?P<arm>pc|lr)\s+:\s*"
    r"|(?P<old>PC|LR|EIP) is at\s+)"
)
# Lines that belong to a call trace without being frames: the x86 stack
# markers and the register dump printed where the stack crosses an interrupt.
_TRACE_NOISE_RE = re.compile(
    r"^\s*(?:</?(?:IRQ|TASK|NMI|SOFTIRQ)>|<EOI>"
    r"|(?:RSP|RAX|RBX|RCX|RDX|RSI|RDI|RBP|R\d{1,2}|FS|GS|CS|DS|ES|CR\d|DR\d|PKRU|Code)\s*:"
    r"|---- interrupt|\(stack is not available\))"
)
_IRQ_END_RE = re.compile(r"^\s*</IRQ>")

# Lines that open a stack; the kind decides which rules read it. One regex
# with a group per kind, as this runs on every line of every report.
_SECTION_RE = re.compile(
    r"^\s*(?:(?P<call_trace>Call [Tt]race:\s*$)"
    r"|(?P<alloc>Allocated(?: by task \d+)?:\s*$)"
    r"|(?P<free>Freed(?: by task \d+)?:\s*$)"
    r"|(?P<backtrace>backtrace(?: \(crc [0-9a-f]+\))?:\s*$)"
    r"|(?P<aux>(?:Second to last|Last) potentially related work creation:"
    r"|(?:Second to last|Last) call_rcu\(\):|page last (?:allocated|free)"
    r"|Preemption disabled at:|-> #\d+ ))"
)


def normalise_func(symbol: str) -> str:
    """The function a symbol belongs to, without clone suffixes.

    Compiler clones and LTO renames: foo.cold, foo.isra.0, foo.constprop.0.cold
    """
    return symbol.partition(".")[0] or symbol


@dataclass(frozen=True, slots=True)
class Frame:
    func: str  # normalised name, the unit of titles and signatures
    symbol: str  # as printed, e.g. "btrfs_discard_cancel_work.cold"
    offset: str | None  # "0x26/0x2b"
    module: str | None
    line: int  # index of the frame's line within the report
    questionable: bool = False  # x86 "? " frames: stale stack words
    inline: bool = False  # symbolised inline frame, no address of its own
    pc: bool = False  # came from a RIP/pc line: the faulting instruction

    def __str__(self) -> str:
        s = self.symbol + (f"+{self.offset}" if self.offset else "")
        return s + (f" [{self.module}]" if self.module else "")


def parse_frame(text: str, line: int = 0) -> Frame | None:
    """A frame from one stack line, or None for any other line."""
    fields = _frame_fields(text)
    return Frame(*fields[:4], line, *fields[4:]) if fields is not None else None


# A report's lines are looked at while it is cut out of the log and again
# when its stacks are read, and repeated reports repeat their frames.
@functools.lru_cache(maxsize=16384)
def _frame_fields(text: str) -> tuple[str, str, str | None, str | None, bool, bool] | None:
    if "0x" not in text and ".c:" not in text and ".h:" not in text and " from " not in text:
        return None
    m = _FRAME_RE.match(text)
    if m is not None:
        sym = m.group("sym")
        questionable = m.group("q") is not None or "(unreliable)" in m.group("rest")
        offset = f"0x{m.group('off')}/0x{m.group('size')}"
        return normalise_func(sym), sym, offset, m.group("mod"), questionable, False
    m = _INLINE_RE.match(text)
    if m is not None:
        sym = m.group("sym")
        return normalise_func(sym), sym, None, None, False, True
    m = _ARM_FROM_RE.match(text)
    if m is not None:
        sym = m.group("sym")
        return normalise_func(sym), sym, None, None, False, False
    m = _UNNAMED_RE.match(text)
    if m is not None:
        return UNNAMED, m.group("addr"), None, None, m.group("q") is not None, False
    return None


def parse_pc(text: str, line: int = 0) -> tuple[str, Frame | None] | None:
    """("pc"|"lr", frame) for a faulting-instruction line, None otherwise.

    The frame is None when the line names no kernel function: a user-space
    RIP (segment 0033) or a jump to a bad address ("RIP: 0010:0x0").
    """
    m = _PC_RE.match(text)
    if m is None:
        return None
    reg = "lr" if (m.group("arm") == "lr" or m.group("old") == "LR") else "pc"
    if m.group("seg") not in (None, "0010", "0060", "0008"):
        return reg, None
    rest = text[m.end() :]
    # Old x86: "RIP: 0010:[<ffffffff82d4e304>]  [<ffffffff82d4e304>] __memset+0x24/0x30"
    frame = parse_frame(rest, line)
    if frame is None or frame.func == UNNAMED:
        return reg, None
    return reg, Frame(
        frame.func, frame.symbol, frame.offset, frame.module, line, inline=frame.inline, pc=True
    )


@dataclass(slots=True)
class Section:
    """One stack in a report: the frames under a "Call Trace:" or similar line."""

    kind: str  # "call-trace", "alloc", "free", "backtrace", "aux", "pc", "lr", "bare"
    line: int  # index of the opening line within the report
    frames: list[Frame] = field(default_factory=list)
    irq_end: int | None = None  # frames[irq_end:] ran in the interrupted context
    unavailable: bool = False  # KASAN "(stack is not available)"


def parse_sections(lines: Sequence[Line]) -> list[Section]:
    """The stacks of a report, in order."""
    sections: list[Section] = []
    current: Section | None = None
    for i, ln in enumerate(lines):
        text = ln.text
        pc = parse_pc(text, i)
        if pc is not None:
            reg, frame = pc
            if current is not None and current.kind in ("call-trace", "bare"):
                # A RIP inside a trace is where an interrupt or trap hit;
                # it belongs to the trace, in order.
                if frame is not None and reg == "pc":
                    current.frames.append(frame)
                continue
            sections.append(Section(reg, i, [frame] if frame else []))
            current = None
            continue
        frame = parse_frame(text, i)
        if frame is not None:
            if current is None:
                current = Section("bare", i)
                sections.append(current)
            current.frames.append(frame)
            continue
        m = _SECTION_RE.match(text)
        if m is not None:
            current = Section(str(m.lastgroup).replace("_", "-"), i)
            sections.append(current)
            continue
        if current is not None and _TRACE_NOISE_RE.match(text):
            if "not available" in text:
                current.unavailable = True
            elif current.irq_end is None and _IRQ_END_RE.match(text):
                current.irq_end = len(current.frames)
            continue
        current = None
    return sections


# --- guilty-frame rules -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SkipRule:
    """Frames whose function matches `regex` are machinery, not the bug."""

    name: str
    regex: re.Pattern[str]


def _rule(name: str, *alternatives: str) -> SkipRule:
    return SkipRule(name, re.compile("|".join(f"(?:{a})$" for a in alternatives)))


# Applied to every report. Anchored at both ends: a driver function that
# merely contains "lock" or "alloc" in its name must stay eligible.
SKIP_RULES: tuple[SkipRule, ...] = (
    _rule(
        "report",
        r"_*dump_stack(?:_lvl)?",
        r"show_(?:stack|regs|trace_log_lvl|stack_log_lvl|registers)",
        r"__show_regs",
        r"dump_backtrace",
        r"print_address_description",
        r"print_report",
        r"print_error_description",
        r"describe_object\w*",
        r"end_report|start_report",
        r"__warn\w*|warn_slowpath\w*|warn_on_slowpath\w*",
        r"report_bug|__report_bug|handle_bug|fixup_bug|bug_handler",
        r"v?panic|nmi_panic|__panic|check_panic_on_warn",
        r"refcount_warn_saturate",
        r"__list_(?:add|del)\w*_valid\w*",
        r"debug_print_object|__?debug_check_no_obj_freed|debug_object_\w+",
        r"ubsan_(?:epilogue|prologue)|__ubsan_handle_\w+",
        r"__might_(?:sleep|resched|fault)|___might_sleep|might_(?:sleep|fault|resched)",
        r"__schedule_bug|schedule_debug",
        r"nmi_cpu_backtrace|nmi_trigger_cpumask_backtrace|arch_trigger_cpumask_backtrace",
        r"rcu_dump_cpu_stacks|dump_cpu_task|sched_show_task|print_cpu_stall\w*",
        r"check_cpu_stall|rcu_pending|rcu_sched_clock_irq|watchdog_timer_fn",
        r"print_\w+_bug|check_(?:noncircular|deadlock|prev_add|prevs_add|irq_usage|flags)",
        r"validate_chain|mark_lock\w*|mark_usage|lockdep_\w+|__lockdep_\w+",
        r"register_lock_class|look_up_lock_class|assign_lock_key",
    ),
    _rule(
        "sanitizer",
        r"_*k?asan_\w+",
        r"__asan_\w+",
        r"check_memory_region\w*|check_region_inline",
        r"_*kmsan_\w+|__msan_\w+|kcsan_\w+|__tsan_\w+|__sanitizer_\w+",
        r"_*kfence_\w+",
        r"save_stack\w*|stack_trace_save\w*|set_track|kmemleak_\w+|create_object\w*",
        r"poison_slab_object|metadata_access_\w+",
    ),
    _rule(
        "allocator",
        r"_*k(?:v)?(?:m|c|z|re)alloc\w*",
        r"_*do_kmalloc\w*",
        r"_*kmem_cache_\w+",
        r"_*kv?free\w*|kfree_sensitive|kvfree_call_rcu",
        r"_*v(?:m|z)alloc\w*|vfree\w*|vunmap|__vunmap",
        r"_*slab_\w+|new_slab|allocate_slab|alloc_slab_page|_*free_slab|discard_slab",
        r"kmemdup\w*|kstrn?dup\w*|kasprintf|kvasprintf\w*|devm_k\w*alloc\w*|devm_kfree",
        r"_*alloc_pages\w*|_*get_free_pages|_*free_pages\w*|free_unref_page\w*",
        r"get_page_from_freelist|prep_new_page|post_alloc_hook",
        r"pcpu_alloc|_*alloc_percpu\w*|free_percpu",
        r"mempool_(?:alloc|free)\w*",
    ),
    _rule(
        "locking",
        r"_*lock_(?:acquire|release|acquired|contended)\w*",
        r"_raw_(?:spin|read|write)_\w+|do_raw_\w+|__raw_\w+",
        r"(?:native_|__pv_)?queued_(?:spin|read|write)_lock\w*",
        r"(?:spin|read|write)_(?:lock|unlock|trylock)\w*",
        r"_*mutex_(?:lock|unlock|trylock)\w*|__mutex_\w+|mutex_remove_waiter",
        r"_*down(?:_\w+)?|up(?:_read|_write)?",
        r"_*rwsem_\w+|_*rt_mutex\w*|_*ww_mutex\w*|osq_(?:lock|unlock)",
        r"percpu_(?:down|up)_\w+",
    ),
    _rule(
        "string",
        r"_*mem(?:cpy|move|set|cmp|chr|scan)\w*",
        r"_*str(?:n?cpy|lcpy|scpy|n?cmp|n?len|n?chr|rchr|n?str|n?cat|lcat|sep)\w*",
        r"sized_strscpy|read_word_at_a_time",
        r"_*fortify_\w+|__(?:read|write)_overflow\w*",
        r"_*copy_(?:to|from|in)_user\w*|raw_copy_\w+|copy_user_\w+|rep_movs_alternative",
        r"__(?:get|put)_user\w*|check_copy_size|__check_object_size|check_heap_object",
        r"usercopy_\w+",
    ),
    _rule(
        "printk",
        r"_?printk\w*|vprintk\w*|__printk\w*|printk_\w+|console_\w+",
        r"_?dev_(?:err|warn|info|notice|emerg|crit|alert|printk)\w*|__dev_printk|dev_vprintk_emit",
        r"v?sn?printf|v?scnprintf|vsprintf|string(?:_nocheck)?|widen_string|pointer|format_decode",
    ),
    _rule(
        "teardown",
        r"kobject_(?:put|release|cleanup|del|delayed_cleanup|uevent\w*)",
        r"kref_put\w*",
        r"device_(?:release|del|unregister|destroy)|put_device",
        r"device_remove_file|sysfs_remove_\w+|release_nodes|devres_release_all",
    ),
    _rule(
        "trap",
        r"asm_exc_\w+|exc_\w+",
        r"do_(?:trap|error_trap|invalid_op|page_fault|user_addr_fault|kern_addr_fault)",
        r"do_(?:general_protection|mem_abort|translation_fault|bad_area|debug_exception)",
        r"__do_page_fault|page_fault\w*|handle_page_fault|_*bad_area\w*|no_context",
        r"page_fault_oops|kernelmode_fixup_or_oops",
        r"el1_(?:abort|da|dbg|undef|sync\w*)|el1h_64_sync\w*|__do_kernel_fault",
        r"die_kernel_fault|brk_handler|call_break_hook|_*die\w*|oops_\w+",
        r"make_task_dead|rewind_stack_and_make_dead|invalid_op|general_protection|error_code",
    ),
    _rule(
        "irq-entry",
        r"(?:asm_)?sysvec_\w+|__sysvec_\w+|(?:smp_)?apic_timer_interrupt",
        r"hrtimer_interrupt|__hrtimer_run_queues|__run_hrtimer|tick_sched_\w+",
        r"update_process_times|_*irq_exit\w*|handle_softirqs|__do_softirq|do_softirq\w*",
        r"invoke_softirq|run_ksoftirqd|irqentry_\w+|gic_handle_irq|el1_(?:irq|interrupt)\w*",
        r"el1h_64_irq\w*|call_on_irq_stack|do_interrupt_handler|_*handle_domain_irq",
        r"generic_handle_\w+|handle_\w+_irq|arch_timer_handler_\w+|asm_call_irq_on_stack",
        r"run_on_irqstack_cond|do_softirq_own_stack|call_timer_fn|_*run_timers\w*",
        r"run_timer_softirq|expire_timers|tasklet_action\w*",
        r"nmi_handle|default_do_nmi|exc_nmi|asm_exc_nmi",
    ),
    _rule(
        "entry",
        r"do_syscall_\w+|entry_SYSCALL\w*|do_fast_syscall_\w+|entry_INT80\w*",
        r"_*invoke_syscall|el0_svc\w*|do_el0_svc\w*|el0t_64_\w+|el0_sync\w*",
        r"ret_from_fork\w*|ret_from_exception|kthread|worker_thread|process_one_work",
        r"process_scheduled_works|smpboot_thread_fn",
        r"syscall_exit\w*|exit_to_user_mode\w*|syscall_enter_from_user_mode\w*",
        r"default_idle\w*|arch_cpu_idle\w*|do_idle|cpu_startup_entry|cpuidle_\w+",
        r"secondary_start\w*|start_secondary|start_kernel|rest_init",
        r"acpi_idle_\w+|call_cpuidle|secondary_startup_64\w*",
    ),
)

# Added per report type by the classification table.
EXTRA_RULES: dict[str, SkipRule] = {
    rule.name: rule
    for rule in (
        _rule(
            "scheduler",
            r"_*schedule\w*|_*switch_to\w*|context_switch|io_schedule\w*",
            r"preempt_schedule\w*|_*wait_for_(?:common|completion)\w*|do_wait_for_common",
            r"_*wait_on_\w+|out_of_line_wait_on_bit\w*|bit_wait\w*",
            r"folio_wait\w*|__folio_lock\w*|_*lock_page\w*|(?:prepare_to|finish)_wait\w*",
            r"msleep\w*|usleep_range\w*|_*flush_work\w*|__cancel_work\w*",
            r"cancel_(?:delayed_)?work_sync|kthread_stop\w*|__flush_workqueue|flush_workqueue",
        ),
        _rule("refcount", r"_*refcount_\w+"),
        _rule("list", r"_*h?list_\w+"),
        _rule(
            "debugobjects",
            r"_*debug_\w+",
            r"_*(?:try_to_)?del_timer\w*|timer_(?:delete|shutdown)\w*|_*mod_timer\w*",
            r"add_timer\w*|_*hrtimer_\w+|init_timer_key",
            r"_*(?:cancel|flush|queue)_(?:delayed_)?work\w*|__queue_work|__cancel_work\w*",
        ),
        _rule("rcu", r"_*rcu_\w+|_*call_rcu\w*|synchronize_rcu\w*"),
        # slub_debug's checks, and KASAN's quarantine handing objects back to
        # SLUB (the "allocator" rule has the slab_* functions already)
        _rule(
            "slub",
            r"check_(?:object|bytes_and_report|slab|pad_bytes|valid_pointer)|on_freelist",
            r"print_trailer|print_tracking|object_err|restore_bytes",
            r"(?:alloc|free)_(?:debug_processing|consistency_checks)|free_to_partial_list",
            r"alloc_single_from_\w+|validate_slab\w*|validate_store|do_slab_free|___cache_free",
            r"qlink_free|qlist_free_all|_*kasan_quarantine_\w+|per_cpu_remove_cache",
        ),
        _rule("usercopy-alloc", r"v?memdup_user\w*|strndup_user"),
    )
}

# Syscall handlers are kept only when nothing else is left: a bug reached
# straight from a syscall is better named after it than left unnamed.
SYSCALL_RULE = _rule(
    "syscall",
    r"_*(?:x64|ia32|arm64|riscv|se|do)_sys_\w+|_*(?:x64|ia32|arm64)_compat_sys_\w+",
    r"ksys_\w+|_*sys_\w+",
)


@dataclass(frozen=True, slots=True)
class Choice:
    """The guilty frame picked from a sequence, and what was passed over."""

    frame: Frame | None
    skipped: tuple[tuple[str, str], ...]  # (symbol, rule name)
    syscall_fallback: bool = False
    # The frame the blame fell on has no name ("0xffffffffa00082bb"): the
    # report is whole, the function is just not known.
    unnamed: Frame | None = None


def skip_rule_for(func: str, extra: Iterable[str] = ()) -> str | None:
    """The name of the rule that makes `func` machinery, or None."""
    for rule in SKIP_RULES:
        if rule.regex.match(func):
            return rule.name
    for name in extra:
        if EXTRA_RULES[name].regex.match(func):
            return name
    return None


def choose(frames: Iterable[Frame], extra: Sequence[str] = ()) -> Choice:
    """The first frame that is not machinery, syzbot style.

    "? " frames are stale words found on the stack, not calls, and inline
    frames only exist in symbolised output, so both are passed over without
    being listed: taking them would make the same crash look different with
    and without symbolisation.
    """
    skipped: list[tuple[str, str]] = []
    fallback: Frame | None = None
    last: str | None = None
    for frame in frames:
        if frame.questionable or frame.inline:
            continue
        if frame.func == last:
            # arm64 repeats the pc frame as the first Call trace entry
            continue
        last = frame.func
        if frame.func == UNNAMED:
            # Taking its caller instead would blame the code that merely
            # called into it (do_one_initcall for every leak in a module's
            # init function).
            return Choice(None, tuple(skipped), unnamed=frame)
        rule = skip_rule_for(frame.func, extra)
        if rule is None and SYSCALL_RULE.regex.match(frame.func):
            rule = SYSCALL_RULE.name
            if fallback is None:
                fallback = frame
        if rule is not None:
            skipped.append((frame.symbol, rule))
            continue
        return Choice(frame, tuple(skipped))
    if fallback is not None:
        return Choice(fallback, tuple(skipped), syscall_fallback=True)
    return Choice(None, tuple(skipped))
