"""The agent's event channel: JSON lines on a virtio-serial port.

Events travel apart from the kernel console so that a panic's output can
never garble them, and the console never has to be parsed for them. On a
board without the port (SSH, serial) the same events go to stdout.

Only os, sys, json and time are imported here: this module sits on the path
to the agent's first event, and every import is a file read over 9p.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import IO, Any

PORT_NAME = "harness.events"
PORTS = "/sys/class/virtio-ports"


def find_port(name: str = PORT_NAME) -> str | None:
    """/dev/vportNpM of the virtio-serial port called `name` (no udev here to make links)."""
    try:
        entries = os.listdir(PORTS)
    except OSError:
        return None
    for entry in entries:
        try:
            with open(f"{PORTS}/{entry}/name") as f:
                if f.read().strip() == name:
                    return f"/dev/{entry}"
        except OSError:
            continue
    return None


class EventChannel:
    """Writes one JSON object per line, each stamped with the guest's clocks."""

    def __init__(self, stream: IO[str]):
        self._stream = stream

    @classmethod
    def open(cls) -> EventChannel:
        port = find_port()
        if port is None:
            return cls(sys.stdout)
        return cls(open(port, "w", buffering=1))  # noqa: SIM115 - lives as long as the agent

    def emit(self, event: str, **fields: Any) -> None:
        record = {
            "event": event,
            # CLOCK_MONOTONIC is what printk timestamps use (local_clock is
            # close to it), so events line up with kernel messages.
            "mono": round(time.clock_gettime(time.CLOCK_MONOTONIC), 6),
            "pid": os.getpid(),
            **fields,
        }
        self._stream.write(json.dumps(record, default=str) + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._stream is not sys.stdout:
            self._stream.close()
