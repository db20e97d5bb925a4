"""--amplify on a real kernel: the delay module builds against the flavour's
build tree, its kprobes sit on the profile's function, the race runs under the
delays and its record says which were active and how often they fired."""

from __future__ import annotations

import json
from pathlib import Path

from harness.host.kernels.emulation import with_delays
from harness.host.report.results import race_with_statistics
from harness.host.report.schema import validate
from harness.host.runner import run_race
from harness.host.targets.qemu import QemuTarget
from harness.pure.delays import DelayPlan

DURATION = 20.0


def test_a_race_runs_under_seeded_delays_and_records_them(kernel, tmp_path: Path) -> None:
    plan = DelayPlan(("media_device_get_info",), 5_000, 40_000, 1000, seed=2)
    result = run_race(QemuTarget(with_delays(kernel)), "vimc", DURATION, seed=2, workers=3,
                      mode="unbind", report_dir=tmp_path, kinds=["video", "media"],
                      delays=plan)
    stats = result.stats
    assert "error" not in stats, stats
    delays = stats["delays"]
    assert {k: delays[k] for k in ("symbols", "min_us", "max_us", "permille", "seed")} \
        == plan.to_dict()
    [point] = delays["points"]
    assert point["symbol"] == "media_device_get_info"
    # Every call drew a delay: each was delayed, or ran on while another CPU waited.
    assert point["calls"] >= 1 and point["delays"] >= 1
    assert point["delays"] + point["busy"] <= point["calls"]
    assert 5_000 * point["delays"] <= point["delayed_us"] <= 40_000 * point["delays"]
    console = (tmp_path / "boot-01" / "console.log").read_text()
    assert "unplug-delay: delaying media_device_get_info+0: 5000-40000 us" in console
    doc = json.loads(json.dumps(race_with_statistics(result, kernel, "vimc", 0.0), default=str))
    validate(doc, "race")
