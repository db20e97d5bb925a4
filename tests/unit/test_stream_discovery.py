"""How an unplug action is observed: expected uevents, deadlines, a call that fails or
never returns, and what /dev says afterwards; with scripted uevents instead of netlink."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.target.device import discovery
from harness.target.device.discovery import (
    Observation,
    device_event,
    node_added,
    node_removed,
    observe,
)

WATCH = ("platform", "media", "video4linux", "module")


class FakeEvent:
    def __init__(self, action: str, subsystem: str, sys_name: str, **props: str):
        self.action, self.subsystem, self.sys_name = action, subsystem, sys_name
        self.props = props

    def get(self, key: str, default: Any = None) -> Any:
        return self.props.get(key, default)


class FakeMonitor:
    """Hands out the scripted events once the action has started, one per poll."""

    script: list[FakeEvent] = []
    started = threading.Event()

    def __init__(self) -> None:
        self.events = list(self.script)

    @classmethod
    def from_netlink(cls, context: object, source: str = "udev") -> FakeMonitor:
        assert source == "kernel"  # no udevd in the guest: kernel uevents only
        return cls()

    def set_receive_buffer_size(self, size: int) -> None:
        pass

    def start(self) -> None:
        pass

    def poll(self, timeout: float | None = None) -> FakeEvent | None:
        if self.events and self.started.wait(timeout):
            return self.events.pop(0)
        time.sleep(timeout or 0)
        return None


@pytest.fixture
def uevents(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FakeEvent]]:
    script: list[FakeEvent] = []
    FakeMonitor.script = script
    FakeMonitor.started = threading.Event()
    monkeypatch.setattr(discovery.pyudev, "Monitor", FakeMonitor)
    yield script


def removal(node: str) -> FakeEvent:
    sub = "media" if "media" in node else "video4linux"
    return FakeEvent("remove", sub, node.removeprefix("/dev/"), DEVNAME=node.removeprefix("/dev/"))


def action() -> None:
    FakeMonitor.started.set()


def test_an_unbind_that_removes_every_node(uevents: list[FakeEvent]) -> None:
    nodes = ["/dev/video0", "/dev/media0", "/dev/v4l-subdev0"]
    uevents += [removal(n) for n in nodes]
    uevents += [FakeEvent("change", "block", "sda"), FakeEvent("unbind", "platform", "vimc.0")]
    expect = [node_removed(n) for n in nodes] + [device_event("unbind", "platform", "vimc.0")]
    obs = observe("unbind", "vimc.0", action, expect, WATCH, timeout=5)
    assert obs.ok and obs.error == "" and obs.missing == []
    assert obs.gone == nodes and obs.came == []
    assert [e.action for e in obs.events] == ["remove"] * 3 + ["unbind"]  # block not watched
    assert obs.seconds == obs.events[-1].t
    assert obs.call_result == "ok" and obs.call_seconds is not None
    assert obs.summary().startswith("unbind vimc.0: ") and "3 nodes went, 0 came" in obs.summary()


def test_a_node_that_never_goes_is_missing(uevents: list[FakeEvent]) -> None:
    uevents += [removal("/dev/video0")]
    expect = [node_removed("/dev/video0"), node_removed("/dev/video1")]
    obs = observe("unbind", "vimc.0", action, expect, WATCH, timeout=0.5)
    assert not obs.ok and obs.seconds is None
    assert obs.missing == ["remove /dev/video1"]
    assert "never seen: remove /dev/video1" in obs.summary()


def test_a_failing_call_is_the_error(uevents: list[FakeEvent]) -> None:
    def refuse() -> None:
        action()
        raise OSError(19, "No such device")

    obs = observe("unbind", "vimc.0", refuse, [], WATCH, timeout=1)
    assert not obs.ok
    assert obs.error == "unbind vimc.0 failed: [Errno 19] No such device"


def test_a_call_that_never_returns_is_reported_not_waited_for(uevents: list[FakeEvent]) -> None:
    release = threading.Event()

    def hang() -> None:
        action()
        release.wait(10)

    start = time.monotonic()
    try:
        obs = observe("rmmod", "vimc", hang, [], WATCH, timeout=0.5)
    finally:
        release.set()
    assert time.monotonic() - start < 3
    assert not obs.ok and obs.call_seconds is None
    assert obs.error == "rmmod vimc did not return within 0.5 s"
    assert obs.call_result == "still running after 0.5 s"


def test_settle_compares_with_dev(uevents: list[FakeEvent]) -> None:
    uevents += [FakeEvent("add", "video4linux", "video0", DEVNAME="video0"),
                FakeEvent("bind", "platform", "vimc.0", DRIVER="vimc")]

    def settle(obs: Observation) -> None:
        obs.dev_mismatch.append("/dev/video0 not in /dev")

    obs = observe("bind", "vimc.0", action,
                  [device_event("bind", "platform", "vimc.0"), node_added("/dev/video0")],
                  WATCH, timeout=5, settle=settle)
    assert obs.came == ["/dev/video0"] and obs.missing == []
    assert not obs.ok and obs.dev_mismatch == ["/dev/video0 not in /dev"]


def test_expectations_match_what_they_say() -> None:
    def ev(action: str, subsystem: str, name: str, **kw: str) -> discovery.UEvent:
        return discovery.UEvent(0.0, action, subsystem, name, kw.get("devnode", ""), "",
                                kw.get("driver", ""))

    bind = device_event("bind", "platform", driver="vimc")
    assert bind.label == "bind platform/* (vimc)"
    assert bind.match(ev("bind", "platform", "vimc.0", driver="vimc"))
    assert not bind.match(ev("bind", "platform", "vivid.0", driver="vivid"))
    gone = node_removed("/dev/video1")
    assert gone.match(ev("remove", "video4linux", "video1", devnode="/dev/video1"))
    assert not gone.match(ev("add", "video4linux", "video1", devnode="/dev/video1"))
    assert discovery._devnode("video1") == discovery._devnode("/dev/video1") == "/dev/video1"
