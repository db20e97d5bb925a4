"""Stack frames and the guilty-frame rules."""

from __future__ import annotations

import pytest

from harness.pure.kmsg.frames import (
    Frame,
    canonical_func,
    choose,
    choose_stall,
    normalise_func,
    parse_frame,
    parse_pc,
    parse_sections,
    skip_rule_for,
)
from harness.pure.kmsg.lines import parse_line


@pytest.mark.parametrize(
    ("text", "func", "module", "questionable", "inline"),
    [
        (" v4l2_ioctl+0x1f1/0x250", "v4l2_ioctl", None, False, False),
        (" vimc_streamer_thread+0x2e/0x90 [vimc]", "vimc_streamer_thread", "vimc", False, False),
        (" ? __warn.cold+0x93/0xd7", "__warn", None, True, False),
        (" [<ffffffff8143f5c5>] ? vb2_mmap+0x1f/0x520", "vb2_mmap", None, True, False),
        (
            " [<ffffffff8143f5c5>] vb2_mmap+0x1f/0x520 [videobuf2_common]",
            "vb2_mmap",
            "videobuf2_common",
            False,
            False,
        ),
        (
            " vimc_capture_stop_streaming.cold+0x26/0x2b [vimc]",
            "vimc_capture_stop_streaming",
            "vimc",
            False,
            False,
        ),
        (
            " smb2_query_info_compound+0x29c/0x5c0 [cifs f90b72658819bd21c94769b6a652029a07a7172f]",
            "smb2_query_info_compound",
            "cifs",
            False,
            False,
        ),
        ("  __switch_to+0x2b0/0x6e0 (T)", "__switch_to", None, False, False),
        (" hub_event+0x1318/0x3740 drivers/usb/core/hub.c:5195", "hub_event", None, False, False),
        (
            " v4l2_fh_init drivers/media/v4l2-core/v4l2-fh.c:25 [inline]",
            "v4l2_fh_init",
            None,
            False,
            True,
        ),
        (" kmalloc ./include/linux/slab.h:493", "kmalloc", None, False, True),
        (
            "[c000000000123456] [c000000000654321] dump_stack_lvl+0x88/0xc4 (unreliable)",
            "dump_stack_lvl",
            None,
            True,
            False,
        ),
        (" show_stack from dump_stack_lvl+0x40/0x4c", "show_stack", None, False, False),
        (
            "<e0904621> saa7146_video_do_ioctl+0x102a/0x1245 [saa7146_vv]",
            "saa7146_video_do_ioctl",
            "saa7146_vv",
            False,
            False,
        ),
    ],
)
def test_parse_frame(
    text: str, func: str, module: str | None, questionable: bool, inline: bool
) -> None:
    f = parse_frame(text)
    assert f is not None
    assert (f.func, f.module, f.questionable, f.inline) == (func, module, questionable, inline)


@pytest.mark.parametrize(
    "text",
    [
        "RIP: 0010:media_device_get_info+0x1f7/0x560",
        "Code: 48 89 fa 48 c1 ea 03 80 3c 02 00",
        "CPU: 0 PID: 24 Comm: kworker/0:1 Not tainted 4.14.0",
        "ffff888109f20b70 (&q->lock){+.+.}-{3:3}, at: vb2_mmap+0x1f/0x520",
        " #0: ffff888106ad2138 ((wq_completion)usb_hub_wq), at: process_one_work+0x789/0x15d0",
        " ffff88006a189100: fb fb fb fb fb fb fb fb fb fb fb fb fb fb fb fb",
        "XFS (loop0): Metadata corruption detected at xfs_btree_lookup_get_block+0x220/0x2b0",
    ],
)
def test_not_a_frame(text: str) -> None:
    assert parse_frame(text) is None


