"""The header table: every report type, on report skeletons.

The header lines are the kernel's own wording (format strings of mm/kasan,
lib/list_debug.c, kernel/locking/lockdep.c, kernel/hung_task.c, ...); the
stacks are cut down to what the guilty-frame rules need to see.
"""

from __future__ import annotations

import pytest

from harness.pure.kmsg import BugClass, parse_log
from harness.pure.kmsg.classify import PATTERNS, classify, slug

STACK = """CPU: 0 PID: 77 Comm: vivid-000-vid-c Not tainted 6.8.0 #1
Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.3-debian-1.16.3-2 04/01/2014
Call Trace:
 <TASK>
 dump_stack_lvl+0x1/0x2
 {machinery}
 vivid_thread_vid_cap+0x1a/0x30 [vivid]
 kthread+0x1/0x2
 ret_from_fork+0x1/0x2
 </TASK>"""

END = "---[ end trace 0000000000000000 ]---"
BANNER = "=" * 66


def _report(head: str, machinery: str = "kfree+0x1/0x2", tail: str = END) -> str:
    return f"{head}\n{STACK.format(machinery=machinery)}\n{tail}\n"


CASES = [
    # KASAN: every bug type, Read and Write, in the kernel's words
    (
        f"{BANNER}\nBUG: KASAN: slab-out-of-bounds in vb2_read+0x1/0x2\n"
        "Write of size 4 at addr ffff888012345678 by task vivid-000-vid-c/77\n",
        "kasan_report+0x1/0x2",
        BANNER,
        BugClass.KASAN,
        # the function KASAN names comes first, as in the reference
        "KASAN: slab-out-of-bounds Write in vb2_read",
    ),
    (
        f"{BANNER}\nBUG: KASAN: global-out-of-bounds in vivid_thread_vid_cap+0x1/0x2\n"
        "Read of size 1 at addr x\n",
        "__asan_load1+0x1/0x2",
        BANNER,
        BugClass.KASAN,
        "KASAN: global-out-of-bounds Read in vivid_thread_vid_cap",
    ),
    (
        f"{BANNER}\nBUG: KASAN: stack-out-of-bounds in vivid_thread_vid_cap+0x1/0x2\n"
        "Read of size 8 at addr x\n",
        "memcpy+0x1/0x2",
        BANNER,
        BugClass.KASAN,
        "KASAN: stack-out-of-bounds Read in vivid_thread_vid_cap",
    ),
    (
        f"{BANNER}\nBUG: KASAN: double-free or invalid-free in kfree+0x1/0x2\n",
        "kfree+0x1/0x2",
        BANNER,
        BugClass.KASAN,
        "KASAN: invalid-free in vivid_thread_vid_cap",
    ),
    (
        f"{BANNER}\nBUG: KASAN: invalid-free in kfree+0x1/0x2\nFree of addr x by task y/1\n",
        "kfree+0x1/0x2",
        BANNER,
        BugClass.KASAN,
        "KASAN: invalid-free in vivid_thread_vid_cap",
    ),
    (
        f"{BANNER}\nBUG: KASAN: null-ptr-deref in vivid_thread_vid_cap+0x1/0x2\n"
        "Read of size 8 at addr 10\n",
        "kasan_check_range+0x1/0x2",
        BANNER,
        BugClass.KASAN,
        "KASAN: null-ptr-deref Read in vivid_thread_vid_cap",
    ),
    (
        f"{BANNER}\nBUG: KASAN: wild-memory-access in range [0xdead000000000108-0xdead00000000010f]"
        "\nWrite of size 8 at addr dead000000000108 by task x/1\n",
        "kasan_report+0x1/0x2",
        BANNER,
        BugClass.KASAN,
        "KASAN: wild-memory-access Write in vivid_thread_vid_cap",
    ),
    (
        f"{BANNER}\nBUG: KASAN: user-memory-access in vivid_thread_vid_cap+0x1/0x2\n"
        "Write of size 4 at addr 1000\n",
        "kasan_report+0x1/0x2",
        BANNER,
        BugClass.KASAN,
        "KASAN: user-memory-access Write in vivid_thread_vid_cap",
    ),
    (
        f"{BANNER}\nBUG: KASAN: vmalloc-out-of-bounds in vivid_thread_vid_cap+0x1/0x2\n"
        "Read of size 1 at addr x\n",
        "kasan_report+0x1/0x2",
        BANNER,
        BugClass.KASAN,
        "KASAN: vmalloc-out-of-bounds Read in vivid_thread_vid_cap",
    ),
    (
        f"{BANNER}\nBUG: KASAN: slab-use-after-free in vivid_thread_vid_cap+0x1/0x2\n"
        "Read of size 8 at addr x\n",
        "kasan_report+0x1/0x2",
        BANNER,
        BugClass.KASAN,
        "KASAN: slab-use-after-free Read in vivid_thread_vid_cap",
    ),
    # oopses
    (
        "BUG: unable to handle kernel NULL pointer dereference at 0000000000000010\n"
        "IP: [<ffffffff8123>] vivid_thread_vid_cap+0x1a/0x30 [vivid]\n",
        "__warn+0x1/0x2",
        END,
        BugClass.BUG,
        "BUG: unable to handle kernel NULL pointer dereference in vivid_thread_vid_cap",
    ),
    (
        "BUG: unable to handle kernel paging request at ffffc90001234000\n",
        "memset_orig+0x1/0x2",
        END,
        BugClass.BUG,
        "BUG: unable to handle kernel paging request in vivid_thread_vid_cap",
    ),
    (
        "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008\n"
        "Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP\n"
        "pc : vivid_thread_vid_cap+0x1a/0x30 [vivid]\nlr : kthread+0x1/0x2\n",
        "kfree+0x1/0x2",
        END,
        BugClass.BUG,
        "BUG: unable to handle kernel NULL pointer dereference in vivid_thread_vid_cap",
    ),
    (
        "Internal error: Oops - undefined instruction: 0000000002000000 [#1] PREEMPT SMP\n",
        "kfree+0x1/0x2",
        END,
        BugClass.BUG,
        "Internal error in vivid_thread_vid_cap",
    ),
    (
        "kernel BUG at drivers/media/common/videobuf2/videobuf2-core.c:1234!\n"
        "Oops: invalid opcode: 0000 [#1] PREEMPT SMP KASAN NOPTI\n",
        "kfree+0x1/0x2",
        END,
        BugClass.BUG,
        "kernel BUG in vivid_thread_vid_cap",
    ),
    (
        "general protection fault: 0000 [#1] SMP KASAN\n",
        "strlen+0x1/0x2",
        END,
        BugClass.GPF,
        "general protection fault in vivid_thread_vid_cap",
    ),
    (
        "divide error: 0000 [#1] PREEMPT SMP KASAN\n",
        "kfree+0x1/0x2",
        END,
        BugClass.BUG,
        "divide error in vivid_thread_vid_cap",
    ),
    (
        "BUG: sleeping function called from invalid context at kernel/locking/mutex.c:283\n"
        "in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 77, name: vivid-000-vid-c\n",
        "__might_resched+0x1/0x2\n mutex_lock_nested+0x1/0x2",
        "",
        BugClass.BUG,
        "BUG: sleeping function called from invalid context in vivid_thread_vid_cap",
    ),
    (
        "BUG: scheduling while atomic: vivid-000-vid-c/77/0x00000002\n",
        "__schedule_bug+0x1/0x2\n __schedule+0x1/0x2\n schedule+0x1/0x2\n"
        " schedule_timeout+0x1/0x2\n msleep+0x1/0x2",
        "",
        BugClass.BUG,
        # only the scheduler is passed over, not the sleep that called it
        "BUG: scheduling while atomic in msleep",
    ),
    # list and refcount
    (
        "list_add corruption. next->prev should be prev (ffff888012345678), but was "
        "ffff888012345600. (next=ffff888012345690).\n------------[ cut here ]------------\n"
        "kernel BUG at lib/list_debug.c:25!\n",
        "__list_add_valid_or_report+0x1/0x2",
        END,
        BugClass.LIST,
        "BUG: corrupted list in vivid_thread_vid_cap",
    ),
    (
        "------------[ cut here ]------------\n"
        "WARNING: CPU: 0 PID: 77 at lib/list_debug.c:56 __list_del_entry_valid+0x1/0x2\n"
        "list_del corruption. prev->next should be ffff888012345678, but was dead000000000122\n",
        "__list_del_entry_valid+0x1/0x2",
        END,
        BugClass.LIST,
        "BUG: corrupted list in vivid_thread_vid_cap",
    ),
    (
        "------------[ cut here ]------------\nrefcount_t: addition on 0; use-after-free.\n"
        "WARNING: CPU: 0 PID: 77 at lib/refcount.c:25 refcount_warn_saturate+0x1/0x2\n",
        "refcount_warn_saturate+0x1/0x2",
        END,
        BugClass.REFCOUNT,
        "WARNING: refcount bug in vivid_thread_vid_cap",
    ),
    (
        "------------[ cut here ]------------\n"
        "WARNING: CPU: 0 PID: 77 at drivers/media/test-drivers/vivid/vivid-kthread-cap.c:12 "
        "vivid_thread_vid_cap+0x1a/0x30 [vivid]\n",
        "__warn+0x1/0x2",
        END,
        BugClass.WARNING,
        "WARNING in vivid_thread_vid_cap",
    ),
    # debug objects, UBSAN
    (
        "------------[ cut here ]------------\nODEBUG: activate active (active state 1) object "
        "type: work_struct hint: vivid_work+0x0/0x10 [vivid]\n"
        "WARNING: CPU: 0 PID: 77 at lib/debugobjects.c:514 debug_print_object+0x1/0x2\n",
        "debug_object_activate+0x1/0x2\n __queue_work+0x1/0x2\n queue_work_on+0x1/0x2",
        END,
        BugClass.ODEBUG,
        # debug_* and the workqueue's own queue_work functions are passed over
        "WARNING: ODEBUG bug in vivid_thread_vid_cap",
    ),
    (
        f"{'=' * 80}\nUBSAN: array-index-out-of-bounds in drivers/media/x.c:12:3\n"
        "index 5 is out of range for type 'int [4]'\n",
        "ubsan_epilogue+0x1/0x2\n __ubsan_handle_out_of_bounds+0x1/0x2",
        "=" * 80,
        BugClass.UBSAN,
        "UBSAN: array-index-out-of-bounds in vivid_thread_vid_cap",
    ),
    (
        f"{'=' * 80}\nUBSAN: Undefined behaviour in drivers/media/x.c:12:3\n"
        "index 5 is out of range for type 'int [4]'\n",
        "ubsan_epilogue+0x1/0x2",
        "=" * 80,
        BugClass.UBSAN,
        "UBSAN: undefined-behaviour in vivid_thread_vid_cap",
    ),
    (
        "------------[ cut here ]------------\n"
        "UBSAN: shift-out-of-bounds in drivers/media/x.c:40:9\n"
        "shift exponent 32 is too large for 32-bit type 'unsigned int'\n",
        "__ubsan_handle_shift_out_of_bounds+0x1/0x2",
        END,
        BugClass.UBSAN,
        "UBSAN: shift-out-of-bounds in vivid_thread_vid_cap",
    ),
    # lockdep
    (
        "WARNING: suspicious RCU usage\n6.8.0 Not tainted\n"
        "include/linux/rcupdate.h:439 Illegal context switch in RCU read-side critical section!\n"
        "\nstack backtrace:\n",
        "lockdep_rcu_suspicious+0x1/0x2\n rcu_note_context_switch+0x1/0x2",
        "",
        BugClass.LOCKDEP,
        "WARNING: suspicious RCU usage in vivid_thread_vid_cap",
    ),
    (
        "=====================================\nWARNING: bad unlock balance detected!\n"
        "6.8.0 Not tainted\n-------------------------------------\n"
        "vivid-000-vid-c/77 is trying to release lock (&dev->mutex) at:\n"
        "[<ffffffff81234567>] vivid_vid_cap_stop+0x44/0x80 [vivid]\n"
        "but there are no more locks to release!\n\nstack backtrace:\n",
        "lock_release+0x1/0x2\n __mutex_unlock_slowpath+0x1/0x2",
        "",
        BugClass.LOCKDEP,
        "WARNING: bad unlock balance in vivid_vid_cap_stop",
    ),
    (
        "================================\nWARNING: inconsistent lock state\n6.8.0 Not tainted\n"
        "--------------------------------\ninconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage.\n"
        "vivid-000-vid-c/77 [HC0[0]:SC0[0]:HE1:SE1] takes:\n"
        "ffff888012345678 (&dev->slock){?.-.}-{2:2}, at: vivid_fill_buff+0x10/0x90 [vivid]\n"
        "\nstack backtrace:\n",
        "lock_acquire+0x1/0x2\n _raw_spin_lock+0x1/0x2",
        "",
        BugClass.LOCKDEP,
        "inconsistent lock state in vivid_fill_buff",
    ),
    (
        "=========================\nWARNING: held lock freed!\n6.8.0 Not tainted\n"
        "-------------------------\nvivid-000-vid-c/77 is freeing memory ffff8880-ffff8881, "
        "with a lock still held there!\n"
        "ffff888012345678 (&dev->mutex){+.+.}-{3:3}, at: vivid_release+0x20/0x60 [vivid]\n"
        "\nstack backtrace:\n",
        "kfree+0x1/0x2\n debug_check_no_locks_freed+0x1/0x2",
        "",
        BugClass.LOCKDEP,
        "WARNING: held lock freed in vivid_release",
    ),
    (
        "======================================================\n"
        "WARNING: possible circular locking dependency detected\n6.8.0 Not tainted\n"
        "------------------------------------------------------\n"
        "vivid-000-vid-c/77 is trying to acquire lock:\n"
        "ffff888012345678 (&q->mmap_lock){+.+.}-{3:3}, at: vb2_core_reqbufs+0x1f/0x520\n\n"
        "but task is already holding lock:\n"
        "ffff888012345600 (&dev->mutex){+.+.}-{3:3}, at: vivid_s_fmt+0x10/0x90 [vivid]\n\n"
        "the existing dependency chain (in reverse order) is:\n\n"
        "-> #1 (&dev->mutex){+.+.}-{3:3}:\n       __mutex_lock+0x1/0x2\n"
        "       vivid_mmap+0x1/0x2 [vivid]\n\nstack backtrace:\n",
        "lock_acquire+0x1/0x2\n __mutex_lock+0x1/0x2",
        "",
        BugClass.LOCKDEP,
        "possible deadlock in vb2_core_reqbufs",
    ),
    # hangs, stalls, lockups
    (
        "INFO: task v4l2-ctl:1234 blocked for more than 122 seconds.\n"
        "      Not tainted 6.8.0 #1\n"
        '"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.\n',
        "__schedule+0x1/0x2\n schedule+0x1/0x2\n schedule_preempt_disabled+0x1/0x2\n"
        " __mutex_lock+0x1/0x2\n mutex_lock_nested+0x1/0x2",
        "",
        BugClass.HUNG_TASK,
        "INFO: task hung in vivid_thread_vid_cap",
    ),
    (
        "rcu: INFO: rcu_sched self-detected stall on CPU\n"
        "rcu: \t0-....: (2099 ticks this GP) idle=c7e/1/0x4000000000000002\n",
        "rcu_dump_cpu_stacks+0x1/0x2\n rcu_sched_clock_irq+0x1/0x2",
        "",
        BugClass.RCU_STALL,
        "INFO: rcu detected stall in vivid_thread_vid_cap",
    ),
    (
        "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:\n",
        "nmi_cpu_backtrace+0x1/0x2",
        "",
        BugClass.RCU_STALL,
        "INFO: rcu detected stall in vivid_thread_vid_cap",
    ),
    (
        "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [vivid-000-vid-c:77]\n",
        "_raw_spin_lock+0x1/0x2",
        "",
        BugClass.SOFT_LOCKUP,
        "BUG: soft lockup in vivid_thread_vid_cap",
    ),
    (
        "NMI watchdog: Watchdog detected hard LOCKUP on cpu 1\n",
        "native_queued_spin_lock_slowpath+0x1/0x2",
        "",
        BugClass.HARD_LOCKUP,
        "BUG: hard lockup in vivid_thread_vid_cap",
    ),
    # panic with a function in its reason
    (
        "Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: "
        "vivid_thread_vid_cap+0x1a/0x30 [vivid]\n",
        "panic+0x1/0x2\n __stack_chk_fail+0x1/0x2",
        "---[ end Kernel panic - not syncing: stack-protector ]---",
        BugClass.PANIC,
        "kernel panic: stack is corrupted in vivid_thread_vid_cap",
    ),
    # slub_debug (mm/slub.c slab_bug()/object_err()/slab_err()), without the
    # allocation track that "U" adds: the Call Trace names the culprit
    (
        f"{'=' * 77}\nBUG kmalloc-128 (Tainted: G    B             ): Object already free\n"
        f"{'-' * 77}\n\n"
        "Slab 0xffffea0000412340 objects=21 used=20 fp=0xffff888010f0c000 flags=0x200(slab)\n"
        "Object 0xffff888010f0c000 @offset=0 fp=0x0000000000000000\n",
        "object_err+0x1/0x2\n free_to_partial_list+0x1/0x2\n __kmem_cache_free+0x1/0x2\n"
        " kfree+0x1/0x2",
        "",
        BugClass.SLUB,
        "SLUB: Object already free in vivid_thread_vid_cap",
    ),
    (
        f"{'=' * 77}\nBUG vivid_buf (Not tainted): Objects remaining in vivid_buf on "
        f"__kmem_cache_shutdown()\n{'-' * 77}\n\n"
        "Slab 0xffffea0000412340 objects=21 used=1 fp=0xffff888010f0c000 flags=0x200(slab)\n",
        "slab_err+0x1/0x2\n __kmem_cache_shutdown+0x1/0x2\n kmem_cache_destroy+0x1/0x2",
        "",
        BugClass.SLUB,
        "SLUB: Objects remaining in vivid_thread_vid_cap",
    ),
    # reference rows for rarer reports
    (
        "INFO: task vivid-000-vid-c:77 can't die for more than 143 seconds.\n"
        "task:vivid-000-vid-c state:R  running task     stack:0     pid:77\n",
        "__schedule+0x1/0x2\n schedule+0x1/0x2",
        "",
        BugClass.HUNG_TASK,
        "INFO: task can't die in vivid_thread_vid_cap",
    ),
    (
        "Kernel panic - not syncing: corrupted stack end detected inside scheduler\n",
        "__schedule+0x1/0x2\n schedule+0x1/0x2\n vivid_recurse+0x1/0x2\n"
        " vivid_recurse+0x1/0x2",
        "---[ end Kernel panic - not syncing: corrupted stack end detected inside scheduler ]---",
        BugClass.PANIC,
        # named like a stall: the frame above the dispatch point (kthread)
        "kernel panic: corrupted stack end in vivid_thread_vid_cap",
    ),
    (
        "BUG: workqueue leaked lock or atomic: kworker/0:1/0x00000000/12\n"
        "     last function: vivid_work_fn [vivid]\n"
        "1 lock held by kworker/0:1/12:\n",
        "process_one_work+0x1/0x2",
        "",
        BugClass.BUG,
        "BUG: workqueue leaked lock or atomic in vivid_work_fn",
    ),
    (
        "BUG: TASK stack guard page was hit at ffffc90000a5ff58 "
        "(stack is ffffc90000a60000..ffffc90000a68000)\n"
        "stack guard page: 0000 [#1] PREEMPT SMP\n",
        "vivid_recurse+0x1/0x2\n vivid_recurse+0x1/0x2",
        END,
        BugClass.BUG,
        "BUG: stack guard page was hit in vivid_thread_vid_cap",
    ),
    (
        "BUG: Bad page state in process vivid-000-vid-c  pfn:0a3c1\n"
        "page last allocated via order 0, migratetype Unmovable, gfp_mask 0xcc0(GFP_KERNEL),"
        " pid 77\n"
        " post_alloc_hook+0x1/0x2\n get_page_from_freelist+0x1/0x2\n"
        " __alloc_pages+0x1/0x2\n vb2_dma_sg_alloc+0x1/0x2 [videobuf2_dma_sg]\n"
        " vivid_buf_prepare+0x1/0x2 [vivid]\n"
        "page last free pid 1 tgid 1 stack trace:\n free_unref_page+0x1/0x2\n",
        "bad_page+0x1/0x2\n free_unref_page+0x1/0x2",
        "",
        BugClass.BUG,
        # page_owner's allocation stack, past the allocator (any "alloc")
        "BUG: Bad page state in vivid_buf_prepare",
    ),
    (
        "------------[ cut here ]------------\n"
        "WARNING: CPU: 0 PID: 77 at mm/vmalloc.c:3295 __vmalloc_node_range_noprof+0x1/0x2\n",
        "__vmalloc_node_noprof+0x1/0x2\n vmalloc+0x1/0x2",
        END,
        BugClass.WARNING,
        "WARNING: zero-size vmalloc in vivid_thread_vid_cap",
    ),
]


