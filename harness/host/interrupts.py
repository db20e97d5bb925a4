"""SIGINT, SIGTERM and SIGHUP as one exception, so a run ends the same way
whichever of them a user, a CI job's timeout or a closed terminal sends.

The exception unwinds through the run loop, which stops the target (QEMU is
killed and its socket removed) and hands the boot's record back on the
exception; the runner then writes the report from what finished. Only the
first signal raises: a second one while the report is being written would
leave it half written, and QEMU is already gone by then. SIGKILL still ends
everything (QEMU dies with the harness through PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.host.targets.run import GuestRun

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """The harness was asked to stop by `signum`. A KeyboardInterrupt, so no
    `except Exception` on the way swallows it. `run` is the boot it cut
    short, once the run loop has stopped it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.run: GuestRun | None = None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        """What a shell reports for a process the signal ended: 128 + its number."""
        return 128 + self.signum


_raised = False


def _raise(signum: int, frame: FrameType | None) -> None:
    global _raised
    if _raised:
        return
    _raised = True
    raise Interrupted(signum)


def install() -> None:
    """Turn SIGINT, SIGTERM and SIGHUP into Interrupted from now on."""
    global _raised
    _raised = False
    for s in SIGNALS:
        signal.signal(s, _raise)
