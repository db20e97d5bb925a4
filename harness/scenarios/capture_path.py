"""Make the formats of a capture node's whole pipeline agree, so STREAMON works.

At STREAMON the media core validates every enabled link of the connected
graph, not only the path to the node being started: on vimc, streaming Raw
Capture 0 also validates Sensor A -> Debayer A -> Scaler -> RGB/YUV Capture.
So this picks a bus code for each source entity that every sink pad
downstream accepts unchanged, propagates formats along all enabled links in
graph order, and gives each capture node the pixel format of what reaches it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from harness.device.graph import MediaGraph
from harness.errors import HarnessError
from harness.uapi import subdev
from harness.uapi import videodev2 as v4l2

# Bus format reaching a capture node -> the pixel format the node must be set
# to (vimc-capture.c's pixel map, the part vimc's default pipeline produces).
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


@contextmanager
def _opened(path: str) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def component(graph: MediaGraph, entity: str) -> list[int]:
    """Entity ids connected to `entity` by enabled data links, sources first."""
    topo = graph.topology
    pads = {p.id: p for p in topo.pads}
    edges = [(pads[k.source_id].entity_id, pads[k.sink_id].entity_id)
             for k in topo.data_links() if k.enabled]
    seen, todo = set(), [graph.entity(entity).id]
    while todo:
        e = todo.pop()
        if e not in seen:
            seen.add(e)
            todo += [b for a, b in edges if a == e] + [a for a, b in edges if b == e]
    order: list[int] = []
    while len(order) < len(seen):  # Kahn's order on the component
        ready = [e for e in sorted(seen - set(order))
                 if all(a in order for a, b in edges if b == e and a in seen)]
        if not ready:
            raise PipelineError(f"{entity}: the pipeline has a cycle")
        order += ready
    return order


def _propagate(graph: MediaGraph, order: list[int]) -> dict[int, subdev.MbusFormat]:
    """Set every subdev sink pad to what its enabled upstream link carries;
    return the format arriving at each capture (video) entity."""
    topo = graph.topology
    pads = {p.id: p for p in topo.pads}
    names = {e.id: e.name for e in topo.entities}
    arriving: dict[int, subdev.MbusFormat] = {}
    out_fmt: dict[int, subdev.MbusFormat] = {}  # source pad id -> format
    for eid in order:
        name = names[eid]
        node = graph.devnode(name)
        incoming = [k for k in topo.data_links() if k.enabled and pads[k.sink_id].entity_id == eid]
        is_subdev = node is not None and "v4l-subdev" in node
        if not is_subdev:
            for k in incoming:
                arriving[eid] = out_fmt[k.source_id]
            continue
        with _opened(node) as fd:
            for k in incoming:
                want = out_fmt[k.source_id]
                sink = pads[k.sink_id].index
                got = subdev.s_fmt(fd, sink, want)
                if (got.code, got.width, got.height) != (want.code, want.width, want.height):
                    raise PipelineError(
                        f"{name} pad {sink}: wanted {want.code_name} {want.width}x{want.height}"
                        f", driver set {got.code_name} {got.width}x{got.height}"
                    )
            for pad in topo.entity_pads(eid):
                if pad.is_source:
                    out_fmt[pad.id] = subdev.g_fmt(fd, pad.index)
    return arriving


def configure(graph: MediaGraph, capture: str) -> v4l2.PixFormat:
    """Formats agreed across `capture`'s pipeline; return the node's pixel format."""
    order = component(graph, capture)
    topo = graph.topology
    pads = {p.id: p for p in topo.pads}
    sources = [e for e in order
               if not any(k.enabled and pads[k.sink_id].entity_id == e for k in topo.data_links())
               and any(p.is_source for p in topo.entity_pads(e))]
    names = {e.id: e.name for e in topo.entities}
    if len(sources) != 1:
        raise PipelineError(f"{capture}: expected one source entity, found "
                            f"{[names[s] for s in sources]}")
    source = names[sources[0]]
    with _opened(graph.devnode(source)) as fd:
        current = subdev.g_fmt(fd, 0)
        codes = [current.code] + [c.code for c in subdev.enum_mbus_codes(fd, 0)
                                  if c.code != current.code]
    errors = []
    for code in codes:
        if code not in PIXELFORMAT_FOR_BUS and code != current.code:
            continue
        with _opened(graph.devnode(source)) as fd:
            subdev.s_fmt(fd, 0, subdev.MbusFormat(current.width, current.height, code,
                                                  field=current.field))
        try:
            arriving = _propagate(graph, order)
            missing = [names[e] for e, f in arriving.items() if f.code not in PIXELFORMAT_FOR_BUS]
            if missing:
                raise PipelineError(f"no pixel format for what reaches {missing}")
        except PipelineError as e:
            errors.append(f"{subdev.mbus_code_name(code)}: {e}")
            continue
        result = None
        for eid, fmt in arriving.items():
            want = v4l2.PixFormat(fmt.width, fmt.height, PIXELFORMAT_FOR_BUS[fmt.code])
            with _opened(graph.devnode(names[eid])) as fd:
                got = v4l2.s_fmt(fd, want)
            if (got.pixelformat, got.width, got.height) != (want.pixelformat, want.width,
                                                            want.height):
                raise PipelineError(
                    f"{names[eid]}: wanted {v4l2.fourcc_str(want.pixelformat)} "
                    f"{want.width}x{want.height}, driver set {v4l2.fourcc_str(got.pixelformat)} "
                    f"{got.width}x{got.height}"
                )
            if names[eid] == capture:
                result = got
        if result is None:
            raise PipelineError(f"{capture} is not a capture node of its pipeline")
        return result
    raise PipelineError(f"{capture}: no bus format of {source} works downstream: "
                        + "; ".join(errors))
