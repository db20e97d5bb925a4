"""Frame checks on synthetic buffers, the waiting layer, USERPTR memory, the CLI's
table and its kernel-log screen: the parts of streaming that need no device."""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.host.commands.stream import kernel_reports, parse_size, render_table
from harness.pure.errors import HarnessError
from harness.target.device.stream import (
    MAX_LISTED,
    FrameChecker,
    StreamResult,
    _Buffers,
    _Waiter,
    is_blank,
)
from harness.target.uapi import videodev2 as v4l2

MS = 1_000_000


def colour_bars(width: int = 640, height: int = 480, bpp: int = 3) -> bytes:
    """Eight vertical bars, the way v4l2-tpg's default pattern looks."""
    levels = [(255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0),
              (255, 0, 255), (255, 0, 0), (0, 0, 255), (0, 0, 0)]
    row = b"".join(bytes(levels[x * 8 // width][:bpp]) for x in range(width))
    return row * height


def bayer_bars(width: int = 640, height: int = 480) -> bytes:
    return bytes((x * 8 // width) * 32 + (y & 1) for y in range(height) for x in range(width))


# -- blank frames -------------------------------------------------------------------------


def test_an_all_zero_frame_is_blank() -> None:
    assert is_blank(bytes(640 * 480 * 3))


def test_a_frame_of_one_grey_is_blank() -> None:
    assert is_blank(b"\x80" * 320 * 240)


@pytest.mark.parametrize("frame", [colour_bars(), colour_bars(320, 240), bayer_bars(),
                                   colour_bars(bpp=1), colour_bars(3840, 16),
                                   colour_bars(64, 16)])
def test_a_test_pattern_is_not_blank(frame: bytes) -> None:
    assert not is_blank(frame)


def test_only_the_payload_counts() -> None:
    # a buffer bigger than the frame (USERPTR pages, DMABUF from a bigger format)
    buf = bytes(1000) + colour_bars(64, 16)
    assert is_blank(buf, 1000)
    assert not is_blank(buf)


@pytest.mark.parametrize("where", [0, 640 * 240 * 3, 640 * 480 * 3 - 8])
def test_eight_bytes_anywhere_the_check_looks_make_a_frame(where: int) -> None:
    # rcar-vin's emulated DMA stamps a header and a counter, nothing else
    frame = bytearray(640 * 480 * 3)
    frame[where:where + 8] = b"UNPL\x01\x00\x00\x00"
    assert not is_blank(frame)


def test_blank_check_reads_an_mmap() -> None:
    with mmap.mmap(-1, 4096 * 4) as m:
        assert is_blank(m)
        m[4096:8192] = bytes(range(256)) * 16
        assert not is_blank(m)


# -- sequence numbers, timestamps, payload --------------------------------------------------


def feed(checker: FrameChecker, sequences: list[int], step_ns: int = 20 * MS,
         payload: bytes | None = None) -> FrameChecker:
    for i, seq in enumerate(sequences):
        checker.add(seq, 1_000 * MS + seq * step_ns + i, len(payload or b"x"), 0, payload)
    return checker


def test_a_clean_stream() -> None:
    c = feed(FrameChecker(sizeimage=1), list(range(10)))
    assert (c.frames, c.dropped, c.dropped_count, c.errors) == (10, [], 0, [])
    assert (c.first_sequence, c.last_sequence) == (0, 9)
    assert c.fps == pytest.approx(50.0, rel=1e-3)


def test_gaps_in_sequence_numbers_are_dropped_frames() -> None:
    c = feed(FrameChecker(), [0, 1, 3, 4, 7])
    assert c.dropped == [2, 5, 6]
    assert c.dropped_count == 3
    assert c.errors == []


def test_a_sequence_number_that_does_not_increase() -> None:
    c = feed(FrameChecker(), [0, 1, 1, 2])
    assert c.errors == ["frame 3 (sequence 1): sequence did not increase (previous 1)"]


def test_a_timestamp_that_goes_back() -> None:
    c = FrameChecker()
    c.add(0, 2_000, 1)
    c.add(1, 1_000, 1)
    c.add(2, 3_000, 1)
    assert c.errors == ["frame 2 (sequence 1): timestamp 1000 ns is not after the previous "
                        "2000 ns"]
    assert c.last_ts_ns == 3_000


def test_equal_timestamps_are_not_monotonic() -> None:
    c = FrameChecker()
    c.add(0, 5_000, 1)
    c.add(1, 5_000, 1)
    assert len(c.errors) == 1 and "is not after" in c.errors[0]


def test_short_payload_and_error_flag() -> None:
    c = FrameChecker(sizeimage=307200)
    c.add(0, 1, 0)
    c.add(1, 2, 1000, v4l2.V4L2_BUF_FLAG_ERROR)
    assert c.errors == [
        "frame 1 (sequence 0): 0 bytes of payload, the format needs 307200",
        "frame 2 (sequence 1): the driver marked the buffer with V4L2_BUF_FLAG_ERROR",
        "frame 2 (sequence 1): 1000 bytes of payload, the format needs 307200",
    ]


def test_blank_frames_are_counted_and_reported() -> None:
    c = FrameChecker()
    frame = colour_bars(64, 48)
    c.add(0, 1, len(frame), 0, frame)
    c.add(1, 2, len(frame), 0, bytes(len(frame)))
    assert c.blank_frames == 1
    assert c.errors == ["frame 2 (sequence 1): blank (the start, middle and end of the payload "
                        "hold one value)"]


def test_read_io_has_no_sequence_or_timestamp() -> None:
    c = FrameChecker(sizeimage=4)
    for _ in range(3):
        c.add(None, None, 4, 0, b"\x01\x02\x03\x04")
    assert (c.frames, c.errors, c.fps, c.first_sequence) == (3, [], None, None)


def test_lists_stop_growing_but_counts_do_not() -> None:
    c = FrameChecker()
    for seq in range(0, 200, 2):
        c.add(seq, seq + 1, 0)
    assert len(c.errors) == MAX_LISTED and c.error_count == 100
    assert len(c.dropped) == MAX_LISTED and c.dropped_count == 99
    assert c.dropped[:3] == [1, 3, 5]


def test_result_takes_the_checker() -> None:
    c = feed(FrameChecker(), [0, 1, 2, 4])
    r = StreamResult("Raw Capture 0", "/dev/video0", "mmap", "poll", requested=4)
    r.take(c, 0.08)
    assert (r.frames, r.dropped, r.wall_fps) == (4, [3], 50.0)
    assert r.ok  # a dropped frame is reported, not an error
    data = r.to_dict()
    assert data["ok"] and data["fps"] == pytest.approx(37.5, rel=1e-2)


def test_a_short_stream_is_not_ok() -> None:
    r = StreamResult("n", "/dev/video0", "mmap", "poll", requested=60)
    r.take(feed(FrameChecker(), [0, 1]), 1.0)
    assert not r.ok
    r.fail("no frame within 5 s after 2 frames")
    assert r.error_count == 1 and not r.to_dict()["ok"]


# -- waiting for frames ---------------------------------------------------------------------


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    os.close(r)
    os.close(w)


@pytest.mark.parametrize("how", ["poll", "select"])
def test_waiter_times_out_then_sees_data(pipe: tuple[int, int], how: str) -> None:
    r, w = pipe
    waiter = _Waiter(r, how)
    assert waiter.wait(0.01) == "timeout"
    os.write(w, b"x")
    assert waiter.wait(0.01) == "ready"


def test_waiter_refuses_an_unknown_method(pipe: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="poll, select"):
        _Waiter(pipe[0], "epoll")


def test_poll_reports_a_hung_up_peer(pipe: tuple[int, int]) -> None:
    r, w = os.pipe()
    os.close(w)
    try:
        assert _Waiter(r, "poll").wait(0.01) == "error"
    finally:
        os.close(r)


# -- USERPTR memory -------------------------------------------------------------------------


def test_userptr_buffers_are_page_aligned_and_close_cleanly() -> None:
    bufs = _Buffers.userptr(3, 307200 + 1)
    lengths = {a["length"] for a in bufs.queue_args}
    assert lengths == {307200 + mmap.PAGESIZE}
    assert all(a["m"] % mmap.PAGESIZE == 0 for a in bufs.queue_args)
    views = list(bufs.views)
    bufs.close()  # the ctypes views pinning the maps must go first, or close() raises
    assert all(v.closed for v in views)


# -- the command line's table and kernel-log screen -----------------------------------------


def result(**kw: object) -> dict:
    base = StreamResult("Raw Capture 0", "/dev/video0", "mmap", "poll", "GRBG 640x480",
                        requested=60, frames=60, fps=49.71).to_dict()
    return {**base, **kw}


def test_table_lists_node_memory_frames_fps_and_drops() -> None:
    text = render_table([
        result(),
        result(node="RGB/YUV Capture", memory="dmabuf", format="RGB3 320x240", fps=5.04,
               dropped=[7, 8], dropped_count=2),
        result(memory="userptr", frames=3, ok=False, errors=["no frame within 5 s"],
               error_count=1),
    ])
    lines = text.splitlines()
    assert lines[0].split() == ["node", "memory", "format", "frames", "fps", "dropped", "result"]
    assert lines[1].split() == ["Raw", "Capture", "0", "mmap", "GRBG", "640x480", "60/60",
                                "49.7", "0", "ok"]
    assert "dmabuf" in lines[2] and "2 (7,8)" in lines[2] and "5.0" in lines[2]
    assert "3/60" in lines[3] and "1 error(s)" in lines[3]
    assert lines[4] == "  Raw Capture 0 userptr GRBG 640x480: no frame within 5 s"


def test_kernel_reports_catch_bugs_but_not_boot_chatter() -> None:
    console = (Path(__file__).resolve().parents[1] / "data" / "consoles"
               / "injected_uaf_debug.console.log").read_text()
    # the boot part: lockdep and KASAN announce themselves, which is no report
    boot = console.split("v4l2-unplug: scenario")[0]
    assert "RCU lockdep checking is enabled" in boot
    assert kernel_reports(boot) == []
    assert kernel_reports(console) == ["KASAN: use-after-free Read in media_gobj_destroy"]


def test_sizes_on_the_command_line() -> None:
    assert parse_size("320x240") == (320, 240)
    with pytest.raises(HarnessError, match="not a size like 640x480"):
        parse_size("320")
