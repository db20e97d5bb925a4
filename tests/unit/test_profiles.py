"""Driver profiles are consistent data: every name they use is an entity they
expect, and a board profile asks for nothing a board does not have."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import harness.pure.profiles as profiles_module
from harness.pure.errors import HarnessError
from harness.pure.profiles import DEFAULT_DRIVER, get_profile, profiles
from harness.pure.profiles.vimc import VIMC
from harness.pure.scenarios.matrix import build_matrix
from harness.pure.scenarios.model import Disruption, Queue

PROFILES = ("vimc", "rcar-vin", "rcar-vin-salvator-x", "vivid", "vim2m", "vicodec")


@pytest.mark.parametrize("name", PROFILES)
def test_every_entity_a_profile_names_is_one_it_expects(name: str) -> None:
    profile = get_profile(name)
    expected = set(profile.entities)
    # A node with no queue (a radio) has an interface but no entity.
    bare = {n.name for n in profile.queue_nodes if n.queue is Queue.NONE}
    named = {*profile.held_entities, *profile.media_entities,
             *(t.entity for t in profile.unbind_targets)} - bare
    for path in profile.capture_paths:
        named |= {path.capture, *(p.entity for p in path.pads)}
        named |= {e for link in path.links for e in (link.source, link.sink)}
    assert named <= expected, named - expected
    assert {p.capture for p in profile.capture_paths} == set(profile.capture_entities)
    codes = dict(profile.pixelformats)
    for path in profile.capture_paths:  # the code reaching each capture node has a format
        assert path.fourcc or path.pads[-1].code in codes, path.capture


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


PROFILE_DIR = Path(profiles_module.__file__).parent


def test_the_registry_finds_every_profile_in_the_package() -> None:
    found = profiles()
    assert set(PROFILES) <= set(found)
    # every module file of the package, read as text, names a profile the registry found
    for path in sorted(PROFILE_DIR.glob("*.py")):
        if path.name == "__init__.py":
            continue
        names = set(re.findall(r'^\s+name="([^"]+)"', path.read_text(), re.M))
        assert names and names <= set(found), path.name
    assert all(found[name].name == name for name in found)
    assert DEFAULT_DRIVER in found


@pytest.fixture
def extra_package_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A second directory of the harness.pure.profiles package, with a fresh registry."""
    monkeypatch.setattr(profiles_module, "__path__", [*profiles_module.__path__, str(tmp_path)])
    profiles.cache_clear()
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("harness.pure.profiles.extra_")]:
        del sys.modules[name]
    profiles.cache_clear()


def test_a_new_profile_is_one_new_module(extra_package_dir: Path) -> None:
    (extra_package_dir / "extra_visl.py").write_text(
        "from harness.pure.profiles import DriverProfile\n"
        "VISL = DriverProfile(name='visl', modules=('visl',), bus='platform', "
        "driver='visl')\n")
    assert get_profile("visl").modules == ("visl",)
    assert get_profile("vimc") is VIMC


def test_two_profiles_of_one_name_are_refused(extra_package_dir: Path) -> None:
    (extra_package_dir / "extra_again.py").write_text(
        "from harness.pure.profiles import DriverProfile\n"
        "AGAIN = DriverProfile(name='vimc', modules=('vimc',), bus='platform', driver='vimc')\n")
    with pytest.raises(HarnessError, match="two driver profiles are named 'vimc'"):
        profiles()


def test_an_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(HarnessError, match="unknown driver profile 'uvc': choose one of .*vimc"):
        get_profile("uvc")


@pytest.mark.parametrize("command", ["run", "topology", "stream", "kernel", "serve",
                                     "validate", "bisect"])
def test_every_command_defaults_to_the_one_default_driver(command: str) -> None:
    from harness.host.cli import build_parser

    extra = {"validate": ["--tree", "t"], "bisect": ["--tree", "t", "--good", "a", "--bad", "b"]}
    args = build_parser().parse_args([command, *extra.get(command, [])])
    assert args.driver == DEFAULT_DRIVER
