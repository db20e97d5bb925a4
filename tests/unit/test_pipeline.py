"""Pipeline planning from profile data, link checks, their error lines, and the
media-ctl rendering of a graph, on a graph shaped like vimc's default topology
in Linux 6.1 (vimc-core.c's ent_config and data_links)."""

from __future__ import annotations

import dataclasses

import pytest

from harness.pure.profiles import CapturePath, DriverProfile, LinkSetting, PadSetting
from harness.pure.profiles.vimc import VIMC
from harness.target.device.graph import MediaGraph
from harness.target.device.pipeline import (
    DriverNotLoaded,
    LinkMismatch,
    NotACaptureNode,
    PipelineError,
    capture_nodes,
    link_mismatches,
    media_device,
    plan,
)
from harness.target.device.subdev import PadState, code_from_name, render_pad
from harness.target.uapi import media, subdev
from harness.target.uapi import videodev2 as v4l2

EN, IM = media.MEDIA_LNK_FL_ENABLED, media.MEDIA_LNK_FL_IMMUTABLE
SRGB = v4l2.V4L2_COLORSPACE_SRGB

# name, function, node kind, pads (flags in index order)
ENTITIES = (
    ("Sensor A", media.MEDIA_ENT_F_CAM_SENSOR, "subdev", ("source",)),
    ("Sensor B", media.MEDIA_ENT_F_CAM_SENSOR, "subdev", ("source",)),
    ("Debayer A", media.MEDIA_ENT_F_PROC_VIDEO_PIXEL_ENC_CONV, "subdev", ("sink", "source")),
    ("Debayer B", media.MEDIA_ENT_F_PROC_VIDEO_PIXEL_ENC_CONV, "subdev", ("sink", "source")),
    ("Raw Capture 0", media.MEDIA_ENT_F_IO_V4L, "video", ("sink",)),
    ("Raw Capture 1", media.MEDIA_ENT_F_IO_V4L, "video", ("sink",)),
    ("RGB/YUV Input", media.MEDIA_ENT_F_CAM_SENSOR, "subdev", ("source",)),
    ("Scaler", media.MEDIA_ENT_F_PROC_VIDEO_SCALER, "subdev", ("sink", "source")),
    ("RGB/YUV Capture", media.MEDIA_ENT_F_IO_V4L, "video", ("sink",)),
    ("Lens A", media.MEDIA_ENT_F_LENS, "subdev", ()),
    ("Lens B", media.MEDIA_ENT_F_LENS, "subdev", ()),
)
LINKS = (
    ("Sensor A", 0, "Debayer A", 0, EN | IM),
    ("Sensor A", 0, "Raw Capture 0", 0, EN | IM),
    ("Sensor B", 0, "Debayer B", 0, EN | IM),
    ("Sensor B", 0, "Raw Capture 1", 0, EN | IM),
    ("Debayer A", 1, "Scaler", 0, EN),
    ("Debayer B", 1, "Scaler", 0, 0),
    ("RGB/YUV Input", 0, "Scaler", 0, 0),
    ("Scaler", 1, "RGB/YUV Capture", 0, EN | IM),
)
# vimc's formats after modprobe: sensors RGB888, debayer sinks SRGGB8
DEFAULT_FORMATS = {
    ("Sensor A", 0): "RGB888_1X24", ("Sensor B", 0): "RGB888_1X24",
    ("Debayer A", 0): "SRGGB8_1X8", ("Debayer A", 1): "RGB888_1X24",
    ("Debayer B", 0): "SRGGB8_1X8", ("Debayer B", 1): "RGB888_1X24",
    ("RGB/YUV Input", 0): "RGB888_1X24", ("Scaler", 0): "RGB888_1X24",
    ("Scaler", 1): "RGB888_1X24",
}


