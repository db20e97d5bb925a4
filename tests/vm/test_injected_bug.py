"""The harness catches a real lifetime bug.

vm/patches/vimc-capture-free-at-unregister.patch frees vimc's capture device
(which embeds the video_device and its vb2 queue) when the driver unregisters
instead of when the last reference drops. On the debug kernel the scenario
that holds the capture node across unbind must fail with the KASAN report,
and the report must name the freed object's user and who freed it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.host.runner import run_scenarios
from harness.host.targets.emulated import provision
from harness.pure.kmsg.classify import BugClass
from harness.pure.profiles.vimc import VIMC
from harness.pure.scenarios.matrix import build_matrix, select

PATCH = Path(__file__).resolve().parents[2] / "vm/patches/vimc-capture-free-at-unregister.patch"


def test_injected_use_after_free_fails_its_scenario(flavour: str, tmp_path: Path) -> None:
    if flavour != "debug":
        pytest.skip("needs KASAN: the debug flavour")
    target, _ = provision("debug", VIMC, patches=[PATCH])
    chosen = select(build_matrix(VIMC), ["video.raw_capture_0-opened--unbind"])
    result = run_scenarios(target, VIMC.name, chosen, tmp_path)
    (outcome,) = result.outcomes
    assert outcome.verdict == "fail"
    kasan = [f for f in outcome.findings if f.bug_class is BugClass.KASAN]
    assert kasan, outcome.reason
    report = kasan[0]
    assert report.title == "KASAN: use-after-free Read in media_gobj_destroy"
    assert report.signature == "KASAN:use-after-free:media_gobj_destroy"
    # the report carries who freed it: the injected kfree in the unregister path
    assert "vimc_capture_unregister" in report.text
    assert "Freed by task" in report.text
    # and the reboot that followed let later scenarios run on a clean kernel
    assert outcome.record and outcome.record.taint_after != outcome.record.taint_before
