"""A board's serial console, driven with pexpect: the kernel log, a login, the agent.

The serial console is where a board's kernel log survives the network
dying, an oops or a panic, so whenever a board has one the harness keeps
reading it for the whole run (and between runs, so reports printed late
still land in the run that caused them). SerialTarget also logs in on it
and runs the agent there, for a board with no network at all.

One line carries everything: kernel messages, the shell, and the agent's
JSON events. The kernel writes its lines straight to the UART, so one can
land in the middle of an event the shell is still sending. ConsoleSink
takes such a line back out (it starts with a printk time and runs to the
end of a line), which leaves the event whole, and keeps the console log
free of events.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import select
import shlex
import termios
import threading
import time
import tty
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs

import pexpect
import pexpect.fdpexpect

from harness.host.targets.base import (
    PROBE,
    REBOOT,
    PowerCycle,
    Rebooter,
    TargetError,
    agent_bundle,
    agent_command,
    check_probe,
    job_bundle,
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

# Where a kernel line starts: its printk time. What precedes it on the same
# line is another writer's unfinished line.
_KERNEL_LINE = re.compile(rb"\[\s*\d+\.\d{6}\]")
_EVENT = b'{"event"'
PANIC = b"Kernel panic - not syncing"
# What an earlier run in the same directory left.
STALE = ("console.log", "events.jsonl", "agent.log", "serial.log")
# A line that never ends (a prompt with nothing after it) is flushed at this size.
_MAX_PENDING = 1 << 20
BAUDS = {n: getattr(termios, f"B{n}") for n in (
    9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1500000, 3000000)
    if hasattr(termios, f"B{n}")}


class ConsoleSink:
    """What pexpect reads from the console goes here (its logfile_read).

    Everything, as received, goes to serial.log; kernel lines and the shell's
    lines go to console.log; the agent's events and the shell's lines are
    queued for whoever runs commands on the board.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._user = b""
        self._console: IO[bytes] | None = None
        self._raw: IO[bytes] | None = None
        self.events: deque[dict[str, Any]] = deque()
        self.lines: deque[str] = deque()
        self.panicked = False
        self._lock = threading.Lock()

    def switch(self, console: Path | None, raw: Path | None = None) -> None:
        """Start writing to another run's files (None: keep nothing)."""
        with self._lock:
            for f in (self._console, self._raw):
                if f is not None:
                    f.close()
            self._console = console.open("ab") if console else None
            self._raw = raw.open("ab") if raw else None
            self.panicked = False

    def close(self) -> None:
        self.switch(None)

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._raw is not None:
                self._raw.write(data)
            self._buf += data
            *lines, self._buf = self._buf.split(b"\n")
            for line in lines:
                self._line(line.rstrip(b"\r"))
            if len(self._buf) > _MAX_PENDING:
                self._line(self._buf)
                self._buf = b""

    def flush(self) -> None:
        with self._lock:
            for f in (self._console, self._raw):
                if f is not None:
                    f.flush()

    def _line(self, line: bytes) -> None:
        # A whole event on one line is taken as it is, even if its text
        # happens to hold something that looks like a printk time.
        if not self._user and self._event(line):
            return
        m = _KERNEL_LINE.search(line)
        if m is None:
            text, self._user = self._user + line, b""
            if not self._event(text):
                self._emit(text)
                self.lines.append(text.decode(errors="replace"))
            return
        # The shell's line is unfinished: it goes on after the kernel's.
        self._user += line[:m.start()]
        kernel = line[m.start():]
        if PANIC in kernel:
            self.panicked = True
        self._emit(kernel)

    def _event(self, text: bytes) -> bool:
        i = text.find(_EVENT)
        if i < 0:
            return False
        try:
            event = json.loads(text[i:])
        except ValueError:
            return False
        if not isinstance(event, dict) or "event" not in event:
            return False
        if text[:i].strip():
            self._emit(text[:i])
        self.events.append(event)
        return True

    def _emit(self, text: bytes) -> None:
        if self._console is not None:
            self._console.write(text + b"\n")


