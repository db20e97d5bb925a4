"""One run of a job on a target: its record, its deadlines, and the loop that follows it.

Every target (QEMU, a board over SSH, a board's serial console) runs a job
the same way: get ready (boot, reboot, log in, send the agent), start the
agent, read its JSON event lines as they come, note `ready` and `done`,
apply the boot, idle and total deadlines, and end with one outcome. That
way lives here, once, as `run_job()`. A target brings only what is its own,
as a `Job`: how the agent starts, where its event lines come from, what
says the kernel died, and how to stop and ask a hung kernel for its stacks.
Nothing here asks which kind of target it drives.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.host.interrupts import Interrupted

# How long the loop waits for event lines before it looks at the deadlines
# again (a Job may return earlier).
POLL = 0.2


class Outcome(enum.StrEnum):
    """How a run ended. The values are what results.json has always said."""

    RUNNING = "running"  # not ended yet
    DONE = "done"  # the agent sent `done`
    HANG = "hang"  # a deadline passed after the agent started
    CRASHED = "crashed"  # the events stopped after the agent started (an exit, a panic)
    BOOT_FAILED = "boot-failed"  # the agent never said `ready`
    # Something outside the target ended the run: the emulator killed (by a
    # user, the host's OOM killer), the connection to a board lost while the
    # board kept running. Nothing the kernel did; the run says nothing of it.
    LOST = "lost"
    INTERRUPTED = "interrupted"  # the harness got SIGINT, SIGTERM or SIGHUP


@dataclass(frozen=True)
class Deadlines:
    """Seconds. boot: start to the agent's `ready`; idle: longest silence
    between two events; total: the whole run; after_report: longest silence
    of the agent once the kernel has printed a report and gone quiet (None:
    only `idle` applies), for jobs whose agent answers a report within
    seconds, and on targets that follow the kernel's log as it comes."""

    boot: float = 90.0
    idle: float = 300.0
    total: float = 1800.0
    after_report: float | None = None


DEADLINES = Deadlines()

class DeadlinePassed(Exception):
    """A run, or a step of getting a board ready, took longer than it may."""


@dataclass
class GuestRun:
    """What one run left behind: events, console, and how it ended."""

    run_dir: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    outcome: Outcome = Outcome.RUNNING
    boot_seconds: float | None = None
    message: str = ""

    def __post_init__(self) -> None:
        # Records read back from JSON (the pytest plugin's shared boots) carry strings.
        self.outcome = Outcome(self.outcome)

    @property
    def started(self) -> bool:
        """The agent said `ready`."""
        return self.boot_seconds is not None

    def end(self, outcome: Outcome, message: str) -> None:
        self.outcome, self.message = outcome, message

    @property
    def console_path(self) -> Path:
        return self.run_dir / "console.log"

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir), "events": self.events,
                "outcome": self.outcome.value, "boot_seconds": self.boot_seconds,
                "message": self.message}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GuestRun:
        return cls(Path(d["run_dir"]), d["events"], Outcome(d["outcome"]), d["boot_seconds"],
                   d["message"])

    def console(self) -> str:
        try:
            return self.console_path.read_text(errors="replace")
        except OSError:
            return ""

    def console_tail(self, lines: int = 25) -> str:
        return "\n".join(self.console().splitlines()[-lines:])

    def results(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] in ("result", "error")]


EventHook = Callable[[dict[str, Any], GuestRun], None]


class Target(Protocol):
    """What every target implements: run a job's tasks in the agent, return the run."""

    def run(self, tasks: list[dict[str, Any]], run_dir: Path, deadlines: Deadlines = ...,
            on_event: EventHook | None = None) -> GuestRun: ...