def vimc_graph(
    formats: dict[tuple[str, int], str | tuple[str, int, int]] | None = None,
    link_flags: dict[tuple[str, str], int] | None = None,
) -> MediaGraph:
    """A MediaGraph with vimc's entities, pads, links, nodes and pad states; `formats`
    overrides a pad's code (or code, width, height), `link_flags` a link's flags."""
    ids = iter(range(1, 1000))
    entities, pads, interfaces, links, devnodes = [], [], [], [], {}
    entity_id, pad_id = {}, {}
    videos = subdevs = 0
    for name, function, kind, pad_kinds in ENTITIES:
        eid = next(ids)
        entity_id[name] = eid
        entities.append(media.Entity(eid, name, function, 0))
        for index, pk in enumerate(pad_kinds):
            pid = next(ids)
            pad_id[(name, index)] = pid
            flags = media.MEDIA_PAD_FL_SINK if pk == "sink" else media.MEDIA_PAD_FL_SOURCE
            pads.append(media.Pad(pid, eid, flags, index))
        iid = next(ids)
        if kind == "video":
            intf_type, node, minor = media.MEDIA_INTF_T_V4L_VIDEO, f"/dev/video{videos}", videos
            videos += 1
        else:
            intf_type, node = media.MEDIA_INTF_T_V4L_SUBDEV, f"/dev/v4l-subdev{subdevs}"
            minor = 3 + subdevs
            subdevs += 1
        interfaces.append(media.Interface(iid, intf_type, 0, 81, minor))
        devnodes[iid] = node
        links.append(media.Link(next(ids), iid, eid, media.MEDIA_LNK_FL_INTERFACE_LINK | EN))
    for src, spad, sink, tpad, flags in LINKS:
        flags = (link_flags or {}).get((src, sink), flags)
        links.append(media.Link(next(ids), pad_id[(src, spad)], pad_id[(sink, tpad)], flags))
    states = {}
    for (name, pad), code in {**DEFAULT_FORMATS, **(formats or {})}.items():
        code, width, height = (code, 640, 480) if isinstance(code, str) else code
        fmt = subdev.MbusFormat(width, height, code_from_name(code), v4l2.V4L2_FIELD_NONE, SRGB)
        states[(entity_id[name], pad)] = PadState(fmt)
    topology = media.Topology(1, tuple(entities), tuple(interfaces), tuple(pads), tuple(links))
    info = media.DeviceInfo("vimc", "VIMC MDEV", "", "platform:vimc", 0x060100, 0, 0x060100)
    return MediaGraph("/dev/media0", info, topology, devnodes, {}, states)


def steps(p) -> list[tuple[str, int, str, int, int]]:
    return [(s.entity, s.pad, s.code, s.width, s.height) for s in p.pads]


# -- planning ---------------------------------------------------------------------------


def test_raw_capture_keeps_the_scaler_out_and_sets_the_sensor_to_bayer() -> None:
    p = plan(vimc_graph(), VIMC, "Raw Capture 0")
    assert p.component == ("Sensor A", "Debayer A", "Raw Capture 0")
    assert [(k.source, k.sink, k.enabled) for k in p.links] == [("Debayer A", "Scaler", False)]
    assert steps(p) == [
        ("Sensor A", 0, "SGRBG8_1X8", 640, 480),
        # the immutable link to the debayer is validated too, so its sink must agree
        ("Debayer A", 0, "SGRBG8_1X8", 640, 480),
    ]
    assert p.target == p.videos[0]
    assert (p.target.entity, p.target.fourcc, p.target.width, p.target.height) == (
        "Raw Capture 0", "GRBG", 640, 480)


def test_rgb_capture_at_another_size_scales_and_sets_every_node_it_validates() -> None:
    p = plan(vimc_graph(), VIMC, "RGB/YUV Capture", (320, 240))
    assert p.component == ("Sensor A", "Debayer A", "Raw Capture 0", "Scaler", "RGB/YUV Capture")
    assert steps(p) == [
        ("Sensor A", 0, "SGRBG8_1X8", 640, 480),  # the sensor stays at its default size
        ("Debayer A", 0, "SGRBG8_1X8", 640, 480),
        ("Debayer A", 1, "RGB888_1X24", 640, 480),
        ("Scaler", 0, "RGB888_1X24", 640, 480),  # sink before source: S_FMT on the sink
        ("Scaler", 1, "RGB888_1X24", 320, 240),  # resets the source in vimc-scaler.c
    ]
    assert [v.describe() for v in p.videos] == [
        '"Raw Capture 0" [GRBG 640x480]',  # on the other branch, validated as well
        '"RGB/YUV Capture" [RGB3 320x240]',
    ]
    # disable the other scaler inputs before enabling the wanted one
    assert p.describe()[:3] == [
        "-l '\"Debayer B\":1 -> \"Scaler\":0 [0]'",
        "-l '\"RGB/YUV Input\":0 -> \"Scaler\":0 [0]'",
        "-l '\"Debayer A\":1 -> \"Scaler\":0 [1]'",
    ]


