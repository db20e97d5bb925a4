"""Pipeline configuration from a driver profile: plan, apply, check.

A capture node streams only when every enabled link of everything connected
to it carries matching formats: at STREAMON the media core walks the whole
connected graph and asks each sink entity to validate its links. So a plan
covers the connected component of the capture node under the profile's link
settings, not only the path from the sensor: on vimc, streaming RGB/YUV
Capture also validates Sensor A -> Raw Capture 0.

`plan()` is pure (graph and profile in, steps out) and runs anywhere;
`apply()` and `configure()` run on the target. Every failure is one
PipelineError line naming the entity and pad, and what did not match.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.pure.errors import HarnessError
from harness.pure.profiles import CapturePath, DriverProfile, LinkSetting
from harness.target.device.graph import MediaGraph
from harness.target.device.subdev import SubdevNode, code_from_name, describe_format, media_ctl_code
from harness.target.device.video import VideoNode, describe_pix
from harness.target.uapi import media
from harness.target.uapi import videodev2 as v4l2


class PipelineError(HarnessError):
    """A pipeline that cannot be set up or does not validate; str() is one line."""


class DriverNotLoaded(PipelineError):
    pass


class NotACaptureNode(PipelineError):
    pass


class LinkMismatch(PipelineError):
    pass


@dataclass(frozen=True)
class PadFormat:
    """A subdev pad format the plan sets (media-ctl -V without colorimetry)."""

    entity: str
    pad: int
    code: str
    width: int
    height: int

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def describe(self) -> str:
        return f'"{self.entity}":{self.pad} [fmt:{self.code}/{self.width}x{self.height}]'


@dataclass(frozen=True)
class VideoFormat:
    """A video node format the plan sets."""

    entity: str
    fourcc: str
    width: int
    height: int

    def describe(self) -> str:
        return f'"{self.entity}" [{self.fourcc} {self.width}x{self.height}]'


@dataclass(frozen=True)
class Plan:
    """Everything to do, in order, so that `capture` streams at `size`."""

    capture: str
    size: tuple[int, int]
    component: tuple[str, ...]  # entities STREAMON will validate, sources first
    links: tuple[LinkSetting, ...]
    pads: tuple[PadFormat, ...]
    videos: tuple[VideoFormat, ...]

    @property
    def target(self) -> VideoFormat:
        return next(v for v in self.videos if v.entity == self.capture)

    def describe(self) -> list[str]:
        """The plan as media-ctl -l / -V arguments and video formats, one per line."""
        return ([f"-l '{k.describe()}'" for k in self.links]
                + [f"-V '{p.describe()}'" for p in self.pads]
                + [v.describe() for v in self.videos])

    def to_dict(self) -> dict[str, Any]:
        return {
            "capture": self.capture,
            "size": list(self.size),
            "component": list(self.component),
            "links": [asdict(k) for k in self.links],
            "pads": [asdict(p) for p in self.pads],
            "videos": [asdict(v) for v in self.videos],
        }


def _pad_name(graph: MediaGraph, pad: media.Pad) -> str:
    return f'"{_entity_name(graph, pad.entity_id)}":{pad.index}'


def _entity_name(graph: MediaGraph, entity_id: int) -> str:
    return next(e.name for e in graph.topology.entities if e.id == entity_id)


def capture_nodes(graph: MediaGraph) -> list[str]:
    """Video entities with a sink pad: what can be captured from, in id order."""
    return [e.name for e in sorted(graph.topology.entities, key=lambda e: e.id)
            if graph.is_video(e.name)
            and any(p.is_sink for p in graph.topology.entity_pads(e.id))]


def require_capture_node(graph: MediaGraph, name: str) -> None:
    """NotACaptureNode unless `name` is a video entity fed through a sink pad."""
    captures = capture_nodes(graph)
    if name in captures:
        return
    known = ", ".join(captures) or "none"
    try:
        entity = graph.entity(name)
    except KeyError:
        raise NotACaptureNode(
            f"{name!r} is not an entity of {graph.path} (capture nodes: {known})"
        ) from None
    node = graph.devnode(name) or "no device node"
    raise NotACaptureNode(
        f"{name!r} is not a capture node: it is a {entity.function_name} ({node}); "
        f"capture nodes: {known}"
    )


def _find_link(graph: MediaGraph, setting: LinkSetting) -> media.Link:
    topo = graph.topology
    pads = {p.id: p for p in topo.pads}
    for entity in (setting.source, setting.sink):
        try:
            graph.entity(entity)
        except KeyError as e:
            raise PipelineError(f"link {setting.describe()}: {e.args[0]}") from None
    src_id, sink_id = graph.entity(setting.source).id, graph.entity(setting.sink).id
    for link in topo.data_links():
        src, sink = pads.get(link.source_id), pads.get(link.sink_id)
        if (src and sink and (src.entity_id, src.index) == (src_id, setting.source_pad)
                and (sink.entity_id, sink.index) == (sink_id, setting.sink_pad)):
            return link
    raise PipelineError(f"link {setting.describe()}: no such link in {graph.path}")


def _link_states(graph: MediaGraph, path: CapturePath) -> dict[int, bool]:
    """Link id -> enabled, once the path's link settings are made."""
    enabled = {link.id: link.enabled for link in graph.topology.data_links()}
    for setting in path.links:
        link = _find_link(graph, setting)
        if link.immutable and link.enabled != setting.enabled:
            state = "enabled" if link.enabled else "disabled"
            raise PipelineError(f"link {setting.describe()}: the link is immutable and {state}")
        enabled[link.id] = setting.enabled
    return enabled


