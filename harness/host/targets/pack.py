"""The agent's interpreter and what it imports, packed to ride in the initramfs.

Over 9p every file the guest opens costs round trips through QEMU's 9p
server: starting CPython and importing the agent cold took seconds more than
the same imports warm. So the initramfs carries the interpreter and the byte
code of every module the agent can import (its import closure, function-level
imports included), at the paths where the guest sees them, and the init
stacks that tree as the overlay's top read-only layer, above the host root:
the same paths now resolve in memory. Sources stay on 9p (a `.pyc` is checked
against its source's size and modification time, a single stat), as does
anything not packed.

Which guests get it is QemuTarget.initramfs()'s choice (measured: an arm64
guest gains most; a KASAN kernel loses more unpacking it than it saves).
What is packed is exactly the files the guest would have read: a file here
shadows the same file below it, and the initramfs's key names every packed
file's size and modification time, so a changed file is packed again.
"""

from __future__ import annotations

import json
import modulefinder
import re
import sys
import sysconfig
from importlib.util import cache_from_source
from pathlib import Path

from harness.host import cache
from harness.host.targets.base import AGENT_MAIN, PACKAGE

# Imported before any line of the agent runs (not frozen in 3.11).
STARTUP = ("encodings", "encodings.aliases", "encodings.utf_8", "encodings.latin_1",
           "encodings.ascii")
HOST_STDLIB = Path(sysconfig.get_paths()["stdlib"])
GUEST_STDLIB = f"/usr/lib/python{sys.version_info.major}.{sys.version_info.minor}"
HOST_EXT = str(sysconfig.get_config_var("EXT_SUFFIX"))
# Modules of the closure that the agent reaches only in code it never runs
# (tests, GUIs, documentation, TLS, decimal arithmetic): left on 9p.
UNUSED = re.compile(r"(?:_?test|tkinter|_tkinter|idlelib|lib2to3|pydoc|pydoc_data|unittest|"
                    r"_ssl|ssl|_decimal|unicodedata|_testcapi|_testinternalcapi)(?:\.|$)")

# (file on the host, path in the guest)
Entry = tuple[Path, str]


def _harness_stamp() -> str:
    """What the agent's import closure depends on: the package's files as they are now."""
    files = sorted(PACKAGE.rglob("*.py"))
    return cache.digest(sys.version, *(f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}"
                                       for f in files))


def agent_modules() -> dict[str, str]:
    """Module name -> host file of everything the agent can import (no built-ins),
    cached by the package's files: finding it reads every module once."""
    record = cache.cache_root() / "pack" / f"modules-{_harness_stamp()}.json"
    try:
        return dict(json.loads(record.read_text()))
    except (OSError, ValueError):
        pass
    finder = modulefinder.ModuleFinder(path=[str(PACKAGE.parent), *sys.path])
    finder.run_script(str(AGENT_MAIN))
    for name in STARTUP:
        finder.import_hook(name)
    found = {name: str(path) for name, m in finder.modules.items()
             if (path := getattr(m, "__file__", None)) and name != "__main__"}
    found["harness.target.agent.__main__"] = str(AGENT_MAIN)
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(found, indent=0, sort_keys=True))
    tmp.rename(record)
    return found


def _byte_code(source: Path) -> Path | None:
    pyc = Path(cache_from_source(str(source)))
    return pyc if pyc.is_file() else None


def _module_entries(host_file: Path, userland: Path | None) -> list[Entry]:
    """The file the guest reads for one module: its `.pyc` (or its source when
    it has none), or its extension module."""
    if userland is not None and host_file.is_relative_to(HOST_STDLIB):
        # The guest's own standard library, at the same place below its root.
        rel = host_file.relative_to(HOST_STDLIB)
        guest_dir = userland / GUEST_STDLIB.lstrip("/")
        if host_file.name.endswith(HOST_EXT):
            stem = host_file.name[: -len(HOST_EXT)]
            found = sorted((guest_dir / rel.parent).glob(f"{stem}.cpython-*.so"))
            return [(found[0], f"{GUEST_STDLIB}/{rel.parent / found[0].name}")] if found else []
        source = guest_dir / rel
        if not source.is_file():
            return []
        pyc = _byte_code(source)
        if pyc is None:
            return [(source, f"{GUEST_STDLIB}/{rel}")]
        return [(pyc, f"{GUEST_STDLIB}/{pyc.relative_to(guest_dir)}")]
    if not host_file.name.endswith(".py"):
        # An extension module of the host's: an arm64 guest cannot load it.
        return [(host_file, str(host_file.resolve()))] if userland is None else []
    target = _byte_code(host_file) or host_file
    # The path as the guest resolves it: no symlinks among its directories.
    return [(target, str(target.resolve()))]


def files(python: str, userland: Path | None) -> list[Entry]:
    """What to pack for the guest whose interpreter is `python` (a guest path;
    on the host root, or in `userland` for a guest of another architecture).
    Shared libraries stay on 9p: the guest reads only the pages it uses,
    where packing copies them whole (a pyenv libpython is 22 MiB)."""
    entries: list[Entry] = []
    if userland is None:
        interpreter = Path(python).resolve()
        entries.append((interpreter, str(interpreter)))
    else:
        entries.append((userland / python.lstrip("/"), python))
    for name, path in agent_modules().items():
        host_file = Path(path)
        if host_file.is_file() and not UNUSED.match(name):
            entries += _module_entries(host_file, userland)
    unique = {guest: host for host, guest in reversed(entries)}
    return sorted(((host, guest) for guest, host in unique.items()), key=lambda e: e[1])


def stamp(entries: list[Entry]) -> str:
    """A key for what `entries` hold: each guest path with its file's size and time."""
    parts = []
    for host, guest in entries:
        st = host.stat()
        parts.append(f"{guest}:{st.st_size}:{st.st_mtime_ns}")
    return cache.digest(*parts)
