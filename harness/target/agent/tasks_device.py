"""Agent tasks for the device layer: graphs with formats, pipelines, streaming,
node discovery, and bind/unbind/module cycles observed through uevents."""

from __future__ import annotations

from typing import Any

from harness.pure.profiles import DEFAULT_DRIVER, DriverProfile, get_profile
from harness.target.agent.channel import EventChannel
from harness.target.agent.tasks import task


def _loaded(driver: str) -> DriverProfile:
    from harness.target.device.modules import load_driver

    profile = get_profile(driver)
    load_driver(profile)
    return profile


def _size(size: list[int] | tuple[int, int] | None) -> tuple[int, int] | None:
    return (int(size[0]), int(size[1])) if size else None


@task
def media_graph(channel: EventChannel, driver: str = DEFAULT_DRIVER) -> dict[str, Any]:
    """Every media device of the driver, with legacy entity types and pad formats."""
    from harness.target.device.graph import MediaGraph

    profile = _loaded(driver)
    return {"driver": driver,
            "graphs": [MediaGraph.read(p).to_dict() for p in profile.media_devices()]}


@task
def configure_pipeline(
    channel: EventChannel,
    capture: str,
    driver: str = DEFAULT_DRIVER,
    size: list[int] | None = None,
    load: bool = True,
) -> dict[str, Any]:
    """Set links and formats so `capture` streams; the plan and the format it got.
    With load=False the driver is not loaded first (to see what happens without it)."""
    from harness.target.device.pipeline import configure
    from harness.target.device.video import describe_pix

    profile = _loaded(driver) if load else get_profile(driver)
    ready = configure(profile, capture, _size(size))
    return {"capture": capture, "devnode": ready.devnode, "format": describe_pix(ready.format),
            "sizeimage": ready.format.sizeimage, "plan": ready.plan.to_dict(),
            "steps": ready.plan.describe()}


@task
def stream(
    channel: EventChannel,
    driver: str = DEFAULT_DRIVER,
    nodes: list[str] | None = None,
    memory: list[str] | None = None,
    sizes: list[list[int]] | None = None,
    frames: int = 60,
    wait: str = "poll",
    buffers: int = 4,
    setup: bool = True,
) -> dict[str, Any]:
    """Stream from each capture node, with each I/O method it offers (or those in
    `memory`), at each size (default: the profile's default size). Each run is also
    emitted as a `stream-result` event as soon as it ends. With setup=False the
    pipelines are streamed as they are, without configuring them first."""
    from harness.target.device.pipeline import MediaGraphs
    from harness.target.device.stream import StreamResult, stream_capture, stream_m2m
    from harness.target.device.video import VideoNode

    profile = _loaded(driver)
    graphs = MediaGraphs.read(profile, formats=False)
    wanted_sizes = ([_size(s) or profile.default_size for s in sizes] if sizes
                    else [profile.default_size])
    results = []
    for capture in nodes or list(profile.streamed_entities):
        if capture in profile.m2m_entities:  # its own formats: one run, MMAP
            result = stream_m2m(graphs.devnode(capture) or "", frames, node=capture)
            data = {**result.to_dict(), "size": []}
            channel.emit("stream-result", **data)
            results.append(data)
            continue
        # What the queue offers decides; a node that cannot be asked is streamed
        # anyway, so that the error comes from the attempt and names what failed.
        offered: list[str] = []
        node = graphs.devnode(capture)
        if node and graphs.media(capture).is_video(capture):
            with VideoNode(node, capture) as v:
                offered = v.io_methods()
        for size in wanted_sizes:
            for method in memory or offered or ["mmap"]:
                if offered and method not in offered:
                    result = StreamResult(capture, node or "", method, wait, requested=frames)
                    result.fail(f"{capture} does not offer {method} I/O "
                                f"(it offers {', '.join(offered)})")
                else:
                    result = stream_capture(profile, capture, method, frames, size, wait,
                                            buffers, setup)
                data = {**result.to_dict(), "size": list(size)}
                channel.emit("stream-result", **data)
                results.append(data)
    return {"driver": driver, "results": results}


@task
def stream_node(
    channel: EventChannel,
    node: str,
    memory: list[str] | None = None,
    frames: int = 60,
    wait: str = "poll",
    buffers: int = 4,
    exporter: str | None = None,
) -> dict[str, Any]:
    """Stream from one video node as it is set up, with each I/O method it offers
    (or those in `memory`); `node` is a /dev path or the name the node carries in
    sysfs ("vivid-000-vid-cap"). DMABUF imports buffers from `exporter`."""
    from harness.target.device.discovery import find_node
    from harness.target.device.stream import stream_node as stream_one
    from harness.target.device.video import VideoNode

    path = node if node.startswith("/dev/") else find_node(node).devnode
    with VideoNode(path, node) as v:
        offered = v.io_methods()
    results = []
    for method in memory or offered:
        result = stream_one(path, method, frames, node=node, wait=wait, buffers=buffers,
                            exporter=exporter)
        channel.emit("stream-result", **result.to_dict())
        results.append(result.to_dict())
    return {"node": node, "devnode": path, "offered": offered, "results": results}


@task
def check_pipeline(channel: EventChannel, capture: str,
                   driver: str = DEFAULT_DRIVER) -> dict[str, Any]:
    """Check every link STREAMON would validate for `capture`, changing nothing."""
    from harness.target.device.pipeline import check, media_device

    profile = _loaded(driver)
    check(profile, media_device(profile, capture), capture)
    return {"capture": capture, "ok": True}


