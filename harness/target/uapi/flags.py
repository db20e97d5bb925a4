"""Turning flag words and enumerated values into text for logs and reports."""

from __future__ import annotations

from collections.abc import Mapping


def format_flags(flags: int, names: Mapping[int, str], sep: str = ",") -> str:
    """Names of the bits set in flags, in the order of names, then any unnamed rest in hex.

    media-ctl prints pad and link flags this way ("ENABLED,IMMUTABLE", "SINK,0x40"); the
    leftover bits are kept because an unknown flag from a newer kernel is exactly the kind of
    thing a report should not hide.  Zero-valued names are never matched.
    """
    parts = []
    for bit, name in names.items():
        if bit and flags & bit == bit:
            parts.append(name)
            flags &= ~bit
    if flags:
        parts.append(hex(flags))
    return sep.join(parts)


def format_value(value: int, names: Mapping[int, str]) -> str:
    """The name of an enumerated value, or "unknown (0x...)"."""
    name = names.get(value)
    return name if name is not None else f"unknown ({value:#x})"
