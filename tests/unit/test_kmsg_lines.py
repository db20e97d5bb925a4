"""printk prefixes: timestamps, caller ids and the junk other writers leave."""

from __future__ import annotations

import pytest

from harness.pure.kmsg.lines import LineTable, parse_line


@pytest.mark.parametrize(
    ("raw", "text", "timestamp", "context"),
    [
        ("[   12.345678] usb 1-1: USB disconnect", "usb 1-1: USB disconnect", 12.345678, "console"),
        ("[    5.123456][  T123] vimc: bound", "vimc: bound", 5.123456, "T123"),
        ("[ 1145.730682][    C1] rcu: INFO: x", "rcu: INFO: x", 1145.730682, "C1"),
        ("[  680.827306][T11558] BUG: x", "BUG: x", 680.827306, "T11558"),
        ("[ 60.292833] koda girdi", "koda girdi", 60.292833, "console"),
        ("<4>[   3.000001] WARNING: y", "WARNING: y", 3.000001, "console"),
        # text another writer left in front of the kernel's line
        ("syzkaller login: [   30.021137][   T81] usb 1-1: x", "usb 1-1: x", 30.021137, "T81"),
        ("Dec 25 09:03:13 rpi kernel: [  758.414032] rcu: x", "rcu: x", 758.414032, "console"),
        # dmesg -T and --reltime: kernel lines, but no absolute time
        ("[Mon Jan  1 12:00:00 2024] BUG: z", "BUG: z", None, "console"),
        ("[  +0.000005] lkdtm: Calling", "lkdtm: Calling", None, "console"),
        # printk.time=0 with caller ids
        ("[T58] BUG: sleeping", "BUG: sleeping", None, "T58"),
        # no prefix at all: dmesg -t, or not the kernel
        ("BUG: KASAN: use-after-free in f", "BUG: KASAN: use-after-free in f", None, ""),
        ("agent: starting stream", "agent: starting stream", None, ""),
        (" [<ffffffff81234567>] kfree+0x1/0x2", " [<ffffffff81234567>] kfree+0x1/0x2", None, ""),
        ("[dfff800000000000] address between", "[dfff800000000000] address between", None, ""),
    ],
)
def test_prefix(raw: str, text: str, timestamp: float | None, context: str) -> None:
    line = parse_line(raw)
    assert (line.text, line.timestamp, line.context) == (text, timestamp, context)


def test_carriage_returns_are_dropped() -> None:
    line = parse_line("[   1.000000] hello\r")
    assert line.text == "hello"
    assert line.raw == "[   1.000000] hello"


def test_table_is_lazy_and_indexed() -> None:
    table = LineTable("a\r\n[ 1.000000] b\nc\n")
    assert len(table) == 3
    assert table[1].text == "b"
    assert table[1].index == 1
    assert table[0].raw == "a"
    assert table.raw(0) == "a\r"
