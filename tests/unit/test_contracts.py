"""Contracts judge gathered evidence (no device): each row's check, the order
results are reported in, and the scenario record that carries them to the host."""

from __future__ import annotations

import json

from harness.pure.profiles.vimc import VIMC
from harness.pure.scenarios.contracts import judge
from harness.pure.scenarios.evidence import (
    CallEvidence,
    CallRecord,
    Evidence,
    LeftBehind,
    NodeEvidence,
    Recovery,
    StepRecord,
)
from harness.pure.scenarios.matrix import build_matrix
from harness.pure.scenarios.model import NodeKind
from harness.pure.scenarios.record import ScenarioRecord, Status

BY_NAME = {s.name: s for s in build_matrix(VIMC)}
NODES = {"(media)": "/dev/media0", "Raw Capture 0": "/dev/video0"}


def _evidence(name: str, **kw: object) -> Evidence:
    ev = Evidence(BY_NAME[name], [StepRecord("unbind", "vimc.0", 0.01, "ok")])
    ev.left_behind = LeftBehind("vimc", [], [], 0)
    ev.recovery = Recovery(NODES, dict(NODES))
    for key, value in kw.items():
        setattr(ev, key, value)
    return ev


def _dqbuf(latency: float | None, ended: bool = True, lost: bool = True) -> CallEvidence:
    return CallEvidence(CallRecord("video.raw_capture_0-blocked_dqbuf", "VIDIOC_DQBUF", False,
                                   ended, latency, "EINVAL", 1), lost=lost, ended=ended)


def test_a_passing_unbind_reports_each_contract_in_the_order_things_happened() -> None:
    name = "all_nodes_open--unbind"
    held = [NodeEvidence(h.label, h.kind, stale_ioctls={"Q": "EIO" if h.kind is NodeKind.MEDIA
                                                        else "ENODEV"}, close="ok")
            for h in BY_NAME[name].holds[:2]]
    results = judge(_evidence(name, nodes=held))
    assert all(r.passed for r in results), [r for r in results if not r.passed]
    # each fd's contracts together, as user space acted on it; then the driver's
    assert [(r.contract, r.subject) for r in results] == [
        ("disruption-completes", ""),
        ("stale-ioctl-errno", "media-opened"), ("close-succeeds", "media-opened"),
        ("stale-ioctl-errno", "video.raw_capture_0-opened"),
        ("close-succeeds", "video.raw_capture_0-opened"),
        ("nothing-left-behind", ""), ("driver-recovers", ""),
    ]


def test_a_stale_ioctl_with_the_wrong_errno_fails() -> None:
    node = NodeEvidence("media-opened", NodeKind.MEDIA,
                        stale_ioctls={"MEDIA_IOC_DEVICE_INFO": "ENODEV"})
    (bad,) = [r for r in judge(_evidence("media-opened--unbind", nodes=[node]))
              if r.contract == "stale-ioctl-errno"]
    assert not bad.passed and bad.detail == "MEDIA_IOC_DEVICE_INFO -> ENODEV"


def test_a_blocked_call_must_return_after_the_unplug_and_within_the_bound() -> None:
    name = "video.raw_capture_0-blocked_dqbuf--unbind"

    def verdict(call: CallEvidence) -> tuple[bool, str]:
        (r,) = [r for r in judge(_evidence(name, calls=[call]))
                if r.contract == "blocked-call-returns"]
        return r.passed, r.detail

    assert verdict(_dqbuf(0.02)) == (True, "VIDIOC_DQBUF returned EINVAL after 0.02 s")
    passed, detail = verdict(_dqbuf(-0.5))
    assert not passed and "the stage was not held" in detail
    passed, detail = verdict(_dqbuf(None, ended=False))
    assert not passed and "still blocked 5 s" in detail
    # a device that stayed (rmmod refused): the call rightly stays blocked
    assert not [r for r in judge(_evidence(name, calls=[_dqbuf(None, False, lost=False)]))
                if r.contract == "blocked-call-returns"]


def test_rebinding_scenarios_judge_the_rebind_and_nothing_left_behind_is_skipped() -> None:
    ids = [r.contract for r in judge(_evidence("idle--unbind_bind"))]
    assert "rebind-restores" in ids and "driver-recovers" not in ids
    assert "nothing-left-behind" not in ids
    lost = Recovery(NODES, {"(media)": "/dev/media0"})
    (r,) = [r for r in judge(_evidence("idle--unbind_bind", recovery=lost))
            if r.contract == "rebind-restores"]
    assert not r.passed and r.detail == "node set changed: missing ['Raw Capture 0'], new []"


def test_rmmod_contracts_read_the_module_steps() -> None:
    steps = [StepRecord("rmmod", "vimc", 0.01, "EAGAIN")]
    ev = _evidence("idle--rmmod", steps=steps,
                   rmmod_after_close=StepRecord("rmmod", "vimc", 0.02, "ok"),
                   module_loaded=False)
    by_id = {r.contract: r for r in judge(ev)}
    assert by_id["rmmod-refuses-or-completes"].passed
    assert by_id["rmmod-refuses-or-completes"].detail == "rmmod with nothing open: EAGAIN"
    assert by_id["rmmod-after-close"].passed
    left = LeftBehind("vimc", ["/dev/video0"], [], 1)
    by_id = {r.contract: r for r in judge(_evidence("idle--rmmod", steps=steps, left_behind=left,
                                                    rmmod_after_close=steps[0]))}
    assert "rmmod-after-close" in by_id and not by_id["rmmod-after-close"].passed
    # the module was never removed: nothing is gone, so nothing is judged left behind
    assert "nothing-left-behind" not in by_id


def test_the_record_reads_back_as_the_target_sent_it() -> None:
    ev = _evidence("video.raw_capture_0-blocked_dqbuf--unbind", calls=[_dqbuf(0.02)],
                   nodes=[NodeEvidence("video.raw_capture_0-blocked_dqbuf", NodeKind.VIDEO,
                                       stale_ioctls={"VIDIOC_QUERYCAP": "ENODEV"},
                                       poll=["POLLERR"], close="ok")])
    rec = ScenarioRecord("x", Status.DONE, judge(ev), steps=ev.steps,
                         calls=[c.record for c in ev.calls],
                         after={n.label: n.after_dict() for n in ev.nodes},
                         taint_before=0, taint_after=4096)
    wire = json.loads(json.dumps(rec.to_dict()))
    assert wire["after"]["video.raw_capture_0-blocked_dqbuf"] == {
        "stale_ioctls": {"VIDIOC_QUERYCAP": "ENODEV"}, "poll": ["POLLERR"], "close": "ok"}
    assert wire["contracts"][0]["source"] and "vanished" not in wire
    back = ScenarioRecord.from_dict(wire)
    assert back == rec and back.to_dict() == wire
    error = ScenarioRecord("x", Status.ERROR, error="E: e", traceback="T")
    assert error.to_dict() == {"name": "x", "status": "error", "contracts": [],
                               "error": "E: e", "traceback": "T"}
    assert ScenarioRecord.from_dict(error.to_dict()) == error
