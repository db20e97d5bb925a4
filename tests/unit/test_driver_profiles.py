"""vivid, vim2m and vicodec as data: the nodes each profile holds, the stages
each node kind goes through, and what the target does with a queue's buffer
type. No VM: tests/vm/test_drivers.py streams and unbinds them for real."""

from __future__ import annotations

import pytest

from harness.pure.profiles import get_profile
from harness.pure.scenarios.matrix import build_matrix
from harness.pure.scenarios.model import (
    M2M_STAGES,
    STAGES_BY_QUEUE,
    Disruption,
    Drain,
    NodeKind,
    Queue,
    Scenario,
    Stage,
)
from harness.target.scenarios.nodes import BUF_TYPES
from harness.target.uapi import videodev2 as v4l2


def _stages(matrix: list[Scenario], entity: str) -> set[Stage]:
    return {h.stage for s in matrix for h in s.holds if h.entity == entity and len(s.holds) == 1}


def test_every_queue_that_streams_has_a_buffer_type_and_output_queues_are_outputs() -> None:
    assert set(BUF_TYPES) == {q for q in Queue if q.streams}
    outputs = {q for q, t in BUF_TYPES.items() if v4l2.is_output(t)}
    assert outputs == {Queue.VIDEO_OUTPUT, Queue.VBI_OUTPUT, Queue.META_OUTPUT}


def test_vivid_holds_every_node_kind_the_instance_makes_through_its_queue_stages() -> None:
    vivid = get_profile("vivid")
    matrix = build_matrix(vivid)
    names = [s.name for s in matrix]
    assert len(names) == len(set(names))
    queues = {n.queue for n in vivid.queue_nodes}
    assert queues == set(Queue) - {Queue.VIDEO_CAPTURE}  # capture is the capture path's
    streaming = set(STAGES_BY_QUEUE[Queue.VBI_CAPTURE]) - {Stage.BLOCKED_READ}
    for node in vivid.queue_nodes:
        want = streaming if node.queue.streams else {Stage.OPENED}
        assert _stages(matrix, node.name) == want, node.name
    # unbind and rmmod at every stage of a node that streams, output ones included
    for stage in streaming:
        for d in ("unbind", "rmmod", "unbind_bind"):
            assert f"video.vivid_000_vid_out-{stage.value}--{d}" in names
    assert "video.vivid_000_rad_rx-opened--unbind" in names
    assert "video.vivid_000_rad_rx-streaming--unbind" not in names


def test_vivid_has_the_stages_test_media_drives_as_named_scenarios() -> None:
    matrix = {s.name: s for s in build_matrix(get_profile("vivid"))}
    # unbind/rebind; unbind with every node held and one streaming; rmmod
    rebind = matrix["idle--unbind_bind"]
    held = matrix["all_nodes_open_streaming--unbind"]
    assert not rebind.holds
    assert matrix["idle--rmmod"].disruption is Disruption.RMMOD
    assert [h.stage for h in held.holds if h.stage is not Stage.OPENED] == [Stage.STREAMING]
    entities = {h.entity for h in held.holds}
    assert {"vivid-000-vid-out", "vivid-000-sdr-cap", "vivid-000-touch-cap",
            "vivid-000-meta-out", "vivid-000-rad-tx"} <= entities
    assert NodeKind.MEDIA in {h.kind for h in held.holds}
    assert matrix["all_nodes_open--unbind_rmmod"].disruption is Disruption.UNBIND_RMMOD


def test_vivid_is_loaded_as_one_small_instance() -> None:
    vivid = get_profile("vivid")
    assert vivid.modprobe_args("vivid")[0] == "vivid"
    options = dict(o.split("=") for o in vivid.modprobe_args("vivid")[1:])
    assert options["n_devs"] == "1"
    node_types = int(options["node_types"], 16)
    assert not node_types & 0x10000  # no framebuffer: it needs CONFIG_FB
    for bit in (0x1, 0x4, 0x10, 0x20, 0x100, 0x400, 0x1000, 0x20000, 0x40000, 0x80000):
        assert node_types & bit, hex(bit)


def test_vim2m_goes_through_every_m2m_stage_but_the_drain_it_has_no_command_for() -> None:
    matrix = build_matrix(get_profile("vim2m"))
    assert _stages(matrix, "vim2m-source") == set(M2M_STAGES) - {Stage.DRAINING}
    names = [s.name for s in matrix]
    assert "video.vim2m_source-blocked_dqbuf_capture--unbind" in names
    assert "video.vim2m_source-output_streaming--rmmod" in names
    assert "media-in_g_topology--unbind" in names  # the media node of an m2m device


@pytest.mark.parametrize(("entity", "drain", "stages"), [
    ("stateful-encoder-source", Drain.ENCODER, set(M2M_STAGES)),
    ("stateful-decoder-source", Drain.DECODER,
     {*M2M_STAGES[:4], Stage.OUTPUT_STREAMING, Stage.DRAINING}),
    ("stateless-decoder-source", Drain.NONE, set(M2M_STAGES[:4])),
])
def test_vicodec_nodes_are_each_a_kind_with_their_own_stages(
        entity: str, drain: Drain, stages: set[Stage]) -> None:
    vicodec = get_profile("vicodec")
    node = vicodec.m2m_node(entity)
    assert node is not None and node.drain is drain
    assert _stages(build_matrix(vicodec), entity) == stages


def test_a_drained_stage_needs_a_drain_command() -> None:
    for name in ("vim2m", "vicodec"):
        for node in get_profile(name).m2m_nodes:
            assert (Stage.DRAINING in node.stages) == (node.drain is not Drain.NONE), node


def test_m2m_stages_map_and_stream() -> None:
    for stage in M2M_STAGES[4:]:
        assert stage.maps_buffers and stage.streams
    assert Stage.BLOCKED_DQBUF_CAPTURE.blocking
    assert not Stage.DRAINING.blocking
