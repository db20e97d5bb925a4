"""Byte-compiled Python for the guest, made on the host.

The guest's interpreter never writes bytecode (the host's files are read-only
to it), so whatever it imports without a `.pyc` beside it is compiled from
source on every boot, under emulation: about as long as the rest of starting
the agent. The host compiles once what the guest imports and the host itself
may never have: this checkout's package (the agent's side of it above all)
and an arm64 guest's standard library (Debian installs none of its `.pyc`;
dpkg's postinst would make them). A `.pyc` is valid for its source's
modification time and size, which the guest sees unchanged over 9p.
"""

from __future__ import annotations

import compileall
import functools
import re
from pathlib import Path

# Parts of a standard library no agent imports: not worth compiling.
UNUSED = re.compile(r"/(?:test|tests|idlelib|tkinter|turtledemo|lib2to3|ensurepip|pydoc_data)/")


def compile_tree(root: Path, as_path: str | None = None) -> bool:
    """Compile every module under `root` that lacks an up-to-date `.pyc`;
    `as_path`: where the guest sees `root` (the name its tracebacks give).
    False if a module failed to compile (the guest compiles that one itself)."""
    return bool(compileall.compile_dir(root, ddir=as_path, rx=UNUSED, quiet=2, workers=1))


@functools.cache
def compile_checkout(package: Path) -> None:
    """The package the guest runs the agent from, once per harness process
    (a module edited later is compiled in the guest, as before)."""
    compile_tree(package)
