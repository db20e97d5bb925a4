"""A board reached over SSH: the agent runs there, its events come back on stdout.

Each run sends the agent (the harness's target-side packages, its two pure
Python dependencies and the job) to a temporary directory on the board, or
uses a checkout already there, and starts it in one ssh session; its JSON
events are that session's stdout. The kernel log comes from the board's
serial console when one is given (it survives a crash), otherwise from
/dev/kmsg, read in a second ssh session and written as console lines, so
the log parser and the scenario markers work on it as on QEMU's console.

Only the system's ssh client is used, so the user's ~/.ssh/config (aliases,
keys, jump hosts) applies. Host keys are not checked for loopback
addresses: those are port forwards to local VMs, whose keys come and go.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import select
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

from harness.host.targets.base import (
    KMSG_READER,
    PROBE,
    REBOOT,
    PowerCycle,
    Rebooter,
    TargetError,
    agent_bundle,
    agent_command,
    check_probe,
    job_bundle,
    kmsg_lines,
    python_command,
)
from harness.host.targets.run import (
    DEADLINES,
    DeadlinePassed,
    Deadlines,
    EventBook,
    EventHook,
    GuestRun,
    Outcome,
    begin,
    run_job,
)
from harness.host.targets.serial import SerialConsole

CONNECT_TIMEOUT = 10
# ssh gives up on a board that stopped answering after 5 s x 3.
KEEPALIVE = ("-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3")
# After `done`: how long the kernel log may still be arriving.
LOG_GRACE = 2.0
POWEROFF_TIMEOUT = 30.0
# What an earlier run in the same directory left.
STALE = ("console.log", "events.jsonl", "agent.log", "serial.log")

# What ssh says (exit status 255) -> what the user should hear.
SSH_ERRORS = (
    (r"Connection refused", "nothing accepts ssh connections there (connection refused)"),
    (r"timed out", f"no answer within {CONNECT_TIMEOUT} s"),
    (r"No route to host|Network is unreachable", "the host is unreachable"),
    (r"Could not resolve hostname", "the host name does not resolve"),
    (r"Permission denied", "the login was refused (Permission denied): give a key with "
                           "--ssh-identity, or add yours to the board's authorized_keys"),
    (r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED",
     "the host key does not match ~/.ssh/known_hosts (a reinstalled board? remove its "
     "old key with ssh-keygen -R)"),
    (r"Connection closed|Connection reset|Broken pipe",
     "the connection was closed (sshd not ready yet, or the board went down)"),
)


@dataclass(frozen=True)
class SshAddress:
    """ssh://[user@]host[:port][/checkout][?python=...]"""

    host: str
    user: str | None = None
    port: int | None = None
    checkout: str | None = None
    python: str = "python3"

    @classmethod
    def parse(cls, spec: str) -> SshAddress:
        url = urlsplit(spec)
        if url.scheme != "ssh" or not url.hostname:
            raise TargetError(f"not an ssh target: {spec!r} (ssh://[user@]host[:port])")
        try:
            port = url.port
        except ValueError:
            raise TargetError(f"bad port in {spec!r}") from None
        opts = {k: v[-1] for k, v in parse_qs(url.query).items()}
        unknown = set(opts) - {"python"}
        if unknown:
            raise TargetError(f"unknown option(s) {', '.join(sorted(unknown))} in {spec!r}")
        return cls(url.hostname, url.username, port, url.path.rstrip("/") or None,
                   opts.get("python", "python3"))

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{self.host}{port}"

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def explain(stderr: str) -> str:
    for pattern, meaning in SSH_ERRORS:
        if re.search(pattern, stderr):
            return meaning
    lines = stderr.strip().splitlines()
    return lines[-1] if lines else "ssh failed without a message"


