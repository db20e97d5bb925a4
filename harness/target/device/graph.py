"""The media graph of one media device, as read through MEDIA_IOC_G_TOPOLOGY.

Built on the target from the ioctls, carried to the host as plain data, and
rendered there in the shape of `media-ctl -p`, so a kernel developer reads
it the way they already read media-ctl. What G_TOPOLOGY does not say but
media-ctl prints is read on the target too and travels with the graph: the
legacy entity type from MEDIA_IOC_ENUM_ENTITIES, and each subdev pad's
format and selection rectangles from the subdev nodes.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.target.device.subdev import PadState, read_pad, render_pad
from harness.target.uapi import media
from harness.target.uapi.flags import format_flags


def devnode_path(major: int, minor: int) -> str | None:
    """/dev path of a character device, from its uevent (DEVNAME), as udev would name it."""
    try:
        uevent = Path(f"/sys/dev/char/{major}:{minor}/uevent").read_text()
    except OSError:
        return None
    for line in uevent.splitlines():
        if line.startswith("DEVNAME="):
            return "/dev/" + line.removeprefix("DEVNAME=")
    return None


@dataclass(frozen=True)
class MediaGraph:
    path: str
    info: media.DeviceInfo
    topology: media.Topology
    # interface id -> /dev path
    devnodes: dict[int, str] = field(default_factory=dict)
    # entity id -> its MEDIA_IOC_ENUM_ENTITIES description (legacy type, pad count)
    entity_descs: dict[int, media.EntityDesc] = field(default_factory=dict)
    # (entity id, pad index) -> the subdev pad's active format and rectangles
    pad_states: dict[tuple[int, int], PadState] = field(default_factory=dict)

    @classmethod
    def read(cls, path: str | os.PathLike[str], formats: bool = True) -> MediaGraph:
        """The graph of the media device at `path`; with `formats`, also every subdev
        pad's state, read through the subdev nodes. A node that cannot be opened or
        a pad that does not answer is left out, as media-ctl leaves it out."""
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            info = media.device_info(fd)
            topology = media.g_topology(fd)
            descs = {d.id: d for d in media.enum_entities(fd)}
        finally:
            os.close(fd)
        devnodes = {
            i.id: node
            for i in topology.interfaces
            if (node := devnode_path(i.major, i.minor)) is not None
        }
        graph = cls(str(path), info, topology, devnodes, descs)
        if formats:
            graph.pad_states.update(graph.read_pad_states())
        return graph

    def read_pad_states(self) -> dict[tuple[int, int], PadState]:
        states = {}
        for entity in self.topology.entities:
            node = self.devnode(entity.name)
            if node is None or not self.is_subdev(entity.name):
                continue
            try:
                fd = os.open(node, os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                for pad in self.topology.entity_pads(entity.id):
                    if (state := read_pad(fd, pad.index)) is not None:
                        states[(entity.id, pad.index)] = state
            finally:
                os.close(fd)
        return states

    # -- queries ------------------------------------------------------------

    def entity(self, name: str) -> media.Entity:
        try:
            return self.topology.entity(name)
        except KeyError:
            names = ", ".join(e.name for e in self.topology.entities)
            raise KeyError(f"no entity {name!r} in {self.path} (entities: {names})") from None

    def entity_names(self) -> list[str]:
        return [e.name for e in self.topology.entities]

    def devnode(self, entity_name: str) -> str | None:
        intf = self.topology.interface_of(self.entity(entity_name).id)
        return self.devnodes.get(intf.id) if intf else None

    def _interface_type(self, entity_name: str) -> int | None:
        intf = self.topology.interface_of(self.entity(entity_name).id)
        return intf.intf_type if intf else None

    def is_subdev(self, entity_name: str) -> bool:
        return self._interface_type(entity_name) == media.MEDIA_INTF_T_V4L_SUBDEV

    def is_video(self, entity_name: str) -> bool:
        """A V4L2 video node (capture or output; QUERYCAP tells which)."""
        return self._interface_type(entity_name) == media.MEDIA_INTF_T_V4L_VIDEO

    def pad_state(self, entity_name: str, pad: int) -> PadState | None:
        return self.pad_states.get((self.entity(entity_name).id, pad))

    def nodes(self) -> list[str]:
        """Every device node of this graph: the media node first, then video and subdev nodes."""
        return [self.path, *sorted(set(self.devnodes.values()))]

    # -- transport ------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "info": dataclasses.asdict(self.info),
            "topology": dataclasses.asdict(self.topology),
            "devnodes": {str(k): v for k, v in self.devnodes.items()},
            "entity_descs": [dataclasses.asdict(d) for d in self.entity_descs.values()],
            "pad_states": [
                {"entity": e, "pad": p, **state.to_dict()}
                for (e, p), state in self.pad_states.items()
            ],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MediaGraph:
        t = d["topology"]
        topology = media.Topology(
            version=t["version"],
            entities=tuple(media.Entity(**e) for e in t["entities"]),
            interfaces=tuple(media.Interface(**i) for i in t["interfaces"]),
            pads=tuple(media.Pad(**p) for p in t["pads"]),
            links=tuple(media.Link(**k) for k in t["links"]),
        )
        return cls(
            path=d["path"],
            info=media.DeviceInfo(**d["info"]),
            topology=topology,
            devnodes={int(k): v for k, v in d["devnodes"].items()},
            entity_descs={e["id"]: media.EntityDesc(**e) for e in d.get("entity_descs", [])},
            pad_states={
                (s["entity"], s["pad"]): PadState.from_dict(s) for s in d.get("pad_states", [])
            },
        )

    # -- rendering ------------------------------------------------------------

    def render(self) -> str:
        """Text in the layout of `media-ctl -p` (v4l-utils 1.22): entities in id order,
        links listed under both their pads in the order media-ctl learns them."""
        info, topo = self.info, self.topology
        version = ".".join(map(str, info.kernel_version))
        out = [
            f"Media controller API version {version}",
            "",
            "Media device information",
            "------------------------",
            f"driver          {info.driver}",
            f"model           {info.model}",
            f"serial          {info.serial}",
            f"bus info        {info.bus_info}",
            f"hw revision     {info.hw_revision:#x}",
            f"driver version  {'.'.join(map(str, _version(info.driver_version)))}",
            "",
            "Device topology",
        ]
        pad_by_id = {p.id: p for p in topo.pads}
        name_by_id = {e.id: e.name for e in topo.entities}
        position = {link.id: i for i, link in enumerate(topo.links)}
        # media-ctl enumerates each entity's outgoing links (MEDIA_IOC_ENUM_LINKS) in id
        # order and files every link under both ends, so that is the order it prints.
        data_links = sorted(
            (k for k in topo.data_links()
             if k.source_id in pad_by_id and k.sink_id in pad_by_id),
            key=lambda k: (pad_by_id[k.source_id].entity_id, position[k.id]),
        )
        for entity in sorted(topo.entities, key=lambda e: e.id):
            pads = topo.entity_pads(entity.id)
            links = [k for k in data_links
                     if entity.id in (pad_by_id[k.source_id].entity_id,
                                      pad_by_id[k.sink_id].entity_id)]
            desc = self.entity_descs.get(entity.id)
            npads = desc.pads if desc else len(pads)
            lead = f"- entity {entity.id}: "
            indent = " " * len(lead)
            out.append(
                f"{lead}{entity.name} ({npads} pad{'s' if npads > 1 else ''}, "
                f"{len(links)} link{'s' if len(links) > 1 else ''})"
            )
            kind, subkind, flags = self._legacy_type(entity, desc)
            out.append(f"{indent}type {kind} subtype {subkind} flags {flags:x}")
            intf = topo.interface_of(entity.id)
            node = self.devnodes.get(intf.id) if intf else None
            if node is not None:
                out.append(f"{indent}device node name {node}")
            for pad in pads:
                out.append(f"\tpad{pad.index}: {_pad_kind(pad.flags)}")
                state = self.pad_states.get((entity.id, pad.index))
                if state is not None:
                    out.extend(render_pad(state))
                for link in links:
                    src, sink = pad_by_id[link.source_id], pad_by_id[link.sink_id]
                    flags_text = format_flags(
                        link.flags & ~media.MEDIA_LNK_FL_LINK_TYPE, media.MEDIA_LNK_FL_NAMES
                    )
                    if src.entity_id == entity.id and src.index == pad.index:
                        out.append(f'\t\t-> "{name_by_id[sink.entity_id]}":{sink.index} '
                                   f"[{flags_text}]")
                    elif sink.entity_id == entity.id and sink.index == pad.index:
                        out.append(f'\t\t<- "{name_by_id[src.entity_id]}":{src.index} '
                                   f"[{flags_text}]")
            out.append("")
        return "\n".join(out) + "\n"

    def _legacy_type(
        self, entity: media.Entity, desc: media.EntityDesc | None
    ) -> tuple[str, str, int]:
        """media-ctl's "type X subtype Y" and the flags; from ENUM_ENTITIES when it was
        read, else mapped from the function the way the kernel maps it for that ioctl."""
        if desc is not None:
            return desc.media_ctl_type, desc.media_ctl_subtype, desc.flags
        legacy = entity.function
        if not media.MEDIA_ENT_F_OLD_BASE <= legacy <= media.MEDIA_ENT_F_TUNER:
            if self.is_subdev(entity.name):
                legacy = media.MEDIA_ENT_F_V4L2_SUBDEV_UNKNOWN
            elif legacy != media.MEDIA_ENT_F_IO_V4L:
                legacy = media.MEDIA_ENT_T_DEVNODE_UNKNOWN
        return media.media_ctl_type(legacy), media.media_ctl_subtype(legacy), entity.flags


def _pad_kind(flags: int) -> str:
    if flags & media.MEDIA_PAD_FL_SINK:
        return "Sink"
    if flags & media.MEDIA_PAD_FL_SOURCE:
        return "Source"
    return "Unknown"


def _version(code: int) -> tuple[int, int, int]:
    return (code >> 16) & 0xFF, (code >> 8) & 0xFF, code & 0xFF
