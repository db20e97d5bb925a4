"""The media graph of one media device, as read through MEDIA_IOC_G_TOPOLOGY.

Built on the target from the ioctls, carried to the host as plain data, and
rendered there in the shape of `media-ctl -p`, so a kernel developer reads
it the way they already read media-ctl.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.uapi import media
from harness.uapi.flags import format_flags


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

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> MediaGraph:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            info = media.device_info(fd)
            topology = media.g_topology(fd)
        finally:
            os.close(fd)
        devnodes = {
            i.id: node
            for i in topology.interfaces
            if (node := devnode_path(i.major, i.minor)) is not None
        }
        return cls(str(path), info, topology, devnodes)

    # -- queries ------------------------------------------------------------

    def entity(self, name: str) -> media.Entity:
        try:
            return self.topology.entity(name)
        except KeyError:
            names = ", ".join(e.name for e in self.topology.entities)
            raise KeyError(f"no entity {name!r} in {self.path} (entities: {names})") from None

    def devnode(self, entity_name: str) -> str | None:
        intf = self.topology.interface_of(self.entity(entity_name).id)
        return self.devnodes.get(intf.id) if intf else None

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
        )

    # -- rendering ------------------------------------------------------------

    def render(self) -> str:
        """Text in the layout of `media-ctl -p` (without formats)."""
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
        entity_by_id = {e.id: e for e in topo.entities}
        data_links = topo.data_links()
        for entity in sorted(topo.entities, key=lambda e: e.id):
            pads = topo.entity_pads(entity.id)
            pad_ids = {p.id for p in pads}
            links = [k for k in data_links if k.source_id in pad_ids or k.sink_id in pad_ids]
            out.append(
                f"- entity {entity.id}: {entity.name} "
                f"({_plural(len(pads), 'pad')}, {_plural(len(links), 'link')})"
            )
            out.append(f"            function {entity.function_name} flags {entity.flags}")
            intf = topo.interface_of(entity.id)
            if intf is not None:
                node = self.devnodes.get(intf.id, f"(char {intf.major}:{intf.minor}, no node)")
                out.append(f"            device node name {node}")
            for pad in pads:
                kind = format_flags(pad.flags, media.MEDIA_PAD_FL_NAMES).title()
                out.append(f"\tpad{pad.index}: {kind.replace(',', ', ')}")
                for link in links:
                    src, sink = pad_by_id.get(link.source_id), pad_by_id.get(link.sink_id)
                    if src is None or sink is None:
                        continue
                    flags = format_flags(
                        link.flags & ~media.MEDIA_LNK_FL_LINK_TYPE, media.MEDIA_LNK_FL_NAMES
                    )
                    if link.source_id == pad.id:
                        peer = entity_by_id[sink.entity_id].name
                        out.append(f'\t\t-> "{peer}":{sink.index} [{flags}]')
                    elif link.sink_id == pad.id:
                        peer = entity_by_id[src.entity_id].name
                        out.append(f'\t\t<- "{peer}":{src.index} [{flags}]')
            out.append("")
        return "\n".join(out)


def _version(code: int) -> tuple[int, int, int]:
    return (code >> 16) & 0xFF, (code >> 8) & 0xFF, code & 0xFF


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
