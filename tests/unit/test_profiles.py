"""Driver profiles are consistent data: every name they use is an entity they
expect, and a board profile asks for nothing a board does not have."""

from __future__ import annotations

import pytest

from harness.profiles import get_profile
from harness.scenarios.matrix import build_matrix
from harness.scenarios.model import Disruption

PROFILES = ("vimc", "rcar-vin", "rcar-vin-salvator-x")


@pytest.mark.parametrize("name", PROFILES)
def test_every_entity_a_profile_names_is_one_it_expects(name: str) -> None:
    profile = get_profile(name)
    expected = set(profile.entities)
    named = {*profile.held_entities, *profile.media_entities,
             *(t.entity for t in profile.unbind_targets)}
    for path in profile.capture_paths:
        named |= {path.capture, *(p.entity for p in path.pads)}
        named |= {e for link in path.links for e in (link.source, link.sink)}
    assert named <= expected, named - expected
    assert {p.capture for p in profile.capture_paths} == set(profile.capture_entities)
    codes = dict(profile.pixelformats)
    for path in profile.capture_paths:  # the code reaching each capture node has a format
        assert path.pads[-1].code in codes, path.capture


def test_the_salvator_x_profile_is_the_boards_own_drivers() -> None:
    board, emulated = get_profile("rcar-vin-salvator-x"), get_profile("rcar-vin")
    assert board.emulation is None
    assert board.modules == ("adv748x", "rcar-csi2", "rcar-vin")
    assert not any(m.startswith("unplug-") for m in board.modules)
    assert board.driver == emulated.driver == "rcar-vin"
    assert "rcar_csi2 feaa0000.csi2" in board.entities
    assert "adv748x 4-0070 txa" in board.entities


def test_without_sysfs_unbind_the_driver_goes_only_with_its_module() -> None:
    matrix = build_matrix(get_profile("rcar-vin-salvator-x"))
    names = [s.name for s in matrix]
    assert len(names) == len(set(names))
    for s in matrix:
        if s.disruption is not Disruption.RMMOD:
            assert s.target, s.name  # an unbind acts on a receiver or the ADV7482, never a VIN
    assert "video.vin0_output-blocked_dqbuf--rmmod" in names
    assert "video.vin0_output-blocked_dqbuf--unbind.csi40" in names
    assert "idle--unbind_bind.adv7482" in names
