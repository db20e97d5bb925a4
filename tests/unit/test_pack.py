"""What the initramfs carries for the agent (harness.host.targets.pack), read
from this host's interpreter and this checkout: no VM."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.host.targets import pack
from harness.host.targets.base import AGENT_MAIN


def test_the_host_interpreter_and_the_agents_modules_are_packed_where_the_guest_looks() -> None:
    entries = pack.files(sys.executable, None)
    guests = [guest for _, guest in entries]
    assert len(guests) == len(set(guests))
    assert all(guest.startswith("/") for guest in guests)
    assert str(Path(sys.executable).resolve()) in guests
    # the agent's first modules, as byte code when the host has it, else as source
    channel = AGENT_MAIN.parent / "channel.py"
    assert any(g.startswith(str(channel.parent)) and "channel" in g for g in guests)
    # a guest path names the file it is packed from, as the guest resolves it
    for host, guest in entries:
        assert host.is_file()
        assert Path(guest).name == host.name


def test_code_the_agent_never_runs_is_left_out() -> None:
    guests = [guest for _, guest in pack.files(sys.executable, None)]
    assert not any("/tkinter/" in g or "/unittest/" in g or "/lib2to3/" in g for g in guests)


def test_the_key_changes_with_a_packed_file(tmp_path: Path) -> None:
    f = tmp_path / "m.pyc"
    f.write_bytes(b"a")
    before = pack.stamp([(f, "/x/m.pyc")])
    f.write_bytes(b"ab")
    assert pack.stamp([(f, "/x/m.pyc")]) != before