def _component(graph: MediaGraph, capture: str, enabled: dict[int, bool]) -> list[int]:
    """Entity ids connected to `capture` through enabled data links, sources first."""
    topo = graph.topology
    pads = {p.id: p for p in topo.pads}
    edges = [(pads[k.source_id].entity_id, pads[k.sink_id].entity_id)
             for k in topo.data_links() if enabled.get(k.id)]
    seen: set[int] = set()
    todo = [graph.entity(capture).id]
    while todo:
        e = todo.pop()
        if e not in seen:
            seen.add(e)
            todo += [b for a, b in edges if a == e] + [a for a, b in edges if b == e]
    order: list[int] = []
    while len(order) < len(seen):
        ready = [e for e in sorted(seen - set(order))
                 if all(a in order for a, b in edges if b == e and a in seen)]
        if not ready:
            loop = ", ".join(_entity_name(graph, e) for e in sorted(seen - set(order)))
            raise PipelineError(f"{capture}: the enabled links form a loop through {loop}")
        order += ready
    return order


def plan(
    graph: MediaGraph,
    profile: DriverProfile,
    capture: str,
    size: tuple[int, int] | None = None,
) -> Plan:
    """The links and formats that make `capture` stream at `size` (the profile's
    default size if None). Pure: `graph` is only read, nothing is touched."""
    size = size or profile.default_size
    require_capture_node(graph, capture)
    try:
        path = profile.capture_path(capture)
    except HarnessError as e:
        raise PipelineError(str(e)) from None
    topo = graph.topology
    pads = {p.id: p for p in topo.pads}
    names = {e.id: e.name for e in topo.entities}
    enabled = _link_states(graph, path)
    order = _component(graph, capture, enabled)
    links = [k for k in topo.data_links() if enabled.get(k.id)
             and pads[k.source_id].entity_id in order]

    declared = {(p.entity, p.pad): p for p in path.pads}
    for setting in path.pads:
        if setting.entity not in (names[e] for e in order):
            raise PipelineError(
                f'profile {profile.name}: "{setting.entity}":{setting.pad} is set for '
                f"{capture}, but {setting.entity} is not connected to it"
            )
    pixelformats = dict(profile.pixelformats)
    # The source entity keeps the driver's default size when a scaler makes the size.
    scaling = any(p.scales for p in path.pads)
    source_size = profile.default_size if scaling else size

    fmt: dict[int, PadFormat] = {}  # pad id -> format planned for it
    pad_steps: list[PadFormat] = []
    video_steps: list[VideoFormat] = []
    if path.fourcc:  # nothing upstream: the node's own format is the whole plan
        video_steps.append(VideoFormat(capture, path.fourcc, *size))
    for eid in order:
        name = names[eid]
        incoming = [k for k in links if pads[k.sink_id].entity_id == eid]
        if graph.is_video(name):
            for k in incoming:
                up = fmt[k.source_id]
                fourcc = pixelformats.get(up.code)
                if fourcc is None:
                    raise PipelineError(
                        f"{name}: no pixel format for {up.code} arriving from "
                        f"{_pad_name(graph, pads[k.source_id])} "
                        f"(profile {profile.name} maps {', '.join(sorted(pixelformats))})"
                    )
                video_steps.append(VideoFormat(name, fourcc, up.width, up.height))
            continue
        if not graph.is_subdev(name):
            raise PipelineError(f"{name}: has no subdev node to set formats on")
        sink_fmt: PadFormat | None = None
        for pad in topo.entity_pads(eid):
            feeding = [k for k in incoming if k.sink_id == pad.id]
            if len(feeding) > 1:
                sources = ", ".join(_pad_name(graph, pads[k.source_id]) for k in feeding)
                raise PipelineError(f'"{name}":{pad.index}: more than one enabled link '
                                    f"into it ({sources})")
            if not feeding:
                continue
            up = fmt[feeding[0].source_id]
            want = declared.get((name, pad.index))
            if want is not None and want.code != up.code:
                raise PipelineError(
                    f'"{name}":{pad.index}: profile {profile.name} says {want.code}, but '
                    f"{_pad_name(graph, pads[feeding[0].source_id])} carries {up.code}"
                )
            step = PadFormat(name, pad.index, up.code, up.width, up.height)
            fmt[pad.id] = step
            pad_steps.append(step)
            sink_fmt = sink_fmt or step
        for pad in topo.entity_pads(eid):
            if not pad.is_source:
                continue
            want = declared.get((name, pad.index))
            feeds = any(k.source_id == pad.id for k in links)
            if want is None and not feeds:
                continue  # nothing validates a pad without enabled links
            code = want.code if want else sink_fmt.code if sink_fmt else None
            if code is None:
                current = graph.pad_state(name, pad.index)
                if current is None:
                    raise PipelineError(
                        f'"{name}":{pad.index}: no format known; profile {profile.name} '
                        f"must name the code it carries for {capture}"
                    )
                code = media_ctl_code(current.format.code)
            if want is not None and want.scales:
                width, height = size
            elif sink_fmt is not None:
                width, height = sink_fmt.size
            else:
                width, height = source_size
            step = PadFormat(name, pad.index, code, width, height)
            fmt[pad.id] = step
            pad_steps.append(step)
    return Plan(
        capture=capture,
        size=size,
        component=tuple(names[e] for e in order),
        links=path.links,
        pads=tuple(pad_steps),
        videos=tuple(video_steps),
    )