def test_raw_capture_at_another_size_sizes_the_sensor() -> None:
    p = plan(vimc_graph(), VIMC, "Raw Capture 1", (320, 240))
    assert steps(p) == [("Sensor B", 0, "SBGGR8_1X8", 320, 240),
                        ("Debayer B", 0, "SBGGR8_1X8", 320, 240)]
    assert p.target.describe() == '"Raw Capture 1" [BA81 320x240]'


@pytest.mark.parametrize("size", [VIMC.default_size, *VIMC.other_sizes])
@pytest.mark.parametrize("capture", VIMC.capture_entities)
def test_every_capture_node_of_the_profile_plans_at_every_size(
    capture: str, size: tuple[int, int]
) -> None:
    p = plan(vimc_graph(), VIMC, capture, size)
    assert (p.target.width, p.target.height) == size
    assert p.to_dict()["capture"] == capture


def test_the_plan_is_pure() -> None:
    graph = vimc_graph()
    before = graph.to_dict()
    plan(graph, VIMC, "RGB/YUV Capture")
    assert graph.to_dict() == before


def test_a_source_pad_with_nothing_declared_keeps_its_current_code() -> None:
    profile = dataclasses.replace(VIMC, capture_paths=(
        CapturePath("Raw Capture 1", links=(LinkSetting("Debayer B", 1, "Scaler", 0, False),)),
    ))
    graph = vimc_graph({("Sensor B", 0): "SRGGB8_1X8"})
    p = plan(graph, profile, "Raw Capture 1")
    assert steps(p)[0] == ("Sensor B", 0, "SRGGB8_1X8", 640, 480)
    assert p.target.fourcc == "RGGB"


# -- errors: one line naming the entity and pad -----------------------------------------


def test_a_subdev_is_not_a_capture_node() -> None:
    with pytest.raises(NotACaptureNode) as err:
        plan(vimc_graph(), VIMC, "Scaler")
    assert str(err.value) == (
        "'Scaler' is not a capture node: it is a Video Scaler (/dev/v4l-subdev5); "
        "capture nodes: Raw Capture 0, Raw Capture 1, RGB/YUV Capture"
    )


def test_an_unknown_entity_is_not_a_capture_node() -> None:
    with pytest.raises(NotACaptureNode, match=r"'Raw Capture 9' is not an entity of "
                                              r"/dev/media0 \(capture nodes: Raw Capture 0"):
        plan(vimc_graph(), VIMC, "Raw Capture 9")


def test_capture_nodes_are_video_entities_with_a_sink() -> None:
    assert capture_nodes(vimc_graph()) == ["Raw Capture 0", "Raw Capture 1", "RGB/YUV Capture"]


def test_a_profile_without_a_path_for_the_node() -> None:
    profile = dataclasses.replace(VIMC, capture_paths=())
    with pytest.raises(PipelineError, match="profile vimc does not say how to stream "
                                            "'Raw Capture 0' \\(capture paths: none\\)"):
        plan(vimc_graph(), profile, "Raw Capture 0")


def test_a_setting_that_fights_an_immutable_link() -> None:
    profile = dataclasses.replace(VIMC, capture_paths=(
        CapturePath("Raw Capture 0", links=(LinkSetting("Sensor A", 0, "Debayer A", 0, False),)),
    ))
    with pytest.raises(PipelineError) as err:
        plan(vimc_graph(), profile, "Raw Capture 0")
    assert str(err.value) == ('link "Sensor A":0 -> "Debayer A":0 [0]: the link is immutable '
                              "and enabled")


def test_a_setting_for_a_link_that_does_not_exist() -> None:
    profile = dataclasses.replace(VIMC, capture_paths=(
        CapturePath("Raw Capture 0", links=(LinkSetting("Sensor A", 0, "Scaler", 0),)),
    ))
    with pytest.raises(PipelineError, match=r'link "Sensor A":0 -> "Scaler":0 \[1\]: no such '
                                            r"link in /dev/media0"):
        plan(vimc_graph(), profile, "Raw Capture 0")


def test_a_bus_code_the_profile_has_no_pixel_format_for() -> None:
    profile = dataclasses.replace(VIMC, pixelformats=(("SBGGR8_1X8", "BA81"),))
    with pytest.raises(PipelineError) as err:
        plan(vimc_graph(), profile, "Raw Capture 0")
    assert str(err.value) == ('Raw Capture 0: no pixel format for SGRBG8_1X8 arriving from '
                              '"Sensor A":0 (profile vimc maps SBGGR8_1X8)')


