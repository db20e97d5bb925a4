"""Kernel log parsing speed on a 10 MB console.

The log is built from real material: a boot console of this project's VM
repeated as noise, with the real reports of the test corpus spread through
it. Target: well under a second per MB.
"""

from __future__ import annotations

import time
from pathlib import Path

from harness.pure.kmsg.report import dedup, parse_log

DATA = Path(__file__).resolve().parents[1] / "data" / "kmsg"
SIZE = 10 << 20


def build_log() -> str:
    reports = [p.read_text(errors="replace") for p in sorted(DATA.rglob("*.log"))]
    noise = "".join(
        f"[{i * 0.001:12.6f}] v4l2-unplug: scenario noise-{i % 56} begin\n"
        f"[{i * 0.001:12.6f}] vimc link validate: Sensor A:src:640x480 (0x3231, 8, 0, 0, 0)\n"
        for i in range(400)
    )
    parts, size, i = [], 0, 0
    while size < SIZE:
        chunk = noise if i % 8 else reports[(i // 8) % len(reports)]
        parts.append(chunk)
        size += len(chunk)
        i += 1
    return "".join(parts)


def corpus_rate() -> None:
    """Every corpus file parsed alone, as a report arrives: time per report."""
    logs = [p.read_text(errors="replace") for p in sorted(DATA.rglob("*.log"))]
    reports = 0
    start = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        for text in logs:
            reports += len(parse_log(text))
    seconds = time.perf_counter() - start
    mb = rounds * sum(len(t.encode()) for t in logs) / (1 << 20)
    print(f"kmsg corpus: {reports // rounds} reports in {len(logs)} logs, "
          f"{reports / seconds:.0f} reports/s ({seconds / reports * 1e3:.3f} ms per report, "
          f"{mb / seconds:.1f} MB/s of console); target at most 1 ms per report")


def main() -> None:
    corpus_rate()
    text = build_log()
    mb = len(text.encode()) / (1 << 20)
    start = time.perf_counter()
    findings = parse_log(text)
    groups = dedup(findings)
    seconds = time.perf_counter() - start
    print(f"kmsg: {mb:.1f} MB, {len(findings)} reports ({len(groups)} signatures) in "
          f"{seconds:.2f} s = {seconds / mb:.3f} s/MB ({mb / seconds:.0f} MB/s, "
          f"{len(findings) / seconds:.0f} reports/s); "
          f"target well under 1 s/MB")


if __name__ == "__main__":
    main()