# -- checking what is set -----------------------------------------------------------


def link_mismatches(
    graph: MediaGraph,
    profile: DriverProfile,
    capture: str,
    videos: dict[str, v4l2.PixFormat],
) -> list[str]:
    """Every enabled link in `capture`'s component whose two ends disagree, as one
    line each. `graph` must carry pad states; `videos` maps video entity -> format."""
    topo = graph.topology
    pads = {p.id: p for p in topo.pads}
    enabled = {k.id: k.enabled for k in topo.data_links()}
    order = _component(graph, capture, enabled)
    pixelformats = dict(profile.pixelformats)
    found = []
    for link in topo.data_links():
        if not link.enabled:
            continue
        src, sink = pads[link.source_id], pads[link.sink_id]
        if src.entity_id not in order:
            continue
        src_name = _entity_name(graph, src.entity_id)
        sink_name = _entity_name(graph, sink.entity_id)
        where = f"link {_pad_name(graph, src)} -> {_pad_name(graph, sink)}"
        up = graph.pad_state(src_name, src.index)
        if up is None:
            found.append(f"{where}: the format of {_pad_name(graph, src)} cannot be read")
            continue
        carried = describe_format(up.format)
        if graph.is_video(sink_name):
            got = videos.get(sink_name)
            fourcc = pixelformats.get(media_ctl_code(up.format.code))
            if got is None:
                found.append(f"{where}: the format of {sink_name} is unknown")
            elif (fourcc, up.format.width, up.format.height) != (
                    v4l2.fourcc_str(got.pixelformat), got.width, got.height):
                need = f"{fourcc} {up.format.width}x{up.format.height}" if fourcc else (
                    f"a pixel format for {media_ctl_code(up.format.code)}, which profile "
                    f"{profile.name} does not know")
                found.append(f"{where}: source carries {carried}, {sink_name} is set to "
                             f"{describe_pix(got)} (needs {need})")
            continue
        down = graph.pad_state(sink_name, sink.index)
        if down is None:
            found.append(f"{where}: the format of {_pad_name(graph, sink)} cannot be read")
            continue
        a, b = up.format, down.format
        if (a.code, a.width, a.height) != (b.code, b.width, b.height):
            found.append(f"{where}: source carries {carried}, sink is set to "
                         f"{describe_format(b)}")
        elif a.field != b.field and b.field != v4l2.V4L2_FIELD_NONE:
            found.append(f"{where}: source field {a.field}, sink field {b.field}")
    return found


