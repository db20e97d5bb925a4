"""The words a run's results are written in: a scenario's verdict, and what
`validate` says of a signature and of the patch.

Their values are the strings results.json, validate.json, KTAP, JUnit and the
history database have always held, so a StrEnum member compares equal to the
string a document or a database row holds and serializes as that string.
This module imports nothing of the harness: the host side (runner, reports,
validate) and the target side may both use it.
"""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    """What a scenario came to (results.json `verdict`, the history's `results.verdict`)."""

    PASS = "pass"
    FAIL = "fail"  # a kernel report or a broken contract
    HANG = "hang"  # a deadline passed while it ran
    ERROR = "error"  # it could not run (the agent failed, a stage was not reached)
    NOT_RUN = "not-run"
    INTERRUPTED = "interrupted"  # under way when the harness was told to stop

    @property
    def judges_the_driver(self) -> bool:
        """Whether the verdict says anything of the driver. An error (the
        scenario could not run: a stage not reached, the target lost from
        outside) or a scenario not run is no evidence either way: the history
        does not count it as passing or failing."""
        return self in (Verdict.PASS, Verdict.FAIL, Verdict.HANG)


class SignatureStatus(StrEnum):
    """A signature's hits on the baseline against the patched kernel, over the
    exposure of each side (harness.pure.race.status decides which)."""

    INTRODUCED = "introduced"  # not on the baseline; on the patched side at a higher rate
    UNMASKED = "unmasked"  # patched only, where another crash ended every baseline race first
    NARROWED = "narrowed"  # its rate fell (or it went), but a race on the same code remains
    INCONCLUSIVE = "inconclusive"  # not enough exposure to tell
    FIXED = "fixed"  # gone: its rate fell at least the unit's fix factor, nothing remains
    STILL_PRESENT = "still-present"  # on both sides, its rate not shown to fall


class PatchResult(StrEnum):
    """What a patch did, the most serious status that applies (validate.json `result`)."""

    INTRODUCED = "introduced"
    UNMASKED = "unmasked"
    NARROWED = "narrowed"
    INCONCLUSIVE = "inconclusive"
    FIXED = "fixed"
    UNCHANGED = "unchanged"