@pytest.mark.parametrize(
    ("text", "reg", "func"),
    [
        ("RIP: 0010:media_device_get_info+0x1f7/0x560", "pc", "media_device_get_info"),
        ("RIP: 0010:__vimc_streamer_term+0x54/0xd0 [vimc]", "pc", "__vimc_streamer_term"),
        (
            "RIP: 0010:[<ffffffff82d4e304>]  [<ffffffff82d4e304>] __memset+0x24/0x30",
            "pc",
            "__memset",
        ),
        ("pc : lkdtm_ACCESS_NULL+0x2c/0xa4", "pc", "lkdtm_ACCESS_NULL"),
        ("lr : media_create_pad_link+0x10c/0x1b8", "lr", "media_create_pad_link"),
        (
            "pc : __list_del_entry_valid+0x70/0xd0 lib/list_debug.c:49",
            "pc",
            "__list_del_entry_valid",
        ),
        ("EIP is at v4l2_chardev_release+0x37/0x80 [videodev]", "pc", "v4l2_chardev_release"),
        ("RIP: 0033:0x7f10ee5d8bb9", "pc", None),  # user space
        ("RIP: 0010:0x0", "pc", None),  # jump through a NULL pointer
    ],
)
def test_parse_pc(text: str, reg: str, func: str | None) -> None:
    got = parse_pc(text)
    assert got is not None
    assert got[0] == reg
    assert (got[1].func if got[1] else None) == func


def test_clone_suffixes_are_not_part_of_the_function() -> None:
    assert normalise_func("tick_sched_handle.isra.19") == "tick_sched_handle"
    assert normalise_func("el0_svc_common.constprop.0") == "el0_svc_common"
    assert normalise_func("refcount_add.part.7") == "refcount_add"


# The machinery the brief names, and what must stay eligible.
@pytest.mark.parametrize(
    ("func", "rule"),
    [
        ("kasan_report", "sanitizer"),
        ("__kasan_slab_free", "sanitizer"),
        ("____kasan_kmalloc", "sanitizer"),
        ("__asan_report_load8_noabort", "sanitizer"),
        ("check_memory_region", "sanitizer"),
        ("kfree", "allocator"),
        ("kmem_cache_free", "allocator"),
        ("__kmem_cache_free", "allocator"),
        ("slab_free_freelist_hook", "allocator"),
        ("__kvmalloc_node_noprof", "allocator"),
        ("memcpy", "string"),
        ("memset_orig", "string"),
        ("strcpy", "string"),
        ("_copy_to_user", "string"),
        ("dump_stack", "report"),
        ("dump_stack_lvl", "report"),
        ("show_stack", "report"),
        ("print_address_description", "report"),
        ("_printk", "printk"),
        ("printk", "printk"),
        ("vprintk_emit", "printk"),
        ("warn_slowpath_fmt", "report"),
        ("__warn", "report"),
        ("report_bug", "report"),
        ("handle_bug", "report"),
        ("exc_invalid_op", "trap"),
        ("asm_exc_invalid_op", "trap"),
        ("do_syscall_64", "entry"),
        ("entry_SYSCALL_64_after_hwframe", "entry"),
        ("lock_acquire", "locking"),
        ("_raw_spin_lock_irqsave", "locking"),
        ("mutex_lock_nested", "locking"),
        ("__mutex_lock", "locking"),
        ("refcount_warn_saturate", "report"),
        ("__list_add_valid", "report"),
        ("__list_del_entry_valid", "report"),
        ("__list_del_entry_valid_or_report", "report"),
        ("kobject_put", "teardown"),
        ("device_release", "teardown"),
        ("kobject_put", "teardown"),
        ("__x86_indirect_thunk_rax", "thunk"),
        ("spin_dump", "report"),
        ("check_preemption_disabled", "report"),
        ("debug_smp_processor_id", "report"),
        ("bad_page", "report"),
        ("__stack_chk_fail", "report"),
        ("handle_overflow", "report"),
        ("should_failslab", "report"),
        ("do_tag_check_fault", "trap"),
        ("local_apic_timer_interrupt", "irq-entry"),
        ("usb_submit_urb", "usb"),
        ("down_read_killable", "locking"),  # the reference's words match inside names
        ("__rb_erase_color", "list"),  # rb_erase warns for the caller's bad node
        ("rb_erase", "list"),
        ("kobject_release", "teardown"),  # kobject_* and put_device: their caller
        ("put_device", "teardown"),
        ("__queue_work", "teardown"),
        ("vb2_vmalloc_alloc", "alloc-words"),  # the reference's k?v?[mzc]alloc, anywhere
        ("do_read_cache_folio", "alloc-words"),
        ("vsnprintf", "printk"),
        ("debug_print_object", "report"),
        ("__debug_check_no_obj_freed", "report"),
        ("ubsan_epilogue", "report"),
        ("__ubsan_handle_out_of_bounds", "report"),
        ("panic", "report"),
    ],
)
def test_machinery_is_skipped(func: str, rule: str) -> None:
    assert skip_rule_for(func) == rule