def test_slub_blames_the_allocation_track() -> None:
    # Poison found when the object is handed out again: the Call Trace is
    # whoever allocates next, the allocation track names the object's owner.
    # 2.6 wording: no taint, "INFO: " before the track, tab-indented stack.
    text = (
        f"{'=' * 77}\nBUG kmalloc-8: Poison overwritten\n{'-' * 77}\n\n"
        "INFO: 0xc90f6d28-0xc90f6d2b. First byte 0x00 instead of 0x6b\n"
        "INFO: Allocated in kmemdup+0x1/0x2 age=53 cpu=1 pid=554\n"
        "\t__slab_alloc+0x1/0x2\n\tkmemdup+0x1/0x2\n\tvivid_create_instance+0x40/0x900\n"
        "INFO: Freed in vivid_remove+0x1/0x2 age=3 cpu=1 pid=600\n"
        "\tkfree+0x1/0x2\n\tvivid_remove+0x1/0x2\n"
        "Call Trace:\n dump_stack+0x1/0x2\n check_bytes_and_report+0x1/0x2\n"
        " check_object+0x1/0x2\n alloc_debug_processing+0x1/0x2\n ___slab_alloc+0x1/0x2\n"
        " __kmalloc+0x1/0x2\n ext4_readdir+0x1/0x2\n"
        "FIX kmalloc-8: Restoring Poison 0xc90f6d28-0xc90f6d2b=0x6b\n"
    )
    (f,) = parse_log(text)
    assert (f.bug_class, f.title, f.guilty_rule) == (
        BugClass.SLUB, "SLUB: Poison overwritten in vivid_create_instance", "alloc-track"
    )
    assert f.signature == "SLUB:poison-overwritten:vivid_create_instance"
    assert f.extra["cache"] == "kmalloc-8"
    assert not f.corrupted, f.corrupted_reason


