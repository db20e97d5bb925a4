"""Real kernel reports for the parser's tests: LKDTM crashes on the debug kernel.

    vm/capture-lkdtm-corpus OUTDIR [--only NAME ...] [--jobs 2]

boots the `debug` flavour once per entry of CAPTURES, triggers the LKDTM crash
types through /sys/kernel/debug/provoke-crash/DIRECT (or loads the kernel's
kmemleak-test sample module, or this project's test-only vm/provoke module,
built out of tree, for the report classes LKDTM has no trigger for, through
/sys/kernel/debug/unplug-provoke/DIRECT), and writes one console excerpt per
crash type, OUTDIR/<name>.log, from the "lkdtm: Performing direct entry TYPE"
line (or unplug-provoke's) with a few lines of context before it, to the next
type's line or the end of the console. Report lines are never edited. The
whole consoles stay in OUTDIR/runs/. The expectations (NAME.expect.json) are
not written here: they are checked by reading each report, see
tests/data/kmsg/lkdtm/README.md.

This is the only module of harness.pure.kmsg that boots anything; the parser
itself stays free of the VM code, which is imported only when capturing.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from harness.pure.kmsg.report import parse_log

if TYPE_CHECKING:
    from harness.host.kernels.kernel import Kernel
    from harness.host.targets.run import GuestRun

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DIRECT = "/sys/kernel/debug/provoke-crash/DIRECT"
PROVOKE_DIRECT = "/sys/kernel/debug/unplug-provoke/DIRECT"
FAILED = "trigger write failed:"
# Lines kept before a crash type's first line when they belong to no other type.
CONTEXT_BEFORE = 3


@dataclass(frozen=True)
class Capture:
    """One boot: the crash types it triggers, in order, and how."""

    name: str
    types: tuple[str, ...]
    setup: str = ""  # guest shell commands run before the first trigger
    # The trigger never returns (hung task, lockups): run it detached and let
    # the detector report while the script waits.
    detached: bool = False
    # Run the trigger on CPU 1. A CPU spinning with interrupts off stops
    # jiffies when it is the one that keeps them (CPU 0, periodic tick), and
    # with them every detector that could report it.
    cpu1: bool = False
    wait: float = 1.0  # seconds given to the kernel after the last trigger
    cmdline: tuple[str, ...] = ()
    kmemleak_test: bool = False  # load samples/kmemleak instead of LKDTM
    provoke: bool = False  # vm/provoke's triggers instead of LKDTM's
    # The kernel flavour booted, and what its outputs' names end with
    # (`lkdtm_WARNING_sid.log`): the same trigger on another kernel is another file.
    flavour: str = "debug"
    suffix: str = ""

    @property
    def outputs(self) -> tuple[str, ...]:
        if self.kmemleak_test:
            return ("kmemleak_test",)
        prefix = "provoke" if self.provoke else "lkdtm"
        return tuple(f"{prefix}_{t}{self.suffix}" for t in self.types)


def _single(crash: str, setup: str = "", wait: float = 1.0, lockup: bool = False) -> Capture:
    return Capture(crash, (crash,), setup=setup, detached=lockup, cpu1=lockup, wait=wait)


def _provoke(trigger: str, cmdline: tuple[str, ...] = ()) -> Capture:
    return Capture(trigger, (trigger,), provoke=True, cmdline=cmdline)


# SLUB's own checks are off without slub_debug; with it, the provoke module
# makes its stray writes with KASAN's reports suppressed (see vm/provoke).
SLUB_DEBUG = ("slub_debug=FZPU",)


CAPTURES: tuple[Capture, ...] = (
    # WARN()-based reports leave the kernel running and each prints once per
    # boot at most (refcount's WARN_ONCE per message), so they share a boot.
    Capture(
        "warn",
        (
            "WARNING",
            "WARNING_MESSAGE",
            "REFCOUNT_INC_OVERFLOW",  # saturated
            "REFCOUNT_DEC_ZERO",  # decrement hit 0
            "REFCOUNT_DEC_AND_TEST_NEGATIVE",  # underflow
            "REFCOUNT_ADD_ZERO",  # addition on 0
            "CORRUPT_LIST_ADD",
            "CORRUPT_LIST_DEL",
            "ARRAY_BOUNDS",
        ),
    ),
    # Oopses kill the writing shell; one boot each keeps the taint flags of
    # one report from showing up in the next.
    _single("BUG"),
    _single("EXCEPTION"),
    _single("ACCESS_NULL"),
    _single("EXEC_NULL"),
    _single("WRITE_RO"),
    _single("PANIC"),
    # KASAN prints only its first report per boot (no kasan_multi_shot).
    _single("READ_AFTER_FREE"),
    _single("WRITE_AFTER_FREE"),
    _single("READ_BUDDY_AFTER_FREE"),
    _single("SLAB_LINEAR_OVERFLOW"),
    _single("SLAB_FREE_DOUBLE"),
    _single("CORRUPT_STACK"),
    _single("EXHAUST_STACK"),
    # Returns to user space with a spinlock held: lockdep, then the
    # sleeping-in-atomic checks on the way out.
    _single("SPINLOCKUP"),
    _single(
        "HUNG_TASK",
        setup="echo 3 > /proc/sys/kernel/hung_task_timeout_secs\n"
        "echo 1 > /proc/sys/kernel/hung_task_warnings",
        wait=10,
        lockup=True,
    ),
    # watchdog_thresh=1: a soft lockup is reported after 2 s.
    _single("SOFTLOCKUP", setup="echo 1 > /proc/sys/kernel/watchdog_thresh", wait=6, lockup=True),
    # No hard-lockup detector in a TCG guest (no perf NMI); with interrupts
    # off, RCU's stall detector is what reports it (3 s + 5 s of PROVE_RCU).
    _single(
        "HARDLOCKUP",
        setup="echo 3 > /sys/module/rcupdate/parameters/rcu_cpu_stall_timeout",
        wait=12,
        lockup=True,
    ),
    # kmemleak: two scans, since an object is reported only once its
    # checksum has stayed the same across one, and only when older than 5 s.
    Capture(
        "kmemleak",
        (),
        setup="echo 1 > /sys/module/kmemleak/parameters/verbose",
        cmdline=("kmemleak=on",),
        kmemleak_test=True,
        wait=6,
    ),
    # vm/provoke: what LKDTM in 6.1 cannot trigger. lockdep turns itself off
    # after its first report and KASAN reports once per boot, so one boot each.
    _provoke("LOCKDEP_CIRCULAR"),
    _provoke("LOCKDEP_RECURSIVE"),
    _provoke("LOCKDEP_HELD_LOCK_FREED"),
    _provoke("LOCKDEP_SUSPICIOUS_RCU"),
    _provoke("LOCKDEP_BAD_UNLOCK"),
    _provoke("LOCKDEP_INCONSISTENT"),
    _provoke("LOCKDEP_NON_STATIC_KEY"),
    _provoke("ODEBUG_FREE_ACTIVE"),
    _provoke("KASAN_GLOBAL_OOB"),
    _provoke("KASAN_INVALID_FREE"),
    _provoke("UBSAN_SHIFT"),
    _provoke("SLUB_REDZONE", SLUB_DEBUG),
    _provoke("SLUB_DOUBLE_FREE", SLUB_DEBUG),
    _provoke("SLUB_POISON", SLUB_DEBUG),
    _provoke("SLUB_FREEPOINTER", SLUB_DEBUG),
    # The same LKDTM triggers on newer kernels and on arm64, for the forms
    # 6.1 on x86 does not print.
    # 7.2 (debug-sid): the WARNING line of 6.18+ ("WARNING: file:line at f,
    # CPU#N: comm/pid"), the "Tainted: [W]=WARN" line of 6.10+ and the
    # "Oops: " prefix of 6.9+. WARN-based, so one boot.
    Capture(
        "warn-sid",
        ("WARNING", "REFCOUNT_DEC_AND_TEST_NEGATIVE", "CORRUPT_LIST_DEL"),
        flavour="debug-sid",
        suffix="_sid",
    ),
    # oops=panic: the oops ends in "Kernel panic - not syncing: Fatal exception".
    Capture(
        "ACCESS_NULL-sid",
        ("ACCESS_NULL",),
        cmdline=("oops=panic",),
        flavour="debug-sid",
        suffix="_sid_panic",
    ),
    # arm64 (debug-arm64, QEMU virt): "Unable to handle kernel ...", pc/lr
    # and "Call trace:". The second oops comes from a tainted (D) kernel.
    Capture(
        "oops-arm64",
        ("WRITE_RO", "ACCESS_NULL"),
        flavour="debug-arm64",
        suffix="_arm64",
    ),
    # A CPU spinning with preemption off and the soft-lockup watchdog slowed
    # down: RCU's stall detector reports first, from the CPU's own tick
    # ("self-detected stall"), its stack taken inside the timer interrupt.
    Capture(
        "SOFTLOCKUP-rcu",
        ("SOFTLOCKUP",),
        setup="echo 3 > /sys/module/rcupdate/parameters/rcu_cpu_stall_timeout\n"
        "echo 30 > /proc/sys/kernel/watchdog_thresh",
        detached=True,
        cpu1=True,
        wait=12,
        suffix="_rcu_stall",
    ),
)


def guest_script(capture: Capture) -> str:
    """The shell script the agent runs for one capture."""
    lines = ["set -u", capture.setup] if capture.setup else ["set -u"]
    if capture.kmemleak_test:
        lines += [
            "modprobe kmemleak-test",
            f"sleep {capture.wait:g}",
            "echo scan > /sys/kernel/debug/kmemleak",
            "echo scan > /sys/kernel/debug/kmemleak",
        ]
        return "\n".join(lines) + "\n"
    lines.append(f"modprobe {'unplug-provoke' if capture.provoke else 'lkdtm'} || exit 1")
    direct = PROVOKE_DIRECT if capture.provoke else DIRECT
    for crash in capture.types:
        # A child shell per trigger: an oops kills the writer, not the script.
        trigger = f"echo {crash} > {direct}"
        run = ("taskset -c 1 " if capture.cpu1 else "") + f"sh -c {shlex.quote(trigger)}"
        if capture.detached:
            # Detached from the agent's pipes, which a task stuck in the
            # kernel would otherwise hold open forever.
            lines.append(f"{run} </dev/null >/dev/null 2>&1 &")
        else:
            # 128+N is the writer killed by the oops it caused; 1 to 127 is a
            # failed write, e.g. a crash type this LKDTM does not know.
            lines.append(f"{run}; s=$?")
            lines.append(f'[ $s -ge 1 ] && [ $s -lt 128 ] && echo "{FAILED} {crash}: $s"')
    lines.append(f"sleep {capture.wait:g}")
    return "\n".join(lines) + "\n"


def markers(capture: Capture) -> list[str]:
    """The console line that opens each output's excerpt."""
    if capture.kmemleak_test:
        return ["kmemleak: Kmemleak testing"]
    prefix = "unplug-provoke" if capture.provoke else "lkdtm"
    return [f"{prefix}: Performing direct entry {t}" for t in capture.types]


