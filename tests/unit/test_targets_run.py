"""The one run loop (harness.host.targets.run) against scripted event sources: a
child process writing event lines into a real pipe, and a stand-in for QEMU
writing them into the file QEMU's chardev would. Then the scheme table that
opens boards."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.host.targets.base import TargetError
from harness.host.targets.run import (
    DeadlinePassed,
    Deadlines,
    EventBook,
    GuestRun,
    Outcome,
    begin,
    run_job,
)
from harness.host.targets.schemes import SCHEMES, BoardOptions, open_board
from harness.pure.errors import HarnessError


def script(*steps: str) -> str:
    """A child that runs `steps`: ("ready", "sleep 0.5", "raw {...", "exit 3", "panic")."""
    body = ["import sys, time"]
    for step in steps:
        verb, _, arg = step.partition(" ")
        if verb == "sleep":
            body.append(f"time.sleep({float(arg)})")
        elif verb == "exit":
            body.append(f"sys.exit({int(arg)})")
        elif verb == "raw":
            body.append(f"sys.stdout.write({arg!r}); sys.stdout.flush()")
        else:
            body.append(f"print({json.dumps({'event': verb})!r}, flush=True)")
    return "\n".join(body)


class PipeJob:
    """A Job whose agent is a child process writing event lines to a pipe."""

    not_started = "the child did not start"

    def __init__(self, program: str, prepare: str | Exception | None = None,
                 finish_timeout: float = 5.0, panic_after: str | None = None):
        self.program = program
        self._prepare = prepare
        self.finish_timeout = finish_timeout
        self.panic_after = panic_after  # the event after which ended() says "panic"
        self.proc: subprocess.Popen[bytes] | None = None
        self.calls: list[str] = []
        self.seen: list[str] = []
        self._partial = b""

    def prepare(self, book: EventBook) -> str | None:
        self.calls.append("prepare")
        if isinstance(self._prepare, Exception):
            raise self._prepare
        return self._prepare

    def launch(self, book: EventBook) -> None:
        self.calls.append("launch")
        self.proc = subprocess.Popen([sys.executable, "-c", self.program],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def read(self, timeout: float) -> list[str | dict[str, Any]] | None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        if not select.select([fd], [], [], timeout)[0]:
            return []
        chunk = os.read(fd, 65536)
        if not chunk:
            self.proc.wait()
            return None
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        texts = [line.decode() for line in lines]
        self.seen += texts
        return list(texts)

    def ended(self) -> str | None:
        if self.panic_after and any(self.panic_after in t for t in self.seen):
            return "the kernel panicked"
        return None

    def finish(self) -> None:
        assert self.proc is not None
        try:
            self.proc.wait(timeout=self.finish_timeout)
        except subprocess.TimeoutExpired:
            raise DeadlinePassed("the child finished but did not exit") from None

    def why_ended(self) -> str:
        assert self.proc is not None
        return f"the child exited with status {self.proc.returncode}"

    def cut_off(self) -> str | None:
        assert self.proc is not None
        status = self.proc.returncode
        return f"the child was killed by signal {-status}" if status and status < 0 else None

    def hang_evidence(self) -> None:
        self.calls.append("hang_evidence")

    def stop(self, result: GuestRun) -> None:
        self.calls.append(f"stop:{result.outcome}")
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


ROOMY = Deadlines(boot=5, idle=5, total=30)


def run(tmp_path: Path, job: PipeJob, deadlines: Deadlines = ROOMY,
        hook: list[str] | None = None) -> GuestRun:
    result = begin(tmp_path, ("events.jsonl",))
    on_event = None if hook is None else (lambda e, r: hook.append(e["event"]))
    return run_job(job, EventBook(result, deadlines, on_event))


def test_a_job_that_says_done_is_done_with_its_events_recorded(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl").write_text("left by an earlier run\n")
    seen: list[str] = []
    job = PipeJob(script("sleep 0.3", "ready", "raw not-json\n", "raw {\"event\": \"res",
                         "sleep 0.3", "raw ult\"}\n", "done"))
    result = run(tmp_path, job, hook=seen)
    assert result.outcome is Outcome.DONE and result.message == ""
    assert result.boot_seconds is not None and result.boot_seconds >= 0.3
    # a line cut across two writes arrives whole; what is not an event is kept as garbled
    assert seen == ["ready", "garbled", "result", "done"]
    assert result.events[1] == {"event": "garbled", "raw": "not-json"}
    logged = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert logged == result.events
    assert job.calls == ["prepare", "launch", "stop:done"]


@pytest.mark.parametrize(("steps", "outcome"), [
    (("ready", "exit 3"), Outcome.CRASHED),
    (("exit 3",), Outcome.BOOT_FAILED),
])
def test_a_stream_that_ends_before_done(tmp_path: Path, steps: tuple[str, ...],
                                        outcome: Outcome) -> None:
    job = PipeJob(script(*steps))
    result = run(tmp_path, job)
    assert result.outcome is outcome
    assert result.message == "the child exited with status 3"
    assert "hang_evidence" not in job.calls


@pytest.mark.parametrize(("steps", "deadlines", "outcome", "says"), [
    (("sleep 30",), Deadlines(boot=0.5, idle=5, total=30), Outcome.BOOT_FAILED,
     "the child did not start within 0 s"),
    (("ready", "sleep 30"), Deadlines(boot=5, idle=0.5, total=30), Outcome.HANG,
     "the agent sent nothing for 0 s"),
    # events keep coming, so only the total deadline ends it
    (("ready", *["result", "sleep 0.1"] * 300), Deadlines(boot=5, idle=5, total=1.0),
     Outcome.HANG, "the run exceeded its total deadline of 1 s"),
])
def test_deadlines(tmp_path: Path, steps: tuple[str, ...], deadlines: Deadlines,
                   outcome: Outcome, says: str) -> None:
    job = PipeJob(script(*steps))
    started = time.monotonic()
    result = run(tmp_path, job, deadlines)
    assert time.monotonic() - started < 5
    assert (result.outcome, result.message) == (outcome, says)
    # the kernel is asked for its stacks before the job is stopped
    assert job.calls[-2:] == ["hang_evidence", f"stop:{outcome}"]


def test_done_but_the_job_does_not_go_is_a_hang(tmp_path: Path) -> None:
    job = PipeJob(script("ready", "done", "sleep 30"), finish_timeout=0.3)
    result = run(tmp_path, job)
    assert result.outcome is Outcome.HANG
    assert result.message == "the child finished but did not exit"
    assert job.calls[-2:] == ["hang_evidence", "stop:hang"]


@pytest.mark.parametrize(("steps", "outcome"), [
    (("ready", "oops", "sleep 30"), Outcome.CRASHED),
    (("oops", "sleep 30"), Outcome.BOOT_FAILED),
])
def test_a_panic_on_the_console_ends_the_run_at_once(tmp_path: Path, steps: tuple[str, ...],
                                                     outcome: Outcome) -> None:
    job = PipeJob(script(*steps), panic_after="oops")
    started = time.monotonic()
    result = run(tmp_path, job)
    assert time.monotonic() - started < 5
    assert (result.outcome, result.message) == (outcome, "the kernel panicked")


@pytest.mark.parametrize("prepare", ["the board did not come back",
                                     DeadlinePassed("no shell within 5 s")])
def test_a_job_that_cannot_start_is_boot_failed_and_never_launched(
        tmp_path: Path, prepare: str | Exception) -> None:
    job = PipeJob(script("ready", "done"), prepare=prepare)
    result = run(tmp_path, job)
    assert (result.outcome, result.message) == (Outcome.BOOT_FAILED, str(prepare))
    assert job.calls == ["prepare", "stop:boot-failed"]


def test_an_unusable_board_is_the_users_error_and_the_run_is_still_stopped(
        tmp_path: Path) -> None:
    job = PipeJob(script("ready", "done"), prepare=TargetError("board: no python3"))
    with pytest.raises(TargetError, match="no python3"):
        run(tmp_path, job)
    assert job.calls == ["prepare", "stop:running"]


def test_outcomes_are_the_strings_results_json_has_always_had(tmp_path: Path) -> None:
    assert [o.value for o in Outcome] == ["running", "done", "hang", "crashed", "boot-failed",
                                        "lost", "interrupted"]
    guest = GuestRun(tmp_path, [{"event": "done"}], Outcome.BOOT_FAILED, None, "m")
    doc = json.loads(json.dumps(guest.to_dict()))
    assert doc["outcome"] == "boot-failed"
    back = GuestRun.from_dict(doc)
    assert back.outcome is Outcome.BOOT_FAILED and back == guest
    # f-strings and comparisons with the old strings read the same
    assert f"guest {Outcome.HANG}" == "guest hang" and Outcome.DONE == "done"
    assert GuestRun(tmp_path, outcome="hang").outcome is Outcome.HANG  # type: ignore[arg-type]


# --- QEMU's event file: a stand-in QEMU writes it as the chardev does

FAKE_QEMU = """
import os, signal, sys, time
events = open(sys.argv[1], "ab", buffering=0)
console = open(os.path.join(os.path.dirname(sys.argv[1]), "console.log"), "ab", buffering=0)
print("qemu-system-x86_64: a last word", flush=True)
for part in sys.argv[3:]:
    if part.startswith("sleep "):
        time.sleep(float(part.split()[1]))
    elif part == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif part.startswith("console "):
        console.write(part[len("console "):].encode())
    else:
        events.write(part.encode())
