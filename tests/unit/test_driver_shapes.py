"""The matrix for driver shapes other than vimc's (no subdev node, two media
devices, a memory-to-memory node), and the profiles' quirks as data."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from harness.pure.profiles import DriverProfile, M2MNode, get_profile
from harness.pure.profiles.vimc import VIMC
from harness.pure.scenarios.matrix import build_matrix
from harness.pure.scenarios.model import After, Disruption, NodeKind, Scenario, Stage
from harness.target.device.graph import MediaGraph
from harness.target.device.pipeline import MediaGraphs, PipelineError
from harness.target.uapi import media

DATA = Path(__file__).resolve().parents[1] / "data"

# uvcvideo-like: one capture node, a media device, no subdev node.
NO_SUBDEV = DriverProfile(name="no-subdev", modules=("uvc",), bus="usb", driver="uvcvideo",
                          entities=("Camera", "Camera 1"), capture_entities=("Camera 1",))
# Two instances, each with its own media device (vivid with n_devs=2).
TWO_MEDIA = DriverProfile(name="two-media", modules=("viv",), bus="platform", driver="viv",
                          entities=("viv-000-vid-cap", "viv-001-vid-cap"),
                          capture_entities=("viv-000-vid-cap", "viv-001-vid-cap"),
                          media_entities=("viv-000-vid-cap", "viv-001-vid-cap"))
# vim2m: one memory-to-memory video node, nothing to capture from.
M2M = DriverProfile(name="m2m", modules=("vim2m",), bus="platform", driver="vim2m",
                    entities=("vim2m-source", "vim2m-proc", "vim2m-sink"),
                    m2m_nodes=(M2MNode("vim2m-source"),))


def _names(profile: DriverProfile) -> list[str]:
    matrix = build_matrix(profile)
    names = [s.name for s in matrix]
    assert len(names) == len(set(names))
    return names


def test_a_driver_without_subdev_nodes_holds_video_and_media() -> None:
    matrix = build_matrix(NO_SUBDEV)
    assert {h.kind for s in matrix for h in s.holds} == {NodeKind.VIDEO, NodeKind.MEDIA}
    names = _names(NO_SUBDEV)
    assert "video.camera_1-blocked_dqbuf--unbind" in names
    assert "media-in_g_topology--rmmod" in names
    everything = next(s for s in matrix if s.name == "all_nodes_open--unbind")
    assert [h.label for h in everything.holds] == ["media-opened", "video.camera_1-opened"]


def test_two_media_devices_are_each_held_by_one_of_their_entities() -> None:
    matrix = build_matrix(TWO_MEDIA)
    names = _names(TWO_MEDIA)
    # every stage on the first media device, opened on the other
    assert "media.viv_000_vid_cap-in_setup_link--unbind" in names
    assert "media.viv_001_vid_cap-opened--unbind" in names
    assert not any(n.startswith("media-") for n in names)  # never "the" media device
    everything = next(s for s in matrix if s.name == "all_nodes_open--unbind")
    media = [h.entity for h in everything.holds if h.kind is NodeKind.MEDIA]
    assert media == ["viv-000-vid-cap", "viv-001-vid-cap"]


def test_a_memory_to_memory_node_streams_only_as_its_own_stages() -> None:
    matrix = build_matrix(M2M)
    video = {h.stage for s in matrix for h in s.holds if h.kind is NodeKind.VIDEO}
    assert video == {Stage.OPENED, Stage.FORMAT_SET, Stage.BUFFERS_REQUESTED,
                     Stage.BUFFERS_MMAPPED, Stage.OUTPUT_STREAMING, Stage.BOTH_STREAMING,
                     Stage.BLOCKED_DQBUF_CAPTURE}
    names = _names(M2M)
    assert "video.vim2m_source-buffers_mmapped--unbind" in names
    # nothing to capture from: no capture streaming stage or group, and a
    # rebind does not restream
    assert not any(n.endswith(("-streaming--unbind",)) or "all_nodes_open_streaming" in n
                   for n in names)
    rebound = next(s for s in matrix if s.name == "idle--unbind_bind")
    assert After.REOPEN in rebound.after and After.RESTREAM not in rebound.after


def test_disruptions_a_driver_lacks_are_not_in_its_matrix() -> None:
    only_rmmod = replace(NO_SUBDEV, disruptions=(Disruption.RMMOD,))
    matrix = build_matrix(only_rmmod)
    assert {s.disruption for s in matrix} == {Disruption.RMMOD}
    # everything held goes with the module when it cannot be unbound
    assert "all_nodes_open--rmmod" in {s.name for s in matrix}


def test_read_is_a_stage_only_for_a_driver_that_says_so() -> None:
    reads = replace(NO_SUBDEV, stages=tuple(Stage))
    assert "video.camera_1-blocked_read--unbind" in _names(reads)
    assert not any("blocked_read" in n for n in _names(NO_SUBDEV))


@pytest.mark.parametrize("name", ["vimc", "rcar-vin", "rcar-vin-salvator-x"])
def test_the_shipped_profiles_matrices_are_unchanged(name: str) -> None:
    """Every scenario (name, holds, after-actions, tags, order) as the matrix made
    them before the profiles described their shape as data."""
    recorded = [json.loads(line) for line in
                (DATA / f"matrix-{name}.jsonl").read_text().splitlines()]
    assert [s.to_dict() for s in build_matrix(get_profile(name))] == recorded
    assert [Scenario.from_dict(d) for d in recorded] == build_matrix(get_profile(name))


def test_vimc_is_the_default_shape() -> None:
    assert VIMC.disruptions == tuple(Disruption)
    assert Stage.BLOCKED_READ not in VIMC.stages and not VIMC.media_entities


def _one_node_graph(path: str, entity: str, node: str) -> MediaGraph:
    """A media device with one video entity and its interface."""
    topology = media.Topology(
        1, (media.Entity(1, entity, media.MEDIA_ENT_F_IO_V4L, 0),),
        (media.Interface(2, media.MEDIA_INTF_T_V4L_VIDEO, 0, 81, 0),),
        (media.Pad(3, 1, media.MEDIA_PAD_FL_SINK, 0),),
        (media.Link(4, 2, 1, media.MEDIA_LNK_FL_INTERFACE_LINK | media.MEDIA_LNK_FL_ENABLED),))
    info = media.DeviceInfo("viv", "viv", "", "platform:viv", 0x060100, 0, 0x060100)
    return MediaGraph(path, info, topology, {2: node})


def test_several_media_devices_are_found_by_entity_and_counted_in_the_node_set() -> None:
    graphs = MediaGraphs((_one_node_graph("/dev/media0", "viv-000-vid-cap", "/dev/video0"),
                          _one_node_graph("/dev/media1", "viv-001-vid-cap", "/dev/video3")))
    assert graphs.media("viv-001-vid-cap").path == "/dev/media1"
    assert graphs.devnode("viv-001-vid-cap") == "/dev/video3"
    with pytest.raises(PipelineError, match="2 media devices"):
        graphs.media()  # no "first" media device: a hold must name one
    with pytest.raises(PipelineError, match="'nope'"):
        graphs.media("nope")
    assert graphs.node_set() == {"(media 1)": "/dev/media0", "viv-000-vid-cap": "/dev/video0",
                                 "(media 2)": "/dev/media1", "viv-001-vid-cap": "/dev/video3"}
    one = MediaGraphs(graphs.graphs[:1])
    assert one.media().path == "/dev/media0" and "(media)" in one.node_set()