class KmsgStream:
    """/dev/kmsg of the board, read in its own ssh session, as console lines in a file."""

    def __init__(self, argv: list[str], console: Path):
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self._out = console.open("a")
        self.started = threading.Event()
        self.last = time.monotonic()
        self._thread = threading.Thread(target=self._copy, name="kmsg", daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.last = time.monotonic()
            for line in kmsg_lines(raw.decode(errors="replace")):
                self._out.write(line + "\n")
            self._out.flush()
            self.started.set()

    def stop(self, grace: float = 0.0) -> None:
        """Stop once the log has been quiet for a moment, or after `grace` seconds."""
        end = time.monotonic() + grace
        while time.monotonic() < end and time.monotonic() - self.last < 0.5:
            time.sleep(0.1)
        _end(self.proc)
        self._thread.join(timeout=5)
        self._out.close()


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


class SshTarget:
    """Runs the agent on a board over SSH (see the module's docstring)."""

    def __init__(self, address: SshAddress | str, identity: Path | None = None,
                 power_cycle: PowerCycle | None = None, console: SerialConsole | None = None,
                 note: Callable[[str], None] = lambda s: None):
        self.address = SshAddress.parse(address) if isinstance(address, str) else address
        self.spec = address if isinstance(address, str) else f"ssh://{self.address}"
        self.identity = identity
        self.power_command = power_cycle
        self.console = console
        self.note = lambda s: note(f"{self.address}: {s}")
        self._boot_id: str | None = None
        self._last_outcome = Outcome.DONE

    def close(self) -> None:
        if self.console is not None:
            self.console.close()

    # --- ssh itself

    def ssh_argv(self, command: str) -> list[str]:
        a = self.address
        argv = ["ssh", "-T", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
                "-o", "LogLevel=ERROR", *KEEPALIVE]
        if a.loopback:
            argv += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        else:
            argv += ["-o", "StrictHostKeyChecking=accept-new"]
        if self.identity:
            argv += ["-i", str(self.identity), "-o", "IdentitiesOnly=yes"]
        if a.port:
            argv += ["-p", str(a.port)]
        if a.user:
            argv += ["-l", a.user]
        return [*argv, "--", a.host, command]

    def ssh(self, command: str, timeout: float, data: bytes | None = None
            ) -> subprocess.CompletedProcess[bytes]:
        """Run `command` on the board; a connection failure is a TargetError."""
        try:
            proc = subprocess.run(self.ssh_argv(command), input=data, capture_output=True,
                                  timeout=timeout, stdin=None if data else subprocess.DEVNULL)
        except FileNotFoundError:
            raise TargetError("ssh not found: apt-get install openssh-client") from None
        except subprocess.TimeoutExpired:
            raise TargetError(f"ssh {self.address}: no answer within {timeout:.0f} s") from None
        if proc.returncode == 255:
            why = explain(proc.stderr.decode(errors="replace"))
            raise TargetError(f"ssh {self.address}: {why}")
        return proc

    # --- what Rebooter needs

    def boot_id(self, timeout: float) -> str | None:
        try:
            out = self.ssh("cat /proc/sys/kernel/random/boot_id", timeout=timeout)
        except TargetError:
            return None
        if out.returncode != 0:
            return None
        return out.stdout.decode().strip() or None

    def soft_reboot(self) -> None:
        try:
            self.ssh(REBOOT, timeout=20)
        except TargetError:
            pass  # the connection may die with the board: that is the point

    # --- a run

    def probe(self) -> dict[str, Any]:
        """What the board runs, checked: python3 >= 3.11 and root. One-line errors."""
        py = self.address.python
        out = self.ssh(python_command(PROBE, python=py), timeout=60)
        err = out.stderr.decode(errors="replace").strip()
        if out.returncode == 127 or "not found" in err:
            raise TargetError(f"{self.address}: no {py} on the board (the agent needs Python "
                              f"3.11 or newer; give another with ?python=PATH)")
        try:
            probe = json.loads(out.stdout.decode().strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise TargetError(f"{self.address}: {py} did not run: "
                              f"{(err.splitlines() or ['no output'])[-1]}") from None
        check_probe(probe, str(self.address))
        return probe

    def push(self, job: dict[str, Any]) -> str:
        """The agent and the job in a new directory on the board (only the job with a checkout)."""
        from harness.host.targets.base import UNPACK

        bundle = job_bundle(job) if self.address.checkout else agent_bundle(job)
        out = self.ssh(python_command(UNPACK, python=self.address.python), timeout=120,
                       data=bundle)
        lines = out.stdout.decode().strip().splitlines()
        if out.returncode != 0 or not lines:
            err = (out.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise TargetError(f"{self.address}: could not unpack the agent: {err}")
        return lines[-1]

    def run(self, tasks: list[dict[str, Any]], run_dir: Path,
            deadlines: Deadlines = DEADLINES, on_event: EventHook | None = None) -> GuestRun:
        result = begin(run_dir, STALE)
        return run_job(_SshJob(self, tasks, run_dir), EventBook(result, deadlines, on_event))

    def _start_kmsg(self, run_dir: Path, from_start: bool) -> KmsgStream:
        return KmsgStream(
            self.ssh_argv(python_command(KMSG_READER, "start" if from_start else "end",
                                         python=self.address.python)),
            run_dir / "console.log")

    def _wait_kmsg(self, kmsg: KmsgStream, book: EventBook) -> None:
        # The agent's first marker must not be written before the reader
        # has found the end of the log.
        if not kmsg.started.wait(timeout=max(5.0, min(30.0, book.remaining_boot()))):
            kmsg.stop()
            err = kmsg.proc.stderr.read().decode(errors="replace") if kmsg.proc.stderr else ""
            raise TargetError(f"{self.address}: cannot read /dev/kmsg: "
                              f"{(err.strip().splitlines() or ['no output'])[-1]}")

    def _why_ended(self, agent: subprocess.Popen, run_dir: Path) -> str:
        # The session often dies before the console shows the panic to ended().
        if self.console is not None and self.console.sink.panicked:
            return "the kernel panicked"
        if agent.returncode == 255:
            return (f"the ssh connection to {self.address} was lost (the board crashed or its "
                    f"network went down)")
        try:
            log = (run_dir / "agent.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            log = []
        return (f"the agent exited with status {agent.returncode} before it finished"
                + (f": {log[-1]}" if log else ""))

    def _hang_evidence(self) -> None:
        """Blocked tasks and all CPUs' stacks, through whichever way in still works."""
        try:
            self.ssh("echo w > /proc/sysrq-trigger; echo l > /proc/sysrq-trigger", timeout=15)
        except TargetError:
            if self.console is not None:
                for key in "wl":
                    self.console.sysrq(key)
        time.sleep(3.0)


class _SshJob:
    """One run of the agent in an ssh session: its stdout is the event stream."""

    not_started = "the agent did not start"

    def __init__(self, target: SshTarget, tasks: list[dict[str, Any]], run_dir: Path):
        self.target = target
        self.tasks = tasks
        self.run_dir = run_dir
        self.kmsg: KmsgStream | None = None
        self.agent: subprocess.Popen[bytes] | None = None
        self.remote: str | None = None
        self._partial = b""

    def prepare(self, book: EventBook) -> str | None:
        t = self.target
        if t.console is not None:
            t.console.record_to(self.run_dir)
        first = t._boot_id is None
        try:
            if not first:
                rebooter = Rebooter(t, t.power_command, t.note)
                rebooter.reboot(t._boot_id or "", book.start + book.deadlines.boot,
                                crashed=t._last_outcome != Outcome.DONE)
            probe = t.probe()
            t._boot_id = probe["boot_id"]
            if t.console is None:
                self.kmsg = t._start_kmsg(self.run_dir, from_start=not first)
            self.remote = t.push({"tasks": self.tasks})
            if self.kmsg is not None:
                t._wait_kmsg(self.kmsg, book)
        except TargetError as e:
            # A board that cannot be used at all is the user's to fix; one
            # that does not come back after a run is that run's end.
            if first:
                raise
            return str(e)
        return None

    def launch(self, book: EventBook) -> None:
        t = self.target
        assert self.remote is not None
        command = agent_command(self.remote, t.address.python, t.address.checkout)
        self.agent = subprocess.Popen(t.ssh_argv(command), stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE,
                                      stderr=(self.run_dir / "agent.log").open("wb"))

    def read(self, timeout: float) -> list[str | dict[str, Any]] | None:
        assert self.agent is not None
        out: IO[bytes] = self.agent.stdout  # type: ignore[assignment]
        fd = out.fileno()
        if not select.select([fd], [], [], timeout)[0]:
            return []
        chunk = os.read(fd, 65536)
        if not chunk:
            self.agent.wait()
            return None
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        return [line.decode(errors="replace") for line in lines]

    def ended(self) -> str | None:
        console = self.target.console
        if console is not None and console.sink.panicked:
            time.sleep(2.0)  # the rest of the panic report
            return "the kernel panicked"
        return None

    def finish(self) -> None:
        assert self.agent is not None
        try:
            self.agent.wait(timeout=POWEROFF_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise DeadlinePassed(f"the agent finished but did not exit within "
                                 f"{POWEROFF_TIMEOUT:.0f} s") from None

    def why_ended(self) -> str:
        assert self.agent is not None
        return self.target._why_ended(self.agent, self.run_dir)

    def cut_off(self) -> str | None:
        # ssh says 255 for its own failures. The board still answering with the
        # same boot id means its kernel ran on: only the connection went.
        assert self.agent is not None
        t = self.target
        if self.agent.returncode != 255 or (t.console is not None and t.console.sink.panicked):
            return None
        boot_id = t.boot_id(timeout=15)
        if boot_id is None or boot_id != t._boot_id:
            return None
        return (f"the ssh connection to {t.address} was lost while the board kept running "
                f"(same boot id {boot_id})")

    def hang_evidence(self) -> None:
        self.target._hang_evidence()

    def stop(self, result: GuestRun) -> None:
        t = self.target
        done = result.outcome == Outcome.DONE
        if self.agent is not None:
            _end(self.agent)
        if self.kmsg is not None:
            self.kmsg.stop(grace=LOG_GRACE if done else 3.0)
        if done and self.remote:
            try:
                t.ssh(f"rm -rf {shlex.quote(self.remote)}", timeout=15)
            except TargetError:
                pass
        t._last_outcome = result.outcome
        if t.console is not None:
            time.sleep(LOG_GRACE if done else 0)
            t.console.sink.flush()