sys.exit(int(sys.argv[2]))
"""


@pytest.fixture
def fake_qemu(monkeypatch: pytest.MonkeyPatch):
    """QemuTarget with its command line replaced by FAKE_QEMU with the given parts."""
    from harness.host.kernels.kernel import Kernel
    from harness.host.targets import qemu

    monkeypatch.setattr(qemu, "find_qemu", lambda arch: "/usr/bin/qemu-system-x86_64")
    monkeypatch.setattr(qemu, "choose_accel", lambda binary, image: "tcg")
    monkeypatch.setattr(qemu.QemuTarget, "initramfs", lambda self: Path("/nonexistent/initrd"))
    evidence: list[Path] = []
    monkeypatch.setattr(qemu.QemuTarget, "_collect_hang_evidence",
                        lambda self, run_dir: evidence.append(run_dir))

    def make(status: int, *parts: str) -> tuple[qemu.QemuTarget, list[Path]]:
        kernel = Kernel("f", "6.1", Path("/k/bzImage"), Path("/k"), arch="x86_64")
        target = qemu.QemuTarget(kernel)
        monkeypatch.setattr(target, "command", lambda run_dir, job, initrd: [
            sys.executable, "-c", FAKE_QEMU, str(run_dir / "events.jsonl"), str(status),
            *parts])
        return target, evidence

    return make


def test_qemu_events_file_is_followed_as_the_guest_writes_it(fake_qemu, tmp_path: Path) -> None:
    target, _ = fake_qemu(0, "sleep 0.2", '{"event": "ready"}\n{"event": "res', "sleep 0.3",
                          'ult"}\n', '{"event": "done"}\n')
    run = target.run([{"task": "uname"}], tmp_path, Deadlines(boot=10, idle=10, total=30))
    assert run.outcome is Outcome.DONE, run.message
    assert [e["event"] for e in run.events] == ["ready", "result", "done"]
    assert run.boot_seconds is not None and run.boot_seconds >= 0.2
    # the file is QEMU's own record: the loop does not write it a second time
    assert (tmp_path / "events.jsonl").read_text().count('"done"') == 1
    assert json.loads((tmp_path / "job.json").read_text()) == {"tasks": [{"task": "uname"}]}
    assert (tmp_path / "qemu.cmdline").read_text().startswith(sys.executable)


def test_qemu_that_fails_is_lost_with_its_last_words(fake_qemu, tmp_path: Path) -> None:
    """QEMU's own error status is the emulator's failure, not the guest's."""
    target, evidence = fake_qemu(1, '{"event": "ready"}\n')
    run = target.run([{"task": "uname"}], tmp_path)
    assert run.outcome is Outcome.LOST
    assert run.message == "QEMU failed with status 1: qemu-system-x86_64: a last word"
    assert evidence == []


