"""A board described by a labgrid environment file (needs `pip install labgrid`).

`--target labgrid:ENV.yaml[?target=NAME]` (NAME defaults to `main`) reads the
board the way labgrid does: its address from a NetworkService resource, its
serial console from a local serial port resource (RawSerialPort, or a
USBSerialPort once udev found it), and its power from whichever labgrid
driver implements PowerProtocol (ExternalPowerDriver, NetworkPowerDriver,
USB relays, ...), which is then what power-cycles the board. Talking to the
board stays the harness's own (ssh, pexpect): labgrid's drivers run a
command to its end, and the harness needs the agent's events and the
kernel log while they come.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from harness.host.targets.base import TargetError
from harness.pure.errors import SetupError


def parse_labgrid(spec: str) -> dict[str, Any]:
    """labgrid:ENV.yaml[?target=NAME&python=PATH&checkout=DIR]"""
    path, _, query = spec.removeprefix("labgrid:").partition("?")
    if not path:
        raise TargetError(f"no environment file in {spec} (labgrid:ENV.yaml)")
    opts = {k: v[-1] for k, v in parse_qs(query).items()}
    unknown = set(opts) - {"target", "python", "checkout"}
    if unknown:
        raise TargetError(f"unknown option(s) {', '.join(sorted(unknown))} in {spec}")
    return {"env": Path(path), "target": opts.get("target", "main"),
            "python": opts.get("python"), "checkout": opts.get("checkout")}


def board_from_env(spec: str) -> dict[str, Any]:
    """What the environment says about the board: an ssh:// or serial: target
    spec, a serial console device (or None), and a power-cycle callable (or None)."""
    opts = parse_labgrid(spec)
    try:
        from labgrid import Environment
        from labgrid.exceptions import NoDriverFoundError
    except ImportError:
        raise SetupError("--target labgrid:... needs labgrid: "
                         ".venv/bin/pip install labgrid") from None
    if not opts["env"].is_file():
        raise TargetError(f"no labgrid environment file at {opts['env']}")
    try:
        env = Environment(config_file=str(opts["env"]))
        target = env.get_target(opts["target"])
    except Exception as e:  # labgrid reports a bad file with many exception types
        raise TargetError(f"labgrid could not read {opts['env']}: {e}") from None
    if target is None:
        raise TargetError(f"{opts['env']} has no target {opts['target']!r} "
                          f"(choose one with ?target=NAME)")

    network = next((r for r in target.resources if type(r).__name__ == "NetworkService"), None)
    serial = next((r for r in target.resources
                   if isinstance(getattr(r, "port", None), str) and r.port.startswith("/dev/")),
                  None)
    power: Callable[[], None] | None
    try:
        power = target.get_driver("PowerProtocol").cycle
    except NoDriverFoundError:
        power = None

    query = "&".join(f"{k}={opts[k]}" for k in ("python", "checkout") if opts[k])
    if network is not None:
        checkout = opts["checkout"] or ""
        url = f"ssh://{network.username}@{network.address}:{network.port}{checkout}"
        if opts["python"]:
            url += f"?python={opts['python']}"
        console = f"serial:{serial.port}?baud={getattr(serial, 'speed', 115200)}" \
            if serial else None
        return {"target": url, "console": console, "power": power}
    if serial is not None:
        baud = getattr(serial, "speed", 115200)
        target_spec = f"serial:{serial.port}?baud={baud}" + (f"&{query}" if query else "")
        return {"target": target_spec, "console": None, "power": power}
    raise TargetError(f"target {opts['target']!r} in {opts['env']} has neither a "
                      f"NetworkService nor a local serial port resource")
