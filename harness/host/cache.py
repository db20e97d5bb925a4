"""Where downloads, kernels and build trees live.

Everything is kept under the XDG cache directory and keyed by what produced
it (package version, fragment hash), so a second run finds it and rebuilds
nothing. Entries are created in a temporary sibling and renamed into place,
so an interrupted build never leaves a half entry that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.pure.errors import SetupError

# A kernel build tree with KASAN is a few GiB; refuse early rather than fail
# half way through a build with a confusing compiler error.
MIN_FREE_BYTES = 4 << 30


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "v4l2-unplug"


def digest(*parts: str | bytes, length: int = 12) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:length]


def ensure_space(path: Path, need: int = MIN_FREE_BYTES) -> None:
    path.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path).free
    if free < need:
        raise SetupError(
            f"only {free >> 20} MiB free under {path}, need {need >> 20} MiB: "
            f"free some space or point XDG_CACHE_HOME at a larger disk"
        )


@contextmanager
def _staging(final: Path) -> Iterator[Path]:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def entry(key: str, build: Callable[[Path], None]) -> Path:
    """Return the cache directory `key`, running `build(dir)` once to fill it."""
    final = cache_root() / key
    if final.is_dir():
        return final
    ensure_space(final.parent)
    with _staging(final) as tmp:
        build(tmp)
    return final