def split_console(console: str, capture: Capture) -> dict[str, str]:
    """The excerpt of each crash type: its marker line to the next one's."""
    lines = console.splitlines(keepends=True)
    wanted = markers(capture)
    found: list[int] = []
    at = 0
    for marker in wanted:
        index = next((i for i in range(at, len(lines)) if lines[i].rstrip().endswith(marker)), None)
        if index is None:
            break
        found.append(index)
        at = index + 1
    out: dict[str, str] = {}
    previous_end = 0
    for n, start in enumerate(found):
        end = found[n + 1] if n + 1 < len(found) else len(lines)
        begin = max(previous_end, start - CONTEXT_BEFORE)
        out[capture.outputs[n]] = "".join(lines[begin:end])
        previous_end = end
    return out


def _debug_build() -> tuple[Path, Path]:
    """The source tree and build directory (O=) debug.provide() used."""
    from harness.host import cache
    from harness.host.kernels import debug
    from harness.host.kernels.debian import current_release
    from harness.host.kernels.source import source_tree

    rel = current_release()
    tree = source_tree(rel.version)
    fragment = debug.fragment_for(tree)
    return tree, debug.build_tree(tree, fragment, f"{rel.version}-{cache.digest(fragment)}")


def _kmemleak_kernel(kernel: Kernel) -> Kernel:
    """`kernel` with the kernel's own kmemleak-test sample module added."""
    from harness.host.kernels.outoftree import with_module
    from harness.pure.profiles import OutOfTreeModule

    tree, kbuild = _debug_build()
    module = OutOfTreeModule("kmemleak-test", "samples/kmemleak", "CONFIG_DEBUG_KMEMLEAK_TEST")
    return with_module(kernel, kbuild=kbuild, tree=tree, module=module)


