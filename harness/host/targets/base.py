"""What a target is, and what the board targets (SSH, serial console) share.

A target runs a job's tasks in the agent on some kernel and returns a
GuestRun: the events, the whole console, how it ended (harness.host.targets.run
has the record and the one loop every target's run goes through). QemuTarget boots a
fresh kernel for every run. A board cannot: after a run that left the
kernel unfit (the runner asks for another run only then), the board is
rebooted, by `reboot` or by the user's power-cycle command, and the next
run waits until it is back with a new boot id.
"""

from __future__ import annotations

import base64
import io
import json
import shlex
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

# The run's record and loop live in harness.host.targets.run; these names were
# defined or imported here before, and other modules import them from here.
from harness.host.targets.run import DEADLINES as DEADLINES
from harness.host.targets.run import DeadlinePassed, Target
from harness.host.targets.run import EventBook as EventBook
from harness.host.targets.run import EventHook as EventHook
from harness.host.targets.run import GuestRun as GuestRun
from harness.pure.errors import HarnessError

PACKAGE = Path(__file__).resolve().parents[2]
AGENT_MAIN = PACKAGE / "target" / "agent" / "__main__.py"
# Pure-Python dependencies the agent imports, shipped with it so that a board
# needs nothing but python3.
AGENT_DEPENDENCIES = ("pyudev", "v4l2")
MIN_PYTHON = (3, 11)


class BoardTarget(Target, Protocol):
    """A board's target: what `--target` opens, besides running jobs."""

    spec: str  # the ssh:// or serial: target it was opened as; reports name it

    def probe(self) -> dict[str, Any]:
        """What the board runs (PROBE's answer), checked with check_probe()."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class BoardKernel:
    """The kernel a board runs, with the fields of Kernel that reports read."""

    flavour: str
    release: str
    image: str  # the target it runs on

    def describe(self) -> str:
        return f"{self.release} on {self.image}"


class TargetError(HarnessError):
    """A board that cannot be reached, logged into, or run on."""


# --- the kernel log, as a console would show it

def _unescape(text: str) -> str:
    # /dev/kmsg writes bytes outside printable ASCII (and backslash) as \xNN.
    if "\\x" not in text:
        return text
    raw = bytearray()
    i = 0
    data = text.encode("latin-1", errors="replace")
    while i < len(data):
        if data[i:i + 2] == b"\\x" and i + 4 <= len(data):
            try:
                raw.append(int(data[i + 2:i + 4], 16))
                i += 4
                continue
            except ValueError:
                pass
        raw.append(data[i])
        i += 1
    return raw.decode(errors="replace")


def kmsg_lines(record: str) -> list[str]:
    """One /dev/kmsg record ("prio,seq,usec,flags;message") as console lines,
    "[    1.234567] message", one per line of the message. Continuation lines
    (" KEY=value" device properties) give nothing; text that is not a record
    is kept as it is."""
    record = record.rstrip("\n")
    if record.startswith(" "):
        return []
    head, sep, message = record.partition(";")
    fields = head.split(",")
    if not sep or len(fields) < 4 or not fields[2].isdigit():
        return [record] if record else []
    usec = int(fields[2])
    stamp = f"[{usec // 1_000_000:5d}.{usec % 1_000_000:06d}]"
    return [f"{stamp} {line}" for line in _unescape(message).split("\n")]


# --- what runs on the board, sent as `python3 -c` one-liners

# Prints what the harness must know before it starts anything.
PROBE = """
import json, os, sys
try:
    boot_id = open("/proc/sys/kernel/random/boot_id").read().strip()
except OSError:
    boot_id = ""
print(json.dumps({"python": list(sys.version_info[:3]), "executable": sys.executable,
                  "euid": os.geteuid(), "release": os.uname().release, "boot_id": boot_id,
                  "kmsg": os.access("/dev/kmsg", os.R_OK)}))
"""

# Copies /dev/kmsg to stdout record by record. Unlike `cat`, it survives the
# ring buffer overtaking it (EPIPE), and it can start at the end: a board's
# log from before this run belongs to nobody's scenario.
KMSG_READER = """
import os, sys
fd = os.open("/dev/kmsg", os.O_RDONLY)
if sys.argv[1] == "end":
    os.lseek(fd, 0, os.SEEK_END)
