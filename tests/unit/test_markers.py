"""The kernel-log marks: what the agent writes is what the host reads."""

from __future__ import annotations

from harness.pure import markers
from harness.pure.race.exposure import BEGIN_MARKER
from harness.pure.scenarios.attribution import markers as read_markers


def test_scenario_marks_are_read_back_with_their_times() -> None:
    console = "".join(
        f"[   {n}.000000] " + markers.line(markers.scenario("video.raw_capture_0-opened--unbind",
                                                            step))
        for n, step in enumerate(markers.SCENARIO_STEPS, start=1))
    got = [(m.scenario, m.step, m.time) for m in read_markers(console)]
    assert got == [("video.raw_capture_0-opened--unbind", step, float(n))
                   for n, step in enumerate(markers.SCENARIO_STEPS, start=1)]


def test_the_race_begin_mark_is_what_exposure_looks_for() -> None:
    written = markers.line(markers.race_begin(seed=7, workers=4, mode="mixed"))
    assert written.startswith(BEGIN_MARKER) and written.endswith("\n")
    assert not markers.SCENARIO_RE.search(written)