def test_a_guest_that_ends_qemu_itself_crashed(fake_qemu, tmp_path: Path) -> None:
    """A panic reboots (panic=-1) and -no-reboot ends QEMU with status 0."""
    target, _ = fake_qemu(0, '{"event": "ready"}\n')
    run = target.run([{"task": "uname"}], tmp_path)
    assert run.outcome is Outcome.CRASHED
    assert run.message.startswith("QEMU exited with status 0 before the agent finished")


def test_qemu_killed_from_outside_is_lost_not_crashed(fake_qemu, tmp_path: Path) -> None:
    # The stand-in kills itself as a user or the OOM killer would.
    target, _ = fake_qemu(0, '{"event": "ready"}\n', "sleep 0.3", "kill")
    run = target.run([{"task": "uname"}], tmp_path, Deadlines(boot=10, idle=10, total=30))
    assert run.outcome is Outcome.LOST
    assert run.message.startswith("QEMU was killed by SIGKILL from outside the guest")


def test_a_silent_guest_is_a_hang_and_its_stacks_are_asked_for(fake_qemu,
                                                               tmp_path: Path) -> None:
    target, evidence = fake_qemu(0, '{"event": "ready"}\n', "sleep 30")
    started = time.monotonic()
    run = target.run([{"task": "uname"}], tmp_path, Deadlines(boot=10, idle=0.5, total=30))
    assert time.monotonic() - started < 10  # QEMU was killed, not waited for
    assert (run.outcome, run.message) == (Outcome.HANG, "the agent sent nothing for 0 s")
    assert evidence == [tmp_path]


