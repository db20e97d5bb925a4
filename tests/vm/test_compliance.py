"""v4l2-compliance (and v4l2-ctl) on the same vimc nodes agree with what the harness reads.

One boot per flavour: the harness configures Raw Capture 0 and reads every node;
then v4l2-compliance runs on the three capture nodes (streaming with MMAP,
USERPTR and DMABUF on the configured one, buffers exported from Raw Capture 1)
and on the Scaler subdev, and v4l2-ctl prints the current formats.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from harness.host.kernels.kernel import Kernel
from harness.host.targets.qemu import GuestRun
from harness.target.uapi import subdev

CAPTURES = ("Raw Capture 0", "Raw Capture 1", "RGB/YUV Capture")
STREAMED = "Raw Capture 0"


def compliance(node: str, *extra: str) -> dict[str, Any]:
    return {"task": "node-command",
            "args": {"argv": ["v4l2-compliance", "-v", "-d", f"{{{node}}}", *extra],
                     "timeout": 300}}


JOB: list[dict[str, Any]] = [
    {"task": "configure-pipeline", "args": {"capture": STREAMED}},
    {"task": "node-info"},
    compliance(STREAMED, "-s10", "-e", "{Raw Capture 1}"),
    compliance("Raw Capture 1"),
    compliance("RGB/YUV Capture"),
    {"task": "node-command", "args": {"argv": ["v4l2-compliance", "-u", "{Scaler}"]}},
    {"task": "node-command", "args": {"argv": ["v4l2-ctl", "-d", f"{{{STREAMED}}}",
                                               "--get-fmt-video"]}},
    {"task": "node-command", "args": {"argv": ["v4l2-ctl", "-d", "{Sensor A}",
                                               "--get-subdev-fmt", "0"]}},
]
COMPLIANCE = {STREAMED: 2, "Raw Capture 1": 3, "RGB/YUV Capture": 4}



@pytest.fixture
def guest(kernel: Kernel, request: pytest.FixtureRequest, boot_once) -> GuestRun:
    # What is compared here is user-space API, the same on both flavours; the debug
    # boot costs a minute more, so it runs only when it is the flavour asked for.
    if kernel.flavour == "debug" and "debian" in (request.config.getoption("--kernel")
                                                  or ("debian",)):
        pytest.skip("checked on the debian flavour (--kernel debug alone runs it here)")
    run = boot_once("compliance", JOB)
    assert run.outcome == "done", f"{run.message}\n{run.console_tail()}"
    for event in run.results():
        assert event["event"] == "result", event
    return run


def output(run: GuestRun, index: int) -> str:
    (event,) = [e for e in run.results() if e["index"] == index]
    return event["data"]["stdout"]


def harness(run: GuestRun) -> dict[str, Any]:
    (event,) = [e for e in run.results() if e["index"] == 1]
    return event["data"]


def value(text: str, name: str) -> str:
    """The value of a `Name : value` line of v4l2-compliance or v4l2-ctl."""
    match = re.search(rf"^\s*{re.escape(name)}\s*: ?(.*)$", text, re.M)
    assert match, f"no {name!r} line in:\n{text[:2000]}"
    return match[1].rstrip()


def totals(text: str) -> tuple[int, int, int]:
    match = re.search(r"Total for \S+ device \S+: (\d+), Succeeded: (\d+), Failed: (\d+)", text)
    assert match, text[-2000:]
    return int(match[1]), int(match[2]), int(match[3])


@pytest.mark.parametrize("node", CAPTURES)
def test_capabilities_agree(guest: GuestRun, node: str) -> None:
    ours = harness(guest)["videos"][node]
    text = output(guest, COMPLIANCE[node])
    assert value(text, "Name") == node  # the compliance run is on the node we mean
    assert int(value(text, "Capabilities"), 16) == ours["capabilities"]
    assert int(value(text, "Device Caps"), 16) == ours["device_caps"]
    assert value(text, "Driver name") == ours["driver"]
    assert value(text, "Card type") == ours["card"]
    assert value(text, "Bus info") == ours["bus_info"]


@pytest.mark.parametrize("node", CAPTURES)
def test_enumerated_formats_agree(guest: GuestRun, node: str) -> None:
    ours = harness(guest)["videos"][node]["formats"]
    text = output(guest, COMPLIANCE[node])
    theirs = re.findall(r"info: found \d+ framesizes for pixel format [0-9a-f]{8} \((.{4})\)",
                        text)
    assert theirs == ours
    count = re.search(r"info: found (\d+) formats for buftype 1", text)
    assert count and int(count[1]) == len(ours)


@pytest.mark.parametrize("node", CAPTURES)
def test_compliance_passes_on_the_harness_configuration(guest: GuestRun, node: str) -> None:
    total, succeeded, failed = totals(output(guest, COMPLIANCE[node]))
    assert failed == 0 and succeeded == total


def test_compliance_streams_every_memory_type_the_harness_found(guest: GuestRun) -> None:
    ours = harness(guest)["videos"][STREAMED]["io_methods"]
    text = output(guest, COMPLIANCE[STREAMED])
    streamed = {m.lower() for m, _, result in
                re.findall(r"test (MMAP|USERPTR|DMABUF) \(([^)]*)\): (\w+)", text)
                if result == "OK"}
    assert streamed == set(ours) == {"mmap", "userptr", "dmabuf"}
    assert "test read/write: OK (Not Supported)" in text and "read" not in ours


def test_current_video_format_agrees(guest: GuestRun) -> None:
    ours = harness(guest)["videos"][STREAMED]["format"]
    text = output(guest, 6)
    assert value(text, "Width/Height") == f"{ours['width']}/{ours['height']}"
    assert value(text, "Pixel Format").startswith(f"'{ours['pixelformat']}'")
    assert int(value(text, "Bytes per Line")) == ours["bytesperline"]
    assert int(value(text, "Size Image")) == ours["sizeimage"]
    assert (ours["pixelformat"], ours["width"], ours["height"]) == ("GRBG", 640, 480)


def test_subdev_agrees(guest: GuestRun) -> None:
    scaler = harness(guest)["subdevs"]["Scaler"]
    text = output(guest, 5)
    assert int(value(text, "Capabilities"), 16) == scaler["capabilities"]
    assert totals(text)[2] == 0
    sensor = harness(guest)["subdevs"]["Sensor A"]["pads"]["0"]["format"]
    fmt = output(guest, 7)
    assert value(fmt, "Width/Height") == f"{sensor['width']}/{sensor['height']}"
    assert int(value(fmt, "Mediabus Code").split()[0], 16) == sensor["code"]
    assert subdev.mbus_code_name(sensor["code"]) == "SGRBG8_1X8"
