"""Host processes a target starts (QEMU): tied to the harness, killed as a group."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL when the harness dies, in a session of its own."""
    # If the harness is killed outright (SIGKILL, OOM), QEMU must not outlive it.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setsid()


def kill_group(proc: subprocess.Popen) -> None:
    """Kill a die_with_parent() child and everything it started, and reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
