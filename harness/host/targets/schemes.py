"""`--target` specs of boards, by scheme: one row per kind of target.

A row names the scheme, how its spec is written (for the error that lists
them) and the factory that opens it. `qemu` is not a row: a QEMU target is
built from the kernel and the driver profile, by the command. A new kind of
board is a new row; nothing else asks which kind a target is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.host.targets.base import BoardTarget, PowerCycle, TargetError
from harness.pure.errors import HarnessError


@dataclass(frozen=True)
class BoardOptions:
    """What the command line says about a board besides its spec."""

    console: str | None = None  # --console serial:/dev/ttyX[?baud=N]
    power_cycle: PowerCycle | None = None  # --power-cycle, or a labgrid power driver
    ssh_identity: Path | None = None
    note: Callable[[str], None] = lambda text: None


def _ssh(spec: str, opts: BoardOptions) -> BoardTarget:
    from harness.host.targets.serial import SerialConsole, parse_serial
    from harness.host.targets.ssh import SshTarget

    console = None
    if opts.console:
        serial = parse_serial(opts.console)
        console = SerialConsole(serial["device"], serial["baud"])
    return SshTarget(spec, opts.ssh_identity, opts.power_cycle, console, opts.note)


def _serial(spec: str, opts: BoardOptions) -> BoardTarget:
    from harness.host.targets.serial import SerialTarget

    if opts.console:
        raise HarnessError("--console is the serial console of an ssh target; a serial "
                           "target reads its own")
    return SerialTarget(spec, opts.power_cycle, opts.note)


def _labgrid(spec: str, opts: BoardOptions) -> BoardTarget:
    from harness.host.targets.labgrid_env import board_from_env

    # The environment names an ssh:// or serial: board; what the command
    # line gives wins over what the environment says.
    board = board_from_env(spec)
    return open_board(board["target"], dataclasses.replace(
        opts, console=opts.console or board["console"],
        power_cycle=opts.power_cycle or board["power"]))


@dataclass(frozen=True)
class Scheme:
    usage: str  # how a spec of this scheme is written, for the error that lists them
    open: Callable[[str, BoardOptions], BoardTarget]


SCHEMES: dict[str, Scheme] = {
    "ssh": Scheme("ssh://[user@]host[:port]", _ssh),
    "serial": Scheme("serial:/dev/ttyX", _serial),
    "labgrid": Scheme("labgrid:ENV.yaml", _labgrid),
}


def open_board(spec: str, opts: BoardOptions) -> BoardTarget:
    """The board target `spec` names; an unknown scheme is a one-line TargetError."""
    scheme, colon, _ = spec.partition(":")
    row = SCHEMES.get(scheme) if colon else None
    if row is None:
        known = ["qemu", *(s.usage for s in SCHEMES.values())]
        raise TargetError(f"unknown target {spec!r}: {', '.join(known[:-1])} or {known[-1]}")
    return row.open(spec, opts)