def begin(run_dir: Path, stale: tuple[str, ...]) -> GuestRun:
    """A new run in `run_dir`, without what an earlier run there left in `stale`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (run_dir / name).unlink(missing_ok=True)
    return GuestRun(run_dir=run_dir)


class EventBook:
    """Each event of a run: into the GuestRun, into events.jsonl, to `on_event`;
    `ready` and `done` noted, and the three deadlines measured from `start`.

    `log=False` when something else writes events.jsonl already (QEMU's
    chardev writes the guest's bytes there as they come, even if the harness dies).
    """

    def __init__(self, result: GuestRun, deadlines: Deadlines, on_event: EventHook | None,
                 start: float | None = None, log: bool = True):
        self.result = result
        self.deadlines = deadlines
        self.on_event = on_event
        self.start = time.monotonic() if start is None else start
        self.last = self.start
        # The kernel's log as the target follows it: when it last grew, and
        # whether a report began in it since the agent's last event.
        self.kernel_last = self.start
        self.reported = False
        self._log = (result.run_dir / "events.jsonl").open("a") if log else None

    def restart(self) -> None:
        """Count the deadlines and the boot time from now (the job starts only now)."""
        self.start = self.last = self.kernel_last = time.monotonic()

    def kernel_printed(self, report: bool) -> None:
        """The kernel's log grew; `report`: a report began in what it printed."""
        self.kernel_last = time.monotonic()
        self.reported = self.reported or report

    def take(self, item: str | dict[str, Any]) -> None:
        """An event line, or an event a Job parsed itself."""
        if isinstance(item, str):
            self.line(item)
        else:
            self.add(item)

    def line(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        try:
            event = json.loads(text)
            if not isinstance(event, dict) or "event" not in event:
                raise ValueError
        except ValueError:
            event = {"event": "garbled", "raw": text}
        self.add(event)

    def add(self, event: dict[str, Any]) -> None:
        self.last = time.monotonic()
        self.reported = False
        if self._log is not None:
            self._log.write(json.dumps(event, default=str) + "\n")
            self._log.flush()
        self.result.events.append(event)
        if event["event"] == "ready" and self.result.boot_seconds is None:
            self.result.boot_seconds = self.last - self.start
        if event["event"] == "done":
            self.result.outcome = Outcome.DONE
        if self.on_event is not None:
            self.on_event(event, self.result)

    @property
    def done(self) -> bool:
        return self.result.outcome == Outcome.DONE

    def check(self, not_started: str = "the agent did not start") -> None:
        """Raise DeadlinePassed when one of the run's deadlines is over."""
        now = time.monotonic()
        d = self.deadlines
        if self.result.boot_seconds is None and now - self.start > d.boot:
            raise DeadlinePassed(f"{not_started} within {d.boot:.0f} s")
        if self.result.boot_seconds is not None and now - self.last > d.idle:
            raise DeadlinePassed(f"the agent sent nothing for {d.idle:.0f} s")
        if (d.after_report is not None and self.reported and self.result.boot_seconds is not None
                and now - max(self.last, self.kernel_last) > d.after_report):
            # The agent answers a report within seconds (it stops the
            # scenario once the kernel is quiet): silent, it is stuck too.
            raise DeadlinePassed(f"the agent sent nothing for {d.after_report:.0f} s after "
                                 f"the kernel's report")
        if now - self.start > d.total:
            raise DeadlinePassed(f"the run exceeded its total deadline of {d.total:.0f} s")

    def remaining_boot(self) -> float:
        return self.start + self.deadlines.boot - time.monotonic()

    def close(self) -> None:
        if self._log is not None:
            self._log.close()


class Job(Protocol):
    """One job on one target, as `run_job()` drives it: what is the target's own."""

    # Says who did not start the agent when the boot deadline passes.
    not_started: str

    def prepare(self, book: EventBook) -> str | None:
        """Everything before the agent starts (reboot, log in, send the agent,
        write the command line). None when it may start; otherwise why it
        cannot, and the run ends boot-failed (as it does on DeadlinePassed)."""

    def launch(self, book: EventBook) -> None:
        """Start the agent."""

    def read(self, timeout: float) -> list[str | dict[str, Any]] | None:
        """Event lines (or events already parsed) that came within `timeout`
        seconds; None once the stream has ended."""

    def ended(self) -> str | None:
        """Why the run is over although its stream is still open (the console
        showed a panic), or None."""

    def finish(self) -> None:
        """After `done`: wait for the agent or guest to go; DeadlinePassed if it does not."""

    def why_ended(self) -> str:
        """What to say of a run whose stream ended before `done`."""

    def cut_off(self) -> str | None:
        """When the stream ended before `done`: the cause, if it lies outside
        the target (the emulator killed, the way to the board lost while the
        board ran on); None when the target itself went (a panic, a reset)."""

    def hang_evidence(self) -> None:
        """Ask the kernel for its blocked tasks and CPU stacks, before the stop."""

    def stop(self, result: GuestRun) -> None:
        """End whatever the run started; called once, however it ended."""


def run_job(job: Job, book: EventBook) -> GuestRun:
    """Prepare, launch and follow `job` to its end; the run, with its outcome."""
    result = book.result
    try:
        try:
            why = job.prepare(book)
        except DeadlinePassed as d:
            why = str(d)
        if why is not None:
            result.end(Outcome.BOOT_FAILED, why)
            return result
        try:
            job.launch(book)
            _follow(job, book)
        except DeadlinePassed as d:
            result.end(Outcome.HANG if result.started else Outcome.BOOT_FAILED, str(d))
            job.hang_evidence()
    except Interrupted as stop:
        # Stopped below, before the exception goes on: the caller reports
        # from this run's events and console.
        result.end(Outcome.INTERRUPTED, f"the harness got {stop.name}")
        stop.run = result
        raise
    finally:
        try:
            job.stop(result)
        finally:
            book.close()
    return result


def _follow(job: Job, book: EventBook) -> None:
    result = book.result
    while (batch := job.read(POLL)) is not None:
        for item in batch:
            book.take(item)
        if book.done:
            job.finish()
            return
        why = job.ended()
        if why is not None:
            result.end(Outcome.CRASHED if result.started else Outcome.BOOT_FAILED, why)
            return
        book.check(job.not_started)
    outside = job.cut_off()
    if outside is not None:
        result.end(Outcome.LOST, outside)
        return
    result.end(Outcome.CRASHED if result.started else Outcome.BOOT_FAILED, job.why_ended())