@pytest.mark.parametrize(
    "func",
    [
        "lkdtm_ACCESS_NULL",
        "lkdtm_WARNING",
        "v4l2_ioctl",
        "vb2_core_dqbuf",
        "vimc_streamer_thread",
        "uvc_video_decode_meta",
        "video_unregister_device",
        "v4l2_ctrl_handler_free",
        "em28xx_v4l2_open",
        "device_lock_assert",  # names that merely contain machinery words
        "my_alloc_buffers",
        "stk_camera_disconnect",
        "__x64_sys_ioctl",  # syscall handlers are a fallback, not skipped outright
        "console_device",  # console_* is not printk machinery as a whole
        "console_lock",
        "process_one_work",  # a crash inside the workqueue core is its own
        "kthread",
        "tcp_shutdown",  # "down" is skipped only as the rwsem calls the reference names
        "__down_common",
    ],
)
def test_driver_frames_are_eligible(func: str) -> None:
    assert skip_rule_for(func) is None


def _frames(*names: str) -> list[Frame]:
    return [parse_frame(n, i) for i, n in enumerate(names)]  # type: ignore[misc]


def test_questionable_frames_are_never_guilty() -> None:
    # a stale "? vivid_foo" word sits above the real caller
    choice = choose(_frames(" ? vivid_foo+0x1/0x2", " dump_stack+0x1/0x2", " vb2_read+0x1/0x2"))
    assert choice.frame is not None and choice.frame.func == "vb2_read"
    assert ("dump_stack", "report") in choice.skipped
    assert all(sym != "vivid_foo" for sym, _ in choice.skipped)


def test_syscall_handler_only_when_nothing_else() -> None:
    choice = choose(_frames(" kfree+0x1/0x2", " __x64_sys_close+0x1/0x2", " do_syscall_64+0x1/0x2"))
    assert choice.frame is not None and choice.frame.func == "__x64_sys_close"
    assert choice.syscall_fallback
    choice = choose(_frames(" __x64_sys_ioctl+0x1/0x2", " vfs_ioctl+0x1/0x2"))
    assert choice.frame is not None and choice.frame.func == "vfs_ioctl"


def test_extra_rules_apply_only_when_asked() -> None:
    frames = _frames(" schedule+0x1/0x2", " wait_for_completion+0x1/0x2", " cec_claim+0x1/0x2")
    assert choose(frames).frame.func == "schedule"  # type: ignore[union-attr]
    assert choose(frames, ("scheduler",)).frame.func == "cec_claim"  # type: ignore[union-attr]


