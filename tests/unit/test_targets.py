"""Board targets without a board: kmsg formatting, the serial console's
splitting of kernel lines from events, target specs, the agent bundle,
and the one-line errors the CLI gives for a board it cannot use."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from harness.host.cli import main
from harness.host.targets.base import (
    MIN_PYTHON,
    PROBE,
    Rebooter,
    TargetError,
    agent_bundle,
    agent_command,
    check_probe,
    kmsg_lines,
    python_command,
)
from harness.host.targets.run import DeadlinePassed, Deadlines, EventBook, GuestRun
from harness.host.targets.serial import ConsoleSink, parse_serial
from harness.host.targets.ssh import SshAddress, SshTarget, explain

# --- /dev/kmsg records as console lines


def test_kmsg_record_becomes_a_console_line() -> None:
    assert kmsg_lines("6,339,5140900,-;NET: Registered protocol family 10\n") == [
        "[    5.140900] NET: Registered protocol family 10"]
    assert kmsg_lines("4,1,123456789012,-,caller=T1;big\n") == ["[123456.789012] big"]


def test_kmsg_escapes_and_multiline_messages() -> None:
    # /dev/kmsg escapes newlines and non-ASCII; each line of the message gets the time.
    rec = "3,7,1000001,-;BUG: first\\x0asecond \\xc3\\xa9\\x5c\n"
    assert kmsg_lines(rec) == ["[    1.000001] BUG: first", "[    1.000001] second é\\"]


def test_kmsg_continuation_lines_and_other_text() -> None:
    assert kmsg_lines(" SUBSYSTEM=acpi\n") == []
    assert kmsg_lines("v4l2-unplug: reading /dev/kmsg from its end\n") == [
        "v4l2-unplug: reading /dev/kmsg from its end"]
    assert kmsg_lines("\n") == []


def test_kmsg_lines_feed_the_attribution_markers() -> None:
    from harness.pure.scenarios.attribution import markers

    recs = ["12,900,2000000,-;v4l2-unplug: scenario idle--unbind begin",
            "12,901,2500000,-;v4l2-unplug: scenario idle--unbind disrupt"]
    console = "\n".join(line for r in recs for line in kmsg_lines(r))
    assert [(m.scenario, m.step, m.time) for m in markers(console)] == [
        ("idle--unbind", "begin", 2.0), ("idle--unbind", "disrupt", 2.5)]


# --- the serial console: kernel lines inside the agent's events


def _sink(tmp_path: Path) -> ConsoleSink:
    sink = ConsoleSink()
    sink.switch(tmp_path / "console.log", tmp_path / "serial.log")
    return sink


def _event(name: str, **fields: object) -> bytes:
    return json.dumps({"event": name, "mono": 1.5, "pid": 7, **fields}).encode()


KLINE = b"[   12.345678] vimc vimc.0: some message with {braces} and [brackets]\r\n"


@pytest.mark.parametrize("cut", [0, 1, 5, 9, 20, -2, -1])
def test_kernel_line_inside_an_event_is_taken_out(tmp_path: Path, cut: int) -> None:
    event = _event("scenario-result", record={"name": "x", "detail": "[ok] done"})
    cut = cut % len(event) if cut else 0
    stream = b"# " + event[:cut] + KLINE + event[cut:] + b"\r\n"
    sink = _sink(tmp_path)
    # any chunking: the UART delivers bytes, not lines
    for i in range(0, len(stream), 7):
        sink.write(stream[i:i + 7])
    sink.flush()
    assert list(sink.events) == [json.loads(event)]
    console = (tmp_path / "console.log").read_text()
    assert "[   12.345678] vimc vimc.0: some message" in console
    assert '"event"' not in console
    assert (tmp_path / "serial.log").read_bytes() == stream


def test_several_kernel_lines_inside_one_event(tmp_path: Path) -> None:
    event = _event("scenario-start", scenario="media-opened--unbind")
    stream = event[:30] + KLINE + KLINE.replace(b"12.3", b"13.3") + event[30:] + b"\n"
    sink = _sink(tmp_path)
    sink.write(stream)
    sink.flush()
    assert list(sink.events) == [json.loads(event)]
    assert (tmp_path / "console.log").read_text().count("vimc vimc.0") == 2


def test_event_text_that_looks_like_a_printk_time(tmp_path: Path) -> None:
    # A whole event on one line is never cut, whatever its strings hold.
    event = _event("result", data={"stdout": "[    1.000000] quoted kernel line"})
    sink = _sink(tmp_path)
    sink.write(event + b"\r\n")
    assert list(sink.events) == [json.loads(event)]


def test_shell_lines_and_panic(tmp_path: Path) -> None:
    sink = _sink(tmp_path)
    sink.write(b"# abc-B\r\nhello\r\n[    9.000000] Kernel panic - not syncing: sysrq triggered"
               b" crash\r\nabc-E 0\r\n")
    assert list(sink.lines) == ["# abc-B", "hello", "abc-E 0"]
    assert sink.panicked
    sink.switch(tmp_path / "next.log")
    assert not sink.panicked


# --- target specs


@pytest.mark.parametrize(("spec", "expect"), [
    ("ssh://board", SshAddress("board")),
    ("ssh://root@10.0.0.5:2222", SshAddress("10.0.0.5", "root", 2222)),
    ("ssh://root@board/opt/v4l2-unplug?python=/usr/bin/python3.12",
     SshAddress("board", "root", None, "/opt/v4l2-unplug", "/usr/bin/python3.12")),
])
def test_ssh_address(spec: str, expect: SshAddress) -> None:
    assert SshAddress.parse(spec) == expect


@pytest.mark.parametrize("spec", ["ssh://", "board", "ssh://h:port", "ssh://h?pyton=x"])
def test_bad_ssh_address(spec: str) -> None:
    with pytest.raises(TargetError):
        SshAddress.parse(spec)


def test_host_keys_are_checked_except_on_loopback() -> None:
    local = SshTarget("ssh://root@127.0.0.1:2222").ssh_argv("true")
    remote = SshTarget("ssh://root@board", identity=Path("/k")).ssh_argv("true")
    assert "UserKnownHostsFile=/dev/null" in local and "-p" in local
    assert "StrictHostKeyChecking=accept-new" in remote and "UserKnownHostsFile=/dev/null" \
        not in remote
    assert remote[-3:] == ["--", "board", "true"] and "IdentitiesOnly=yes" in remote
    assert "BatchMode=yes" in remote  # never a password prompt


def test_serial_spec() -> None:
    assert parse_serial("serial:/dev/ttyUSB0?baud=921600&password=pw") == {
        "device": "/dev/ttyUSB0", "baud": 921600, "user": "root", "password": "pw",
        "python": "python3", "checkout": None}
    for bad in ("serial:", "serial:/dev/x?baud=fast", "serial:/dev/x?speed=1"):
        with pytest.raises(TargetError):
            parse_serial(bad)


@pytest.mark.parametrize(("stderr", "says"), [
    ("ssh: connect to host 127.0.0.1 port 1: Connection refused", "connection refused"),
    ("root@b: Permission denied (publickey).", "--ssh-identity"),
    ("ssh: Could not resolve hostname nope: Name or service not known", "does not resolve"),
    ("weird\nlast line", "last line"),
])
def test_ssh_errors_in_words(stderr: str, says: str) -> None:
    assert says in explain(stderr)


# --- what is sent to the board


def test_probe_runs_through_a_shell_and_refuses_what_cannot_work() -> None:
    out = subprocess.run(["sh", "-c", python_command(PROBE, python=sys.executable)],
                         capture_output=True, text=True, check=True).stdout
    probe = json.loads(out)
    assert probe["python"][:2] >= list(MIN_PYTHON) and probe["euid"] == os.geteuid()
    with pytest.raises(TargetError, match="3.9.2"):
        check_probe({**probe, "python": [3, 9, 2]}, "board")
    with pytest.raises(TargetError, match="root"):
        check_probe({**probe, "euid": 1000}, "board")


def test_the_agents_import_closure_is_target_and_pure_code_only() -> None:
    from harness.host.targets.base import PACKAGE, agent_closure

    closure = {str(p.relative_to(PACKAGE)) for p in agent_closure()}
    # what the agent's tasks import, lazily or not, is in it ...
    assert {"target/agent/tasks_scenarios.py", "target/scenarios/race.py",
            "pure/kmsg/classify.py", "pure/profiles/vimc.py"} <= closure
    # ... and nothing of the host side: a board needs no kernels, targets or reports
    assert all(p.split("/")[0] in ("target", "pure") or p == "__init__.py" for p in closure)


def test_agent_bundle_runs_without_site_packages(tmp_path: Path) -> None:
    bundle = agent_bundle({"tasks": [{"task": "uname"}]})
    names = tarfile.open(fileobj=io.BytesIO(bundle)).getnames()
    assert "harness/target/agent/__main__.py" in names and "job.json" in names
    assert "v4l2.py" in names and "pyudev/__init__.py" in names
    harness = {n for n in names if n.startswith("harness/")}
    assert not any(n.startswith("harness/host/") for n in harness)
    assert "harness/target/scenarios/executor.py" in harness
    tarfile.open(fileobj=io.BytesIO(bundle)).extractall(tmp_path)
    # the same command a board runs, with the host's interpreter standing in for python3
    cmd = agent_command(str(tmp_path), python=sys.executable)
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=60)
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert [e["event"] for e in events] == ["ready", "task-start", "result", "done"]
    assert events[2]["data"]["release"] == os.uname().release


# --- run bookkeeping and reboots


def test_event_book_deadlines(tmp_path: Path) -> None:
    run = GuestRun(tmp_path)
    seen: list[str] = []
    book = EventBook(run, Deadlines(boot=0.2, idle=0.2, total=5), lambda e, r: seen.append(
        e["event"]), start=time.monotonic())
    book.line('{"event": "ready"}')
    book.line("not json")
    book.check()
    time.sleep(0.3)
    with pytest.raises(DeadlinePassed, match="nothing for"):
        book.check()
    book.line('{"event": "done"}')
    assert seen == ["ready", "garbled", "done"] and run.outcome == "done"
    book.close()
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 3


class _Board:
    """A board that reboots only when told to by `power` (a file the power command touches)."""

    def __init__(self, power: Path, soft_works: bool):
        self.power, self.soft_works, self.boot = power, soft_works, "a"

    def boot_id(self, timeout: float) -> str | None:
        if self.power.exists():
            self.power.unlink()
            self.boot += "p"
        return self.boot

    def soft_reboot(self) -> None:
        if self.soft_works:
            self.boot += "s"


def test_rebooter_uses_reboot_then_the_power_cycle(tmp_path: Path, monkeypatch) -> None:
    import harness.host.targets.base as base

    monkeypatch.setattr(base, "SOFT_REBOOT", 0.5)
    monkeypatch.setattr(base, "REBOOT_POLL", 0.05)
    power = tmp_path / "cycled"
    notes: list[str] = []
    soft = _Board(power, soft_works=True)
    assert Rebooter(soft, f"touch {power}", notes.append).reboot(
        "a", time.monotonic() + 10, crashed=False) == "as"
    stuck = _Board(power, soft_works=False)
    assert Rebooter(stuck, f"touch {power}", notes.append).reboot(
        "a", time.monotonic() + 10, crashed=False) == "ap"
    crashed = _Board(power, soft_works=True)
    assert Rebooter(crashed, f"touch {power}", notes.append).reboot(
        "a", time.monotonic() + 10, crashed=True) == "ap"
    with pytest.raises(TargetError, match="status 3"):
        Rebooter(crashed, "exit 3", notes.append).reboot("ap", time.monotonic() + 5, True)
    with pytest.raises(DeadlinePassed, match="--power-cycle"):
        Rebooter(_Board(power, False), None, notes.append).reboot(
            "a", time.monotonic() + 0.5, crashed=True)


# --- the CLI's one-line errors


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(("argv", "says"), [
    (["--target", "telnet://board"], "unknown target"),
    (["--target", "serial:/dev/nonexistent-tty"], "cannot open serial console"),
    (["--target", "ssh://root@127.0.0.1:{port}"], "connection refused"),
    (["--target", "ssh://b", "--patch", "x.patch"], "a board runs its own kernel"),
    (["--console", "serial:/dev/ttyS9"], "for boards"),
])
def test_cli_board_errors_are_one_line(argv: list[str], says: str, capsys) -> None:
    argv = [a.format(port=_free_port()) for a in argv]
    assert main(["run", "--scenario", "idle--unbind_bind", *argv]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


# --- logging in on a serial line (a real pty, a login prompt, a real shell)

GETTY = """
import os, sys
while True:
    user = input("board login: ")
    password = input("Password: ")
    if (user, password) == ("root", "pw"):
        os.execvp("sh", ["sh", "-i"])
    print("Login incorrect")
