"""Streaming from every vimc capture node, the setup errors, and a bind/unbind and
module cycle observed through uevents, all in one boot per kernel flavour.

The checks read the one run the module fixture makes; the kernel log of that run
must hold no BUG, WARNING, KASAN or lockdep report (a simple screen until the
harness's kernel-log parser judges VM tests).
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.host.commands.stream import kernel_reports
from harness.host.targets.qemu import GuestRun
from harness.pure.profiles.vimc import VIMC

# Few frames: RGB/YUV Capture runs at ~5 fps under TCG, ~1.5 fps with KASAN.
FRAMES = 6
SIZES = [list(VIMC.default_size), *map(list, VIMC.other_sizes)]
FOURCC = {"Raw Capture 0": "GRBG", "Raw Capture 1": "BA81", "RGB/YUV Capture": "RGB3"}
BREAK_SENSOR = ["media-ctl", "-d", "{media}", "-V", '"Sensor A":0[fmt:SBGGR8_1X8/640x480]']

JOB: list[dict[str, Any]] = [
    # 0: every node, every I/O method it offers, two sizes
    {"task": "stream", "args": {"frames": FRAMES, "sizes": SIZES}},
    # 1: select() instead of poll()
    {"task": "stream", "args": {"frames": FRAMES, "nodes": ["Raw Capture 1"],
                                "memory": ["mmap"], "wait": "select"}},
    # 2: read() where the queue has no VB2_READ
    {"task": "stream", "args": {"frames": 2, "nodes": ["Raw Capture 0"], "memory": ["read"]}},
    # 3-6: a wrong format on a link, found by the check and explained at STREAMON
    {"task": "configure-pipeline", "args": {"capture": "Raw Capture 0"}},
    {"task": "node-command", "args": {"argv": BREAK_SENSOR}},
    {"task": "check-pipeline", "args": {"capture": "Raw Capture 0"}},
    {"task": "stream", "args": {"frames": 2, "nodes": ["Raw Capture 0"], "memory": ["mmap"],
                                "setup": False}},
    # 7: a node that is not a capture node
    {"task": "configure-pipeline", "args": {"capture": "Scaler"}},
    # 8-9: unbind, bind, rmmod; then the driver is not loaded
    {"task": "unplug-cycle", "args": {"steps": ["unbind", "bind", "rmmod"]}},
    {"task": "configure-pipeline", "args": {"capture": "Raw Capture 0", "load": False}},
    # 10-11: modprobe again, and the driver streams as before
    {"task": "unplug-cycle", "args": {"steps": ["modprobe"], "load": False}},
    {"task": "stream", "args": {"frames": FRAMES, "memory": ["mmap"]}},
    # 12-13: read() where a driver offers it: vivid (Debian's kernel has it, the debug
    # flavour does not), streamed as it comes up
    {"task": "command", "args": {"argv": ["modprobe", "vivid", "n_devs=1", "node_types=0x1"]}},
    {"task": "stream-node", "args": {"node": "vivid-000-vid-cap", "memory": ["read", "mmap"],
                                     "frames": FRAMES, "wait": "select"}},
]




@pytest.fixture
def guest(boot_once) -> GuestRun:
    run = boot_once("stream", JOB)
    assert run.outcome == "done", f"{run.message}\n{run.console_tail()}"
    return run


def result(run: GuestRun, index: int) -> dict[str, Any]:
    (event,) = [e for e in run.results() if e["index"] == index]
    return event


def data(run: GuestRun, index: int) -> dict[str, Any]:
    event = result(run, index)
    assert event["event"] == "result", event.get("traceback", event)
    return event["data"]


def error(run: GuestRun, index: int) -> str:
    event = result(run, index)
    assert event["event"] == "error", event
    return event["message"]


def test_every_capture_node_streams_with_every_memory_type_at_two_sizes(guest: GuestRun) -> None:
    runs = data(guest, 0)["results"]
    seen = {(r["node"], r["memory"], tuple(r["size"])) for r in runs}
    assert seen == {(node, memory, tuple(size)) for node in VIMC.capture_entities
                    for memory in ("mmap", "userptr", "dmabuf") for size in SIZES}
    for r in runs:
        where = f"{r['node']} {r['memory']} {r['size']}"
        assert r["ok"], f"{where}: {r['errors']}"
        assert r["frames"] == FRAMES, where
        assert r["format"] == f"{FOURCC[r['node']]} {r['size'][0]}x{r['size'][1]}", where
        # vimc counts only frames it delivers, so a gap would be a real loss
        assert r["dropped_count"] == 0 and r["blank_frames"] == 0, where
        assert r["last_sequence"] - r["first_sequence"] == FRAMES - 1, where
        assert r["fps"] and r["fps"] > 0.5, where
        assert (r["exporter"] is not None) == (r["memory"] == "dmabuf"), where
        assert r["exporter"] != r["devnode"], where


def test_select_works_like_poll(guest: GuestRun) -> None:
    (r,) = data(guest, 1)["results"]
    assert (r["wait"], r["ok"], r["frames"]) == ("select", True, FRAMES), r["errors"]


def test_read_io_is_refused_where_the_queue_does_not_offer_it(guest: GuestRun) -> None:
    (r,) = data(guest, 2)["results"]
    assert not r["ok"]
    assert r["errors"] == ["Raw Capture 0 does not offer read I/O (it offers mmap, userptr, "
                           "dmabuf)"]


def test_a_wrong_format_on_a_link_is_one_line_naming_the_link(guest: GuestRun) -> None:
    assert data(guest, 3)["format"] == "GRBG 640x480"
    assert data(guest, 4)["status"] == 0
    link = ('link "Sensor A":0 -> "Raw Capture 0":0: source carries SBGGR8_1X8/640x480, '
            "Raw Capture 0 is set to GRBG 640x480 (needs BA81 640x480)")
    assert error(guest, 5) == f"LinkMismatch: Raw Capture 0: {link}"
    (r,) = data(guest, 6)["results"]
    assert r["stop_errno"] == "EPIPE"
    assert len(r["errors"]) == 1 and "VIDIOC_STREAMON: Broken pipe" in r["errors"][0]
    assert r["errors"][0].endswith(link)


def test_a_subdev_is_not_a_capture_node(guest: GuestRun) -> None:
    assert error(guest, 7).startswith(
        "NotACaptureNode: 'Scaler' is not a capture node: it is a Video Scaler (/dev/v4l-subdev")


def test_unbind_bind_and_rmmod_are_seen_through_uevents(guest: GuestRun) -> None:
    cycle = data(guest, 8)
    unbind, bind, rmmod = cycle["observations"]
    for obs in (unbind, bind, rmmod):
        assert obs["ok"], obs
        assert obs["seconds"] is not None and obs["seconds"] < 10, obs
    nodes = set(unbind["gone"])
    assert {"/dev/media0", "/dev/video0", "/dev/v4l-subdev0"} <= nodes
    assert len(nodes) == 12  # media, 3 video and 8 subdev nodes of vimc 6.1
    assert set(bind["came"]) == nodes
    assert set(rmmod["gone"]) == nodes
    assert "remove module/vimc" in rmmod["expected"]
    assert [e["action"] for e in unbind["events"]][-1] == "unbind"


def test_without_the_driver_setup_says_so(guest: GuestRun) -> None:
    assert error(guest, 9) == (
        "DriverNotLoaded: driver vimc is not loaded: no device is bound to "
        "/sys/bus/platform/drivers/vimc (load it with modprobe vimc)")


def test_after_modprobe_every_node_streams_again(guest: GuestRun) -> None:
    (load,) = data(guest, 10)["observations"]
    assert load["ok"] and len(load["came"]) == 12, load
    runs = data(guest, 11)["results"]
    assert [r["node"] for r in runs] == list(VIMC.capture_entities)
    assert all(r["ok"] for r in runs), [r["errors"] for r in runs]


def test_read_io_where_the_driver_offers_it(guest: GuestRun) -> None:
    if data(guest, 12)["status"] != 0:
        pytest.skip("this kernel has no vivid module")
    streamed = data(guest, 13)
    assert "read" in streamed["offered"]
    read, mmap = streamed["results"]
    for r in (read, mmap):
        assert r["ok"] and r["frames"] == FRAMES, r["errors"]
    # read() hands over bytes only: no sequence numbers or timestamps to check
    assert read["memory"] == "read" and read["first_sequence"] is None and read["fps"] is None
    assert read["wall_fps"] > 0 and read["format"] == mmap["format"]


def test_no_kernel_report_while_streaming(guest: GuestRun) -> None:
    assert kernel_reports(guest.console()) == []
    assert "vimc link validate" in guest.console()  # the screen saw the streaming part


def test_the_run_left_its_console(guest: GuestRun) -> None:
    assert guest.console_path.exists() and "Linux version" in guest.console()