def test_slub_needs_its_own_words() -> None:
    assert classify("BUG kmalloc-64 (Not tainted): Right Redzone overwritten") is not None
    assert classify("BUG kmalloc-64 (Not tainted): anything else") is None
    assert classify("BUG workaround: enabled") is None


@pytest.mark.parametrize(
    ("head", "machinery", "tail", "cls", "title"), CASES, ids=[c[4] for c in CASES]
)
def test_report_types(head: str, machinery: str, tail: str, cls: BugClass, title: str) -> None:
    findings = parse_log(_report(head.rstrip("\n"), machinery, tail))
    assert [(f.bug_class, f.title) for f in findings] == [(cls, title)]
    assert not findings[0].corrupted, findings[0].corrupted_reason


def test_kmemleak_object() -> None:
    text = """unreferenced object 0xffff888012345678 (size 64):
  comm "v4l2-ctl", pid 1234, jiffies 4294901234 (age 8.504s)
  hex dump (first 32 bytes):
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace:
    [<000000003a8cf5b1>] kmem_cache_alloc_trace+0x1b0/0x2d0
    [<00000000b5b3b0c5>] kmemdup+0x1/0x2
    [<00000000a1b2c3d4>] vivid_create_instance+0x40/0x900 [vivid]
    [<00000000a1b2c3d5>] platform_probe+0x1/0x2
"""
    (f,) = parse_log(text)
    assert f.title == "memory leak in vivid_create_instance"
    assert (f.comm, f.pid) == ("v4l2-ctl", 1234)


def test_boot_messages_with_keywords_are_not_headers() -> None:
    for text in (
        "Spectre V2 : WARNING: Unprivileged eBPF is enabled with eIBRS on",
        "kmemleak: Kernel memory leak detector initialized (mem pool available: 15722)",
        "rcu: Hierarchical RCU implementation.",
        "INFO: lockdep is turned off.",
        "vimc: loading out-of-tree module taints kernel.",
        "module verification failed: signature and/or required key missing - tainting kernel",
        "pvrusb2: ***WARNING*** pvrusb2 device hardware appears to be jammed",
        "ODEBUG: Out of memory. ODEBUG disabled",
        "BUG",
    ):
        assert classify(text) is None, text


def test_table_is_consistent() -> None:
    names = [p.name for p in PATTERNS]
    assert len(names) == len(set(names))
    for p in PATTERNS:
        assert ("{frame}" in p.title) == p.frame_in_title, p.name
        for _, target in p.refine:
            assert target in names


def test_slug() -> None:
    assert slug("VFS: Unable to mount root fs on unknown-block(0,0)") == (
        "vfs-unable-to-mount-root-fs-on-unknown-block-n-n"
    )
