"""Live progress of a scenario matrix and of a race, on the terminal.

On a terminal, a tqdm bar: scenarios done of the total with elapsed time and
ETA, or a race's seconds of its duration with its cycles, worker iterations
and kernel reports so far. A scenario that did not pass is also written above
the bar as a line of its own, so it stays on the screen after the bar moved
on. When the stream is not a terminal (CI, `make run > log`), the same facts
as plain lines, one per scenario and one per race progress event: a bar's
carriage returns make an unreadable log.

One object per matrix or race; its `update` is what run_scenarios() and
run_race() call as their `progress` argument, and `close` ends the bar.
"""

from __future__ import annotations

import sys
import time
from typing import IO, TYPE_CHECKING, Any

from tqdm import tqdm

from harness.pure.scenarios.verdicts import Verdict

if TYPE_CHECKING:
    from harness.host.runner import Outcome

# Space a bar leaves for the scenario name or race counts after it.
_POSTFIX_WIDTH = 60


def clock(seconds: float) -> str:
    """Minutes and seconds as a bar shows them (3:05), hours when needed."""
    return tqdm.format_interval(max(0.0, seconds))


def eta(elapsed: float, done: int, total: int) -> float | None:
    """Seconds left at the pace so far; None before anything finished."""
    if done <= 0 or total <= done:
        return None if done <= 0 else 0.0
    return elapsed / done * (total - done)


def is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class MatrixProgress:
    """Scenarios done of the total, elapsed and ETA; each non-pass named."""

    def __init__(self, total: int, label: str = "", stream: IO[str] | None = None,
                 bar: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.label = label
        self.counts: dict[str, int] = {}
        self._started = time.monotonic()
        self._bar = (tqdm(total=total, desc=label or "scenarios", unit="scenario",
                          file=self.stream, dynamic_ncols=True, leave=True)
                     if (is_terminal(self.stream) if bar is None else bar) else None)

    def update(self, o: Outcome, done: int, total: int) -> None:
        self.counts[o.verdict] = self.counts.get(o.verdict, 0) + 1
        detail = f"  {o.reason[:120]}" if o.reason else ""
        if self._bar is None:
            elapsed = time.monotonic() - self._started
            left = eta(elapsed, done, total)
            timing = f"{clock(elapsed)} elapsed" + (f", {clock(left)} left"
                                                    if left is not None else "")
            prefix = f"[{self.label}] " if self.label else ""
            print(f"{prefix}[{done:3}/{total}] {o.verdict:7} {o.scenario.name}  ({timing})"
                  f"{detail}", file=self.stream, flush=True)
            return
        if o.verdict != Verdict.PASS:
            self._bar.write(f"{o.verdict:7} {o.scenario.name}{detail}", file=self.stream)
        self._bar.set_postfix_str(self._tally(), refresh=False)
        # `done` can stand still (a verdict revised when the boot ended): move by the difference.
        self._bar.update(max(0, done - self._bar.n))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def _tally(self) -> str:
        return ", ".join(f"{n} {v}" for v, n in sorted(self.counts.items()))[:_POSTFIX_WIDTH]

    def __enter__(self) -> MatrixProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RaceProgress:
    """A race's seconds of its duration, with cycles, worker iterations and the
    kernel reports seen so far (`reports` in the progress event)."""

    def __init__(self, duration: float, label: str = "race", stream: IO[str] | None = None,
                 bar: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self._bar = (tqdm(total=max(1, round(duration)), desc=label, unit="s", file=self.stream,
                          dynamic_ncols=True, leave=True,
                          bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total_fmt} s "
                                     "[{elapsed}<{remaining}{postfix}]")
                     if (is_terminal(self.stream) if bar is None else bar) else None)

    @staticmethod
    def counts(p: dict[str, Any]) -> str:
        """cycles, iterations (summed over the workers) and reports of one event."""
        iterations = p.get("iterations", 0)
        total = sum(iterations) if isinstance(iterations, list) else int(iterations)
        reports = p.get("reports")
        return (f"cycles {p.get('cycles', 0)}, iterations {total}"
                + (f", reports {reports}" if reports is not None else ""))

    def update(self, p: dict[str, Any]) -> None:
        if self._bar is None:
            print(f"  [{self.label}] {float(p.get('elapsed', 0)):6.1f} s  {self.counts(p)}",
                  file=self.stream, flush=True)
            return
        self._bar.set_postfix_str(self.counts(p)[:_POSTFIX_WIDTH], refresh=False)
        elapsed = min(float(p.get("elapsed", 0)), float(self._bar.total or 0))
        self._bar.update(max(0.0, elapsed - self._bar.n))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> RaceProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