out = sys.stdout.buffer
out.write(b"v4l2-unplug: reading /dev/kmsg from its " + sys.argv[1].encode() + b"\\n")
out.flush()
while True:
    try:
        record = os.read(fd, 16384)
    except BrokenPipeError:
        out.write(b"v4l2-unplug: kernel messages were lost (ring buffer overrun)\\n")
        continue
    if not record:
        break
    out.write(record)
    out.flush()
"""


def python_command(script: str, *args: str, python: str = "python3") -> str:
    """A shell command running `script`, safe to pass through any POSIX shell
    (and ssh's remote shell): base64 keeps quotes and newlines out of it."""
    code = base64.b64encode(script.encode()).decode()
    exec_ = f'import base64;exec(base64.b64decode("{code}"))'
    return shlex.join([python, "-c", exec_, *args])


def check_probe(probe: dict[str, Any], where: str) -> None:
    """Refuse a board the agent cannot run on, in one line."""
    if tuple(probe["python"][:2]) < MIN_PYTHON:
        version = ".".join(map(str, probe["python"]))
        raise TargetError(f"{where}: {probe['executable']} is Python {version}; the agent "
                          f"needs {'.'.join(map(str, MIN_PYTHON))} or newer (give another "
                          f"interpreter with ?python=PATH)")
    if probe["euid"] != 0:
        raise TargetError(f"{where}: the agent must run as root (uid {probe['euid']} here): "
                          f"it loads modules, unbinds drivers in sysfs and writes /dev/kmsg")


def agent_bundle(job: dict[str, Any]) -> bytes:
    """The agent, its dependencies and the job, as a gzip'd tar to unpack on the board."""
    return _bundle(job, with_agent=True)


def agent_closure() -> list[Path]:
    """The package's files the agent can import: its import closure, function-level
    imports included, with the __init__ of every package on the way. This, not a
    list of folders, is what a board receives."""
    import modulefinder

    finder = modulefinder.ModuleFinder(path=[str(PACKAGE.parent)])
    finder.run_script(str(AGENT_MAIN))
    files = {AGENT_MAIN}
    for name, module in finder.modules.items():
        origin = getattr(module, "__file__", None)
        if name.split(".")[0] == "harness" and origin:
            files.add(Path(origin).resolve())
    # The profile registry imports its modules by discovery (pkgutil), which no
    # static reading sees: the whole package goes.
    files.update((PACKAGE / "pure" / "profiles").glob("*.py"))
    for f in list(files):
        for parent in f.relative_to(PACKAGE).parents:
            files.add(PACKAGE / parent / "__init__.py")
    return sorted(f for f in files if f.is_file())


def _bundle(job: dict[str, Any], with_agent: bool) -> bytes:
    import importlib

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=9) as tar:
        def add(path: Path, name: str) -> None:
            if path.is_dir():
                for child in sorted(path.rglob("*.py")):
                    tar.add(child, f"{name}/{child.relative_to(path)}", recursive=False)
            else:
                tar.add(path, name, recursive=False)

        if with_agent:
            for path in agent_closure():
                add(path, f"harness/{path.relative_to(PACKAGE)}")
            for dep in AGENT_DEPENDENCIES:
                origin = Path(importlib.import_module(dep).__file__ or "")
                if origin.name == "__init__.py":
                    add(origin.parent, dep)
                else:
                    add(origin, origin.name)
        data = json.dumps(job).encode()
        info = tarfile.TarInfo("job.json")
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# Unpacks agent_bundle() from stdin into a new directory and prints its path.
UNPACK = """
import io, sys, tarfile, tempfile
data = sys.stdin.buffer.read()
d = tempfile.mkdtemp(prefix="v4l2-unplug-")
extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
tarfile.open(fileobj=io.BytesIO(data), mode="r:gz").extractall(d, **extra)
print(d)
"""


