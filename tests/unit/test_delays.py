"""--amplify's delay plan: what the delay module is loaded with, what it counted,
and bad input as one clear line (the delays themselves are a VM test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.host.kernels.emulation import DELAY_MODULE, config_value, with_delays
from harness.host.kernels.kernel import Kernel
from harness.pure.delays import DelayPlan, DelayPoint, parse_range, parse_stats
from harness.pure.errors import HarnessError, KernelError
from harness.pure.profiles import get_profile

ROOT = Path(__file__).resolve().parents[2]


def test_the_module_gets_the_plan_as_its_parameters() -> None:
    plan = DelayPlan(("media_device_get_info", "subdev_open+0x1c"), 500, 5000, 250, 7)
    assert plan.module_args() == [
        "symbols=media_device_get_info,subdev_open+0x1c", "delay_min_us=500",
        "delay_max_us=5000", "permille=250", "seed=7"]
    assert DelayPlan.from_dict(plan.to_dict()) == plan


def test_the_module_reads_every_parameter_the_plan_sends() -> None:
    source = (ROOT / DELAY_MODULE.subdir / "unplug-delay.c").read_text()
    for arg in DelayPlan(("f",)).module_args():
        name = arg.split("=", 1)[0]
        assert f"module_param({name}," in source or f"module_param_array({name}," in source


def test_stats_are_read_per_point() -> None:
    text = "media_device_get_info+0 120 37 301234 5\nsubdev_open+28 4 0 0 0\n"
    assert parse_stats(text) == [
        {"symbol": "media_device_get_info", "calls": 120, "delays": 37, "delayed_us": 301234,
         "busy": 5},
        {"symbol": "subdev_open+28", "calls": 4, "delays": 0, "delayed_us": 0, "busy": 0}]


@pytest.mark.parametrize("plan, words", [
    (lambda: DelayPlan(()), "no function to delay"),
    (lambda: DelayPlan(("a b",)), "not a kernel symbol"),
    (lambda: DelayPlan(("f",), 10, 5), "MIN <= MAX"),
    (lambda: DelayPlan(("f",), 0, 60_000), "<= 50000"),
    (lambda: DelayPlan(("f",), permille=1001), "0 to 1000"),
    (lambda: DelayPlan(tuple(f"f{i}" for i in range(9))), "at most 8"),
    (lambda: parse_range("20ms"), "MIN-MAX"),
])
def test_a_bad_plan_says_what_to_give(plan, words: str) -> None:
    with pytest.raises(HarnessError, match=words):
        plan()


def test_vimc_names_its_race_windows_as_data() -> None:
    points = get_profile("vimc").delays
    assert [p.symbol for p in points][:2] == ["media_device_get_info", "subdev_open"]
    assert all(isinstance(p, DelayPoint) and p.why for p in points)


def _kernel(tmp_path: Path, config: str | None) -> Kernel:
    kbuild = tmp_path / "build"
    kbuild.mkdir()
    if config is not None:
        (kbuild / ".config").write_text(config)
    return Kernel("debug", "6.1.0", tmp_path / "bzImage", tmp_path, kbuild=kbuild)


def test_a_kernel_without_kprobes_is_refused_before_any_build(tmp_path: Path) -> None:
    kernel = _kernel(tmp_path, "CONFIG_MODULES=y\n# CONFIG_KPROBES is not set\n")
    assert config_value(kernel, "CONFIG_KPROBES") is None
    with pytest.raises(KernelError, match="without CONFIG_KPROBES"):
        with_delays(kernel)


def test_the_debug_configuration_has_kprobes() -> None:
    assert "\nCONFIG_KPROBES=y\n" in (ROOT / "vm/debug.config").read_text()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.host.cli", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, words", [
    (("run", "--amplify"), "add --race"),
    (("run", "--race", "--delay-at", "subdev_open"), "add --amplify"),
    (("run", "--race", "--amplify", "--delay-us", "5"), "MIN-MAX"),
    (("run", "--race", "--amplify", "--delay-at", "no such"), "not a kernel symbol"),
    (("run", "--race", "--amplify", "--target", "ssh://root@board"), "on a board"),
])
def test_bad_amplify_options_are_one_line_before_any_boot(args: tuple[str, ...],
                                                          words: str) -> None:
    proc = _cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    first = proc.stderr.strip().splitlines()[0]
    assert first.startswith("v4l2-unplug: error: ") and words in first, first


def test_a_kcsan_report_counts_only_in_the_profiles_code() -> None:
    from harness.pure.kmsg.report import parse_log
    from harness.pure.kmsg.scope import in_scope

    scope = get_profile("vimc").kcsan_scope
    ours = (ROOT / "tests/data/kmsg/handwritten/kcsan_data_race_x86.log").read_text()
    theirs = ours.replace("vb2_core_dqbuf / vimc_capture_process_frame",
                          "_compound_head / folio_activate_fn")
    for name in ("vimc_capture_process_frame", "vimc_streamer_thread", "vb2_core_dqbuf",
                 "vb2_dqbuf", "vb2_ioctl_dqbuf", "__video_do_ioctl", "video_usercopy",
                 "v4l2_ioctl"):
        theirs = theirs.replace(f" {name}+", " folio_activate_fn+")
    [mine], [other] = parse_log(ours), parse_log(theirs)
    assert in_scope(mine, scope)
    assert not in_scope(other, scope)
    assert in_scope(other, ())  # a profile without a scope keeps every report


def test_the_race_goes_on_after_a_data_race_but_stops_at_a_crash() -> None:
    from harness.target.scenarios.race import STOPS_RACE

    assert not STOPS_RACE.search("BUG: KCSAN: data-race in media_device_get_info / a")
    assert STOPS_RACE.search("BUG: kernel NULL pointer dereference, address: 0000000000000000")
    assert STOPS_RACE.search("BUG: KASAN: use-after-free in v4l2_release")


def test_every_debug_kernel_has_the_kprobes_the_delays_sit_on() -> None:
    from harness.host.kernels.debug import fragment_text
    from harness.host.kernels.tree import fragment_options
    from harness.pure.arch import ARCHES

    for arch in ARCHES.values():
        opts = fragment_options(fragment_text(arch))
        assert opts["CONFIG_KPROBES"] == "y" and opts["CONFIG_KASAN"] == "y", arch.name


def test_the_race_sends_the_plan_and_its_record_keeps_it_when_the_guest_could_not(
        tmp_path: Path) -> None:
    from harness.host.report import results
    from harness.host.report.schema import validate
    from harness.host.runner import run_race
    from tests.unit.test_results_schema import RecordedGuest, kernel

    class Watching(RecordedGuest):
        """The recorded guest, keeping the race task's arguments it was sent."""

        def run(self, tasks, run_dir, deadlines=None, on_event=None):  # type: ignore[override]
            self.sent = tasks[0]["args"]
            return super().run(tasks, run_dir, deadlines, on_event)

    plan = DelayPlan(("media_device_get_info",), seed=7)
    guests = (Watching(kernel(tmp_path)), Watching(kernel(tmp_path), race_error=True))
    for i, guest in enumerate(guests):
        race = run_race(guest, "vimc", 30.0, 7, 3, "unbind", tmp_path / f"race-{i}",
                        delays=plan)
        assert guest.sent["delays"] == plan.to_dict()
        # The recorded agent reports no counts: the plan stands in the record.
        assert race.stats["delays"] == plan.to_dict()
        doc = results.race_with_statistics(race, kernel(tmp_path), "vimc", 0.0)
        validate(json.loads(json.dumps(doc, default=str)), "race")