def _provoke_kernel(kernel: Kernel) -> Kernel:
    """`kernel` with this project's test-only vm/provoke module added, built out of
    tree against the debug build like any module (cached by its sources)."""
    from harness.host.kernels.outoftree import with_module
    from harness.pure.profiles import OutOfTreeModule

    _, kbuild = _debug_build()
    module = OutOfTreeModule("unplug-provoke", "vm/provoke", project=True)
    return with_module(kernel, kbuild=kbuild, tree=PROJECT_ROOT, module=module)


def _run(capture: Capture, kernel: Kernel, run_dir: Path) -> GuestRun:
    from harness.host.targets.qemu import QemuTarget
    from harness.host.targets.run import Deadlines, GuestRun, Outcome

    # kmemleak's scans take about 20 s each under TCG with KASAN.
    budget = capture.wait + 20 * max(1, len(capture.types)) + (90 if capture.kmemleak_test else 20)
    task = {
        "task": "command",
        "args": {"argv": ["sh", "-c", guest_script(capture)], "timeout": budget},
    }
    try:
        return QemuTarget(kernel).run(
            [task], run_dir, Deadlines(boot=240, idle=budget + 30, total=budget + 300)
        )
    except subprocess.TimeoutExpired:
        # The agent finished but the guest never powered off: a CPU left
        # spinning with interrupts off stalls the sync before poweroff. QEMU
        # is killed by then and the console is complete.
        return GuestRun(run_dir, outcome=Outcome.HANG, message="the guest did not power off")