def open_tty(device: str, baud: int) -> int:
    """The serial device as a raw 8N1 line at `baud` (a pty or socket is used as it is)."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as e:
        raise TargetError(f"cannot open serial console {device}: {e.strerror}") from None
    if os.isatty(fd):
        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[4] = attrs[5] = BAUDS[baud]
        attrs[2] = (attrs[2] | termios.CLOCAL | termios.CREAD) & ~termios.CRTSCTS
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    return fd


class SerialConsole:
    """A serial device read all the time, whoever else uses it.

    A background thread keeps reading (so the board never blocks on a full
    UART and nothing it says is lost); `exclusive()` hands the line to a
    caller that talks to the board with pexpect.
    """

    def __init__(self, device: str, baud: int = 115200, fd: int | None = None):
        """Open `device`, or use `fd` (already open, e.g. a pty master) under that name."""
        if baud not in BAUDS:
            raise TargetError(f"unsupported baud rate {baud} (one of {', '.join(map(str, BAUDS))})")
        self.device = device
        self.fd = open_tty(device, baud) if fd is None else fd
        self.sink = ConsoleSink()
        self.child = pexpect.fdpexpect.fdspawn(self.fd, timeout=5, maxread=65536)
        self.child.logfile_read = self.sink
        self._lock = threading.RLock()
        self._stop = False
        self.gone = False
        self._thread = threading.Thread(target=self._drain, name="serial-console", daemon=True)
        self._thread.start()

    def record_to(self, run_dir: Path | None) -> None:
        self.sink.switch(run_dir / "console.log" if run_dir else None,
                         run_dir / "serial.log" if run_dir else None)

    def pump(self, timeout: float) -> None:
        """Read what the board sent within `timeout` into the sink."""
        with self._lock:
            try:
                self.child.read_nonblocking(65536, timeout=timeout)
            except pexpect.TIMEOUT:
                pass
            except (pexpect.EOF, OSError):
                # A USB-serial adapter unplugged, or a pty whose far end closed.
                self.gone = True
                time.sleep(timeout)

    def _drain(self) -> None:
        while not self._stop:
            self.pump(0.1)
            time.sleep(0)  # let a waiting exclusive() caller take the lock

    @contextmanager
    def exclusive(self) -> Iterator[pexpect.fdpexpect.fdspawn]:
        with self._lock:
            yield self.child

    def write(self, data: bytes, timeout: float = 30.0) -> None:
        """All of `data`, however slowly the line takes it."""
        end = time.monotonic() + timeout
        while data:
            if time.monotonic() > end:
                raise TargetError(f"serial console {self.device} takes no input")
            if not select.select([], [self.fd], [], 0.5)[1]:
                continue
            try:
                data = data[os.write(self.fd, data):]
            except BlockingIOError:
                continue
            except OSError as e:
                raise TargetError(f"serial console {self.device}: {e.strerror}") from None

    def sysrq(self, key: str) -> None:
        """A break then `key`: magic sysrq on a real UART (a pty ignores it)."""
        try:
            termios.tcsendbreak(self.fd, 0)
            self.write(key.encode(), timeout=2)
        except (termios.error, OSError, TargetError):
            pass

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        self.sink.close()
        os.close(self.fd)


LOGIN = re.compile(rb"(?<!Last )[Ll]ogin: ")
PASSWORD = re.compile(rb"[Pp]assword: ")
INCORRECT = re.compile(rb"[Ll]ogin incorrect")
PROMPTS = {"login": LOGIN, "password": PASSWORD, "incorrect": INCORRECT}


def _expect(child: pexpect.fdpexpect.fdspawn, patterns: dict[str, re.Pattern[bytes]],
            timeout: float) -> str:
    """The name of the first pattern seen, "timeout" or "eof"."""
    names = [*patterns, "timeout", "eof"]
    return names[child.expect([*patterns.values(), pexpect.TIMEOUT, pexpect.EOF],
                              timeout=timeout)]


class SerialShell:
    """A root shell on the serial console: logs in, runs commands between markers."""

    def __init__(self, console: SerialConsole, user: str = "root", password: str | None = None,
                 note: Callable[[str], None] = lambda s: None):
        self.console = console
        self.user = user
        self.password = password
        self.note = note
        self.ready = False

    def login(self, timeout: float) -> None:
        """Get to a shell, logging in if the console asks; turn echo off.

        Only a refusal of the name or password typed here counts against the
        login: the keystrokes that wake the line up may themselves be read as
        a name and refused, and a slow getty reads them after prompts the
        harness has already seen.
        """
        end = time.monotonic() + timeout
        refused = 0
        tok = secrets.token_hex(4)
        # Arithmetic keeps the marker out of the command's echo.
        shell = {"shell": re.compile(f"{tok}-42".encode())}
        seen = "unknown"  # what the line last asked for
        with self.console.exclusive() as child:
            while True:
                if time.monotonic() > end:
                    why = " (Login incorrect)" if refused else ""
                    raise DeadlinePassed(f"no shell on serial console {self.console.device} "
                                         f"within {timeout:.0f} s{why}")
                if seen == "unknown":
                    child.buffer = b""
                    self.console.write(b"\r")
                    seen = _expect(child, PROMPTS, 0.5)
                    if seen == "timeout":  # quiet: perhaps a shell prompt
                        self.console.write(f"echo {tok}-$((6*7))\r".encode())
                        seen = _expect(child, {**shell, **PROMPTS}, 4)
                if seen == "eof" or self.console.gone:
                    raise TargetError(f"serial console {self.console.device} went away")
                if seen == "shell":
                    break
                seen = self._settle(child, seen)
                if seen == "password":
                    # A password for a name we did not type (the wake-up was
                    # read as one): let it be refused, then a prompt follows.
                    self.console.write(b"\r")
                    seen = "incorrect"
                    continue
                if seen != "login":
                    seen = "unknown"
                    continue
                self.console.write(f"{self.user}\r".encode())
                seen = _expect(child, PROMPTS, 2)
                if seen == "password":
                    if self.password is None:
                        raise TargetError(f"serial console {self.console.device} asks for "
                                          f"{self.user}'s password: add ?password=... to the "
                                          f"target")
                    self.console.write(f"{self.password}\r".encode())
                    # login(1) waits a few seconds before it says a password was wrong.
                    seen = _expect(child, PROMPTS, 5)
                if seen == "incorrect":
                    refused += 1
                    if refused >= 3:
                        raise TargetError(f"login as {self.user} failed on serial console "
                                          f"{self.console.device}: Login incorrect, "
                                          f"{refused} times")
                elif seen != "login":
                    seen = "unknown"  # logged in, perhaps: look for a shell
        self.console.sink.lines.clear()
        self.ready = True
        self.run("stty -echo", timeout=10)

    @staticmethod
    def _settle(child: pexpect.fdpexpect.fdspawn, seen: str) -> str:
        """The last prompt once the line falls quiet: what was typed before is
        read by the prompts that come first, so a name is typed after them."""
        for _ in range(10):
            # A refusal is followed by a new prompt, after login's delay.
            nxt = _expect(child, PROMPTS, 5.0 if seen == "incorrect" else 0.5)
            if nxt in ("timeout", "eof"):
                break
            seen = nxt
        return seen

    def run(self, command: str, timeout: float = 30.0, data: bytes | None = None,
            wait_for: str | None = None) -> tuple[int, list[str]]:
        """Exit status and output lines of `command`. With `data`, send it once
        the command printed `wait_for` (it reads it from its stdin)."""
        tok = secrets.token_hex(4)
        begin, end_re = f"{tok}-B", re.compile(rf"{tok}-E (\d+)$")
        lines = self.console.sink.lines
        lines.clear()
        self.console.write(f"echo {begin}; {command}; echo {tok}-E $?\r".encode())
        out: list[str] = []
        started = sent = False
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.console.pump(0.1)
            while lines:
                line = lines.popleft()
                m = end_re.search(line)
                if m and started:
                    return int(m.group(1)), out
                if line.endswith(begin):
                    started = True
                elif started:
                    out.append(line)
                    if data is not None and not sent and wait_for and wait_for in line:
                        self.console.write(data, timeout=max(30.0, len(data) / 5000))
                        sent = True
            if self.console.gone:
                break
        self.ready = False
        raise DeadlinePassed(f"`{command[:60]}` gave no answer on serial console "
                             f"{self.console.device} within {timeout:.0f} s")

    def write(self, data: bytes) -> None:
        self.console.write(data)


# Reads a base64 bundle from stdin up to an end line, checks it, unpacks it.
RECEIVE = """
import base64, hashlib, io, sys, tarfile, tempfile
tok, digest = sys.argv[1], sys.argv[2]
print(tok + "-GO", flush=True)
chunks = []
for line in sys.stdin:
    line = line.strip()
    if line == tok + "-END":
        break
    chunks.append(line)