def test_sections_split_a_kasan_report() -> None:
    text = """BUG: KASAN: use-after-free in f+0x1/0x2
Call Trace:
 <TASK>
 dump_stack_lvl+0x1/0x2
 f+0x1/0x2
 </TASK>

Allocated by task 1:
 kmalloc_trace+0x1/0x2
 probe+0x1/0x2

Freed by task 2:
 kfree+0x1/0x2
 release+0x1/0x2
"""
    lines = [parse_line(t, i) for i, t in enumerate(text.splitlines())]
    sections = parse_sections(lines)
    kinds = [(s.kind, [f.func for f in s.frames]) for s in sections]
    assert kinds == [
        ("call-trace", ["dump_stack_lvl", "f"]),
        ("alloc", ["kmalloc_trace", "probe"]),
        ("free", ["kfree", "release"]),
    ]


def test_irq_boundary_is_recorded() -> None:
    text = """Call Trace:
 <IRQ>
 dump_stack_lvl+0x1/0x2
 sysvec_apic_timer_interrupt+0x1/0x2
 </IRQ>
 <TASK>
 asm_sysvec_apic_timer_interrupt+0x1/0x2
RIP: 0010:busy_loop+0x54/0xd0 [drv]
RSP: 0018:ffffbfe84100bd88 EFLAGS: 00000202
 caller+0x1/0x2
 </TASK>"""
    lines = [parse_line(t, i) for i, t in enumerate(text.splitlines())]
    (trace,) = parse_sections(lines)
    assert [f.func for f in trace.frames] == [
        "dump_stack_lvl",
        "sysvec_apic_timer_interrupt",
        "asm_sysvec_apic_timer_interrupt",
        "busy_loop",
        "caller",
    ]
    assert trace.irq_end == 2
    assert trace.frames[3].pc


def test_arm32_bracket_frames() -> None:
    f = parse_frame("[<bf0a3100>] (rvin_set_slot_addr [rcar_vin]) from [<bf0a3328>] (x+0x1/0x2)")
    assert f is not None and f.func == "rvin_set_slot_addr" and f.module == "rcar_vin"
    f = parse_frame("[<c06f29cc>] (vb2_start_streaming+0x6c/0x168) from [<c06f4c20>] (y+0x1/0x2)")
    assert f is not None and f.func == "vb2_start_streaming" and f.offset == "0x6c/0x168"


def test_irq_markers_on_the_line_of_a_frame() -> None:
    f = parse_frame(" <IRQ>  [<ffffffff813f1f33>] dump_stack+0x63/0x90")
    assert f is not None and f.func == "dump_stack"
    f = parse_frame(" <EOI>  [<ffffffff81065a56>] ? native_safe_halt+0x6/0x10")
    assert f is not None and f.func == "native_safe_halt" and f.questionable


@pytest.mark.parametrize(
    ("func", "name"),
    [
        ("__x64_sys_ioctl", "sys_ioctl"),  # one prefix off, the shortest result
        ("__do_sys_reboot", "reboot"),
        ("__se_sys_bpf", "bpf"),
        ("ksys_write", "write"),
        ("____sys_sendmsg", "sendmsg"),
        ("SyS_ioctl", "ioctl"),
        ("sys_imageblit", "imageblit"),
        ("__arm64_sys_openat", "sys_openat"),
        ("vimc_capture_open", "vimc_capture_open"),
        ("sysfs_kf_write", "sysfs_kf_write"),
    ],
)
def test_canonical_names_drop_syscall_wrappers(func: str, name: str) -> None:
    assert canonical_func(func) == name


def test_stall_anchor_found_among_skipped_entry_frames() -> None:
    # do_syscall_64 is entry machinery here, yet it is where the reference's
    # anchor is: the frame above it names the stall
    choice = choose_stall(
        _frames(" vivid_loop+0x1/0x2", " __x64_sys_vivid+0x1/0x2", " do_syscall_64+0x1/0x2")
    )
    assert choice.frame is not None and choice.frame.func == "__x64_sys_vivid"


def test_stall_in_smp_call_function_is_one_bucket() -> None:
    choice = choose_stall(_frames(" smp_call_function_many_cond+0x1/0x2", " on_each_cpu+0x1/0x2"))
    assert choice.frame is not None and choice.frame.func == "smp_call_function"