def capture_all(outdir: Path, captures: Sequence[Capture], jobs: int = 2) -> list[str]:
    """Boot, trigger and write the excerpts; return what went wrong."""
    from harness.host.kernels.flavours import get_kernel
    from harness.host.targets import initramfs

    base = get_kernel("debug")
    provoke = _provoke_kernel(base) if any(c.provoke for c in captures) else base
    kernels: dict[str, Kernel] = {}
    for c in captures:
        if c.flavour != "debug":
            kernel = get_kernel(c.flavour)  # LKDTM only: the modules above are built for 6.1
        elif c.kmemleak_test:
            kernel = _kmemleak_kernel(base)
        else:
            kernel = provoke if c.provoke else base
        kernels[c.name] = replace(kernel, cmdline=kernel.cmdline + c.cmdline)
        # Built here, once, rather than by two boots racing for the cache.
        initramfs.build(kernels[c.name])
    outdir.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []

    def one(c: Capture) -> None:
        start = time.monotonic()
        run = _run(c, kernels[c.name], outdir / "runs" / c.name)
        excerpts = split_console(run.console(), c)
        for name in c.outputs:
            if name not in excerpts:
                problems.append(f"{c.name}: no '{markers(c)[0]}'-style line for {name} "
                                f"({run.outcome}; {run.console_path})")
                continue
            (outdir / f"{name}.log").write_text(excerpts[name])
        for event in run.results():
            stdout = event.get("data", {}).get("stdout", "")
            if event["event"] == "error" or FAILED in stdout:
                problems.append(f"{c.name}: {event.get('message') or stdout.strip()}")
        print(f"{c.name}: {run.outcome} after {time.monotonic() - start:.0f} s "
              f"({run.message or 'ok'})", file=sys.stderr)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for future in [pool.submit(one, c) for c in captures]:
            future.result()
    return problems


def summary(outdir: Path, names: Sequence[str]) -> str:
    """What the parser makes of each excerpt: a draft to check, not the expectation."""
    rows = []
    for name in names:
        path = outdir / f"{name}.log"
        if not path.exists():
            continue
        findings = parse_log(path.read_text(errors="replace"))
        if not findings:
            rows.append(f"{name}: no finding")
        for f in findings:
            flag = "  CORRUPTED: " + str(f.corrupted_reason) if f.corrupted else ""
            rows.append(f"{name}: {f.bug_class} | {f.title} | {f.signature}{flag}")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="capture-lkdtm-corpus",
        description="Boot the debug kernel, trigger LKDTM crash types (and vm/provoke's) "
        "and write one console excerpt per type (the corpus in tests/data/kmsg/lkdtm/).",
    )
    parser.add_argument("outdir", type=Path, nargs="?", help="where NAME.log and runs/ go")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="a capture (boot) by name, e.g. HUNG_TASK or warn; repeatable")
    parser.add_argument("--jobs", type=int, default=2, help="boots at a time (default 2)")
    parser.add_argument("--list", action="store_true", help="list the captures and exit")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.list:
        for c in CAPTURES:
            print(f"{c.name}: {' '.join(c.outputs)}")
        return 0
    if args.outdir is None:
        parser.error("OUTDIR is required")
    chosen = [c for c in CAPTURES if not args.only or c.name in args.only]
    unknown = set(args.only) - {c.name for c in CAPTURES}
    if unknown:
        parser.error(f"unknown capture(s): {', '.join(sorted(unknown))} (see --list)")
    start = time.monotonic()
    problems = capture_all(args.outdir, chosen, args.jobs)
    print(summary(args.outdir, [n for c in chosen for n in c.outputs]))
    print(f"{len(chosen)} boots in {time.monotonic() - start:.0f} s", file=sys.stderr)
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
