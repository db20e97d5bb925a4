"""The harness's `media-ctl -p` rendering against the real media-ctl, on vimc.

Both read the same media device in the same boot, one right after the other,
so nothing is arbitrary between them and nothing is normalised: the text must
be equal byte for byte. It is compared twice: as the driver comes up, and after
the harness configured the RGB/YUV pipeline with a scaled size and media-ctl
set a crop that is not the whole frame, so that changed formats and crop
offsets show.
"""

from __future__ import annotations

import difflib
from typing import Any

import pytest

from harness.host.kernels.kernel import Kernel
from harness.host.targets.qemu import GuestRun
from harness.target.device.graph import MediaGraph

MEDIA_CTL = ["media-ctl", "-p", "-d", "{media}"]
CROP = ["media-ctl", "-d", "{media}", "-V", '"Scaler":0[crop:(32,16)/320x240]']

JOB: list[dict[str, Any]] = [
    {"task": "media-graph"},
    {"task": "node-command", "args": {"argv": MEDIA_CTL}},
    {"task": "configure-pipeline", "args": {"capture": "RGB/YUV Capture", "size": [160, 120]}},
    {"task": "node-command", "args": {"argv": CROP}},
    {"task": "media-graph"},
    {"task": "node-command", "args": {"argv": MEDIA_CTL}},
]



@pytest.fixture
def guest(kernel: Kernel, request: pytest.FixtureRequest, boot_once) -> GuestRun:
    # What is compared here is user-space API, the same on both flavours; the debug
    # boot costs a minute more, so it runs only when it is the flavour asked for.
    if kernel.flavour == "debug" and "debian" in (request.config.getoption("--kernel")
                                                  or ("debian",)):
        pytest.skip("checked on the debian flavour (--kernel debug alone runs it here)")
    run = boot_once("media-ctl", JOB)
    assert run.outcome == "done", f"{run.message}\n{run.console_tail()}"
    for event in run.results():
        assert event["event"] == "result", event
    return run


def rendered_and_real(run: GuestRun, graph_index: int) -> tuple[str, str]:
    results = {e["index"]: e["data"] for e in run.results()}
    (graph,) = results[graph_index]["graphs"]
    real = results[graph_index + 1]
    assert real["status"] == 0, real["stderr"]
    return MediaGraph.from_dict(graph).render(), real["stdout"]


def same(ours: str, theirs: str) -> None:
    diff = "".join(difflib.unified_diff(theirs.splitlines(True), ours.splitlines(True),
                                        "media-ctl -p", "MediaGraph.render()"))
    assert ours == theirs, diff


def test_render_equals_media_ctl_as_the_driver_comes_up(guest: GuestRun) -> None:
    ours, theirs = rendered_and_real(guest, 0)
    same(ours, theirs)
    # not vacuous: legacy types, pad formats and the scaler's crop rectangles are there
    assert "type V4L2 subdev subtype Sensor flags 0" in ours
    assert "\t\t[fmt:RGB888_1X24/640x480 field:none colorspace:srgb]\n" in ours
    assert "\t\t crop:(0,0)/640x480]\n" in ours


def test_render_equals_media_ctl_after_configuring_and_cropping(guest: GuestRun) -> None:
    ours, theirs = rendered_and_real(guest, 4)
    same(ours, theirs)
    assert "\t\t[fmt:SGRBG8_1X8/640x480 field:none colorspace:srgb]\n" in ours
    assert "\t\t crop:(32,16)/320x240]\n" in ours
    assert "\t\t[fmt:RGB888_1X24/160x120 field:none colorspace:srgb]\n" in ours
    assert '\t\t<- "Debayer A":1 [ENABLED]\n' in ours
