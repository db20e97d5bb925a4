"""What starts a report: the table of header lines, one row per report type.

Every kernel bug report opens with a recognisable line ("BUG: KASAN: ...",
"WARNING: CPU: 0 PID: 1 at ...", "INFO: task x:1 blocked for more than ...").
PATTERNS lists them with what is needed to turn the report into a finding:
the class, the title template (syzbot wording), how the guilty frame is found
and how the report ends. The first matching row wins, so specific rows come
before the generic ones of the same family.

Scanning a 10 MB log line by line through three dozen regexes would be slow, so
PREFILTER, one regex over the whole text, finds the few candidate lines and
only those go through the table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class BugClass(StrEnum):
    KASAN = "KASAN"
    KMSAN = "KMSAN"  # uninitialised memory used
    KFENCE = "KFENCE"  # sampled use-after-free / out-of-bounds in production kernels
    KCSAN = "KCSAN"  # data races
    BUG = "BUG"  # oopses, kernel BUG(), sleeping in atomic, other "BUG:" lines
    GPF = "GPF"  # x86 general protection fault
    WARNING = "WARNING"
    LIST = "LIST"  # CONFIG_DEBUG_LIST corruption
    REFCOUNT = "REFCOUNT"  # refcount_t misuse
    LOCKDEP = "LOCKDEP"
    HUNG_TASK = "HUNG_TASK"
    RCU_STALL = "RCU_STALL"
    SOFT_LOCKUP = "SOFT_LOCKUP"
    HARD_LOCKUP = "HARD_LOCKUP"
    KMEMLEAK = "KMEMLEAK"
    UBSAN = "UBSAN"
    ODEBUG = "ODEBUG"  # CONFIG_DEBUG_OBJECTS
    SLUB = "SLUB"  # slub_debug's own checks: red zones, poison, free lists
    PANIC = "PANIC"


class End(StrEnum):
    """How a report of a given type is closed by the kernel."""

    TRACE = "trace"  # "---[ end trace ... ]---" (oops, WARN, BUG)
    BANNER = "banner"  # a "=====" line, or an end trace (KASAN, UBSAN)
    PANIC = "panic"  # "---[ end Kernel panic - not syncing: ... ]---"
    STACK = "stack"  # nothing printed: the report is over when its stack is


# Guilty-frame strategies, implemented in report.py:
#   fault-site  WARNING line function, then RIP/pc, then the Call Trace; the
#               crash site itself when every frame is machinery
#   call-trace  the first Call Trace after the header
#   kasan       the function in the header, then the access stack (Call Trace,
#               or KMSAN/KFENCE's bare frames)
#   header      the function in the header only (KCSAN)
#   lockdep     the "at:" site after the marker line (taken as printed), then
#               the final Call Trace
#   stall       the interrupted context (RIP/pc, the frames after the IRQ
#               entry, or the NMI backtrace of the stalled CPU), named after
#               the frame above its first dispatch point (frames.STALL_ANCHORS)
#   hung        the lock bucket (rtnl_lock, synchronize_rcu), else the first
#               frame that neither schedules nor waits
#   backtrace   the kmemleak allocation backtrace
#   slub        the object's allocation track ("Allocated in"), then the Call Trace
#   page-owner  the stack under "page last allocated" (page_owner), if printed
#   marker-line the function the row's marker regex captures ("last function:")
#   none        no frame in the title


FieldsHook = Callable[[Mapping[str, str], Sequence[str]], dict[str, str]]


@dataclass(frozen=True)
class Pattern:
    name: str
    bug_class: BugClass
    regex: re.Pattern[str]
    title: str  # str.format template; {frame} is the guilty function
    kind: str  # template for the middle part of the signature
    stack: str = "call-trace"
    end: End = End.STACK
    skip: tuple[str, ...] = ()  # EXTRA_RULES names on top of the common ones
    secondary: bool = False  # only starts a report when none is open there
    needs_stack: bool = True
    frame_in_title: bool = True
    marker: re.Pattern[str] | None = None  # lockdep: where the "at:" site follows
    tail: re.Pattern[str] | None = None  # End.STACK: the stack that ends the report
    fields: FieldsHook | None = None  # extra template fields from the report text
    refine: tuple[tuple[re.Pattern[str], str], ...] = field(default=())  # file -> pattern


def _c(rx: str) -> re.Pattern[str]:
    return re.compile(rx)


# --- field hooks: facts a title needs that are not on the header line -------

# "Read of size 8 at addr", or with hardware tags (arm64 MTE, which knows no
# size) "Write at addr"
_ACCESS_RE = re.compile(r"^\s*(Read|Write) (?:of size (\d+) )?at addr")
_NUMBERS_RE = re.compile(r"0x[0-9a-fA-F]+|\b[0-9a-fA-F]{8,}\b|\d+")


def slug(text: str) -> str:
    """A signature-safe token: lowercase, numbers folded, words joined by '-'."""
    text = _NUMBERS_RE.sub("N", text)
    return re.sub(r"[^a-z0-9_]+", "-", text.lower()).strip("-") or "unknown"


def _kasan_fields(groups: Mapping[str, str], following: Sequence[str]) -> dict[str, str]:
    for text in following[:8]:
        m = _ACCESS_RE.match(text)
        if m:
            return {"access": f" {m.group(1)}", "size": m.group(2) or ""}
    return {"access": ""}


def _ubsan_fields(groups: Mapping[str, str], following: Sequence[str]) -> dict[str, str]:
    bug = groups["bug"]
    if not re.fullmatch(r"[a-z][a-z0-9-]*", bug):
        # Before 5.x every UBSAN report said "Undefined behaviour" and named
        # the kind only on the next line; the reference titles them all
        # "undefined-behaviour", and so does this.
        bug = slug(bug)
    return {"bug": bug}


def _oops_fields(groups: Mapping[str, str], following: Sequence[str]) -> dict[str, str]:
    # Alone (its "Unable to handle" or "kernel BUG at" line lost), the
    # reference titles every arm Oops "Internal error in F"
    reason = (groups.get("reason") or "").strip()
    if reason == "BUG":
        return {"oops": "kernel-bug"}
    return {"oops": slug(reason) if reason else "oops"}


_OFFSET_RE = re.compile(r"\+0x[0-9a-f]+/0x[0-9a-f]+(?:\s+\[[\w-]+\])?")


def _panic_fields(groups: Mapping[str, str], following: Sequence[str]) -> dict[str, str]:
    reason = _OFFSET_RE.sub("", groups.get("reason", ""))
    reason = re.sub(r"\s*exitcode=0x[0-9a-f]+", "", reason)
    reason = reason.rstrip(" .").strip() or "unknown"
    return {"reason": reason, "reason_slug": slug(reason)}


_VOLATILE_RE = re.compile(r"\s*(?:\b0x[0-9a-fA-F]+|\b[0-9a-f]{8,}\b|\b\d+\b|\(\d+\))")
_GENERIC_CUT_RE = re.compile(r" in | at |: | \[|!| - |,| \(")


def _generic_bug_fields(groups: Mapping[str, str], following: Sequence[str]) -> dict[str, str]:
    what = _GENERIC_CUT_RE.split(groups["what"], maxsplit=1)[0].strip() or groups["what"]
    # the title must be the same from run to run: no addresses, pids or counts
    what = _VOLATILE_RE.sub("", what).strip() or what
    return {"what": what, "what_slug": slug(what)}


def _slub_fields(groups: Mapping[str, str], following: Sequence[str]) -> dict[str, str]:
    return {"what_slug": slug(groups["what"])}


# SLUB's own words after "BUG <cache> (<taint>): " (mm/slub.c: slab_bug() via
# check_bytes_and_report(), object_err() and slab_err(); 2.6 to 6.2+ wording).
# A fixed list, since "BUG <word>: <text>" alone is too common a shape.
_SLUB_WHAT = (
    r"(?:(?:Left |Right |kmalloc )?Redzone|(?:End )?Poison|(?:Alignment |Object )?[Pp]adding)"
    r" overwritten"
    r"|Object already free|Freepointer corrupt|Freechain corrupt|Invalid object pointer"
    r"|Attempt to free object|Not a valid slab page|Wrong number of objects"
    r"|Wrong object count|objects \d+ > max|inuse \d+ > max|Slab disabled since"
    r"|Objects remaining|Bulk free expected|Slab has \d+ allocated objects"
)

# --- the table ----------------------------------------------------------------

# lockdep's banner word changed over the years ("[ BUG: ... ]" before 4.x,
# "WARNING: ..." since); the reference keeps the word the kernel printed.
_LOCKDEP_PREFIX = r"\[?\s?(?P<prefix>WARNING|INFO|BUG): "

# A WARNING's row by where it fired, matched against "<file> <function>":
# a check in a generic helper is a bug of the helper's caller, and the
# reference names the helper's kind in the title.
_REFINE_WARNING = (
    (_c(r"(?:^|/)lib/refcount\.c |(?:^|/)include/linux/refcount\.h "), "refcount"),
    (_c(r"(?:^|/)lib/list_debug\.c "), "list"),
    (_c(r"(?:^|/)lib/debugobjects\.c "), "odebug"),
    (_c(r"(?:^|/)mm/usercopy\.c usercopy_warn"), "warning-usercopy"),
    (_c(r"(?:^|/)lib/kobject\.c kobject_"), "warning-kobject"),
    (_c(r"(?:^|/)fs/proc/generic\.c proc_register"), "warning-proc"),
    (_c(r"(?:^|/)kernel/locking/lockdep\.c .*lock_"), "warning-locking"),
    (_c(r"(?:^|/)mm/.*\.c k?.?malloc"), "warning-kmalloc"),
    (_c(r"(?:^|/)mm/vmalloc\.c .*__vmalloc_node"), "warning-zero-size-vmalloc"),
    (_c(r" usb_submit_urb"), "warning-usb-submit-urb"),
)


def _warning(name: str, title: str, skip: tuple[str, ...]) -> Pattern:
    """A WARNING refined by where it fired; only reached through refine."""
    return Pattern(
        name,
        BugClass.WARNING,
        _c(r"(?!)"),
        title=title,
        kind=name.removeprefix("warning-"),
        stack="fault-site",
        end=End.TRACE,
        skip=skip,
    )

PATTERNS: tuple[Pattern, ...] = (
    # KASAN's bad frees: the reference folds "double-free", "invalid-free" and
    # the older "double-free or invalid-free" into one title, blamed on the
    # caller of the free path
    Pattern(
        "kasan-free",
        BugClass.KASAN,
        _c(
            r"BUG: KASAN: (?P<bug>double-free or invalid-free|double-free|invalid-free) "
            r"in (?P<func>.*)$"
        ),
        title="KASAN: invalid-free in {frame}",
        kind="{bug_slug}",
        stack="kasan",
        end=End.BANNER,
        skip=("free",),
        fields=lambda groups, following: {"bug_slug": slug(groups["bug"])},
    ),
    # KASAN; the kernel's own words for the bug type are kept in the title
    Pattern(
        "kasan",
        BugClass.KASAN,
        _c(
            r"BUG: KASAN: (?P<bug>[a-z][\w-]*(?: or [a-z][\w-]*)?) "
            r"(?:in range |on address |in )(?P<func>.*)$"
        ),
        title="KASAN: {bug}{access} in {frame}",
        kind="{bug}",
        stack="kasan",
        end=End.BANNER,
        fields=_kasan_fields,
        # With DEBUG_LIST a stale list_head is first read by the list checks
        # (__list_del_entry_valid); the code that owns the freed entry is the
        # caller, e.g. media_gobj_destroy.
        skip=("list",),
    ),
    # KMSAN: "BUG: KMSAN: uninit-value in f+0x1/0x2", its stack right below
    Pattern(
        "kmsan",
        BugClass.KMSAN,
        _c(r"BUG: KMSAN: (?P<bug>[a-z][\w-]*) in (?P<func>.*)$"),
        title="KMSAN: {bug} in {frame}",
        kind="{bug}",
        stack="kasan",
        end=End.BANNER,
        # USB's infoleak is found in the URB submission the driver called
        skip=("usb-submit",),
    ),
    # KFENCE: "BUG: KFENCE: use-after-free read in f+0x1/0x2", then
    # "Use-after-free read at 0x... (in kfence-#12):" and the frames
    Pattern(
        "kfence",
        BugClass.KFENCE,
        _c(
            r"BUG: KFENCE: (?P<bug>[a-z][\w-]*(?: (?:read|write))?|invalid free|memory corruption)"
            r" in (?P<func>.*)$"
        ),
        title="KFENCE: {bug} in {frame}",
        kind="{bug_slug}",
        stack="kasan",
        end=End.BANNER,
        fields=lambda groups, following: {"bug_slug": slug(groups["bug"])},
    ),
    # KCSAN: "BUG: KCSAN: data-race in f / g", the two functions already in order
    Pattern(
        "kcsan",
        BugClass.KCSAN,
        _c(
            r"BUG: KCSAN: (?P<bug>[a-z][\w-]*(?:: race)?) in (?P<func>[\w.]+)"
            r"(?P<other> / [\w.]+)?\s*$"
        ),
        title="KCSAN: {bug} in {frame}{other}",
        kind="{bug_slug}",
        stack="header",
        end=End.BANNER,
        needs_stack=False,
        fields=lambda groups, following: {"bug_slug": slug(groups["bug"])},
    ),
    # x86 general protection fault (6.9+ prefixes it with "Oops: ", a
    # selector error code makes it "segment-related")
    Pattern(
        "gpf",
        BugClass.GPF,
        _c(r"(?:Oops: )?(?:segment-related )?general protection fault\b"),
        title="general protection fault in {frame}",
        kind="general-protection-fault",
        stack="fault-site",
        end=End.TRACE,
    ),
    Pattern(
        "null-deref",
        BugClass.BUG,
        _c(r"BUG: (?:unable to handle kernel NULL pointer dereference|kernel NULL pointer deref)"),
        title="BUG: unable to handle kernel NULL pointer dereference in {frame}",
        kind="null-ptr-deref",
        stack="fault-site",
        end=End.TRACE,
    ),
    Pattern(
        "paging-request",
        BugClass.BUG,
        _c(r"BUG: unable to handle (?:kernel paging request|page fault for address)"),
        title="BUG: unable to handle kernel paging request in {frame}",
        kind="paging-request",
        stack="fault-site",
        end=End.TRACE,
    ),
    Pattern(
        "arm64-null-deref",
        BugClass.BUG,
        _c(r"Unable to handle kernel NULL pointer dereference at virtual address"),
        title="BUG: unable to handle kernel NULL pointer dereference in {frame}",
        kind="null-ptr-deref",
        stack="fault-site",
        end=End.TRACE,
    ),
    Pattern(
        "arm64-user-access",
        BugClass.BUG,
        _c(r"Unable to handle kernel access to user memory"),
        title="BUG: unable to handle kernel access to user memory in {frame}",
        kind="user-access",
        stack="fault-site",
        end=End.TRACE,
    ),
    Pattern(
        "arm64-paging-request",
        BugClass.BUG,
        _c(r"Unable to handle kernel (?P<what>.+?) at virtual address"),
        title="BUG: unable to handle kernel paging request in {frame}",
        kind="paging-request",
        stack="fault-site",
        end=End.TRACE,
    ),
    Pattern(
        "list-bug",
        BugClass.LIST,
        _c(r"kernel BUG at (?P<file>(?:\S*/)?lib/list_debug\.c):\d+"),
        title="BUG: corrupted list in {frame}",
        kind="corrupted-list",
        stack="fault-site",
        end=End.TRACE,
        skip=("list",),
    ),
    # hardened usercopy's BUG(): the copy's caller, as its WARNING form
    Pattern(
        "usercopy-bug",
        BugClass.BUG,
        _c(r"kernel BUG at (?P<file>(?:\S*/)?mm/usercopy\.c):\d+"),
        title="BUG: bad usercopy in {frame}",
        kind="bad-usercopy",
        end=End.TRACE,
        skip=("usercopy",),
    ),
    Pattern(
        "kernel-bug",
        BugClass.BUG,
        _c(r"kernel BUG at (?P<file>\S+?):(?P<line>\d+)"),
        title="kernel BUG in {frame}",
        kind="kernel-bug",
        stack="fault-site",
        end=End.TRACE,
        # the skb helpers BUG_ON() their caller's misuse
        skip=("skb",),
    ),
    # x86: a fault while delivering a fault, usually a kernel stack overrun;
    # die("double fault") follows with the RIP, and an empty Call Trace when
    # the stack is gone.
    Pattern(
        "double-fault",
        BugClass.BUG,
        _c(r"(?:traps: )?PANIC: double fault"),
        title="PANIC: double fault in {frame}",
        kind="double-fault",
        stack="fault-site",
        end=End.TRACE,
        needs_stack=False,
    ),
    Pattern(
        "stack-segment",
        BugClass.BUG,
        _c(r"(?:Oops: )?stack segment: [0-9a-f]+"),
        title="stack segment fault in {frame}",
        kind="stack-segment",
        stack="fault-site",
        end=End.TRACE,
    ),
    Pattern(
        "divide-error",
        BugClass.BUG,
        _c(r"(?:Oops: )?divide(?: |_)error: [0-9a-f]+"),
        title="divide error in {frame}",
        kind="divide-error",
        stack="fault-site",
        end=End.TRACE,
    ),
    # x86 traps die() names that no pattern above has a title for: a
    # breakpoint (int3) hit in kernel text, most often one left behind by
    # text patching (alternatives, static calls, kprobes), and the rarer
    # exceptions. 6.9+ prefixes "Oops: ", older kernels print the name alone.
    Pattern(
        "x86-trap",
        BugClass.BUG,
        _c(r"(?:Oops: )?(?P<trap>int3|bounds|invalid TSS|segment not present|alignment check"
           r"|coprocessor segment overrun|overflow): [0-9a-f]{4} \[#\d+\]"),
        title="{trap} in {frame}",
        kind="{trap_slug}",
        stack="fault-site",
        end=End.TRACE,
        # slug() would fold int3's digit away
        fields=lambda groups, following: {"trap_slug": groups["trap"].lower().replace(" ", "-")},
    ),
    # arm32: "Unhandled fault: imprecise external abort (0x1406) at 0x...",
    # then "Internal error: : 1406 [#1]" and "PC is at f+0x1/0x2"
    Pattern(
        "arm32-unhandled-fault",
        BugClass.BUG,
        _c(r"Unhandled fault: (?P<what>.+?) \(0x[0-9a-f]+\) at 0x[0-9a-f]+"),
        title="Unhandled fault in {frame}",
        kind="unhandled-fault",
        stack="fault-site",
        end=End.TRACE,
    ),
    # Lines that follow a header of their own; alone, they are all there is.
    Pattern(
        "arm64-oops",
        BugClass.BUG,
        _c(r"Internal error: (?:Oops(?: - (?P<reason>[^:]+?))?)?: "),
        title="Internal error in {frame}",
        kind="{oops}",
        stack="fault-site",
        end=End.TRACE,
        secondary=True,
        fields=_oops_fields,
    ),
    Pattern(
        "invalid-opcode",
        BugClass.BUG,
        _c(r"(?:Oops: )?invalid opcode: [0-9a-f]+"),
        title="invalid opcode in {frame}",
        kind="invalid-opcode",
        stack="fault-site",
        end=End.TRACE,
        secondary=True,
    ),
    Pattern(
        "sleeping-function",
        BugClass.BUG,
        _c(r"BUG: sleeping function called from invalid context(?: at (?P<file>\S+))?"),
        title="BUG: sleeping function called from invalid context in {frame}",
        kind="sleeping-function",
    ),
    # "BUG: using smp_processor_id() in preemptible [00000000] code: comm/12"
    Pattern(
        "preemptible",
        BugClass.BUG,
        _c(r"BUG: using (?P<what>\w+)\(\) in preemptible"),
        title="BUG: using {what}() in preemptible code in {frame}",
        kind="preemptible",
        skip=("preempt",),
    ),
    Pattern(
        "scheduling-while-atomic",
        BugClass.BUG,
        _c(r"BUG: scheduling while atomic"),
        title="BUG: scheduling while atomic in {frame}",
        kind="scheduling-while-atomic",
        skip=("schedule",),
    ),
    Pattern(
        "spinlock",
        BugClass.BUG,
        _c(
            r"BUG: (?P<lock>spinlock|rwlock) (?P<what>lockup suspected|already unlocked"
            r"|recursion|cpu recursion|bad magic|wrong owner|wrong CPU|trylock failure on UP)"
        ),
        title="BUG: {lock} {what} in {frame}",
        kind="spinlock",
        skip=("spinlock",),
    ),
    Pattern(
        "soft-lockup",
        BugClass.SOFT_LOCKUP,
        _c(
            r"(?:NMI )?(?:watchdog: )?BUG: soft lockup - CPU#(?P<cpu>\d+) stuck for \d+s!"
            r"(?: \[(?P<comm>.+):(?P<pid>\d+)\])?"
        ),
        title="BUG: soft lockup in {frame}",
        kind="soft-lockup",
        stack="stall",
    ),
    Pattern(
        "hard-lockup",
        BugClass.HARD_LOCKUP,
        _c(r"(?:NMI )?(?:watchdog: )?Watchdog detected hard LOCKUP on cpu (?P<cpu>\d+)"),
        title="BUG: hard lockup in {frame}",
        kind="hard-lockup",
        stack="stall",
    ),
    # lockdep
    Pattern(
        "possible-deadlock",
        BugClass.LOCKDEP,
        _c(
            _LOCKDEP_PREFIX + r"(?:possible circular locking dependency detected"
            r"|possible recursive locking detected|possible irq lock inversion dependency"
            r"|(?:HARD|SOFT)IRQ-safe -> (?:HARD|SOFT)IRQ-unsafe lock order detected)"
        ),
        title="possible deadlock in {frame}",
        kind="possible-deadlock",
        stack="lockdep",
        # workqueue functions take locks standing for the work items
        skip=("workqueue",),
        marker=_c(r"is trying to acquire|just changed the state of lock"),
        tail=_c(r"^stack backtrace:"),
    ),
    Pattern(
        "inconsistent-lock-state",
        BugClass.LOCKDEP,
        _c(_LOCKDEP_PREFIX + r"inconsistent lock state"),
        title="inconsistent lock state in {frame}",
        kind="inconsistent-lock-state",
        stack="lockdep",
        marker=_c(r"\btakes:"),
        tail=_c(r"^stack backtrace:"),
    ),
    Pattern(
        "held-lock-freed",
        BugClass.LOCKDEP,
        _c(_LOCKDEP_PREFIX + r"held lock freed!"),
        title="{prefix}: held lock freed in {frame}",
        kind="held-lock-freed",
        stack="lockdep",
        marker=_c(r"with a lock still held|lock held by|locks held by"),
        tail=_c(r"^stack backtrace:"),
    ),
    Pattern(
        "bad-unlock-balance",
        BugClass.LOCKDEP,
        _c(_LOCKDEP_PREFIX + r"bad unlock balance detected!"),
        title="{prefix}: bad unlock balance in {frame}",
        kind="bad-unlock-balance",
        stack="lockdep",
        marker=_c(r"is trying to release lock"),
        tail=_c(r"^stack backtrace:"),
    ),
    Pattern(
        "lock-held-returning",
        BugClass.LOCKDEP,
        _c(_LOCKDEP_PREFIX + r"lock held when returning to user space"),
        title="{prefix}: lock held when returning to user space in {frame}",
        kind="lock-held-returning",
        stack="lockdep",
        marker=_c(r"leaving the kernel with locks still held"),
        needs_stack=False,
    ),
    # x86 kernels have reported a bad wait context as a WARNING in lockdep.c,
    # arm ones with this banner; the reference titles both as the WARNING,
    # named from the Call Trace, so that one bug has one title
    Pattern(
        "invalid-wait-context",
        BugClass.LOCKDEP,
        _c(_LOCKDEP_PREFIX + r"Invalid wait context"),
        title="WARNING: locking bug in {frame}",
        kind="invalid-wait-context",
        skip=("lockdep-warning",),
        tail=_c(r"^stack backtrace:"),
    ),
    # "[ BUG: task/12 still has locks held! ]" (old), "WARNING: task/12 still
    # has locks held!": a task exits or freezes with a lock held
    Pattern(
        "locks-still-held",
        BugClass.LOCKDEP,
        _c(r"\[?\s?(?P<prefix>WARNING|BUG): .*still has locks held!"),
        title="{prefix}: still has locks held in {frame}",
        kind="locks-still-held",
        stack="lockdep",
        marker=_c(r"locks? held by"),
        tail=_c(r"^stack backtrace:"),
    ),
    Pattern(
        "suspicious-rcu-usage",
        BugClass.LOCKDEP,
        _c(_LOCKDEP_PREFIX + r"suspicious RCU usage"),
        title="{prefix}: suspicious RCU usage in {frame}",
        kind="suspicious-rcu-usage",
        skip=("rcu",),
    ),
    Pattern(
        "non-static-key",
        BugClass.LOCKDEP,
        _c(r"INFO: trying to register non-static key"),
        title="INFO: trying to register non-static key in {frame}",
        kind="non-static-key",
        skip=("non-static-key",),
    ),
    # slub_debug: "BUG kmalloc-128 (Tainted: G    B      ): Poison overwritten"
    # (2.6 printed no taint: "BUG kmalloc-8: Right Redzone overwritten")
    Pattern(
        "slub",
        BugClass.SLUB,
        _c(
            r"BUG (?P<cache>[^\s:()]+)(?: \((?P<taint>[^)]*)\))? ?: (?P<what>" + _SLUB_WHAT + r")"
        ),
        title="SLUB: {what} in {frame}",
        kind="{what_slug}",
        stack="slub",
        skip=("slub",),
        fields=_slub_fields,
    ),
    # kmemleak: syzkaller's "BUG: memory leak" line and the kernel's own
    Pattern(
        "memory-leak",
        BugClass.KMEMLEAK,
        _c(r"(?:BUG: memory leak$|unreferenced object 0x[0-9a-f]+ \(size (?P<size>\d+)\):)"),
        title="memory leak in {frame}",
        kind="memory-leak",
        stack="backtrace",
        skip=("leak",),
        tail=_c(r"^\s*backtrace"),
    ),
    Pattern(
        "kmemleak-summary",
        BugClass.KMEMLEAK,
        _c(r"kmemleak: (?P<count>\d+) new suspected memory leaks"),
        title="kmemleak: new suspected memory leaks",
        kind="summary",
        stack="none",
        needs_stack=False,
        frame_in_title=False,
    ),
    # Reports about a state, not a place: the reference titles them without
    # a function.
    Pattern(
        "bug-state",
        BugClass.BUG,
        _c(
            r"BUG: (?P<what>Bad rss-counter state|non-zero nr_ptes on freeing mm"
            r"|non-zero nr_pmds on freeing mm|Bad page map|workqueue lockup)"
        ),
        title="BUG: {what}",
        kind="{what_slug}",
        stack="none",
        needs_stack=False,
        frame_in_title=False,
        fields=lambda groups, following: {"what_slug": slug(groups["what"])},
    ),
    # bad_page(): the page's last allocation (page_owner) says whose it was;
    # without page_owner there is no place to name
    Pattern(
        "bad-page",
        BugClass.BUG,
        _c(r"BUG: Bad page (?P<what>state|cache)"),
        title="BUG: Bad page {what} in {frame}",
        kind="bad-page-{what}",
        stack="page-owner",
        needs_stack=False,
        skip=("bad-page",),
    ),
    # The filesystem and device are left out: loop0/loop1 would split one bug.
    Pattern(
        "dentry-in-use",
        BugClass.BUG,
        _c(r"BUG: Dentry .* still in use \(\d+\) \[(?P<op>unmount) of"),
        title="BUG: Dentry still in use in {op}",
        kind="dentry-in-use",
        stack="none",
        needs_stack=False,
        frame_in_title=False,
    ),
    # a work item returned with a lock held or preemption off: the report
    # names the work function on its "last function:" line
    Pattern(
        "workqueue-leak",
        BugClass.BUG,
        _c(r"BUG: workqueue leaked lock or atomic"),
        title="BUG: workqueue leaked lock or atomic in {frame}",
        kind="workqueue-leak",
        stack="marker-line",
        needs_stack=False,
        marker=_c(r"last function: (?P<func>[A-Za-z0-9_]+)"),
    ),
    # the vmap'ed stack's guard page: a recursion, named like a stall
    Pattern(
        "stack-guard-page",
        BugClass.BUG,
        _c(r"BUG: .*stack guard page was hit at"),
        title="BUG: stack guard page was hit in {frame}",
        kind="stack-guard-page",
        stack="stall",
        end=End.TRACE,
    ),
    Pattern(
        "bug",
        BugClass.BUG,
        _c(r"BUG: (?P<what>\S.*)"),
        title="BUG: {what} in {frame}",
        kind="{what_slug}",
        fields=_generic_bug_fields,
    ),
    # WARN() family; messages printed just before (or after) the WARNING line
    Pattern(
        "refcount",
        BugClass.REFCOUNT,
        _c(
            r"refcount_t: (?P<what>underflow|saturated|addition on 0|decrement hit 0"
            r"|increment on 0)"
        ),
        title="WARNING: refcount bug in {frame}",
        kind="refcount",
        stack="fault-site",
        end=End.TRACE,
        skip=("refcount", "kobject"),
    ),
    Pattern(
        "list",
        BugClass.LIST,
        _c(r"list_(?P<op>add|del) (?:corruption|double add)"),
        title="BUG: corrupted list in {frame}",
        kind="corrupted-list",
        stack="fault-site",
        end=End.TRACE,
        skip=("list",),
    ),
    Pattern(
        "odebug",
        BugClass.ODEBUG,
        _c(
            r"ODEBUG: (?P<what>.+?) (?:\(active state \d+\) )?object(?::\s*\S+\s+object)?"
            r" type: (?P<otype>\S+)(?: hint: (?P<hint>\S+))?"
        ),
        title="WARNING: ODEBUG bug in {frame}",
        kind="odebug",
        stack="fault-site",
        end=End.TRACE,
        skip=("debugobjects",),
    ),
    Pattern(
        "ubsan",
        BugClass.UBSAN,
        _c(r"UBSAN: (?P<bug>.+?) in (?P<file>\S+)"),
        title="UBSAN: {bug} in {frame}",
        kind="{bug}",
        end=End.BANNER,
        fields=_ubsan_fields,
        skip=("ubsan",),
    ),
    Pattern(
        "warning",
        BugClass.WARNING,
        _c(r"WARNING: CPU: (?P<cpu>\d+) PID: (?P<pid>\d+) at (?P<file>\S+?):\d+ (?P<func>.+)$"),
        title="WARNING in {frame}",
        kind="warning",
        stack="fault-site",
        end=End.TRACE,
        refine=_REFINE_WARNING,
    ),
    Pattern(
        "warning-new",  # 6.18+: "WARNING: file.c:12 at func+0x1/0x2, CPU#1: comm/123"
        BugClass.WARNING,
        _c(
            r"WARNING: (?:(?P<cond>.+?) )?(?P<file>[\w./+-]+\.[chS]):\d+ at (?P<func>.+?),"
            r" CPU#(?P<cpu>\d+): (?P<comm>.+)/(?P<pid>\d+)$"
        ),
        title="WARNING in {frame}",
        kind="warning",
        stack="fault-site",
        end=End.TRACE,
        refine=_REFINE_WARNING,
    ),
    Pattern(
        "warning-old",  # 2.6: "WARNING: at file.c:12 func+0x1/0x2()"
        BugClass.WARNING,
        _c(r"WARNING: at (?P<file>\S+?):\d+ (?P<func>.+)$"),
        title="WARNING in {frame}",
        kind="warning",
        stack="fault-site",
        end=End.TRACE,
        refine=_REFINE_WARNING,
    ),
    _warning("warning-usercopy", "WARNING: bad usercopy in {frame}", ("usercopy",)),
    _warning("warning-kobject", "WARNING: kobject bug in {frame}", ("kobject",)),
    _warning("warning-proc", "WARNING: proc registration bug in {frame}", ("proc",)),
    _warning("warning-locking", "WARNING: locking bug in {frame}", ("lockdep-warning",)),
    _warning("warning-kmalloc", "WARNING: kmalloc bug in {frame}", ("kmalloc",)),
    _warning("warning-zero-size-vmalloc", "WARNING: zero-size vmalloc in {frame}", ()),
    # lockdep's nest_lock check: the WARN's own line says no more than this
    Pattern(
        "nested-lock",
        BugClass.LOCKDEP,
        _c(r"WARNING: Nested lock was not taken"),
        title="WARNING: nested lock was not taken in {frame}",
        kind="nested-lock-not-taken",
        stack="fault-site",
        end=End.TRACE,
    ),
    _warning("warning-usb-submit-urb", "WARNING in {frame}/usb_submit_urb", ("usb-submit",)),
    Pattern(
        "hung-task",
        BugClass.HUNG_TASK,
        _c(
            r"INFO: task (?P<comm>.+):(?P<pid>\d+) blocked (?:[a-zA-Z/ ]+ )?"
            r"for more than (?P<secs>\d+) seconds"
        ),
        title="INFO: task hung in {frame}",
        kind="task-hung",
        stack="hung",
        skip=("scheduler",),
    ),
    # a task SIGKILLed long ago that still has not exited
    Pattern(
        "task-cant-die",
        BugClass.HUNG_TASK,
        _c(r"INFO: task (?P<comm>.+):(?P<pid>\d+) can't die for more than (?P<secs>\d+) seconds"),
        title="INFO: task can't die in {frame}",
        kind="task-cant-die",
        skip=("schedule",),
    ),
    Pattern(
        "rcu-stall",
        BugClass.RCU_STALL,
        _c(
            r"(?:rcu: )?INFO: rcu_(?:preempt|sched|bh) (?:self-detected stall"
            r"|detected(?: expedited)? stalls?)"
        ),
        title="INFO: rcu detected stall in {frame}",
        kind="rcu-stall",
        stack="stall",
        skip=("stall",),
    ),
    # the end-of-stack magic found overwritten when scheduling: an overrun,
    # named like a stall (the recursion's entry point)
    Pattern(
        "corrupted-stack-end",
        BugClass.PANIC,
        _c(r"Kernel panic - not syncing: corrupted stack end detected inside scheduler"),
        title="kernel panic: corrupted stack end in {frame}",
        kind="corrupted-stack-end",
        stack="stall",
        end=End.PANIC,
        skip=("stack-end",),
    ),
    Pattern(
        "stack-overflow",
        BugClass.PANIC,
        _c(r"Kernel panic - not syncing: kernel stack overflow"),
        title="kernel stack overflow in {frame}",
        kind="kernel-stack-overflow",
        stack="stall",
        end=End.PANIC,
        skip=("bad-stack",),
    ),
    # the stack protector's canary found overwritten on return from F
    Pattern(
        "stack-protector",
        BugClass.PANIC,
        _c(
            r"Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: "
            r"(?P<func>\S+)"
        ),
        title="kernel panic: stack is corrupted in {frame}",
        kind="stack-corrupted",
        stack="kasan",
        end=End.PANIC,
        needs_stack=False,
        skip=("stack-protector",),
    ),
    Pattern(
        "panic",
        BugClass.PANIC,
        _c(r"Kernel panic - not syncing: (?P<reason>.*)$"),
        title="kernel panic: {reason}",
        kind="{reason_slug}",
        end=End.PANIC,
        secondary=True,
        needs_stack=False,
        frame_in_title=False,
        fields=_panic_fields,
    ),
)

BY_NAME: dict[str, Pattern] = {p.name: p for p in PATTERNS}

# Substrings every header above contains; one search over the whole text.
PREFILTER = re.compile(
    r"BUG|WARNING:|INFO: |general protection fault|Unable to handle kernel|Internal error: Oops"
    r"|invalid opcode:|divide error:|refcount_t: |list_add |list_del |ODEBUG: |UBSAN: "
    r"|unreferenced object 0x|kmemleak: \d|Kernel panic - not syncing|hard LOCKUP"
    r"|PANIC: double fault|divide_error:|Unhandled fault:|stack segment: "
    r"|: [0-9a-f]{4} \[#\d"
)

# A panic that follows another report is its consequence, not a new bug.
CONSEQUENCE_PANIC = re.compile(
    r"Fatal exception|panic_on_warn|panic_on_oops|hung_task: blocked tasks"
    r"|softlockup: hung tasks|[Hh]ard LOCKUP|hardlockup|Attempted to kill (?:init|the idle task)"
    r"|Aiee, killing interrupt handler|kasan\.fault|panic_on_taint|RCU Stall|Oops - BUG"
)


# How a header line can begin; most prefilter hits are ordinary messages that
# merely mention a keyword, and this one match turns them away cheaply.
_HEADER_START = re.compile(
    r"\[?\s?(?:BUG|WARNING|INFO):|BUG [^\s:()]+ ?[(:]|general protection|Oops: |Unable to handle"
    r"|kernel BUG"
    r"|Internal error|invalid opcode|divide[ _]error|segment-related|Unhandled fault: "
    r"|stack segment: |int3: |bounds: |invalid TSS: |segment not present: |alignment check: "
    r"|coprocessor segment overrun: |overflow: "
    r"|(?:NMI )?watchdog: |Watchdog detected"
    r"|refcount_t: |list_(?:add|del) |ODEBUG: |UBSAN: |unreferenced object|kmemleak: \d"
    r"|Kernel panic|rcu: INFO: |(?:traps: )?PANIC: double fault"
)


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    pattern: Pattern  # the row that describes the report
    groups: dict[str, str]
    origin: str  # the row the line itself matched, before refinement


def classify(text: str) -> HeaderMatch | None:
    """The table row a report's first line matches, after refinement."""
    text = text.lstrip()
    if not _HEADER_START.match(text):
        return None
    for pattern in PATTERNS:
        m = pattern.regex.match(text)
        if m is None:
            continue
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        where = groups.get("file", "").removeprefix("./") + " " + groups.get("func", "")
        for rx, name in pattern.refine:
            if rx.search(where):
                # A WARN() in lib/refcount.c is a refcount report, whatever
                # order the message and the WARNING line came in.
                return HeaderMatch(BY_NAME[name], groups, pattern.name)
        return HeaderMatch(pattern, groups, pattern.name)
    return None


# Rows too loose to be trusted in the middle of a line: a "BUG: " or
# "WARNING: at" another message merely quotes.
_NOT_GLUED = frozenset({"bug", "warning-old", "kmemleak-summary", "panic"})
_QUOTES = ("'", '"', "`")


def classify_glued(text: str) -> tuple[HeaderMatch, int] | None:
    """A header printed on the end of another message's line ("...done[ BUG:
    ..." when a printk record lacked its newline): the row and where it starts."""
    if text.lstrip().startswith("---["):
        # "---[ end Kernel panic - not syncing: ... ]---" closes a report
        return None
    for m in _HEADER_START.finditer(text, 1):
        start = m.start()
        if any(q in text[:start] for q in _QUOTES):
            return None
        match = classify(text[start:])
        if match is not None and match.origin not in _NOT_GLUED:
            return match, start
    return None


# The hung-task line with a task name that holds a newline: "INFO: task a"
# and "b:12 blocked for more than 143 seconds." on the next line.
HUNG_TASK_HEAD = re.compile(r"\s*INFO: task (?!.*\bblocked\b).{0,32}$")
HUNG_TASK_TAIL = re.compile(r".{0,32}:\d+ blocked (?:[a-zA-Z/ ]+ )?for more than \d+ seconds")

