"""The recorded debug boot the report tests replay scenarios on, and the
marker lines the agent writes into its console."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UAF_CONSOLE = ROOT / "tests/data/consoles/injected_uaf_debug.console.log"


def clean_boot() -> list[str]:
    """The recorded debug boot up to the first scenario marker: no kernel report."""
    lines = UAF_CONSOLE.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if "v4l2-unplug: scenario" in line)
    return lines[:first]


def marker(t: float, text: str) -> str:
    """A line as the agent's /dev/kmsg write shows on the console."""
    return f"[{t:12.6f}] v4l2-unplug: {text}"
