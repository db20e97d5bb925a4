"""Which devices a scenario unbinds and which held nodes it judges as gone:
the executor's decisions, on a stand-in sysfs in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.pure.profiles import get_profile
from harness.pure.scenarios.matrix import build_matrix, select
from harness.target.scenarios import executor
from harness.target.scenarios.disrupt import Device

PROFILE = get_profile("rcar-vin")


def _driver(root: Path, name: str, devices: list[str]) -> Path:
    d = root / name
    d.mkdir()
    for f in ("bind", "unbind"):
        (d / f).write_text("")
    for dev in devices:
        (d / dev).mkdir()
    return d


def _scenario(name: str):
    (s,) = select(build_matrix(PROFILE), [name])
    return s


def test_a_target_scenario_unbinds_only_its_device(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    subdevs = _driver(tmp_path, "unplug-test-subdev", ["csi20", "csi40"])
    targets = {"csi20": Device(subdevs, "csi20"), "csi40": Device(subdevs, "csi40")}
    node = tmp_path / "video0"
    node.write_text("")
    # The media node of a group stays when one receiver goes.
    media = tmp_path / "media0"
    media.write_text("")
    # The node disappears when the device goes, as devtmpfs does at unbind.
    real = executor.disrupt.unbind_device

    def unbind(device: Device, bound: float):
        node.unlink()
        return real(device, bound)

    monkeypatch.setattr(executor.disrupt, "unbind_device", unbind)
    steps, vanished = executor._disrupt(
        _scenario("video.vin0_output-opened--unbind.csi20"), PROFILE, ["7ff00000.video"],
        targets, {"video.vin0_output-opened": str(node), "media-opened": str(media)})
    assert [(s.op, s.target, s.result) for s in steps] == [("unbind", "csi20", "ok")]
    assert (subdevs / "unbind").read_text() == "csi20"
    assert vanished == {"video.vin0_output-opened"}


def test_a_target_rebind_binds_it_back(tmp_path: Path) -> None:
    vins = _driver(tmp_path, "rcar-vin", ["7ff00000.video", "7ff01000.video"])
    steps, vanished = executor._disrupt(
        _scenario("idle--unbind_bind.vin4"), PROFILE, [],
        {"vin4": Device(vins, "7ff01000.video")}, {})
    assert [(s.op, s.target) for s in steps] == [("unbind", "7ff01000.video"),
                                                 ("bind", "7ff01000.video")]
    assert vanished == set()


def test_an_unresolved_target_is_named(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="unbind target csi40 was not resolved"):
        executor._disrupt(_scenario("idle--unbind_bind.csi40"), PROFILE, [], {}, {})


def test_device_bound_is_its_entry_in_the_driver_directory(tmp_path: Path) -> None:
    vins = _driver(tmp_path, "rcar-vin", ["7ff00000.video"])
    assert Device(vins, "7ff00000.video").bound
    assert not Device(vins, "7ff01000.video").bound