# -- on the target ---------------------------------------------------------------------


def media_device(profile: DriverProfile, entity: str = "") -> str:
    """The profile's media device that holds `entity` (any entity when the driver
    has one media device); DriverNotLoaded if there is none."""
    devices = profile.media_devices()
    if not devices:
        bound = profile.bound_devices()
        why = (f"devices {', '.join(bound)} are bound but have no media device" if bound
               else f"no device is bound to {profile.driver_dir}")
        raise DriverNotLoaded(
            f"driver {profile.driver} is not loaded: {why} (load it with modprobe "
            f"{profile.driver_module})"
        )
    if len(devices) == 1:
        return devices[0]
    return MediaGraphs.read(profile, formats=False).media(entity).path


@dataclass(frozen=True)
class MediaGraphs:
    """Every media device a driver registered, read: which one holds an entity.
    Entity names are taken to be unique across a driver's media devices."""

    graphs: tuple[MediaGraph, ...]
    # Nodes of the driver's devices that no graph has an entity for (a radio
    # tuner registers only an interface): the name they carry in sysfs -> /dev path.
    bare: tuple[tuple[str, str], ...] = ()

    @classmethod
    def read(cls, profile: DriverProfile, formats: bool = True) -> MediaGraphs:
        graphs = tuple(MediaGraph.read(p, formats=formats) for p in profile.media_devices())
        named = {e.name for g in graphs for e in g.topology.entities}
        return cls(graphs, tuple((name, node) for name, node in _v4l_nodes(profile)
                                 if name not in named))

    @property
    def paths(self) -> list[str]:
        return [g.path for g in self.graphs]

    def entity_names(self) -> set[str]:
        """Every name a node can be held by: the graphs' entities and the bare nodes."""
        return {e.name for g in self.graphs for e in g.topology.entities} | dict(self.bare).keys()

    def media(self, entity: str = "") -> MediaGraph:
        """The graph that holds `entity`; with no entity, the only graph."""
        if not entity:
            if len(self.graphs) != 1:
                raise PipelineError(f"{len(self.graphs)} media devices "
                                    f"({', '.join(self.paths) or 'none'}): name an entity "
                                    f"to choose one")
            return self.graphs[0]
        for graph in self.graphs:
            if entity in graph.entity_names():
                return graph
        raise PipelineError(f"no media device ({', '.join(self.paths) or 'none'}) has an "
                            f"entity {entity!r}")

    def devnode(self, entity: str) -> str | None:
        for graph in self.graphs:
            if entity in graph.entity_names():
                return graph.devnode(entity)
        return dict(self.bare).get(entity)

    def node_set(self) -> dict[str, str]:
        """Entity name -> device node, plus each media node ("(media)", or
        "(media 1)", "(media 2)"... for several): what 'the same nodes' means."""
        nodes: dict[str, str] = {}
        for i, graph in enumerate(self.graphs, start=1):
            nodes["(media)" if len(self.graphs) == 1 else f"(media {i})"] = graph.path
            for e in graph.topology.entities:
                if (node := graph.devnode(e.name)) is not None:
                    nodes[e.name] = node
        return {**nodes, **dict(self.bare)}


def _v4l_nodes(profile: DriverProfile) -> list[tuple[str, str]]:
    """(sysfs name, /dev path) of every video4linux node whose device is bound to
    the profile's driver."""
    found = []
    for node in sorted(Path("/sys/class/video4linux").glob("*")):
        try:
            driver = (node / "device" / "driver").resolve().name
            name = (node / "name").read_text().strip()
        except OSError:
            continue
        if driver == profile.driver:
            found.append((name, f"/dev/{node.name}"))
    return found


def video_formats(graph: MediaGraph, entities: list[str]) -> dict[str, v4l2.PixFormat]:
    """Current format of each video entity among `entities`."""
    formats = {}
    for name in entities:
        node = graph.devnode(name)
        if graph.is_video(name) and node:
            with VideoNode(node, name) as v:
                formats[name] = v.g_fmt()
    return formats


