"""The scenario model, the matrix, attribution and reports: pure parts, no VM."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.pure.errors import HarnessError
from harness.pure.profiles.vimc import VIMC
from harness.pure.scenarios.attribution import BOOT, attribute, markers
from harness.pure.scenarios.contracts import CONTRACTS
from harness.pure.scenarios.matrix import build_matrix, select
from harness.pure.scenarios.model import After, Disruption, NodeKind, Scenario, Stage, slug
from harness.target.scenarios.executor import unfit_for_more

CONSOLES = Path(__file__).resolve().parents[1] / "data" / "consoles"


def test_matrix_covers_every_stage_kind_and_disruption() -> None:
    matrix = build_matrix(VIMC)
    names = [s.name for s in matrix]
    assert len(names) == len(set(names))
    held = {(h.kind, h.stage) for s in matrix for h in s.holds}
    # the stages the issue names, written out rather than taken from the model
    wanted = {
        NodeKind.VIDEO: ("opened", "format_set", "buffers_requested", "buffers_mmapped",
                         "streaming", "blocked_dqbuf", "blocked_poll", "blocked_select"),
        NodeKind.MEDIA: ("opened", "in_g_topology", "in_setup_link"),
        NodeKind.SUBDEV: ("opened", "in_g_fmt", "in_s_fmt"),
    }
    for kind, stages in wanted.items():
        for stage in stages:
            assert (kind, Stage(stage)) in held, (kind, stage)
    assert {s.disruption for s in matrix} == set(Disruption)
    # vimc has no read() I/O, so no scenario may wait in read()
    assert not any(h.stage is Stage.BLOCKED_READ for s in matrix for h in s.holds)


def test_test_media_floor_is_in_the_matrix() -> None:
    names = {s.name for s in build_matrix(VIMC)}
    # v4l-utils contrib/test/test-media for vimc: unbind+bind; unbind with every
    # node open and Raw Capture 0 streaming; then rmmod of the unbound driver
    assert {"idle--unbind_bind", "all_nodes_open_streaming--unbind",
            "all_nodes_open_streaming--unbind_rmmod"} <= names


def test_after_actions_follow_what_was_held() -> None:
    by_name = {s.name: s for s in build_matrix(VIMC)}
    mmapped = by_name["video.raw_capture_0-buffers_mmapped--unbind"]
    assert After.TOUCH_MMAP in mmapped.after and After.MUNMAP in mmapped.after
    opened = by_name["video.raw_capture_0-opened--unbind"]
    assert After.TOUCH_MMAP not in opened.after
    rebound = by_name["media-opened--unbind_bind"]
    assert rebound.after[-2:] == (After.REOPEN, After.RESTREAM)


def test_scenario_round_trips_through_json() -> None:
    for s in build_matrix(VIMC):
        assert Scenario.from_dict(s.to_dict()) == s
        assert Scenario.from_dict(s.to_dict()).name == s.name


def test_unknown_scenario_is_named_with_similar_ones() -> None:
    with pytest.raises(HarnessError) as err:
        select(build_matrix(VIMC), ["video.raw_capture_0-blocked_dqbuf--unplug"])
    assert "unknown scenario 'video.raw_capture_0-blocked_dqbuf--unplug'" in str(err.value)
    assert "video.raw_capture_0-blocked_dqbuf--unbind" in str(err.value)


def test_slug() -> None:
    assert slug("RGB/YUV Capture") == "rgb_yuv_capture"
    assert slug("Raw Capture 0") == "raw_capture_0"


def test_every_contract_carries_its_check_and_cites_its_source() -> None:
    """Every contract is one row: its check, and the expectation and source that
    travel into results.json with each result."""
    from harness.pure.scenarios.contracts import ContractResult, Phase

    for c in CONTRACTS.values():
        assert c.source and c.expectation
        assert (c.check is None) != (c.node_check is None), c.id  # exactly one check
        # held-node checks are judged fd by fd, in the order of their after-action
        assert (c.phase is Phase.HELD_NODES) == (c.node_check is not None) == bool(c.after)
    out = ContractResult("close-succeeds", True, "close: ok").to_dict()
    assert out["source"] == CONTRACTS["close-succeeds"].source


def test_rmmod_scenarios_remove_the_module_once_closed() -> None:
    by_name = {s.name: s for s in build_matrix(VIMC)}
    for name in ("idle--rmmod", "idle--unbind_rmmod", "all_nodes_open_streaming--unbind_rmmod",
                 "video.raw_capture_0-streaming--rmmod"):
        after = by_name[name].after
        assert after[-1] is After.RMMOD, name
        assert after.index(After.CLOSE) < after.index(After.RMMOD)
    assert After.RMMOD not in by_name["video.raw_capture_0-streaming--unbind"].after


def test_a_blocked_stage_that_does_not_block_is_not_reached() -> None:
    from harness.target.scenarios.nodes import KernelCall, StageNotReached

    with pytest.raises(StageNotReached, match="returned ok at once"):
        KernelCall("VIDIOC_DQBUF", lambda: None).start()
    blocked = KernelCall("VIDIOC_DQBUF", lambda: time.sleep(0.5))
    blocked.start()
    assert blocked.join(2.0)


def test_reports_are_attributed_to_the_scenario_that_was_running() -> None:
    console = (CONSOLES / "injected_uaf_debug.console.log").read_text()
    marks = markers(console)
    assert [(m.scenario, m.step) for m in marks] == [
        ("video.raw_capture_0-opened--unbind", "begin"),
        ("video.raw_capture_0-opened--unbind", "disrupt"),
        ("video.raw_capture_0-opened--unbind", "end"),
    ]
    assert marks[1].time == pytest.approx(19.392360)
    owners = attribute(console)
    assert owners
    owner, finding = owners[0]
    assert owner == "video.raw_capture_0-opened--unbind"
    assert finding.title == "KASAN: use-after-free Read in media_gobj_destroy"
    assert marks[1].time is not None and marks[2].time is not None
    assert finding.timestamp is not None
    assert marks[1].time <= finding.timestamp <= marks[2].time


def test_reports_before_any_scenario_belong_to_the_boot() -> None:
    console = (CONSOLES / "injected_uaf_debug.console.log").read_text()
    head = console.split("v4l2-unplug: scenario")[0]
    report = console[console.index("[   19.443350] BUG: KASAN"):]
    assert all(owner == BOOT for owner, _ in attribute(head + report))


def test_a_new_taint_or_a_stuck_task_means_reboot() -> None:
    from harness.pure.scenarios.record import ScenarioRecord

    base = {"name": "s", "taint_before": 1 << 12, "taint_after": 1 << 12, "status": "done"}

    def unfit(**changes: object) -> str:
        return unfit_for_more(ScenarioRecord.from_dict({**base, **changes}))

    assert unfit() == ""
    assert "taint" in unfit(taint_after=(1 << 12) | (1 << 5))
    # O (out-of-tree) and E (unsigned) taint from loading vimc are information only
    assert unfit(taint_after=(1 << 12) | (1 << 13)) == ""
    assert unfit(status="hang") == "scenario hang"
    assert unfit(stuck_process=True) == "a task is stuck in the kernel"
    # a driver the scenario left unable to bind or load again
    gone = {"contract": "driver-recovers", "passed": False,
            "detail": "driver did not come back: cannot bind vimc.0 again: ENODEV"}
    assert unfit(contracts=[gone]).startswith("driver unusable: driver")
    assert unfit(contracts=[{**gone, "passed": True}]) == ""
    # a failed contract that does not leave the driver unusable is the scenario's alone
    assert unfit(contracts=[{**gone, "contract": "close-succeeds"}]) == ""


def test_vimc_matrix_names_are_unchanged() -> None:
    recorded = (Path(__file__).resolve().parents[1] / "data" / "vimc-matrix.txt").read_text()
    assert [s.name for s in build_matrix(VIMC)] == recorded.split()


def test_rcar_vin_matrix_unbinds_each_target_beside_each_capture_node() -> None:
    from harness.pure.profiles import get_profile

    profile = get_profile("rcar-vin")
    matrix = build_matrix(profile)
    names = {s.name for s in matrix}
    assert len(names) == len(matrix)
    for target in ("vin0", "vin4", "csi40", "csi20"):
        assert f"idle--unbind_bind.{target}" in names
        assert f"all_nodes_open_streaming--unbind.{target}" in names
        for capture in ("vin0_output", "vin4_output"):
            for stage in ("opened", "streaming", "blocked_dqbuf"):
                assert f"video.{capture}-{stage}--unbind.{target}" in names
    # the driver-wide scenarios are there as for vimc
    assert {"video.vin0_output-blocked_dqbuf--unbind", "subdev.unplug_csi40-in_s_fmt--rmmod",
            "all_nodes_open_streaming--unbind_rmmod"} <= names
    # frames flow in emulation, so nothing waits in read()
    assert not any(h.stage is Stage.BLOCKED_READ for s in matrix for h in s.holds)
    for s in matrix:
        assert Scenario.from_dict(s.to_dict()) == s


def test_unknown_unbind_target_is_one_clear_error() -> None:
    from harness.pure.profiles import get_profile

    with pytest.raises(HarnessError, match="no unbind target 'csi99'"):
        get_profile("rcar-vin").unbind_target("csi99")


def test_module_names_as_the_kernel_spells_them() -> None:
    from harness.target.scenarios.disrupt import kernel_module_name

    assert kernel_module_name("rcar-vin") == "rcar_vin"
    assert kernel_module_name("vimc") == "vimc"
