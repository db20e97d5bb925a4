"""Debian suites a kernel flavour can follow, as data.

Each suite's kernel is whatever its packages point at today: bookworm's
6.1, trixie's 6.12 LTS, sid's current stable 7.x. The ABI number and version
are never written down here; they are read from the suite's package lists.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Suite:
    name: str
    # The suite apt fetches from through the harness's own apt state; None for
    # bookworm, which the host's own sources carry (with its -security updates,
    # where a new kernel lands first).
    apt: str | None
    # What a flavour following this suite is called after its kind: debian-sid.
    suffix: str


SUITES: tuple[Suite, ...] = (
    Suite("bookworm", None, ""),
    Suite("trixie", "trixie", "-trixie"),
    Suite("sid", "sid", "-sid"),
)
