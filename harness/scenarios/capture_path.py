"""Make a capture node's upstream formats agree so that STREAMON succeeds.

vimc (like most MC drivers) validates every link of the pipeline at
STREAMON: each subdev sink pad must carry what the pad before it produces,
and the video node's pixel format must match the last bus format. This walks
the enabled links back from the capture entity to its source and propagates
the source's format forward.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from harness.device.graph import MediaGraph
from harness.errors import HarnessError
from harness.uapi import subdev
from harness.uapi import videodev2 as v4l2

# Bus format at the end of the pipeline -> the pixel format a capture node
# accepts for it (vimc-capture.c's pixel map, the common part).
PIXELFORMAT_FOR_BUS = {
    subdev.MEDIA_BUS_FMT_SBGGR8_1X8: v4l2.fourcc("BA81"),
    subdev.MEDIA_BUS_FMT_SGBRG8_1X8: v4l2.fourcc("GBRG"),
    subdev.MEDIA_BUS_FMT_SGRBG8_1X8: v4l2.fourcc("GRBG"),
    subdev.MEDIA_BUS_FMT_SRGGB8_1X8: v4l2.fourcc("RGGB"),
    subdev.MEDIA_BUS_FMT_RGB888_1X24: v4l2.fourcc("RGB3"),
    subdev.MEDIA_BUS_FMT_BGR888_1X24: v4l2.fourcc("BGR3"),
}


class PipelineError(HarnessError):
    pass


@dataclass(frozen=True)
class Hop:
    entity: str
    sink_pad: int | None  # None for the source entity
    source_pad: int


def upstream(graph: MediaGraph, capture: str) -> list[Hop]:
    """The subdevs feeding `capture` over enabled links, source first."""
    topo = graph.topology
    pads = {p.id: p for p in topo.pads}
    names = {e.id: e.name for e in topo.entities}
    data_links = topo.data_links()
    hops: list[Hop] = []
    entity_id = graph.entity(capture).id
    feeding_pad = 0  # source pad of the current entity that feeds the hop after it
    while True:
        sinks = {p.id: p for p in topo.entity_pads(entity_id) if p.is_sink}
        link = next((k for k in data_links if k.sink_id in sinks and k.enabled), None)
        if hops or entity_id != graph.entity(capture).id:
            sink_index = sinks[link.sink_id].index if link else None
            hops.append(Hop(names[entity_id], sink_index, feeding_pad))
        elif link is None:
            raise PipelineError(f"{capture}: no enabled link into its sink pad")
        if link is None:
            return hops[::-1]
        if len(hops) > len(topo.entities):
            raise PipelineError(f"{capture}: the pipeline loops")
        feeding_pad = pads[link.source_id].index
        entity_id = pads[link.source_id].entity_id


def configure(graph: MediaGraph, capture: str) -> v4l2.PixFormat:
    """Propagate formats from the source to `capture`; return the node's format."""
    fmt: subdev.MbusFormat | None = None
    for hop in upstream(graph, capture):
        node = graph.devnode(hop.entity)
        if node is None:
            raise PipelineError(f"{hop.entity}: no subdev node to configure")
        fd = os.open(node, os.O_RDWR | os.O_CLOEXEC)
        try:
            if hop.sink_pad is not None and fmt is not None:
                want = subdev.MbusFormat(width=fmt.width, height=fmt.height, code=fmt.code,
                                         field=fmt.field)
                got = subdev.s_fmt(fd, hop.sink_pad, want)
                if (got.code, got.width, got.height) != (want.code, want.width, want.height):
                    raise PipelineError(
                        f"{hop.entity} pad {hop.sink_pad}: wanted {want.code_name} "
                        f"{want.width}x{want.height}, driver set {got.code_name} "
                        f"{got.width}x{got.height}"
                    )
            fmt = subdev.g_fmt(fd, hop.source_pad)
        finally:
            os.close(fd)
    assert fmt is not None
    pixelformat = PIXELFORMAT_FOR_BUS.get(fmt.code)
    if pixelformat is None:
        raise PipelineError(f"{capture}: no pixel format for bus format {fmt.code_name}")
    node = graph.devnode(capture)
    fd = os.open(node, os.O_RDWR | os.O_CLOEXEC)
    try:
        got = v4l2.s_fmt(fd, v4l2.PixFormat(fmt.width, fmt.height, pixelformat))
    finally:
        os.close(fd)
    if got.pixelformat != pixelformat:
        raise PipelineError(
            f"{capture}: wanted {v4l2.fourcc_str(pixelformat)}, driver set "
            f"{v4l2.fourcc_str(got.pixelformat)}"
        )
    return got