data = base64.b64decode("".join(chunks))
if hashlib.sha256(data).hexdigest() != digest:
    print(tok + "-CORRUPT " + str(len(data)))
    sys.exit(1)
d = tempfile.mkdtemp(prefix="v4l2-unplug-")
extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
tarfile.open(fileobj=io.BytesIO(data), mode="r:gz").extractall(d, **extra)
print(tok + "-DIR " + d)
"""


def parse_serial(spec: str) -> dict[str, Any]:
    """serial:/dev/ttyUSB0[?baud=115200&user=root&password=...&python=...&checkout=...]"""
    if not spec.startswith("serial:"):
        raise TargetError(f"not a serial target: {spec}")
    device, _, query = spec[len("serial:"):].partition("?")
    if not device:
        raise TargetError(f"no device in {spec} (serial:/dev/ttyUSB0)")
    opts = {k: v[-1] for k, v in parse_qs(query).items()}
    unknown = set(opts) - {"baud", "user", "password", "python", "checkout"}
    if unknown:
        raise TargetError(f"unknown option(s) {', '.join(sorted(unknown))} in {spec}")
    try:
        baud = int(opts.get("baud", "115200"))
    except ValueError:
        raise TargetError(f"baud must be a number in {spec}") from None
    return {"device": device, "baud": baud, "user": opts.get("user", "root"),
            "password": opts.get("password"), "python": opts.get("python", "python3"),
            "checkout": opts.get("checkout")}


class _ShellBoard:
    """Rebooter's view of a board reached only through its serial shell."""

    def __init__(self, shell: SerialShell):
        self.shell = shell

    def boot_id(self, timeout: float) -> str | None:
        try:
            if not self.shell.ready:
                self.shell.login(timeout)
            status, out = self.shell.run("cat /proc/sys/kernel/random/boot_id", timeout=timeout)
        except DeadlinePassed:
            return None
        return out[-1].strip() if status == 0 and out else None

    def soft_reboot(self) -> None:
        try:
            self.shell.write(f"{REBOOT}\r".encode())
        finally:
            self.shell.ready = False