def agent_command(job_dir: str, python: str = "python3", checkout: str | None = None) -> str:
    """The shell command that runs the agent on the board, with the job in
    `job_dir` and the package there too, or in the user's `checkout`.
    -S keeps site-packages out of a pushed bundle, which carries its own
    dependencies; a checkout relies on the board's site-packages."""
    code = shlex.quote(checkout or job_dir)
    flags = "" if checkout else "-S "
    return (f"cd {code} && PYTHONPATH={code} PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 "
            f"exec {shlex.quote(python)} {flags}-m harness.target.agent "
            f"--job {shlex.quote(job_dir + '/job.json')}")


def job_bundle(job: dict[str, Any]) -> bytes:
    """Only the job, for a board that has the package in a checkout already."""
    return _bundle(job, with_agent=False)


# --- rebooting a board

POWER_CYCLE_TIMEOUT = 120.0
# How long a `reboot` may take to bring the board down and up again before
# the power-cycle command (when there is one) is used instead.
SOFT_REBOOT = 120.0
# Between two looks at whether the board is back.
REBOOT_POLL = 1.0
# Reboots whatever init the board runs, and a board without one (the QEMU
# stand-in) through sysrq. In the background, so the session can end first.
REBOOT = ("sync; nohup sh -c 'sleep 1; reboot || reboot -f || echo b > /proc/sysrq-trigger' "
          ">/dev/null 2>&1 </dev/null &")


# The user's power-cycle: a shell command, or a callable (a labgrid power driver).
PowerCycle = str | Callable[[], None]


def power_cycle(power: PowerCycle, note: Callable[[str], None]) -> None:
    """Cycle the board's power; a failure is the user's to fix, in one line."""
    if not isinstance(power, str):
        note("power cycle")
        try:
            power()
        except Exception as e:  # a lab's power driver can fail in any way; say how
            raise TargetError(f"the power cycle failed: {type(e).__name__}: {e}") from None
        return
    note(f"power cycle: {power}")
    try:
        proc = subprocess.run(power, shell=True, capture_output=True, text=True,
                              timeout=POWER_CYCLE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise TargetError(f"the power-cycle command did not finish within "
                          f"{POWER_CYCLE_TIMEOUT:.0f} s: {power}") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise TargetError(f"the power-cycle command failed (status {proc.returncode}: "
                          f"{last}): {power}")


class Board(Protocol):
    """What rebooting needs from a way into the board."""

    def boot_id(self, timeout: float) -> str | None:
        """The running kernel's boot id, or None when the board does not answer."""

    def soft_reboot(self) -> None: ...


@dataclass
class Rebooter:
    """Brings a board back with a new kernel: `reboot` while the board still
    answers, the power-cycle command when it does not (or when `reboot` did
    not take), and otherwise waiting for it to reset itself (panic=N, a
    watchdog) until the deadline."""

    board: Board
    power_command: PowerCycle | None
    note: Callable[[str], None]

    def reboot(self, old_boot_id: str, deadline: float, crashed: bool) -> str:
        """Return the new boot id; raise DeadlinePassed if the board is not back."""
        answering = not crashed and self.board.boot_id(timeout=15) is not None
        if answering:
            self.note("reboot")
            self.board.soft_reboot()
            soft_end = min(deadline, time.monotonic() + SOFT_REBOOT)
            new = self._wait_new_boot(old_boot_id, soft_end if self.power_command else deadline)
            if new:
                return new
        if self.power_command:
            power_cycle(self.power_command, self.note)
        elif not answering:
            self.note("the board does not answer and there is no power-cycle command: "
                      "waiting for it to reset itself")
        new = self._wait_new_boot(old_boot_id, deadline)
        if new:
            return new
        raise DeadlinePassed("the board did not come back with a new kernel in time"
                             + ("" if self.power_command else
                                " (a --power-cycle command would reset it)"))

    def _wait_new_boot(self, old: str, end: float) -> str | None:
        while time.monotonic() < end:
            new = self.board.boot_id(timeout=max(1.0, min(15.0, end - time.monotonic())))
            if new and new != old:
                self.note(f"back with boot id {new}")
                return new
            time.sleep(REBOOT_POLL)
        return None
