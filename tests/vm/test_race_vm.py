"""Race mode on a real kernel: workers and disruptor really run, and what the
kernel reports during the race is the race's finding.

On Linux 6.1 the race usually ends early at a report (subdev_open or
media_device_get_info dereferencing what vimc's unbind cleared); either way
the counts must show real work and the report must be the race's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.host.race_series import run_series
from harness.host.report.results import race_series_doc
from harness.host.report.schema import validate
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


def test_a_repeated_race_records_each_seeds_exposure(kernel, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`run --race --repeat 2`: two seeds, two boots, each race's exposure censored where a
    report stopped it, and the rates counted over both."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # keep the user's history
    series = run_series(QemuTarget(kernel), kernel, "vimc", DURATION, first_seed=7, repeat=2,
                        workers=3, mode="unbind", out=tmp_path)
    doc = json.loads(json.dumps(race_series_doc(series, kernel, "vimc", 0.0), default=str))
    validate(doc, "race")
    assert [r["seed"] for r in doc["races"]] == [7, 8]
    cycles = 0
    for i, entry in enumerate(doc["races"], start=1):
        own = json.loads((tmp_path / f"race-{i:02d}" / "results.json").read_text())
        validate(own, "race")
        assert own["outcome"] == "done", own.get("stats")
        stats, e = own["stats"], own["exposure"]
        assert e == entry["exposure"] and e["seed"] == stats["seed"] == entry["seed"]
        assert len(stats["cycle_starts"]) == stats["cycles"]
        assert 1 <= e["cycles"] <= stats["cycles"] and 0 < e["seconds"] <= stats["duration"] + 1
        assert e["iterations"] > 0
        assert e["censored"] == stats["stopped_early"]
        if e["censored"]:
            # the race stopped at its first report: the counts end at that report's cycle
            first = min(e["first_hits"], key=lambda h: h["seconds"])
            assert first["cycle"] == e["cycles"] and first["seconds"] == e["seconds"]
            assert {h["signature"] for h in e["first_hits"]} == {
                f["signature"] for f in own["findings"]}
        else:
            assert e["cycles"] == stats["cycles"] and e["first_hits"] == []
        cycles += e["cycles"]
    rates = doc["rates"]
    assert rates["exposure"]["races"] == 2 and rates["exposure"]["cycles"] == cycles
    for row in rates["signatures"]:
        assert 1 <= row["hits"] <= 2 and row["low"] < row["rate"] < row["high"]
    hit = sum(1 for r in doc["races"] if r["signatures"])
    assert rates["any_report"]["hits"] == hit
