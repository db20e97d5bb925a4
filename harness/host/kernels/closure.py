"""The dependency closure of a few Debian packages, from Packages stanzas.

A guest of another architecture cannot run the host's programs, so it gets a
small userland of its own unpacked from Debian's packages. Which packages is
decided here from the archive's own Depends and Pre-Depends (with Provides
for virtual packages), not from a hand-kept list, so it follows the archive
as it changes. Pure: it reads stanza text (`apt-cache dumpavail`, or a
recorded Packages file) and never calls apt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from harness.pure.errors import SetupError


@dataclass(frozen=True)
class Stanza:
    name: str
    version: str
    # Each group is a list of alternatives ("a | b"), names only: one suite's
    # candidates satisfy each other's version constraints.
    depends: tuple[tuple[str, ...], ...]
    provides: tuple[str, ...]


def _names(field: str) -> list[str]:
    """Package names of a comma list: versions, arch qualifiers and
    architecture restrictions dropped ("python3:any (>= 3.11)" -> "python3")."""
    return [re.split(r"[\s(:\[]", item.strip(), maxsplit=1)[0] for item in field.split(",")
            if item.strip()]


def _field(text: str, name: str) -> str:
    # Fields may continue on indented lines; Depends never do in practice,
    # but a folded field must not be cut at its first line.
    m = re.search(rf"^{name}:(.*(?:\n[ \t].*)*)", text, re.M)
    return " ".join(m.group(1).split()) if m else ""


def parse_stanza(text: str) -> Stanza:
    depends = tuple(
        tuple(_names(group.replace("|", ",")))
        for key in ("Pre-Depends", "Depends")
        for group in _field(text, key).split(",")
        if group.strip()
    )
    return Stanza(
        name=_field(text, "Package"),
        version=_field(text, "Version"),
        depends=depends,
        provides=tuple(_names(_field(text, "Provides"))),
    )


class Index:
    """Stanzas by package name, and providers of virtual names. The first
    stanza of a name wins (dumpavail gives one candidate per package)."""

    def __init__(self, text: str):
        self._raw: dict[str, str] = {}
        self._providers: dict[str, list[str]] = {}
        for chunk in text.split("\n\n"):
            chunk = chunk.strip("\n")
            m = re.match(r"Package: (\S+)", chunk)
            if not m or m.group(1) in self._raw:
                continue
            self._raw[m.group(1)] = chunk
            if "\nProvides:" in chunk:
                for virtual in _names(_field(chunk, "Provides")):
                    self._providers.setdefault(virtual, []).append(m.group(1))
        self._parsed: dict[str, Stanza] = {}

    def get(self, name: str) -> Stanza | None:
        if name not in self._parsed:
            if name not in self._raw:
                return None
            self._parsed[name] = parse_stanza(self._raw[name])
        return self._parsed[name]

    def providers(self, name: str) -> list[str]:
        return self._providers.get(name, [])


def closure(
    wanted: Iterable[str], index: Index, skip: frozenset[str] = frozenset()
) -> list[Stanza]:
    """`wanted` and everything they depend on, sorted by name. A dependency
    group is satisfied by an alternative already chosen, else by its first
    alternative that exists (a real package, then a provider of a virtual
    one). Names in `skip` are never taken; a group with only skipped
    alternatives is dropped. A group nothing satisfies is an error."""
    chosen: dict[str, Stanza] = {}
    provided: set[str] = set()
    pending: list[Stanza] = []
    for name in wanted:
        stanza = index.get(name)
        if stanza is None:
            raise SetupError(f"the package index has no package {name}")
        pending.append(stanza)
    while pending:
        stanza = pending.pop()
        if stanza.name in chosen:
            continue
        chosen[stanza.name] = stanza
        provided.update(stanza.provides)
        for group in stanza.depends:
            if any(alt in chosen or alt in provided for alt in group):
                continue
            live = [alt for alt in group if alt not in skip]
            if not live:
                continue
            pick = next((s for alt in live if (s := index.get(alt)) is not None), None)
            if pick is None:
                pick = next((s for alt in live for p in index.providers(alt)
                             if p not in skip and (s := index.get(p)) is not None), None)
            if pick is None:
                raise SetupError(f"{stanza.name}: nothing in the package index satisfies "
                                 f"{' | '.join(group)}")
            pending.append(pick)
    return sorted(chosen.values(), key=lambda s: s.name)