@task
def node_info(channel: EventChannel, driver: str = DEFAULT_DRIVER) -> dict[str, Any]:
    """What the harness reads from each node, by entity name: capabilities, formats
    and I/O methods of the capture nodes, capabilities and pad states of the subdevs
    (to compare with v4l2-compliance and v4l2-ctl)."""
    from harness.target.device.graph import MediaGraph
    from harness.target.device.pipeline import capture_nodes, media_device
    from harness.target.device.subdev import SubdevNode
    from harness.target.device.video import VideoNode

    profile = _loaded(driver)
    graph = MediaGraph.read(media_device(profile))
    videos, subdevs = {}, {}
    for name in capture_nodes(graph):
        if node := graph.devnode(name):
            with VideoNode(node, name) as v:
                videos[name] = v.describe()
    for entity in graph.topology.entities:
        node = graph.devnode(entity.name)
        if node and graph.is_subdev(entity.name):
            with SubdevNode(node, entity.name) as sd:
                cap = sd.querycap()
            subdevs[entity.name] = {
                "path": node, "capabilities": cap.capabilities, "version": cap.version,
                "pads": {str(pad): state.to_dict() for (eid, pad), state
                         in graph.pad_states.items() if eid == entity.id},
            }
    return {"driver": driver, "media": graph.path, "videos": videos, "subdevs": subdevs}


@task
def node_command(
    channel: EventChannel, argv: list[str], driver: str = DEFAULT_DRIVER, timeout: float = 120.0
) -> dict[str, Any]:
    """Run a program on the driver's nodes: "{Entity Name}" in `argv` becomes that
    entity's device node and "{media}" the media device, so a job can name nodes
    before the guest has numbered them."""
    import subprocess

    from harness.target.device.graph import MediaGraph
    from harness.target.device.pipeline import media_device

    profile = _loaded(driver)
    graph = MediaGraph.read(media_device(profile), formats=False)
    names = {f"{{{e}}}": graph.devnode(e) for e in graph.entity_names()}
    names["{media}"] = graph.path
    resolved = []
    for arg in argv:
        for key, node in names.items():
            if node and key in arg:
                arg = arg.replace(key, node)
        resolved.append(arg)
    proc = subprocess.run(resolved, capture_output=True, text=True, timeout=timeout)
    return {"argv": resolved, "status": proc.returncode, "stdout": proc.stdout,
            "stderr": proc.stderr}


@task
def discover(channel: EventChannel, driver: str = DEFAULT_DRIVER,
             load: bool = True) -> dict[str, Any]:
    """The driver's bound devices, their media devices and nodes, from sysfs."""
    from harness.target.device.discovery import find_devices

    profile = _loaded(driver) if load else get_profile(driver)
    return {"driver": driver, "devices": [d.to_dict() for d in find_devices(profile)]}


@task
def unplug_cycle(
    channel: EventChannel,
    driver: str = DEFAULT_DRIVER,
    steps: list[str] | None = None,
    timeout: float = 20.0,
    load: bool = True,
) -> dict[str, Any]:
    """Run bind/unbind/module steps in order on the driver's first device, each
    observed through kernel uevents: "unbind", "bind", "rmmod", "modprobe". With
    load=False the driver is not loaded first (to start with "modprobe")."""
    from harness.target.device.discovery import (
        bind_device,
        find_devices,
        load_module,
        remove_module,
        unbind_device,
    )

    profile = _loaded(driver) if load else get_profile(driver)
    found = find_devices(profile)
    # Without a bound device (not loaded yet) the name is learnt from the first bind.
    device = found[0].name if found else ""
    actions = {
        "unbind": lambda: unbind_device(profile, device, timeout),
        "bind": lambda: bind_device(profile, device, timeout),
        "rmmod": lambda: remove_module(profile, timeout),
        "modprobe": lambda: load_module(profile, timeout),
    }
    observations = []
    for step in steps or ["unbind", "bind", "rmmod", "modprobe"]:
        if step not in actions:
            raise ValueError(f"unknown step {step!r}: choose from {', '.join(actions)}")
        observation = actions[step]()
        if not device and (now := find_devices(profile)):
            device = now[0].name
        channel.emit("observation", **observation.to_dict())
        observations.append(observation.to_dict())
    return {"driver": driver, "device": device, "observations": observations}


@task
def stream_cost(channel: EventChannel, capture: str, frames: int = 300, rounds: int = 3,
                driver: str = DEFAULT_DRIVER) -> dict[str, Any]:
    """CPU seconds for `frames` frames: the harness's streaming engine against
    `v4l2-ctl --stream-mmap` on the same node, taking turns for `rounds`
    rounds (guest CPU time under TCG is noisy: one pair alone says little)."""
    import resource
    import subprocess
    import time

    from harness.target.device.pipeline import configure
    from harness.target.device.stream import stream_node

    profile = _loaded(driver)
    devnode = configure(profile, capture).devnode
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    for _ in range(rounds):
        cpu0, wall0 = time.process_time(), time.monotonic()
        result = stream_node(devnode, "mmap", frames, node=capture)
        ours.append({"frames": result.frames, "cpu": round(time.process_time() - cpu0, 4),
                     "wall": round(time.monotonic() - wall0, 2), "errors": result.errors[:3]})

        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall0 = time.monotonic()
        proc = subprocess.run(
            ["v4l2-ctl", "-d", devnode, "--stream-mmap=4", f"--stream-count={frames}"],
            capture_output=True, text=True, timeout=frames,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        theirs.append({
            "status": proc.returncode,
            # v4l2-ctl prints one '<' per dequeued frame (on stderr) when it
            # does not save them.
            "frames": (proc.stdout + proc.stderr).count("<"),
            "cpu": round((after.ru_utime - before.ru_utime)
                         + (after.ru_stime - before.ru_stime), 4),
            "wall": round(time.monotonic() - wall0, 2),
            "stderr": proc.stderr[-300:],
        })
    return {"capture": capture, "frames": frames, "harness": ours, "v4l2_ctl": theirs}
