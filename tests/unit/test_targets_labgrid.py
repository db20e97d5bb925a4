"""A board described by a labgrid environment file, read with labgrid itself
(skipped where labgrid is not installed: it is an optional dependency)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.host.targets.base import TargetError
from harness.host.targets.labgrid_env import board_from_env, parse_labgrid
from harness.pure.errors import SetupError

ENV = """
targets:
  main:
    resources:
      NetworkService:
        address: 192.0.2.7
        username: root
        port: 2222
      RawSerialPort:
        port: /dev/ttyUSB3
        speed: 921600
    drivers:
      ExternalPowerDriver:
        cmd_on: "true"
        cmd_off: "true"
        cmd_cycle: "touch {cycled}"
  serial-only:
    resources:
      RawSerialPort:
        port: /dev/ttyAMA0
    drivers: {{}}
"""


def test_labgrid_spec() -> None:
    assert parse_labgrid("labgrid:lab/env.yaml?target=b2")["target"] == "b2"
    with pytest.raises(TargetError):
        parse_labgrid("labgrid:env.yaml?targte=b2")


def test_board_from_a_labgrid_environment(tmp_path: Path) -> None:
    pytest.importorskip("labgrid")
    env = tmp_path / "env.yaml"
    env.write_text(ENV.format(cycled=tmp_path / "cycled"))
    board = board_from_env(f"labgrid:{env}?python=/usr/bin/python3.12")
    assert board["target"] == "ssh://root@192.0.2.7:2222?python=/usr/bin/python3.12"
    assert board["console"] == "serial:/dev/ttyUSB3?baud=921600"
    board["power"]()  # labgrid's ExternalPowerDriver runs cmd_cycle
    assert (tmp_path / "cycled").exists()

    serial = board_from_env(f"labgrid:{env}?target=serial-only")
    assert serial["target"].startswith("serial:/dev/ttyAMA0?baud=")
    assert serial["console"] is None and serial["power"] is None
    with pytest.raises(TargetError, match="no target 'nope'"):
        board_from_env(f"labgrid:{env}?target=nope")


def test_without_labgrid_the_error_says_how_to_get_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "labgrid", None)  # as if not installed
    with pytest.raises(SetupError, match="pip install labgrid"):
        board_from_env(f"labgrid:{tmp_path / 'env.yaml'}")