"""


# `v4l2-unplug serve`'s guest: root needs no password, any other name
# (an empty one too) is refused, and the next prompt comes a second later.
# It answers slowly, as a loaded guest under TCG does, so what the harness
# types while it waits is read by the prompts that follow.
SLOW_GETTY = """
import os, time
while True:
    user = input("\\nv4l2-unplug-board login: ")
    time.sleep(0.7)
    if user == "root":
        os.execvp("sh", ["sh", "-i"])
    print("Login incorrect")
    time.sleep(1)
"""


def _spawn_on_pty(program: str):
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", program], stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True)
    os.close(slave)
    yield master
    proc.kill()
    proc.wait()


@pytest.fixture
def getty():
    """A pty whose far end asks for a login, then runs sh; yields the master side."""
    yield from _spawn_on_pty(GETTY)


@pytest.fixture
def slow_getty():
    yield from _spawn_on_pty(SLOW_GETTY)


@pytest.mark.parametrize(("password", "says"), [("pw", None), (None, "password"),
                                                ("wrong", "login as root failed")])
def test_serial_login(getty: int, password: str | None, says: str | None) -> None:
    from harness.host.targets.serial import SerialConsole, SerialShell

    console = SerialConsole("pty", fd=os.dup(getty))
    shell = SerialShell(console, "root", password)
    try:
        if says:
            with pytest.raises(TargetError, match=says):
                shell.login(timeout=30)
            return
        shell.login(timeout=30)
        assert shell.run("echo one; echo two >&2; false", timeout=10) == (1, ["one", "two"])
        # the command's own text is not echoed back once logged in
        status, out = shell.run("printf 'a\\nb\\n'", timeout=10)
        assert (status, out) == (0, ["a", "b"])
    finally:
        console.close()


def test_serial_login_on_a_slow_getty_that_refuses_empty_names(slow_getty: int) -> None:
    """The wake-up keystrokes are refused as names; that is not a failed login."""
    from harness.host.targets.serial import SerialConsole, SerialShell

    console = SerialConsole("pty", fd=os.dup(slow_getty))
    shell = SerialShell(console, "root")
    try:
        shell.login(timeout=60)
        assert shell.run("echo in", timeout=10) == (0, ["in"])
    finally:
        console.close()