def test_a_declared_sink_code_that_upstream_does_not_carry() -> None:
    path = dataclasses.replace(VIMC.capture_path("Raw Capture 0"), pads=(
        PadSetting("Sensor A", 0, "SGRBG8_1X8"), PadSetting("Debayer A", 0, "SBGGR8_1X8")))
    profile = dataclasses.replace(VIMC, capture_paths=(path,))
    with pytest.raises(PipelineError) as err:
        plan(vimc_graph(), profile, "Raw Capture 0")
    assert str(err.value) == ('"Debayer A":0: profile vimc says SBGGR8_1X8, but "Sensor A":0 '
                              "carries SGRBG8_1X8")


def test_a_declared_pad_outside_the_pipeline() -> None:
    path = dataclasses.replace(VIMC.capture_path("Raw Capture 0"),
                               pads=(PadSetting("Scaler", 1, "RGB888_1X24"),))
    profile = dataclasses.replace(VIMC, capture_paths=(path,))
    with pytest.raises(PipelineError, match=r'"Scaler":1 is set for Raw Capture 0, but '
                                            r"Scaler is not connected to it"):
        plan(vimc_graph(), profile, "Raw Capture 0")


def test_two_enabled_links_into_one_sink_pad() -> None:
    graph = vimc_graph(link_flags={("Debayer B", "Scaler"): EN})
    profile = dataclasses.replace(VIMC, capture_paths=(CapturePath("RGB/YUV Capture"),))
    with pytest.raises(PipelineError, match=r'"Scaler":0: more than one enabled link into it '
                                            r'\("Debayer A":1, "Debayer B":1\)'):
        plan(graph, profile, "RGB/YUV Capture")


def test_driver_not_loaded() -> None:
    profile = DriverProfile(name="nodrv", modules=("nodrv",), bus="platform", driver="nodrv")
    with pytest.raises(DriverNotLoaded) as err:
        media_device(profile)
    assert str(err.value) == ("driver nodrv is not loaded: no device is bound to "
                              "/sys/bus/platform/drivers/nodrv (load it with modprobe nodrv)")


# -- checking links as STREAMON will ----------------------------------------------------


def configured_raw0() -> tuple[MediaGraph, dict[str, v4l2.PixFormat]]:
    graph = vimc_graph({("Sensor A", 0): "SGRBG8_1X8", ("Debayer A", 0): "SGRBG8_1X8"},
                       {("Debayer A", "Scaler"): 0})
    return graph, {"Raw Capture 0": v4l2.PixFormat(640, 480, v4l2.fourcc("GRBG"))}


def test_a_configured_pipeline_has_no_mismatch() -> None:
    graph, videos = configured_raw0()
    assert link_mismatches(graph, VIMC, "Raw Capture 0", videos) == []


def test_wrong_format_on_the_link_into_the_capture_node() -> None:
    graph, _ = configured_raw0()
    videos = {"Raw Capture 0": v4l2.PixFormat(640, 480, v4l2.fourcc("RGB3"))}
    assert link_mismatches(graph, VIMC, "Raw Capture 0", videos) == [
        'link "Sensor A":0 -> "Raw Capture 0":0: source carries SGRBG8_1X8/640x480, '
        "Raw Capture 0 is set to RGB3 640x480 (needs GRBG 640x480)"
    ]


def test_wrong_format_between_two_subdevs() -> None:
    graph = vimc_graph({("Sensor A", 0): "SGRBG8_1X8", ("Debayer A", 0): ("SGRBG8_1X8", 320, 240)},
                       {("Debayer A", "Scaler"): 0})
    videos = {"Raw Capture 0": v4l2.PixFormat(640, 480, v4l2.fourcc("GRBG"))}
    assert link_mismatches(graph, VIMC, "Raw Capture 0", videos) == [
        'link "Sensor A":0 -> "Debayer A":0: source carries SGRBG8_1X8/640x480, sink is set '
        "to SGRBG8_1X8/320x240"
    ]


def test_default_vimc_does_not_validate_for_raw_capture() -> None:
    # After modprobe the sensor sends RGB888 while the debayer expects Bayer: this is
    # why vimc does not stream until its pipeline is configured.
    found = link_mismatches(vimc_graph(), VIMC, "Raw Capture 0",
                            {"Raw Capture 0": v4l2.PixFormat(640, 480, v4l2.fourcc("RGB3")),
                             "RGB/YUV Capture": v4l2.PixFormat(640, 480, v4l2.fourcc("RGB3"))})
    assert found == ['link "Sensor A":0 -> "Debayer A":0: source carries RGB888_1X24/640x480, '
                     "sink is set to SRGGB8_1X8/640x480"]