class SerialTarget:
    """Runs the agent through a login on the board's serial console."""

    def __init__(self, spec: str, power_cycle: PowerCycle | None = None,
                 note: Callable[[str], None] = lambda s: None):
        self.opts = parse_serial(spec)
        self.spec = spec
        self.where = self.opts["device"]
        self.power_command = power_cycle
        self.note = lambda s: note(f"{self.where}: {s}")
        self.console = SerialConsole(self.opts["device"], self.opts["baud"])
        self.shell = SerialShell(self.console, self.opts["user"], self.opts["password"],
                                 self.note)
        self._boot_id: str | None = None
        self._last_outcome = Outcome.DONE

    def close(self) -> None:
        self.console.close()

    def run(self, tasks: list[dict[str, Any]], run_dir: Path,
            deadlines: Deadlines = DEADLINES, on_event: EventHook | None = None) -> GuestRun:
        result = begin(run_dir, STALE)
        return run_job(_SerialJob(self, tasks, run_dir), EventBook(result, deadlines, on_event))

    def probe(self, timeout: float = 60.0) -> dict[str, Any]:
        """Log in if need be; what the board runs, checked (python3 >= 3.11, root)."""
        try:
            if not self.shell.ready:
                self.shell.login(timeout)
        except DeadlinePassed as d:
            raise TargetError(str(d)) from None
        return self._probe()

    def _probe(self) -> dict[str, Any]:
        status, out = self.shell.run(python_command(PROBE, python=self.opts["python"]), 60)
        try:
            probe = json.loads(out[-1])
        except (IndexError, ValueError):
            raise TargetError(f"{self.where}: no usable {self.opts['python']} on the board "
                              f"({(out or ['no output'])[-1][:120]})") from None
        check_probe(probe, self.where)
        return probe

    def _push(self, job: dict[str, Any], book: EventBook) -> str:
        """Send the agent (or only the job, with a checkout) over the line; its directory."""
        import base64

        bundle = job_bundle(job) if self.opts["checkout"] else agent_bundle(job)
        tok = secrets.token_hex(4)
        text = base64.encodebytes(bundle) + f"{tok}-END\n".encode()
        digest = hashlib.sha256(bundle).hexdigest()
        self.note(f"sending the {'job' if self.opts['checkout'] else 'agent'} "
                  f"({len(bundle) // 1024 + 1} KiB)")
        status, out = self.shell.run(
            python_command(RECEIVE, tok, digest, python=self.opts["python"]),
            timeout=max(60.0, book.remaining_boot()), data=text, wait_for=f"{tok}-GO")
        d = next((line.split(" ", 1)[1] for line in out if line.startswith(f"{tok}-DIR ")), None)
        if status != 0 or d is None:
            raise TargetError(f"{self.where}: the agent did not arrive intact over the serial "
                              f"line ({(out or ['no output'])[-1][:120]})")
        return d

    def _hang_evidence(self, pid: str | None) -> None:
        for key in "wl":
            self.console.sysrq(key)
        self._quietly("echo w > /proc/sysrq-trigger; echo l > /proc/sysrq-trigger")
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            self.console.pump(0.2)
        if pid:
            self._quietly(f"kill -9 {pid}")

    def _quietly(self, command: str) -> None:
        try:
            self.shell.run(command, timeout=10)
        except (DeadlinePassed, TargetError):
            pass


