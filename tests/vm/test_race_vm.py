"""Race mode on a real kernel: workers and disruptor really run, and what the
kernel reports during the race is the race's finding.

On Linux 6.1 the race usually ends early at a report (subdev_open or
media_device_get_info dereferencing what vimc's unbind cleared); either way
the counts must show real work and the report must be the race's own.
"""

from __future__ import annotations

from pathlib import Path

from harness.host.runner import run_race
from harness.host.targets.qemu import QemuTarget

DURATION = 20.0


def test_race_hammers_every_node_kind_while_vimc_unbinds(kernel, tmp_path: Path) -> None:
    result = run_race(QemuTarget(kernel), "vimc", DURATION, seed=7, workers=3, mode="unbind",
                      report_dir=tmp_path)
    stats = result.stats
    assert "error" not in stats, stats
    assert result.boot.outcome == "done", result.boot.message
    assert stats["kinds"] == ["video", "media", "subdev"]
    assert stats["cycles"] >= 1 and stats["steps"].get("unbind:ok", 0) >= 1
    assert len(stats["workers"]) == 3
    assert sum(w["iterations"] for w in stats["workers"]) > 0
    if stats["stopped_early"]:
        # the race stopped at a report, and the host found that report after the race began
        assert result.findings, stats["first_report"]
        assert stats["first_report"]["cycle"] >= 1
    else:
        # A worker killed by an oops takes its per-call counts with it; a
        # whole race must have made calls that succeeded.
        opened = {k for w in stats["workers"] for k in w["results"] if k.endswith(":ok")}
        assert opened, "no call on any node succeeded"
        assert stats["duration"] >= DURATION - 1
        assert not result.findings
    console = (tmp_path / "boot-01" / "console.log").read_text()
    assert "v4l2-unplug: race begin seed=7" in console
