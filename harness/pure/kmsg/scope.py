"""Which data-race reports belong to a driver profile's code.

A KCSAN kernel reports every data race it watches, and most are not the
media core's (the first one a 6.1 vimc race met was core mm's
`_compound_head / folio_activate_fn`). A KCSAN report counts for a profile
only when a frame of either side's stack is one of the profile's functions
(`DriverProfile.kcsan_scope`, name prefixes); every other report class
counts as it is, since a crash anywhere during the race is the race's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from harness.pure.kmsg.classify import BugClass
from harness.pure.kmsg.report import Finding

# " vb2_core_dqbuf+0x71/0x5e0 [videobuf2_common]", "in vb2_core_dqbuf / vimc_..."
_FRAME = re.compile(r"(?:^|\s|/)(?:\? )?([A-Za-z_][\w.]*)\+0x[0-9a-f]+")
_HEADER = re.compile(r"KCSAN: [\w: -]+ in ([\w.]+)(?: / ([\w.]+))?")


def frames(text: str) -> list[str]:
    """The function names of a report: its header's and every stack line's."""
    names: list[str] = []
    for line in text.splitlines():
        header = _HEADER.search(line)
        if header:
            names.extend(n for n in header.groups() if n)
        names.extend(_FRAME.findall(line))
    return names


def in_scope(finding: Finding, prefixes: Sequence[str]) -> bool:
    """False only for a KCSAN report with no frame in the profile's functions."""
    if finding.bug_class is not BugClass.KCSAN or not prefixes:
        return True
    return any(name.startswith(tuple(prefixes)) for name in frames(finding.text))