def test_link_mismatch_is_a_pipeline_error() -> None:
    assert issubclass(LinkMismatch, PipelineError)


# -- media-ctl rendering ----------------------------------------------------------------


def test_render_reads_like_media_ctl() -> None:
    graph = vimc_graph()
    scaler = graph.entity("Scaler").id
    graph.pad_states[(scaler, 0)] = dataclasses.replace(
        graph.pad_states[(scaler, 0)],
        selections={"crop.bounds": (0, 0, 640, 480), "crop": (32, 16, 320, 240)})
    text = graph.render()
    assert text.startswith("Media controller API version 6.1.0\n\nMedia device information\n")
    assert "\nserial          \n" in text
    scaler_block = text[text.index(f"- entity {scaler}: Scaler"):]
    scaler_block = scaler_block[:scaler_block.index("\n\n")]
    pad = " " * len(f"- entity {scaler}: ")
    assert scaler_block.split("\n") == [
        f"- entity {scaler}: Scaler (2 pads, 4 links)",
        f"{pad}type V4L2 subdev subtype Unknown flags 0",
        f"{pad}device node name /dev/v4l-subdev5",
        "\tpad0: Sink",
        "\t\t[fmt:RGB888_1X24/640x480 field:none colorspace:srgb",
        "\t\t crop.bounds:(0,0)/640x480",
        "\t\t crop:(32,16)/320x240]",
        '\t\t<- "Debayer A":1 [ENABLED]',
        '\t\t<- "Debayer B":1 []',
        '\t\t<- "RGB/YUV Input":0 []',
        "\tpad1: Source",
        "\t\t[fmt:RGB888_1X24/640x480 field:none colorspace:srgb]",
        '\t\t-> "RGB/YUV Capture":0 [ENABLED,IMMUTABLE]',
    ]
    # media-ctl's singular for zero, and the legacy type mapped from the function
    lens = graph.entity("Lens A").id
    assert f"- entity {lens}: Lens A (0 pad, 0 link)\n" in text
    assert "type V4L2 subdev subtype Lens flags 0" in text
    assert "type Node subtype V4L flags 0" in text
    assert text.endswith("\n\n")


def test_render_uses_the_legacy_entity_type_when_it_was_read() -> None:
    graph = vimc_graph()
    sensor = graph.entity("Sensor A")
    graph.entity_descs[sensor.id] = media.EntityDesc(
        sensor.id, "Sensor A", media.MEDIA_ENT_T_V4L2_SUBDEV_SENSOR, 0x3, 1, 2, 81, 3)
    assert "type V4L2 subdev subtype Sensor flags 3\n" in graph.render()


def test_graph_with_pad_states_survives_transport() -> None:
    graph = vimc_graph()
    graph.entity_descs[1] = media.EntityDesc(1, "Sensor A", media.MEDIA_ENT_T_V4L2_SUBDEV_SENSOR,
                                             0, 1, 2, 81, 3)
    again = MediaGraph.from_dict(graph.to_dict())
    assert again.render() == graph.render()
    assert again.pad_states == graph.pad_states


@pytest.mark.parametrize(("state", "lines"), [
    (PadState(subdev.MbusFormat(640, 480, code_from_name("SBGGR8_1X8"))),
     ["\t\t[fmt:SBGGR8_1X8/640x480 field:none]"]),
    (PadState(subdev.MbusFormat(1920, 1080, code_from_name("UYVY8_1X16"), 4, 3, 1, 2, 1),
              interval=(1, 30)),
     ["\t\t[fmt:UYVY8_1X16/1920x1080@1/30 field:interlaced colorspace:rec709 xfer:709 "
      "ycbcr:601 quantization:lim-range]"]),
    (PadState(subdev.MbusFormat(64, 64, 0xFFFF, 0, 0, xfer_func=1),
              selections={"compose": (-2, 0, 64, 64)}),
     ["\t\t[fmt:unknown/64x64", "\t\t compose:(4294967294,0)/64x64]"]),
])
def test_pad_format_lines(state: PadState, lines: list[str]) -> None:
    assert render_pad(state) == lines