def test_the_boot_deadline_counts_from_qemus_start(fake_qemu, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.host.targets import qemu

    # A slow initramfs build (the first one builds it) is not the guest's boot.
    def slow_build(target: object) -> Path:
        time.sleep(1.0)
        return Path("/i")

    monkeypatch.setattr(qemu.QemuTarget, "initramfs", slow_build)
    target, _ = fake_qemu(0, "sleep 0.2", '{"event": "ready"}\n', '{"event": "done"}\n')
    run = target.run([{"task": "uname"}], tmp_path, Deadlines(boot=0.8, idle=10, total=30))
    assert run.outcome is Outcome.DONE, run.message
    assert run.boot_seconds is not None and run.boot_seconds < 0.8


# --- boards by scheme


@pytest.mark.parametrize("spec", ["telnet://board", "board", "qemu:x", "ssh//board"])
def test_an_unknown_scheme_names_every_known_one(spec: str) -> None:
    with pytest.raises(TargetError) as err:
        open_board(spec, BoardOptions())
    assert str(err.value) == (f"unknown target {spec!r}: qemu, ssh://[user@]host[:port], "
                              f"serial:/dev/ttyX or labgrid:ENV.yaml")


@pytest.mark.parametrize(("spec", "says"), [
    ("ssh:board", "not an ssh target"),
    ("serial:/dev/nonexistent-tty", "cannot open serial console /dev/nonexistent-tty"),
    ("labgrid:?target=x", "no environment file"),
])
def test_each_scheme_reaches_its_own_factory(spec: str, says: str) -> None:
    assert set(SCHEMES) == {"ssh", "serial", "labgrid"}
    with pytest.raises(TargetError, match=says):
        open_board(spec, BoardOptions())


def test_the_rows_open_their_targets(tmp_path: Path) -> None:
    from harness.host.targets.ssh import SshTarget

    notes: list[str] = []
    target = open_board("ssh://root@127.0.0.1:2222", BoardOptions(
        power_cycle="true", ssh_identity=tmp_path / "key", note=notes.append))
    assert isinstance(target, SshTarget)
    assert (target.spec, target.identity, target.power_command) == (
        "ssh://root@127.0.0.1:2222", tmp_path / "key", "true")
    target.note("hello")
    assert notes == ["root@127.0.0.1:2222: hello"]
    with pytest.raises(HarnessError, match="--console is the serial console of an ssh target"):
        open_board("serial:/dev/ttyS9", BoardOptions(console="serial:/dev/ttyS8"))


LABGRID_ENV = """
targets:
  main:
    resources:
      NetworkService:
        address: 192.0.2.7
        username: root
        port: 2222
    drivers:
      ExternalPowerDriver:
        cmd_on: "true"
        cmd_off: "true"
        cmd_cycle: "true"
"""


def test_a_labgrid_board_is_opened_by_the_row_its_environment_names(tmp_path: Path) -> None:
    pytest.importorskip("labgrid")
    from harness.host.targets.ssh import SshTarget

    env = tmp_path / "env.yaml"
    env.write_text(LABGRID_ENV)
    lab = open_board(f"labgrid:{env}", BoardOptions())
    assert isinstance(lab, SshTarget) and lab.spec == "ssh://root@192.0.2.7:2222"
    assert callable(lab.power_command)  # labgrid's power driver
    # what the command line says wins over the environment
    mine = open_board(f"labgrid:{env}", BoardOptions(power_cycle="my-cycle"))
    assert isinstance(mine, SshTarget) and mine.power_command == "my-cycle"


def test_board_targets_carry_the_spec_their_report_names() -> None:
    # the whole spec, path and query too, as the user gave it
    spec = "ssh://root@board/opt/v4l2-unplug?python=/usr/bin/python3.12"
    target = open_board(spec, BoardOptions())
    assert target.spec == spec


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_stops_qemu_and_hands_back_the_run(fake_qemu, tmp_path: Path,
                                                    signum: int) -> None:
    """The harness's own handlers, a real signal: QEMU is gone and its socket
    removed before the exception reaches the caller, which gets the run."""
    from harness.host import interrupts
    from harness.host.targets.qemu import monitor_path

    target, _ = fake_qemu(0, '{"event": "ready"}\n', '{"event": "scenario-start"}\n',
                          "sleep 30")
    before = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    interrupts.install()
    try:
        def on_event(event: dict[str, Any], run: GuestRun) -> None:
            if event["event"] == "scenario-start":
                monitor_path(tmp_path).write_text("")  # as QEMU's -monitor leaves it
                os.kill(os.getpid(), signum)

        with pytest.raises(interrupts.Interrupted) as stop:
            target.run([{"task": "uname"}], tmp_path, ROOMY, on_event=on_event)
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
    run = stop.value.run
    assert run is not None and run.outcome is Outcome.INTERRUPTED
    assert run.message == f"the harness got {signal.Signals(signum).name}"
    assert stop.value.exit_status == 128 + signum
    assert [e["event"] for e in run.events] == ["ready", "scenario-start"]
    assert not monitor_path(tmp_path).exists()
    # the stand-in QEMU (its command line names the events file) is gone
    alive = subprocess.run(["pgrep", "-f", str(tmp_path / "events.jsonl")],
                           capture_output=True, text=True)
    assert alive.stdout == ""


# --- a kernel that reported: the console followed as QEMU writes it

OOPS = ("console [   12.704928] Internal error: Oops: 0000000096000004 [#1] SMP\n"
        "[   12.705000] pc : v4l2_ioctl+0x30/0x80 [videodev]\n"
        "[   12.705100] Call trace:\n"
        "[   12.705200]  v4l2_ioctl+0x30/0x80 [videodev]\n"
        "[   12.705300]  __arm64_sys_ioctl+0xa8/0xf0\n")
END = "console [   12.711384] ---[ end trace 0000000000000000 ]---\n"


@pytest.fixture
def quick_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.host.targets import qemu

    monkeypatch.setattr(qemu, "SETTLE_QUIET", 0.4)
    monkeypatch.setattr(qemu, "SETTLE_OPEN_REPORT", 1.5)


def test_after_done_a_guest_that_does_not_power_off_is_ended_once_its_console_settles(
        fake_qemu, quick_settle, tmp_path: Path) -> None:
    """A report that follows `done` within the quiet period is kept; then QEMU is ended."""
    target, evidence = fake_qemu(0, '{"event": "ready"}\n', OOPS, END, '{"event": "done"}\n',
                                 "sleep 0.3", OOPS, "sleep 0.2", END, "sleep 30")
    started = time.monotonic()
    run = target.run([{"task": "uname"}], tmp_path, Deadlines(boot=10, idle=10, total=30))
    took = time.monotonic() - started
    assert (run.outcome, run.message) == (Outcome.DONE, "")
    assert 0.9 <= took < 5
    assert run.console().count("Internal error") == 2
    assert evidence == []


def test_after_done_a_report_left_half_printed_is_waited_for_longer(
        fake_qemu, quick_settle, tmp_path: Path) -> None:
    target, _ = fake_qemu(0, '{"event": "ready"}\n', '{"event": "done"}\n', OOPS, "sleep 30")
    started = time.monotonic()
    run = target.run([{"task": "uname"}], tmp_path, Deadlines(boot=10, idle=10, total=30))
    assert run.outcome is Outcome.DONE
    assert 1.5 <= time.monotonic() - started < 6


def test_an_agent_silent_after_the_kernel_reported_is_a_hang(fake_qemu,
                                                             tmp_path: Path) -> None:
    target, evidence = fake_qemu(0, '{"event": "ready"}\n', "sleep 0.2", OOPS, END, "sleep 30")
    started = time.monotonic()
    run = target.run([{"task": "uname"}], tmp_path,
                     Deadlines(boot=10, idle=20, total=30, after_report=0.5))
    assert time.monotonic() - started < 5
    assert (run.outcome, run.message) == (
        Outcome.HANG, "the agent sent nothing for 0 s after the kernel's report")
    assert evidence == [tmp_path]


def test_silence_after_the_agent_answered_a_report_is_left_to_the_idle_deadline(
        fake_qemu, tmp_path: Path) -> None:
    target, _ = fake_qemu(0, '{"event": "ready"}\n', OOPS, END, "sleep 0.2",
                          '{"event": "scenario-result"}\n', "sleep 1.5", '{"event": "done"}\n')
    run = target.run([{"task": "uname"}], tmp_path,
                     Deadlines(boot=10, idle=20, total=30, after_report=0.5))
    assert run.outcome is Outcome.DONE, run.message


def test_an_agent_silent_after_a_report_gets_one_key_press_before_the_deadline(
        fake_qemu, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.host.targets import qemu

    sent: list[str] = []
    monkeypatch.setattr(qemu, "NUDGE_AFTER", 0.3)
    monkeypatch.setattr(qemu, "monitor_command", lambda sock, command: sent.append(command))
    target, _ = fake_qemu(0, '{"event": "ready"}\n', "sleep 0.2", OOPS, END, "sleep 1.0",
                          '{"event": "scenario-result"}\n', '{"event": "done"}\n')
    run = target.run([{"task": "uname"}], tmp_path,
                     Deadlines(boot=10, idle=20, total=30, after_report=5))
    assert run.outcome is Outcome.DONE, run.message
    assert sent == ["sendkey shift"]