def _why(e: OSError) -> str:
    # The uapi layer puts the ioctl's name in strerror; the message here names it already.
    return os.strerror(e.errno) if e.errno else str(e)


def apply(graph: MediaGraph, plan: Plan) -> None:
    """Make the plan's links and formats so, checking each as the driver answers."""
    topo = graph.topology
    current = {k.id: k.enabled for k in topo.data_links()}
    changes = [(s, _find_link(graph, s)) for s in plan.links]
    # Disable before enable, so a sink pad never has two sources at once.
    changes.sort(key=lambda c: c[0].enabled)
    fd = os.open(graph.path, os.O_RDWR | os.O_CLOEXEC)
    try:
        for setting, link in changes:
            if current[link.id] == setting.enabled:
                continue
            flags = media.MEDIA_LNK_FL_ENABLED if setting.enabled else 0
            try:
                media.setup_link(fd, graph.entity(setting.source).id, setting.source_pad,
                                 graph.entity(setting.sink).id, setting.sink_pad, flags)
            except OSError as e:
                raise PipelineError(f"link {setting.describe()}: MEDIA_IOC_SETUP_LINK failed: "
                                    f"{_why(e)}") from None
    finally:
        os.close(fd)
    for step in plan.pads:
        node = graph.devnode(step.entity)
        assert node is not None
        try:
            with SubdevNode(node, step.entity) as sd:
                got = sd.set_format(step.pad, code_from_name(step.code), step.width, step.height)
        except OSError as e:
            raise PipelineError(f"{step.describe()}: VIDIOC_SUBDEV_S_FMT on {node} failed: "
                                f"{_why(e)}") from None
        if (media_ctl_code(got.code), got.width, got.height) != (step.code, *step.size):
            raise PipelineError(f'"{step.entity}":{step.pad}: asked for '
                                f"{step.code}/{step.width}x{step.height}, driver set "
                                f"{describe_format(got)}")
    for video in plan.videos:
        node = graph.devnode(video.entity)
        assert node is not None
        try:
            with VideoNode(node, video.entity) as v:
                pix = v.s_fmt(v4l2.fourcc(video.fourcc), video.width, video.height)
        except OSError as e:
            raise PipelineError(f"{video.describe()}: VIDIOC_S_FMT on {node} failed: "
                                f"{_why(e)}") from None
        if (v4l2.fourcc_str(pix.pixelformat), pix.width, pix.height) != (
                video.fourcc, video.width, video.height):
            raise PipelineError(f'"{video.entity}": asked for {video.fourcc} '
                                f"{video.width}x{video.height}, driver set {describe_pix(pix)}")


def check(profile: DriverProfile, path: str, capture: str) -> MediaGraph:
    """Read the device again and raise LinkMismatch for the first disagreeing link."""
    graph = MediaGraph.read(path)
    order = _component(graph, capture, {k.id: k.enabled for k in graph.topology.data_links()})
    names = {e.id: e.name for e in graph.topology.entities}
    found = link_mismatches(graph, profile, capture,
                            video_formats(graph, [names[e] for e in order]))
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise LinkMismatch(f"{capture}: {found[0]}{more}")
    return graph


@dataclass(frozen=True)
class Configured:
    """A capture node ready to stream: where it is and the format it has."""

    capture: str
    devnode: str
    media: str
    format: v4l2.PixFormat
    plan: Plan


def configure(
    profile: DriverProfile, capture: str, size: tuple[int, int] | None = None
) -> Configured:
    """Set links and formats so `capture` streams at `size`, then check every link
    STREAMON will validate. Runs on the target."""
    path = media_device(profile, capture)
    graph = MediaGraph.read(path)
    require_capture_node(graph, capture)
    node = graph.devnode(capture)
    assert node is not None
    with VideoNode(node, capture) as v:
        if not v.is_capture():
            raise NotACaptureNode(f"{capture!r} ({node}) is a video node without capture "
                                  f"capability ({v4l2.caps_str(v.querycap().caps)})")
    steps = plan(graph, profile, capture, size)
    apply(graph, steps)
    check(profile, path, capture)
    with VideoNode(node, capture) as v:
        fmt = v.g_fmt()
    return Configured(capture, node, path, fmt, steps)
