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

from harness.pure.kmsg.lines import Line

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
# arm32 unwinder, before 5.x: "[<c010b4c4>] (show_stack) from [<c0a5e8d0>]
# (dump_stack+0x9c/0xb0)" (or "(show_stack+0x10/0x14) from ..."): a frame for
# show_stack, the function in the first parentheses.
_ARM_BRACKET_RE = re.compile(
    r"^\s*\[<[0-9a-f]+>\]\s*\((?P<sym>[A-Za-z_.$][\w.$]*)"
    r"(?:\+0x(?P<off>[0-9a-f]+)/0x(?P<size>[0-9a-f]+))?(?:\s+\[(?P<mod>[\w-]+)\])?\)\s+from\s"
)
# Old x86 kernels put the interrupt-stack markers on the line of a frame:
# " <IRQ>  [<ffffffff8100b2c4>] dump_stack+0x1/0x2", " <EOI>  [<...>] f+0x1/0x2".
_MARKER_PREFIX_RE = re.compile(r"^\s*</?(?:IRQ|EOI|NMI|TASK|SOFTIRQ)>\s+(?=\S)")
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
_IRQ_END_RE = re.compile(r"^\s*(?:</IRQ>|<EOI>)")

# Lines that open a stack; the kind decides which rules read it. One regex
# with a group per kind, as this runs on every line of every report.
_SECTION_RE = re.compile(
    r"^\s*(?:(?P<call_trace>(?:Call [Tt]race|Backtrace):\s*$)"
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
    symbol: str  # as printed, e.g. "vimc_capture_stop_streaming.cold"
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
    if "<" in text[:12]:
        marker = _MARKER_PREFIX_RE.match(text)
        if marker is not None:
            text = text[marker.end() :]
    m = _FRAME_RE.match(text)
    if m is not None:
        sym = m.group("sym")
        questionable = m.group("q") is not None or "(unreliable)" in m.group("rest")
        offset: str | None = f"0x{m.group('off')}/0x{m.group('size')}"
        return normalise_func(sym), sym, offset, m.group("mod"), questionable, False
    m = _INLINE_RE.match(text)
    if m is not None:
        sym = m.group("sym")
        return normalise_func(sym), sym, None, None, False, True
    m = _ARM_BRACKET_RE.match(text)
    if m is not None:
        sym = m.group("sym")
        offset = f"0x{m.group('off')}/0x{m.group('size')}" if m.group("off") else None
        return normalise_func(sym), sym, offset, m.group("mod"), False, False
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
            if current.irq_end is None and _IRQ_END_RE.match(text):
                # "<EOI> [<...>] f+0x1/0x2": the interrupted context starts here
                current.irq_end = len(current.frames)
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
#
# The reference (syzkaller's linuxStackParams) matches its skip words anywhere
# in a function name: "down" skips down_read and __down_common, "string"
# skips every vsprintf helper. Rules here say which kind they are: `_words`
# for such substrings, `_exact` for whole names (a driver function that merely
# contains "alloc" or "entry" must stay eligible). Both are searched.


@dataclass(frozen=True, slots=True)
class SkipRule:
    """Frames whose function matches `regex` are machinery, not the bug."""

    name: str
    regex: re.Pattern[str]


def _words(name: str, *substrings: str) -> SkipRule:
    return SkipRule(name, re.compile("|".join(substrings)))


def _exact(name: str, *alternatives: str) -> SkipRule:
    return SkipRule(name, re.compile("^(?:" + "|".join(alternatives) + ")$"))


def _rules(*parts: SkipRule) -> SkipRule:
    """Several rules under the first one's name: one regex search per frame."""
    return SkipRule(parts[0].name, re.compile("|".join(f"(?:{p.regex.pattern})" for p in parts)))


# Applied to every report.
SKIP_RULES: tuple[SkipRule, ...] = (
    _rules(
        # printing the report: stack dumps, WARN()/BUG() plumbing, panic
        _words(
            "report",
            "dump_stack", "dump_backtrace", "print_address_description", "panic",
            "report_bug", "fixup_bug", "warn_slowpath", "warn_alloc", "__warn",
            r"^_*show_(?:stack|regs|trace_log_lvl|stack_log_lvl|registers)",
            r"^(?:print_report|print_error_description|end_report|start_report|handle_bug)$",
            r"^describe_object", r"^bug_handler$", r"^check_panic_on_warn$",
            "refcount_warn_saturate", r"^__list_(?:add|del)\w*_valid",
            "debug_print_object", "debug_check_no_obj_freed", "timer_is_static_object",
            "work_is_static_object", "ubsan_epilogue", "ubsan_prologue", "__ubsan_handle",
            # UBSAN's static helpers under __ubsan_handle_*
            r"^handle_(?:overflow|null_ptr_deref|misaligned_access|object_size_mismatch)$",
            r"^__?might_(?:sleep|resched|fault)$", "might_fault", "might_sleep",
            r"^__schedule_bug$", r"^schedule_debug$",
            # checks that only print: spinlock debugging, this_cpu checks,
            # bad_page(), the stack protector's handler
            r"^spin_dump$", r"^check_preemption_disabled$", r"^debug_smp_processor_id$",
            r"^bad_page$", r"^__stack_chk_fail", "stack_chk_fail",
            # fault injection printing its own stack
            r"^should_fail", r"^should_failslab",
            r"^nmi_cpu_backtrace$", r"^nmi_trigger_cpumask_backtrace$",
            r"^arch_trigger_cpumask_backtrace", r"^rcu_dump_cpu_stacks$", r"^dump_cpu_task$",
            r"^sched_show_task$", r"^print_cpu_stall", r"^check_cpu_stall$",
            r"^watchdog_timer_fn$", r"^debug_check_no_locks_freed$",
            # stack walkers and dumpers
            "show_stack", "walk_stack", "warn_bogus", "print_tainted", r"^get_taint$",
            "stack_trace_consume_entry", "arch_stack_walk", "stack_trace_save",
            "hex_dump_to_buffer", "print_hex_dump", "assertfail",
        ),
    ),
    _words(
        "sanitizer",
        "__sanitizer", "__asan", "kasan", "__msan", "kmsan", "check_memory_region",
        "read_word_at_a_time", "kcsan", "__tsan", r"^_*kfence_", "hwasan",
        r"(?:read|write)_once_.*nocheck", "check_object", "__phys_addr",
        r"^save_stack", r"^stack_trace_save", r"^set_track", r"^kmemleak_",
        r"^poison_slab_object$", r"^metadata_access_",
    ),
    _words(
        "trap",
        "invalid_op", "do_error", r"_trap$|do_trap", "program_check_exception",
        "program_check_common", r"do_(?:kernel|translation)_fault", "do_mem_abort",
        "el1_abort", r"el1h_64_sync(?:_handler)?",
        r"^asm_exc_", r"^exc_(?!nmi)", r"^do_(?:page_fault|user_addr_fault|kern_addr_fault)$",
        r"^do_(?:general_protection|mem_abort|translation_fault|bad_area|debug_exception)$",
        r"^__do_page_fault$", r"^page_fault_oops$", r"^kernelmode_fixup_or_oops$",
        r"^handle_page_fault$", r"^_*bad_area", r"^no_context$",
        r"^el1_(?:abort|da|dbg|undef|sync)", r"^el1h_64_sync", r"^__do_kernel_fault$",
        r"^die_kernel_fault$", r"^brk_handler$", r"^call_break_hook$", r"^_*die$",
        r"^oops_", r"^make_task_dead$", r"^rewind_stack_and_make_dead$",
        r"^general_protection$", r"^error_code$",
        # arm64 MTE: the tag-check fault that hardware-tag KASAN reports from
        r"^do_tag_check_fault$", r"^do_tag_recovery$", r"^report_tag_fault$",
        # arm32 fault handling
        r"^__dabt_svc$", r"^__pabt_svc$", r"^do_DataAbort$", r"^do_PrefetchAbort$",
        r"^do_alignment$", r"^__do_user_fault$", r"^do_sect_fault$",
    ),
    _words(
        "locking",
        "lockdep", "perf_trace", "lock_acquire", "lock_release", "lock_class",
        "reacquire_held_locks", "spin_lock", "spin_trylock", "spin_unlock",
        "raw_read_lock", "raw_read_trylock", "raw_write_lock", "raw_write_trylock",
        r"^down$", "down_read", "down_write", "down_trylock", "up_read", "up_write",
        "mutex_lock", "mutex_trylock", "mutex_unlock", r"^mutex_", "mutex_remove_waiter",
        "owner_on_cpu", "osq_lock", "osq_unlock", "__wake_up", "read_lock", "read_trylock",
        "write_lock", "write_trylock", "read_unlock", "write_unlock", "raw_spin_rq",
        r"(?:reacquire|mark)_held_locks", "print_unlock", "imbalance_bug", "bh_enable",
        "bh_disable", r"(?:trace|lockdep)_(?:hard|soft)irq", r"^(?:un)?lock_page",
        r"^do_raw_", r"^queued_(?:spin|read|write)_lock", r"^native_queued_spin",
        r"^__pv_queued_spin", r"^_*rwsem_", r"^__mutex_", r"^_*rt_mutex", r"^_*ww_mutex",
        r"^percpu_(?:down|up)_", r"^validate_chain$", r"^mark_lock", r"^mark_usage$",
        r"^check_(?:noncircular|deadlock|prev_add|prevs_add|irq_usage|flags)$",
        r"^print_\w+_bug$", r"^register_lock_class$", r"^look_up_lock_class$",
        r"^assign_lock_key$",
    ),
    _words(
        "refcount",
        "refcount_add", "refcount_sub", "refcount_inc", "refcount_dec", "refcount_set",
        "refcount_read", r"^refcount_", r"^kref_", "ref_tracker", "seqprop_assert",
        # atomics and bit operations: instrumented wrappers the access goes through
        r"atomic(?:64)?_(?:dec|inc|read|set|or|xor|and|add|sub|fetch|xchg|cmpxchg|try)",
        r"(?:set|clear|change|test)_bit",
    ),
    _words(
        "string",
        "memcpy", "memcmp", "memset", "memchr", "memmove", "strcmp", "strncmp", "strcpy",
        "strlcpy", "strncpy", "strscpy", "strlen", "strnstr", "strnlen", "strchr",
        "copy_to_user", "copy_from_user", "put_user", "get_user", "memdup", "strstr",
        "strdup", "strndup", "copy_to_iter", "copy_from_iter", "copy_page_to_iter",
        "copy_page_from_iter", "copy_folio_to_iter", r"^copyin$", r"^copyout$",
        "__fortify_report", r"extract_(?:user|iter)_to_sg",
        # MMIO accessors and checksums: the caller is the one doing it wrong
        r"readb$", r"readw$", r"readl$", r"readq$", r"writeb$", r"writew$", r"writel$",
        r"writeq$", "logic_in", "logic_out", r"^crc\d+", "crc_itu_t",
        r"^_*fortify_", r"^__(?:read|write)_overflow", r"^raw_copy_", r"^copy_user_",
        r"^rep_movs_alternative$", r"^check_copy_size$", r"^__check_object_size",
        r"^check_heap_object$", r"^usercopy_",
    ),
    # generic containers that check their own consistency (rb_erase on a bad
    # node, a list_del on a freed entry): the caller owns the bad node
    _words(
        "list",
        "list_add", "list_del", "list_replace", "list_move", "list_splice", r"^rb_",
        r"^__rb_", r"^klist_", r"xas_(?:start|load|find)", "rhashtable_lookup",
    ),
    # the allocator's own functions are never the bug
    _exact(
        "allocator",
        r"_*k(?:v)?(?:m|c|z|re)alloc\w*", r"_*do_kmalloc\w*", r"_*kmem_cache_\w+",
        r"_*kv?free\w*", r"kfree_sensitive", r"kvfree_call_rcu", r"_*v(?:m|z)alloc\w*",
        r"vfree\w*", r"_*slab_\w+", r"new_slab", r"allocate_slab", r"alloc_slab_page",
        r"_*free_slab", r"discard_slab", r"kmemdup\w*", r"kstrn?dup\w*",
        r"devm_k\w*alloc\w*", r"devm_kfree", r"_*alloc_pages\w*", r"_*get_free_pages",
        r"_*free_pages\w*", r"free_unref_page\w*", r"get_page_from_freelist",
        r"prep_new_page", r"post_alloc_hook", r"pcpu_alloc", r"_*alloc_percpu\w*",
        r"free_percpu", r"mempool_(?:alloc|free)\w*",
    ),
    # the reference's allocator words, wherever they occur in a name
    _words(
        "alloc-words",
        "alloc_page", r"k?v?(?:m|z|c)alloc", "krealloc", "kmem_cache", "allocate_slab",
        "slab_", r"folio_(?:alloc|unlock)", "filemap_alloc_folio", "__filemap_get_folio",
        "find_or_create_page", "do_read_cache_folio", "read_cache_page",
        "pagecache_get_page", "grab_cache_page_write_begin", "find_lock_entries",
        "truncate_inode_pages_range", "ida_free", r"^kv?free$",
    ),
    # retpolines: an indirect call goes through a thunk named after the register
    _words("thunk", "_indirect_thunk_", r"^__x86_return_thunk$"),
    _words(
        "printk",
        "string", "pointer", "snprintf", "scnprintf", "kasprintf", "kvasprintf", "printk",
        "va_format", "dev_info", "dev_notice", "dev_warn", "dev_err", "dev_alert",
        "dev_crit", "dev_emerg", r"^__dev_printk$", r"^dev_vprintk_emit$",
        r"^vsn?printf$", r"^format_decode$", r"^widen_string$",
    ),
    _words(
        "teardown",
        "del_timer", "flush_work", "__cancel_work_timer", "cancel_work_sync",
        "try_to_grab_pending", "flush_workqueue", "drain_workqueue", "destroy_workqueue",
        "finish_wait", "kthread_stop", "^complete$", "wait_for_completion", "queue_work",
        "insert_work", "__queue_delayed_work", "queue_delayed_work_on", "lock_timer_base",
        "__timer_delete_sync", "sk_stop_timer_sync", "__mod_timer", "cleanup_srcu_struct",
        # object lifetimes: a put or a release warns for whoever dropped too many
        "kobject_", r"^put_device$", "fast_dput", "dput", r"^iput$", r"^iput_final$",
        r"^ihold$", "drop_nlink", "add_uevent_var",
        "get_device_parent", "device_add", "device_del", "device_unregister",
        "device_destroy", "device_release", "devres_release_all", "hwrng_unregister",
        "i2c_del_adapter", "__unregister_client", "device_for_each_child",
        "rollback_registered", "unregister_netdev", "sysfs_remove", "device_remove_file",
        "tty_unregister_device", r"^kfree$", "kfree_skb",
    ),
    # USB core helpers that warn or fail on the driver's behalf
    _words(
        "usb",
        "dummy_urb_enqueue", "usb_kill_urb", "usb_kill_anchored_urbs", "usb_control_msg",
        "usb_hcd_submit_urb", "usb_submit_urb",
    ),
    _exact(
        "irq-entry",
        r"(?:asm_)?sysvec_\w+", r"__sysvec_\w+", r"(?:smp_|local_)?apic_timer_interrupt",
        r"hrtimer_interrupt", r"__hrtimer_run_queues", r"__run_hrtimer", r"tick_sched_\w+",
        r"update_process_times", r"_*irq_exit\w*", r"handle_softirqs", r"__do_softirq",
        r"irqentry_\w+", r"gic_handle_irq", r"el1_(?:irq|interrupt)\w*", r"el1h_64_irq\w*",
        r"call_on_irq_stack", r"do_interrupt_handler", r"asm_call_irq_on_stack",
        r"run_on_irqstack_cond", r"do_softirq_own_stack", r"nmi_handle", r"default_do_nmi",
        r"exc_nmi", r"asm_exc_nmi", r"__irq_svc", r"__irq_usr",
    ),
    _exact(
        "entry",
        r"do_syscall_\w+", r"entry_SYSCALL\w*", r"do_fast_syscall_\w+", r"entry_INT80\w*",
        r"_*invoke_syscall", r"el0_svc\w*", r"do_el0_svc\w*", r"el0t_64_\w+", r"el0_sync\w*",
        r"ret_from_fork\w*", r"ret_from_exception", r"syscall_exit\w*",
        r"exit_to_user_mode\w*", r"syscall_enter_from_user_mode\w*", r"ret_fast_syscall",
        r"vector_swi", r"__sys_trace_return",
    ),
)

# Added per report type by the classification table (Pattern.skip names one).
EXTRA_RULES: dict[str, SkipRule] = {
    rule.name: rule
    for rule in (
        # a hung task is found asleep: the reference's hung-task word list
        _words(
            "scheduler",
            "sched", "_lock", "_slowlock", "down", "rwsem", "completion", "kthread", "wait",
            "synchronize", "context_switch", "__switch_to", "cancel_delayed_work",
            r"^msleep", r"^usleep_range", r"^_*flush_work", r"^__flush_workqueue$",
            r"^folio_wait", r"^bit_wait", r"^io_schedule",
        ),
        _words("refcount", "refcount"),
        _exact("list", r"_*h?list_\w+"),
        # ODEBUG: the object's users (timers, work, RCU, the allocator) as well
        _words(
            "debugobjects",
            "debug_", "rcu", "hrtimer_", "timer_", "work_", "percpu_", "kmem_", "slab_",
            "kfree", "vunmap", "vfree", "__free_", "debug_check", "kobject_",
        ),
        _words("rcu", "rcu", "kmem", "slab", "kmalloc", "vmalloc", "kcalloc", "kzalloc"),
        _words("kmalloc", "kmalloc", "kcalloc", "kzalloc", "krealloc", "vmalloc", "slab", "kmem"),
        # KASAN's invalid-free: the free path itself
        _words("free", "kmem_", "slab_", "kfree", "vunmap", "vfree"),
        # slub_debug's checks, and KASAN's quarantine handing objects back to SLUB
        _exact(
            "slub",
            r"check_(?:object|bytes_and_report|slab|pad_bytes|valid_pointer)", r"on_freelist",
            r"print_trailer", r"print_tracking", r"object_err", r"restore_bytes",
            r"(?:alloc|free)_(?:debug_processing|consistency_checks)", r"free_to_partial_list",
            r"alloc_single_from_\w+", r"validate_slab\w*", r"validate_store", r"do_slab_free",
            r"___cache_free", r"qlink_free", r"qlist_free_all", r"_*kasan_quarantine_\w+",
            r"per_cpu_remove_cache", r"_*slab_\w+", r"_*kmem_cache_\w+", r"_*kv?free\w*",
            r"_*k[mzc]alloc\w*", r"_*do_kmalloc\w*",
        ),
        # kmemleak's backtrace starts in the allocator's wrappers
        _words(
            "leak",
            "kmemleak", "kmalloc", "kcalloc", "kzalloc", "vmalloc", "mmap", "kmem", "slab",
            "alloc", "create_object", "idr_get", "list_lru_init", "kasprintf", "kvasprintf",
            "pcpu_create", "strdup", "strndup", "memdup",
        ),
        _words("spinlock", "spin_", "_lock", "_unlock"),
        _words("schedule", "schedule"),
        # a corrupted stack end is found by the scheduler and its irq return
        _words("stack-end", "schedule", "retint_kernel"),
        _words("bad-stack", "bad_stack"),
        # bad_page(): the page allocator and page-cache paths it was freed by
        _words(
            "bad-page",
            r"(?:free|put|get|update|release)_page", "free_unref", r"^_*folio",
            "truncate_inode_pages", "page_frag_free", "alloc", "vmap", "page_owner",
        ),
        _words("skb", r"^skb_"),
        _words("ubsan", "ubsan", "overflow"),
        _words("preempt", "preemption", "preempt", "debug_", "processor_id", "this_cpu"),
        _words("non-static-key", "stack", "lock", "IRQ"),
        _words("stack-protector", "stack_chk"),
        _words("usercopy", "usercopy", "__check"),
        _words("kobject", "kobject_"),
        _words("proc", "proc_"),
        _words("lockdep-warning", "lock_sock", "release_sock"),
        _words(
            "usb-submit",
            "usb_submit_urb", "usb_start_wait_urb", "usb_bulk_msg", "usb_interrupt_msg",
            "usb_control_msg",
        ),
        _words("workqueue", "process_one_work", "flush_workqueue", "drain_workqueue",
               "destroy_workqueue"),
        _words("stall", "apic_timer_interrupt", "rcu"),
    )
}

# Syscall handlers are kept only when nothing else is left: a bug reached
# straight from a syscall is better named after it than left unnamed.
SYSCALL_RULE = _exact(
    "syscall",
    r"_*(?:x64|ia32|arm64|riscv|se|do)_sys_\w+", r"_*(?:x64|ia32|arm64)_compat_sys_\w+",
    r"ksys_\w+", r"_*sys_\w+",
)

# Where a stalled CPU's stack reaches generic dispatch code (a syscall, a
# workqueue, a timer, a file operation): the reference names a stall after
# the frame just above the first of these, so that a loop spread over
# several functions still gets one title (syzkaller's linuxStallAnchorFrames).
# Matched against canonical names (canonical_func): "__x64_sys_ioctl" is
# "sys_ioctl" here, "__sys_setsockopt" is "setsockopt".
STALL_ANCHORS = re.compile(
    "|".join(
        (
            # generic dispatchers, and some of their callers in case a name changes
            "process_one_work", "do_syscall_", "do_fast_syscall_", "sysenter_dispatch",
            "tracesys_phase2", "el0_svc_handler", "invoke_syscall", "ret_fast_syscall",
            "netif_receive_skb", "do_softirq", "call_timer_fn", "_run_timers",
            "run_timer_softirq", "hrtimer_run", "run_ksoftirqd", "smpboot_thread_fn",
            "^kthread$", "start_secondary", "cpu_startup_entry", "ret_from_fork",
            # file operations and other discriminating syscalls
            "vfs_write", "vfs_read", "vfs_iter_read", "vfs_iter_write", "do_iter_read",
            "do_iter_write", "call_read_iter", "call_write_iter", "new_sync_read",
            "new_sync_write", "vfs_ioctl", "ksys_ioctl", "compat_ioctl", "compat_sys_ioctl",
            "blkdev_driver_ioctl", "blkdev_ioctl", "do_iter_readv_writev", "^call_mmap",
            "mmap_region", "do_mmap", "do_dentry_open", "vfs_open",
            # sockets
            "^sock_sendmsg", "^sock_recvmsg", "^sock_release", "^__sock_release",
            "^setsockopt$", "kernel_setsockopt", "sock_common_setsockopt", "^listen$",
            "kernel_listen", "sk_common_release", "^sock_mmap", "^accept$", "kernel_accept",
            "^sock_do_ioctl", "^sock_ioctl", "^compat_sock_ioctl", "^nfnetlink_rcv_msg",
            "^rtnetlink_rcv_msg", "^netlink_dump", "^(?:sys_)?(?:socketpair|connect|ioctl)",
            # page faults, and the return to user space
            "__do_fault", "do_page_fault", "^page_fault$", "__fput", "task_work_run",
            "exit_to_usermode", "smp_call_function", "tasklet_action", "tasklet_hi_action",
        )
    )
)

# The wrappers a syscall handler is reached through differ by architecture
# and kernel version (SyS_, __x64_sys_, __arm64_sys_, __do_sys_, ksys_ ...);
# the reference names a frame after the shortest of its names with one of
# these removed, in every title (sys_imageblit is "imageblit").
SYSCALL_PREFIXES = (
    "SYSC_", "SyS_", "sys_", "__x64_", "__ia32_", "__arm64_", "____sys_", "___sys_", "__sys_",
    "__se_", "__se_sys_", "__do_sys_", "compat_SYSC_", "compat_SyS_", "ksys_",
)


@functools.lru_cache(maxsize=4096)
def canonical_func(func: str) -> str:
    """The name a title uses for a function: its shortest de-prefixed form."""
    best = func
    for prefix in SYSCALL_PREFIXES:
        if func.startswith(prefix) and len(func) - len(prefix) < len(best):
            best = func[len(prefix) :]
    return best or func


# A hung task is named after the lock it waits for when it is one of these
# (every task stuck behind rtnl_lock is one bug); the RCU waits are one bucket.
HUNG_ANCHORS: tuple[tuple[str, str | None], ...] = (
    ("rtnl_lock", None),
    ("synchronize_rcu", "synchronize_rcu"),
    ("synchronize_srcu", "synchronize_rcu"),
    ("synchronize_net", "synchronize_rcu"),
    ("synchronize_sched", "synchronize_rcu"),
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


def skip_rule_for(func: str, extra: Iterable[str] = (), common: bool = True) -> str | None:
    """The name of the rule that makes `func` machinery, or None."""
    return _skip_rule_for(func, tuple(extra), common)


@functools.lru_cache(maxsize=16384)
def _skip_rule_for(func: str, extra: tuple[str, ...], common: bool) -> str | None:
    for name in extra:
        if EXTRA_RULES[name].regex.search(func):
            return name
    for rule in SKIP_RULES if common else ():
        if rule.regex.search(func):
            return rule.name
    return None


def _eligible(frames: Iterable[Frame]) -> Iterable[Frame]:
    """Frames that are calls: no "? " guesses, no symboliser inline lines, no
    arm64 repeat of the pc frame as the first Call trace entry."""
    last: str | None = None
    for frame in frames:
        if frame.questionable or frame.inline:
            continue
        if frame.func == last:
            continue
        last = frame.func
        yield frame


def choose(frames: Iterable[Frame], extra: Sequence[str] = (), common: bool = True) -> Choice:
    """The first frame that is not machinery, syzbot style.

    "? " frames are stale words found on the stack, not calls, and inline
    frames only exist in symbolised output, so both are passed over without
    being listed: taking them would make the same crash look different with
    and without symbolisation.
    """
    skipped: list[tuple[str, str]] = []
    fallback: Frame | None = None
    for frame in _eligible(frames):
        if frame.func == UNNAMED:
            # Taking its caller instead would blame the code that merely
            # called into it (do_one_initcall for every leak in a module's
            # init function).
            return Choice(None, tuple(skipped), unnamed=frame)
        rule = skip_rule_for(frame.func, extra, common)
        if rule is None and SYSCALL_RULE.regex.search(frame.func):
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


def choose_stall(frames: Iterable[Frame], extra: Sequence[str] = ()) -> Choice:
    """The frame above the first dispatch point, among the frames not skipped.

    A CPU that loops is caught anywhere in the loop; the function that
    called into the loop from the syscall, work item or timer is the same
    every time. Without an anchor, the first frame not skipped. Anchors are
    looked for before the skip rules: the entry code this project skips
    (do_syscall_64, __do_softirq) is where the reference's anchors are.
    """
    skipped: list[tuple[str, str]] = []
    prev: Frame | None = None
    for frame in _eligible(frames):
        if frame.func == UNNAMED:
            continue
        if STALL_ANCHORS.search(canonical_func(frame.func)):
            if "smp_call_function" in frame.func:
                # the variants below it differ; the call itself is the bucket
                prev = Frame("smp_call_function", frame.symbol, frame.offset, frame.module,
                             frame.line, pc=frame.pc)
            return Choice(prev or frame, tuple(skipped))
        rule = skip_rule_for(frame.func, extra)
        if rule is not None:
            skipped.append((frame.symbol, rule))
            continue
        prev = frame
    first = next((f for f in _eligible(frames) if f.func != UNNAMED
                  and skip_rule_for(f.func, extra) is None), None)
    return Choice(first, tuple(skipped))


def choose_hung(frames: Iterable[Frame], extra: Sequence[str] = ()) -> Choice:
    """A hung task: the lock it waits on when that is a known bucket, else the
    first frame that is neither scheduling nor waiting."""
    eligible = [f for f in _eligible(frames) if f.func != UNNAMED]
    for frame in eligible:
        for anchor, bucket in HUNG_ANCHORS:
            if anchor in frame.func:
                if bucket is not None:
                    frame = Frame(bucket, frame.symbol, frame.offset, frame.module, frame.line)
                return Choice(frame, ())
    return choose(eligible, extra)
