"""Where a driver's devices and nodes are, and what happens when they go and come.

Runs on the target. Discovery reads sysfs through pyudev, which needs no
udevd (the guest has none). The four actions the unplug scenarios use
(unbind, bind, module removal, module load) each listen to kernel uevents
on a netlink socket opened before the action, wait with a deadline until
everything the action should cause has been seen, and return an Observation:
what was done, which nodes went or came and when, what never showed up.
The action itself runs in a thread, because a sysfs write that never returns
is one of the bugs this exists to catch, and it must be reported, not hung on.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyudev

from harness.pure.profiles import DriverProfile

# Subsystems whose devices have the nodes user space opens.
NODE_SUBSYSTEMS = ("media", "video4linux")
# Subsystems an observation records events of, besides the driver's bus.
WATCHED_SUBSYSTEMS = (*NODE_SUBSYSTEMS, "module")


@dataclass(frozen=True)
class Node:
    """A device node: /dev path, the sysfs device, and the entity name it carries."""

    devnode: str
    subsystem: str
    sys_name: str
    name: str
    major: int
    minor: int


@dataclass(frozen=True)
class BoundDevice:
    """A device bound to the profile's driver, with its media devices and all nodes."""

    name: str
    syspath: str
    driver: str
    media: tuple[str, ...]
    nodes: tuple[Node, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def devnodes(self) -> list[str]:
        return [n.devnode for n in self.nodes]


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _node(device: pyudev.Device) -> Node:
    attrs = device.attributes
    # video4linux devices carry the entity name in "name", media devices the model
    key = next((k for k in ("name", "model") if k in attrs.available_attributes), None)
    return Node(
        devnode=device.device_node, subsystem=device.subsystem, sys_name=device.sys_name,
        name=_text(attrs.get(key) if key else None).strip(),
        major=int(device.get("MAJOR", 0)), minor=int(device.get("MINOR", 0)),
    )


def _nodes_under(context: pyudev.Context, device: pyudev.Device) -> list[Node]:
    nodes = [_node(child) for child in context.list_devices(parent=device)
             if child.subsystem in NODE_SUBSYSTEMS and child.device_node]
    return sorted(nodes, key=lambda n: (n.subsystem, len(n.sys_name), n.sys_name))


def find_devices(profile: DriverProfile) -> list[BoundDevice]:
    """Every device on the profile's bus bound to its driver, from sysfs."""
    context = pyudev.Context()
    found = []
    for device in context.list_devices(subsystem=profile.bus):
        if device.driver != profile.driver:
            continue
        nodes = _nodes_under(context, device)
        found.append(BoundDevice(
            name=device.sys_name, syspath=device.sys_path, driver=profile.driver,
            media=tuple(n.devnode for n in nodes if n.subsystem == "media"),
            nodes=tuple(nodes),
        ))
    return sorted(found, key=lambda d: d.name)


def device_nodes(profile: DriverProfile, device: str) -> list[Node]:
    """The nodes under one device of the profile's bus, bound or not."""
    context = pyudev.Context()
    try:
        dev = pyudev.Devices.from_name(context, profile.bus, device)
    except pyudev.DeviceNotFoundError:
        return []
    return _nodes_under(context, dev)


def find_node(name: str) -> Node:
    """A video4linux or media node by the name its device carries in sysfs
    ("vivid-000-vid-cap", "Raw Capture 0"); LookupError if there is none."""
    context = pyudev.Context()
    for subsystem in NODE_SUBSYSTEMS:
        for device in context.list_devices(subsystem=subsystem):
            if device.device_node and (node := _node(device)).name == name:
                return node
    raise LookupError(f"no video4linux or media node named {name!r}")


# -- observing actions through uevents ---------------------------------------------------


@dataclass(frozen=True)
class UEvent:
    """A kernel uevent as seen, `t` seconds after the action started."""

    t: float
    action: str
    subsystem: str
    sys_name: str
    devnode: str
    devpath: str
    driver: str


@dataclass(frozen=True)
class Expect:
    """An event an action must cause: a label for reports and a test on events."""

    label: str
    match: Callable[[UEvent], bool]


def node_removed(devnode: str) -> Expect:
    return Expect(f"remove {devnode}", lambda e: e.action == "remove" and e.devnode == devnode)


def node_added(devnode: str) -> Expect:
    return Expect(f"add {devnode}", lambda e: e.action == "add" and e.devnode == devnode)


def device_event(action: str, subsystem: str, name: str | None = None,
                 driver: str | None = None) -> Expect:
    label = f"{action} {subsystem}/{name or '*'}" + (f" ({driver})" if driver else "")
    return Expect(label, lambda e: e.action == action and e.subsystem == subsystem
                  and (name is None or e.sys_name == name)
                  and (driver is None or e.driver == driver))


@dataclass
class Observation:
    """What one action did, as the kernel told it through uevents."""

    action: str
    target: str
    ok: bool = False
    # start of the action to the last expected event; None if not all came in time
    seconds: float | None = None
    # how long the sysfs write or the command itself took; None if it never returned
    call_seconds: float | None = None
    call_result: str = ""
    gone: list[str] = field(default_factory=list)
    came: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    # nodes whose /dev entry disagrees with the uevents once the action is over
    dev_mismatch: list[str] = field(default_factory=list)
    events: list[UEvent] = field(default_factory=list)
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        took = f"{self.seconds:.3f} s" if self.seconds is not None else "did not complete"
        text = (f"{self.action} {self.target}: {took}; {len(self.gone)} nodes went, "
                f"{len(self.came)} came")
        if self.missing:
            text += f"; never seen: {', '.join(self.missing)}"
        if self.error:
            text += f"; {self.error}"
        return text


def _devnode(devname: str | None) -> str:
    # The kernel sends DEVNAME relative to /dev; libudev may already have prefixed it.
    return "/dev/" + devname.removeprefix("/dev/") if devname else ""


def _event(raw: pyudev.Device, start: float) -> UEvent:
    return UEvent(
        t=round(time.monotonic() - start, 4),
        action=raw.action or "",
        subsystem=raw.subsystem or "",
        sys_name=raw.sys_name or "",
        devnode=_devnode(raw.get("DEVNAME")),
        devpath=raw.get("DEVPATH", ""),
        driver=raw.get("DRIVER", ""),
    )


def observe(
    action: str,
    target: str,
    call: Callable[[], None],
    expect: list[Expect],
    watch: tuple[str, ...],
    timeout: float,
    settle: Callable[[Observation], None] | None = None,
) -> Observation:
    """Run `call` in a thread and collect uevents of subsystems `watch` until every
    `expect` has been seen and the call has returned, or `timeout` passes; then let
    `settle` compare the result with sysfs and /dev."""
    obs = Observation(action, target, expected=[e.label for e in expect])
    monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source="kernel")
    # A whole driver's worth of nodes can go at once; the default buffer may drop some.
    monitor.set_receive_buffer_size(4 << 20)
    monitor.start()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            call()
            outcome["result"] = "ok"
        except Exception as e:  # whatever the action raised is the observation's result
            outcome["result"] = str(e) or type(e).__name__
        finally:
            outcome["returned"] = time.monotonic()

    pending = list(expect)
    start = time.monotonic()
    deadline = start + timeout
    last_expected: float | None = None
    thread = threading.Thread(target=run, name=f"{action} {target}", daemon=True)
    thread.start()
    while time.monotonic() < deadline and (pending or thread.is_alive()):
        raw = monitor.poll(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
        if raw is None:
            continue
        ev = _event(raw, start)
        if ev.subsystem not in watch:
            continue
        obs.events.append(ev)
        if ev.subsystem in NODE_SUBSYSTEMS and ev.devnode:
            if ev.action == "remove":
                obs.gone.append(ev.devnode)
            elif ev.action == "add":
                obs.came.append(ev.devnode)
        hit = [e for e in pending if e.match(ev)]
        if hit:
            pending = [e for e in pending if e not in hit]
            last_expected = ev.t
    del monitor
    thread.join(max(0.0, deadline - time.monotonic()))
    if "returned" in outcome:
        obs.call_seconds = round(outcome["returned"] - start, 4)
        obs.call_result = outcome["result"]
        if obs.call_result != "ok":
            obs.error = f"{action} {target} failed: {obs.call_result}"
    else:
        obs.call_result = f"still running after {timeout:g} s"
        obs.error = f"{action} {target} did not return within {timeout:g} s"
    obs.missing = [e.label for e in pending]
    if not pending and not obs.error:
        obs.seconds = last_expected if last_expected is not None else obs.call_seconds
    if settle is not None:
        settle(obs)
    obs.ok = not obs.missing and not obs.error and not obs.dev_mismatch
    return obs


def write_sysfs(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _run(argv: list[str], timeout: float) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip() or f"exit status {proc.returncode}"
        raise RuntimeError(f"{' '.join(argv)}: {message}")


def _absent(nodes: list[str]) -> Callable[[Observation], None]:
    def settle(obs: Observation) -> None:
        obs.dev_mismatch += [f"{n} still in /dev" for n in nodes if os.path.exists(n)]
    return settle


def _present(profile: DriverProfile, device: str | None) -> Callable[[Observation], None]:
    def settle(obs: Observation) -> None:
        devices = [d for d in find_devices(profile) if device in (None, d.name)]
        if not devices:
            obs.dev_mismatch.append(f"no device bound to {profile.driver}")
        for d in devices:
            if not d.media:
                obs.dev_mismatch.append(f"{d.name} is bound but has no media device")
            obs.dev_mismatch += [f"{n} not in /dev" for n in d.devnodes()
                                 if not os.path.exists(n)]
    return settle


DEFAULT_TIMEOUT = 20.0


def _sysfs_module(name: str) -> str:
    """A module's name as /sys/module and its uevents spell it."""
    return name.replace("-", "_")


def unbind_device(
    profile: DriverProfile, device: str, timeout: float = DEFAULT_TIMEOUT
) -> Observation:
    """Unbind `device` from the driver; done when every node it had is removed and
    the device's unbind event is in."""
    nodes = [n.devnode for n in device_nodes(profile, device)]
    expect = [node_removed(n) for n in nodes] + [device_event("unbind", profile.bus, device)]
    return observe("unbind", device,
                   lambda: write_sysfs(profile.driver_dir / "unbind", device),
                   expect, (profile.bus, *WATCHED_SUBSYSTEMS), timeout, _absent(nodes))


def bind_device(
    profile: DriverProfile,
    device: str,
    timeout: float = DEFAULT_TIMEOUT,
    expect_nodes: list[str] | None = None,
) -> Observation:
    """Bind `device` to the driver; done at its bind event (sent once probe has
    returned) and, if given, when each of `expect_nodes` has been added."""
    expect = [device_event("bind", profile.bus, device)]
    expect += [node_added(n) for n in expect_nodes or []]
    return observe("bind", device,
                   lambda: write_sysfs(profile.driver_dir / "bind", device),
                   expect, (profile.bus, *WATCHED_SUBSYSTEMS), timeout,
                   _present(profile, device))


def remove_module(profile: DriverProfile, timeout: float = DEFAULT_TIMEOUT) -> Observation:
    """rmmod the driver's module (refused while in use, as rmmod is); done when every
    node of every bound device is removed and the module's own remove event is in."""
    module = _sysfs_module(profile.driver_module)
    nodes = [n for d in find_devices(profile) for n in d.devnodes()]
    expect = [node_removed(n) for n in nodes] + [device_event("remove", "module", module)]

    def settle(obs: Observation) -> None:
        _absent(nodes)(obs)
        if Path("/sys/module", module).exists():
            obs.dev_mismatch.append(f"module {module} still loaded")

    return observe("rmmod", module, lambda: _run(["rmmod", module], timeout), expect,
                   (profile.bus, *WATCHED_SUBSYSTEMS), timeout, settle)


def load_module(profile: DriverProfile, timeout: float = DEFAULT_TIMEOUT) -> Observation:
    """modprobe the profile's modules; done when each module not loaded before has
    its add event and a device is bound to the driver."""
    new = [_sysfs_module(m) for m in profile.modules
           if not Path("/sys/module", _sysfs_module(m)).exists()]
    expect = [device_event("add", "module", m) for m in new]
    expect.append(device_event("bind", profile.bus, driver=profile.driver))

    def call() -> None:
        for m in profile.modules:
            _run(["modprobe", *profile.modprobe_args(m)], timeout)

    return observe("modprobe", " ".join(profile.modules), call, expect,
                   (profile.bus, *WATCHED_SUBSYSTEMS), timeout, _present(profile, None))
