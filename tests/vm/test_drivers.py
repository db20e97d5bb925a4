"""vivid, vim2m and vicodec on Debian's 6.1 kernel, one boot each: the
profile's nodes stream real frames, then one scenario unbinds the driver
under a held node and every contract holds. The matrices themselves run with
`v4l2-unplug run --driver X`; this keeps each profile's shape working in
`make test`.

Only the debian flavour: the debug kernels lack CONFIG_FB, which vivid needs
up to 6.12, and their build trees are reached through the tree builder's
bench (see README, "Drivers beyond vimc").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.host.commands.stream import kernel_reports
from harness.host.targets.emulated import provision_kernel, target_for
from harness.host.targets.qemu import GuestRun
from harness.pure.profiles import get_profile
from harness.pure.scenarios.matrix import build_matrix, select

FRAMES = 4
# One scenario each, at a stage only this driver's shape has.
SCENARIO = {
    # test-media's: every node held, the capture node streaming, then unbind
    "vivid": "all_nodes_open_streaming--unbind",
    "vim2m": "video.vim2m_source-both_streaming--unbind",
    "vicodec": "video.stateful_encoder_source-draining--unbind",
}


@pytest.fixture(params=sorted(SCENARIO))
def driver_run(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, GuestRun]:
    driver = request.param
    profile = get_profile(driver)
    (scenario,) = select(build_matrix(profile), [SCENARIO[driver]])
    tasks: list[dict[str, Any]] = [
        {"task": "stream", "args": {"driver": driver, "frames": FRAMES, "memory": ["mmap"]}},
        {"task": "scenarios", "args": {"driver": driver, "scenarios": [scenario.to_dict()]}},
    ]
    target = target_for(provision_kernel("debian", profile), profile)
    run = target.run(tasks, tmp_path)
    assert run.outcome == "done", f"{run.message}\n{run.console_tail()}"
    return driver, run


def test_driver_streams_then_survives_an_unbind(driver_run: tuple[str, GuestRun]) -> None:
    driver, run = driver_run
    by_index = {e["index"]: e for e in run.results()}
    assert by_index[0]["event"] == "result", by_index[0]
    streamed = by_index[0]["data"]["results"]
    assert {r["node"] for r in streamed} == set(get_profile(driver).streamed_entities)
    for r in streamed:
        assert r["ok"] and r["frames"] == FRAMES, r
    assert by_index[1]["event"] == "result", by_index[1]
    (record,) = [e["record"] for e in run.events if e["event"] == "scenario-result"]
    assert record["status"] == "done", record
    broken = [c for c in record["contracts"] if not c["passed"]]
    assert not broken, broken
    assert kernel_reports(run.console()) == []