class _SerialJob:
    """One run of the agent in the serial shell: its events come between the
    kernel's lines on the same console (ConsoleSink takes them apart)."""

    not_started = "the agent did not start"

    def __init__(self, target: SerialTarget, tasks: list[dict[str, Any]], run_dir: Path):
        self.target = target
        self.tasks = tasks
        self.run_dir = run_dir
        self.sink = target.console.sink
        self.remote: str | None = None
        self.pid: str | None = None

    def prepare(self, book: EventBook) -> str | None:
        t = self.target
        t.console.record_to(self.run_dir)
        if t._boot_id is not None:
            rebooter = Rebooter(_ShellBoard(t.shell), t.power_command, t.note)
            t._boot_id = rebooter.reboot(t._boot_id, book.start + book.deadlines.boot,
                                         crashed=t._last_outcome != Outcome.DONE)
        if not t.shell.ready:
            t.shell.login(max(5.0, book.remaining_boot()))
        probe = t._probe()
        t._boot_id = probe["boot_id"]
        # The agent's scenario markers are printk'd at the default
        # level: the console must show them.
        t.shell.run("set -- $(cat /proc/sys/kernel/printk); "
                    "[ \"$1\" -ge 7 ] || echo 7 > /proc/sys/kernel/printk")
        self.remote = t._push({"tasks": self.tasks}, book)
        return None

    def launch(self, book: EventBook) -> None:
        t = self.target
        assert self.remote is not None
        self.sink.events.clear()
        command = agent_command(self.remote, t.opts["python"], t.opts["checkout"])
        status, out = t.shell.run(f"({command}) </dev/null & echo PID $!", timeout=20)
        self.pid = next((line.split()[-1] for line in out if line.startswith("PID ")), None)

    def read(self, timeout: float) -> list[str | dict[str, Any]] | None:
        """The events the sink took out of the console. The line never ends:
        a board that falls silent is found by the deadlines."""
        self.target.console.pump(timeout)
        events: list[str | dict[str, Any]] = []
        while self.sink.events:
            events.append(self.sink.events.popleft())
        self.sink.lines.clear()  # the shell's: nobody runs commands meanwhile
        return events

    def ended(self) -> str | None:
        if not self.sink.panicked:
            return None
        time.sleep(2.0)  # the rest of the panic report
        self.target.console.pump(0.5)
        return "the kernel panicked"

    def finish(self) -> None:
        pass  # the agent's shell job ends by itself; nothing waits on it

    def why_ended(self) -> str:
        # read() never ends the stream; a Job must still say why it would.
        return f"the serial console {self.target.where} closed"

    def cut_off(self) -> str | None:
        # read() never ends the stream; a quiet line is the deadlines' to find,
        # and a quiet line cannot tell a hung kernel from a dead adapter.
        return None

    def hang_evidence(self) -> None:
        self.target._hang_evidence(self.pid)

    def stop(self, result: GuestRun) -> None:
        t = self.target
        if result.outcome == Outcome.DONE:
            t.console.pump(1.0)
            if self.remote:
                t._quietly(f"rm -rf {shlex.quote(self.remote)}")
        t._last_outcome = result.outcome
        t.console.sink.flush()
