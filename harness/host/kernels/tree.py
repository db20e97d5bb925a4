"""Kernels built from a source tree plus patches: the debug flavour, `validate`, `bisect`.

A *state* is a tree at one revision with some patches applied, configured
with tinyconfig plus a fragment (vm/debug.config) and built. Every state
has its own directory, cache/trees/<key>/, and builds with its O=
directory directly inside it (`.build/`). kbuild then uses the relative
srctree "..", so no command line, dependency list or object of a state
names the state's own path. Two things follow:

- ccache hits across states: the same file compiles with the same command
  line in every state, and
- a state derived from a built one (a patch on top, another commit of the
  same repository) starts from a copy of that state's O= directory, and
  make rebuilds only what the change touches: a vimc patch costs one
  object, modpost and the module link, not a kernel.

Copies of the source. A root state (the tree as given, no patches) is a
real copy: `git archive` of the commit for a git tree, `cp -a` for a
directory of the user's, because the user may later edit a file in place
and a hard link would carry that edit into the cached copy. The Debian
source unpacked in the cache is never written to, so its root is a
hard-link farm (`cp -al`: half a second, against 18 s and 1.3 GB for a
copy). A derived state is a hard-link farm of its parent in which every
file the change can touch (the files that differ between the commits and
every file any of the patches names) is first unlinked and written afresh
from the source, so a patch can never write through a link into another
state; the fresh files are also newer than the copied objects, which is
how make knows to rebuild them.

Keys. A state is named by what it contains: its root (the commit, or the
directory's identity, and the fragment) and the digest of each file that
differs from the root. The same content reached two ways is one state: a
bug patch plus its revert lands on the root and builds nothing. An index
(recipes/<digest of the inputs>) maps a request to its state, so a
repeated request reads two small files and builds nothing.

One place to build. kbuild keeps the kernel's own paths relative, but the
tools it builds first (objtool) record absolute ones, and every object
depends on objtool: a copied O= directory at a new path would rebuild
objtool and then the whole kernel. So every build runs at one fixed path,
trees/.bench: the state directory is renamed there for its build and back
afterwards (a rename, not a copy), and every O= directory only ever names
that path.

One build at a time: a lock file in the cache serialises builds across
processes (the bench is one directory, and two kernels at once would only
slow both down on a small host).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.host import cache
from harness.host.kernels.kernel import Kernel
from harness.host.kernels.series import Patch, apply
from harness.pure.arch import Arch, get_arch
from harness.pure.bootparams import parse_config
from harness.pure.errors import KernelError

BUILD_DIR = ".build"
BENCH = ".bench"
# Derived states kept (each is a copy of a build directory, ~0.4 GB for the debug
# configuration); a bisection makes one per step.
MAX_DERIVED = 8
BUILT = ".v4l2-unplug-built"
STATE_META = ".v4l2-unplug-state.json"
# The architecture a recipe builds for when it names none: the PC guest.
DEFAULT_ARCH = get_arch("x86_64")
# What a tree must hold to be configured and built like the debug flavour.
KERNEL_TREE_FILES = ("Makefile", "Kconfig", "scripts/kconfig/merge_config.sh", "arch/Kconfig")


def trees_root() -> Path:
    return cache.cache_root() / "trees"


# --- the debug configuration: tinyconfig + a fragment

def fragment_options(text: str) -> dict[str, str]:
    """CONFIG_FOO=value lines of a config fragment ('n' for '=n' and 'is not set')."""
    return parse_config(text)


def unmet_options(wanted: dict[str, str], config_text: str) -> list[str]:
    """Fragment options that Kconfig dropped (an unmet dependency, a typo)."""
    have = fragment_options(config_text)
    return [
        f"{k}={v} (got {have.get(k, 'n')})" for k, v in wanted.items() if have.get(k, "n") != v
    ]


# --- where a tree comes from

class Source(Protocol):
    path: Path
    kind: str

    def resolve(self, rev: str | None) -> str | None: ...
    def identity(self, rev: str | None) -> str: ...
    def export(self, rev: str | None, dest: Path) -> None: ...
    def export_files(self, rev: str | None, paths: Sequence[str], dest: Path) -> None: ...
    def changed(self, a: str | None, b: str | None) -> set[str]: ...
    def describe(self, rev: str | None) -> str: ...


def _not_a_tree(path: Path, missing: str) -> KernelError:
    return KernelError(f"{path} is not a Linux kernel source tree (no {missing})")


def _file_digest(path: Path) -> str | None:
    if path.is_symlink():
        return "link:" + os.readlink(path)
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class DirSource:
    """An unpacked source directory, such as Debian's linux-source-6.1. It has one
    revision, None: the directory as it is now."""

    kind = "dir"

    def __init__(self, path: Path):
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_dir():
            raise KernelError(f"kernel tree {self.path} does not exist")
        for name in KERNEL_TREE_FILES:
            if not (self.path / name).exists():
                raise _not_a_tree(self.path, name)
        for name in (".config", "include/config/auto.conf"):
            if (self.path / name).exists():
                raise KernelError(
                    f"{self.path} has been configured or built in place ({name}): kbuild "
                    f"builds with O= only from a clean tree; run 'make mrproper' there"
                )
        self._identity: str | None = None

    @property
    def ours(self) -> bool:
        """Inside the cache: written once and never again, so hard links are safe."""
        return self.path.is_relative_to(cache.cache_root())

    def resolve(self, rev: str | None) -> str | None:
        if rev is not None:
            raise KernelError(f"--base/--head/--good/--bad need a git tree; {self.path} is a "
                              f"plain directory")
        return None

    def identity(self, rev: str | None) -> str:
        if self._identity is None:
            if self.ours:
                self._identity = "cache:" + str(self.path.relative_to(cache.cache_root()))
            else:
                # Every file's path, size and mtime: an edit anywhere makes a new root,
                # as make itself would judge it.
                h = hashlib.sha256()
                for root, dirs, files in os.walk(self.path):
                    dirs.sort()
                    for name in sorted(files):
                        p = os.path.join(root, name)
                        st = os.lstat(p)
                        h.update(f"{os.path.relpath(p, self.path)}\0{st.st_size}\0"
                                 f"{st.st_mtime_ns}\n".encode())
                self._identity = f"dir:{self.path}:{h.hexdigest()[:16]}"
        return self._identity

    def export(self, rev: str | None, dest: Path) -> None:
        flag = "-al" if self.ours else "-a"
        _run(["cp", flag, "--", f"{self.path}/.", str(dest)], f"copying {self.path}")

    def export_files(self, rev: str | None, paths: Sequence[str], dest: Path) -> None:
        for rel in paths:
            src, dst = self.path / rel, dest / rel
            if src.is_symlink():
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(os.readlink(src), dst)
            elif src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                shutil.copymode(src, dst)

    def changed(self, a: str | None, b: str | None) -> set[str]:
        return set()

    def describe(self, rev: str | None) -> str:
        return str(self.path)


class GitSource:
    """A git repository; revisions are commits, read from the object store, so the
    user's checkout (its HEAD, index and working tree) is never touched."""

    kind = "git"

    def __init__(self, path: Path):
        self.path = Path(path).expanduser().resolve()
        top = self._git("rev-parse", "--show-toplevel").strip()
        self.path = Path(top)
        self._resolved: dict[str, str] = {}

    def _git(self, *argv: str, check: bool = True) -> str:
        proc = subprocess.run(["git", "-C", str(self.path), *argv], capture_output=True,
                              text=True, env={**os.environ, "GIT_LITERAL_PATHSPECS": "1"})
        if check and proc.returncode != 0:
            raise KernelError(f"git {argv[0]} in {self.path} failed: "
                              f"{(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        return proc.stdout

    def resolve(self, rev: str | None) -> str:
        rev = rev or "HEAD"
        if rev in self._resolved:
            return self._resolved[rev]
        proc = subprocess.run(["git", "-C", str(self.path), "rev-parse", "--verify", "--quiet",
                               f"{rev}^{{commit}}"], capture_output=True, text=True)
        if proc.returncode != 0:
            raise KernelError(f"{rev!r} is not a commit of {self.path}")
        sha = proc.stdout.strip()
        listed = set(self._git("ls-tree", "-r", "-z", "--name-only", sha, "--",
                               *KERNEL_TREE_FILES).split("\0"))
        for name in KERNEL_TREE_FILES:
            if name not in listed:
                raise _not_a_tree(Path(f"{self.path}@{rev}"), name)
        self._resolved[rev] = self._resolved[sha] = sha
        return sha

    def identity(self, rev: str | None) -> str:
        return f"git:{self.resolve(rev)}"

    def export(self, rev: str | None, dest: Path) -> None:
        self._archive(self.resolve(rev), [], dest)

    def export_files(self, rev: str | None, paths: Sequence[str], dest: Path) -> None:
        sha = self.resolve(rev)
        present = set(self._git("ls-tree", "-r", "-z", "--name-only", sha).split("\0"))
        wanted = [p for p in paths if p in present]
        # batches keep the command line short when a range touches thousands of files
        for i in range(0, len(wanted), 500):
            self._archive(sha, wanted[i:i + 500], dest, touch=True)

    def _archive(self, sha: str, paths: list[str], dest: Path, touch: bool = False) -> None:
        archive = subprocess.Popen(
            ["git", "-C", str(self.path), "archive", "--format=tar", sha, "--", *paths],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "GIT_LITERAL_PATHSPECS": "1"},
        )
        untar = subprocess.run(["tar", "-x", *(["-m"] if touch else []), "-C", str(dest)],
                               stdin=archive.stdout, capture_output=True)
        assert archive.stdout is not None
        archive.stdout.close()
        err = archive.stderr.read().decode() if archive.stderr else ""
        if archive.wait() != 0 or untar.returncode != 0:
            raise KernelError(f"exporting {sha[:12]} of {self.path} failed: "
                              f"{(err or untar.stderr.decode()).strip()}")

    def changed(self, a: str | None, b: str | None) -> set[str]:
        out = self._git("diff", "--name-only", "-z", "--no-renames",
                        self.resolve(a), self.resolve(b))
        return {p for p in out.split("\0") if p}

    def describe(self, rev: str | None) -> str:
        sha = self.resolve(rev)
        subject = self._git("log", "-1", "--format=%s", sha).strip()
        return f"{self.path}@{sha[:12]} ({subject})"


def open_source(path: Path) -> Source:
    """A git repository (its top level) or a plain directory, checked to be a kernel tree."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise KernelError(f"kernel tree {path} does not exist")
    top = subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel"],
                         capture_output=True, text=True)
    if top.returncode == 0 and Path(top.stdout.strip()).resolve() == path.resolve():
        return GitSource(path)
    return DirSource(path)


# --- states

def arch_key(arch: Arch) -> tuple[str, ...]:
    """What a state's keys hold of its architecture. x86_64's keys are as they were
    before trees were built for any other, so its built states keep their names."""
    return () if arch == DEFAULT_ARCH else (f"arch:{arch.name}",)


@dataclass(frozen=True)
class Recipe:
    """What to build: `source` at `rev` (a commit, or None for a directory) plus
    patches, for guest architecture `arch`."""

    source: Source
    rev: str | None
    patches: tuple[Patch, ...] = ()
    arch: Arch = DEFAULT_ARCH

    def key(self, fragment_text: str) -> str:
        return cache.digest(self.source.identity(self.rev), fragment_text,
                            *(p.diff for p in self.patches), *arch_key(self.arch), length=20)

    def describe(self) -> str:
        text = self.source.describe(self.rev)
        if self.patches:
            text += " + " + ", ".join(p.label for p in self.patches)
        return text


@dataclass
class State:
    dir: Path
    meta: dict[str, Any] = field(default_factory=dict)
    reused: bool = False
    seconds: float = 0.0  # build time in this process (0 when reused)

    @property
    def key(self) -> str:
        return self.dir.name

    @property
    def out(self) -> Path:
        return self.dir / BUILD_DIR

    @property
    def built(self) -> bool:
        return (self.out / BUILT).exists()

    @property
    def log(self) -> Path:
        # outside the state directory, which moves to the bench while it builds
        return trees_root() / "logs" / f"{self.key}.log"

    @property
    def release(self) -> str:
        return (self.out / "include/config/kernel.release").read_text().strip()

    @property
    def arch(self) -> Arch:
        return get_arch(self.meta.get("arch", DEFAULT_ARCH.name))

    @property
    def config_hash(self) -> str:
        return cache.digest((self.out / ".config").read_bytes())

    @classmethod
    def load(cls, key: str) -> State:
        d = trees_root() / key
        meta = json.loads((d / STATE_META).read_text()) if (d / STATE_META).exists() else {}
        return cls(d, meta)


@contextmanager
def build_lock() -> Iterator[None]:
    root = trees_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("waiting for another kernel build to finish", file=sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        _clear_bench()
        yield


def _clear_bench() -> None:
    """Put back a state a killed build left on the bench."""
    bench = trees_root() / BENCH
    if not bench.exists():
        return
    key = json.loads((bench / STATE_META).read_text()).get("key", "") if (
        bench / STATE_META).exists() else ""
    home = trees_root() / key if key else None
    if home is not None and not home.exists():
        bench.rename(home)
    else:
        shutil.rmtree(bench)


@contextmanager
def _on_bench(state: State) -> Iterator[Path]:
    bench = trees_root() / BENCH
    state.dir.rename(bench)
    try:
        yield bench
    except KernelError as e:
        raise KernelError(str(e).replace(str(bench), str(state.dir))) from None
    finally:
        bench.rename(state.dir)


def build(recipe: Recipe, fragment_text: str, parent: State | None = None,
          say: bool = True) -> State:
    """The built state of `recipe`: found by its inputs or its content, derived from
    `parent` (or from the recipe's root) when it has to be built."""
    # Finding a built state takes no lock: a build elsewhere does not hold up a reader.
    return lookup(recipe, fragment_text) or _locked_build(recipe, fragment_text, parent, say)


def _locked_build(recipe: Recipe, fragment_text: str, parent: State | None,
                  say: bool) -> State:
    with build_lock():
        return _build(recipe, fragment_text, parent, say)


def lookup(recipe: Recipe, fragment_text: str) -> State | None:
    """The built state of `recipe`, if there is one."""
    index = trees_root() / "recipes" / recipe.key(fragment_text)
    if index.exists():
        state = State.load(index.read_text().strip())
        if state.built:
            state.reused = True
            return state
    return None


def _build(recipe: Recipe, fragment_text: str, parent: State | None, say: bool) -> State:
    found = lookup(recipe, fragment_text)
    if found:
        return found
    index = trees_root() / "recipes" / recipe.key(fragment_text)
    if parent is None and recipe.patches:
        parent = _build(Recipe(recipe.source, recipe.rev, arch=recipe.arch), fragment_text,
                        None, say)
    started = time.monotonic()
    trees_root().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=trees_root()))
    try:
        state = _materialize(recipe, fragment_text, parent, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if state.built:
        state.reused = True
    else:
        if say:
            how = ("continuing an unfinished build" if state.out.exists() and parent is None
                   else f"from {parent.key[:12]}, only what changed" if parent
                   else "from scratch: several minutes")
            print(f"building {recipe.describe()} ({how}); log: {state.log}",
                  file=sys.stderr, flush=True)
        try:
            _compile(state, fragment_text,
                     full_config=parent is None or state.meta.get("kconfig", True))
        except BaseException:
            # A derived state is a copy away from its parent: drop it rather than keep
            # half a build directory (its log stays). A root is kept to resume.
            if state.meta.get("parent"):
                shutil.rmtree(state.dir, ignore_errors=True)
            raise
        state.seconds = time.monotonic() - started
        prune(keep={state.key, state.meta.get("parent") or ""})
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(state.key + "\n")
    return state


def prune(keep: set[str], limit: int = MAX_DERIVED) -> list[str]:
    """Remove the least recently built derived states beyond `limit`; roots stay (they are
    the expensive ones, and every derived state can be remade from one in seconds)."""
    candidates, kept = [], 0
    for meta in trees_root().glob(f"*/{STATE_META}"):
        if not json.loads(meta.read_text()).get("parent"):
            continue
        if meta.parent.name in keep:
            kept += 1
            continue
        built = meta.parent / BUILD_DIR / BUILT
        candidates.append((built.stat().st_mtime if built.exists() else 0.0, meta.parent))
    candidates.sort(reverse=True)
    removed = []
    for _, d in candidates[max(0, limit - kept):]:
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d.name)
    return removed


def _materialize(recipe: Recipe, fragment_text: str, parent: State | None,
                 staging: Path) -> State:
    """Lay the recipe's source out in `staging`, name it by content, and move it into
    place (or find that a state with that content already exists)."""
    source, rev = recipe.source, recipe.source.resolve(recipe.rev)
    apply_log = staging / "apply.log"
    src = staging / "src"
    src.mkdir()
    if parent is None:
        root_key = cache.digest("root", source.identity(rev), fragment_text,
                                *arch_key(recipe.arch), length=20)
        root_rev, delta, touched = rev, {}, set()
        source.export(rev, src)
    else:
        root_key, root_rev = parent.meta["root"], parent.meta["root_rev"]
        delta = dict(parent.meta["delta"])
        touched = source.changed(root_rev, rev) | set(delta)
        touched |= {f for p in recipe.patches for f in p.files}
        _link_farm(parent.dir, src)
        for rel in touched:
            target = src / rel
            if target.is_symlink() or target.exists():
                target.unlink()
        source.export_files(rev, sorted(touched), src)
    for patch in recipe.patches:
        try:
            apply(patch, src, apply_log)
        except KernelError as e:
            kept = cache.cache_root() / "logs" / f"apply-{recipe.key(fragment_text)}.log"
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(apply_log, kept)
            raise KernelError(str(e).replace(str(apply_log), str(kept))) from None
    if parent is not None:
        root_src = trees_root() / root_key
        for rel in touched:
            mine = _file_digest(src / rel)
            if mine == _file_digest(root_src / rel):
                delta.pop(rel, None)
            else:
                delta[rel] = mine
    key = root_key if not delta else cache.digest(root_key, json.dumps(sorted(delta.items())),
                                                  length=20)
    final = trees_root() / key
    if final.exists():
        # The same content is already here (built, or a build to resume).
        shutil.rmtree(staging, ignore_errors=True)
        return State.load(key)
    meta = {
        "key": key,
        "root": root_key, "root_rev": root_rev, "rev": rev, "delta": delta,
        "source": str(source.path), "kind": source.kind,
        "identity": source.identity(rev),
        "patches": [{"file": str(p.file), "subject": p.subject, "label": p.label}
                    for p in recipe.patches],
        "parent": parent.key if parent else None,
        "fragment": cache.digest(fragment_text),
        "arch": recipe.arch.name,
        "kconfig": any(Path(f).name.startswith("Kconfig") for f in touched),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    # The source moves up to be the state directory itself, the O= directory
    # directly inside it.
    for entry in src.iterdir():
        entry.rename(staging / entry.name)
    src.rmdir()
    apply_log.unlink(missing_ok=True)
    if parent is not None:
        _run(["cp", "-a", str(parent.out), str(staging / BUILD_DIR)],
             f"copying the build of {parent.key}")
        (staging / BUILD_DIR / BUILT).unlink(missing_ok=True)
    (staging / STATE_META).write_text(json.dumps(meta, indent=1))
    staging.rename(final)
    return State(final, meta)


def _link_farm(parent: Path, dest: Path) -> None:
    """Hard links to every source file of `parent` (not its build or bookkeeping)."""
    skip = {BUILD_DIR, STATE_META}
    entries = [str(e) for e in parent.iterdir() if e.name not in skip]
    if entries:
        _run(["cp", "-al", "--", *entries, str(dest)], f"linking {parent}")


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise KernelError(f"{what} failed: {proc.stderr.strip()}")


def make_argv(src: Path, out: Path, arch: Arch, *targets: str,
              extra: Sequence[str] = ()) -> list[str]:
    """make for `arch` in `src` with O=`out`: cross-compiled when `arch` is not the
    host's, ccache in front of the compiler when present."""
    prefix = "" if arch.native else arch.cross_compile
    if prefix and shutil.which(f"{prefix}gcc") is None:
        raise KernelError(f"{prefix}gcc not found: install gcc-{prefix.rstrip('-')} "
                          f"(or run 'make setup')")
    cross = [f"CROSS_COMPILE={prefix}"] if prefix else []
    cc = [f"CC=ccache {prefix}gcc"] if shutil.which("ccache") else []
    return ["make", "-C", str(src), f"O={out}", f"ARCH={arch.kernel}", *cross,
            f"-j{os.cpu_count() or 1}", *cc, *extra, *targets]


def make(src: Path, out: Path, log: Path, *targets: str, arch: Arch = DEFAULT_ARCH,
         extra: Sequence[str] = ()) -> None:
    """make_argv run, appending to `log`; one line of error on failure."""
    argv = make_argv(src, out, arch, *targets, extra=extra)
    env = {**os.environ, "LC_ALL": "C", "CCACHE_DIR": str(cache.cache_root() / "ccache")}
    with log.open("a") as f:
        f.write(f"$ {' '.join(argv)}\n")
        f.flush()
        proc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise KernelError(f"kernel build failed (make {' '.join(targets)}): "
                          f"{first_error(log)}; build log kept: {log}")


def first_error(log: Path) -> str:
    text = log.read_text(errors="replace").splitlines()
    for pattern in (r": (?:fatal )?error: ", r"\*\*\* ", r"Error \d+"):
        for line in text:
            if re.search(pattern, line):
                return line.strip()[:300]
    return "see the log"


def _compile(state: State, fragment_text: str, full_config: bool) -> None:
    """Configure (tinyconfig + fragment) and build the image and modules in the state's O=."""
    log = state.log
    cache.ensure_space(state.dir, 4 << 30)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} building {state.key} "
                f"in {trees_root() / BENCH}\n")
    with _on_bench(state) as src:
        out = src / BUILD_DIR
        out.mkdir(exist_ok=True)
        if full_config:
            configure(src, out, log, fragment_text, state.arch)
        make(src, out, log, Path(state.arch.image).name, "modules", arch=state.arch)
        (out / BUILT).touch()


def configure(src: Path, out: Path, log: Path, fragment_text: str,
              arch: Arch = DEFAULT_ARCH) -> None:
    """tinyconfig plus `fragment_text` in O=`out`; every option of the fragment must take."""
    config = out / ".config"
    before = config.read_bytes() if config.exists() else None
    stat = config.stat() if config.exists() else None
    (out / "fragment.config").write_text(fragment_text)
    make(src, out, log, "tinyconfig", arch=arch)
    with log.open("a") as f:
        proc = subprocess.run(
            [str(src / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(out),
             str(config), str(out / "fragment.config")],
            cwd=src, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "ARCH": arch.kernel},
        )
    if proc.returncode != 0:
        raise KernelError(f"merging the config fragment failed; build log kept: {log}")
    make(src, out, log, "olddefconfig", arch=arch)
    unmet = unmet_options(fragment_options(fragment_text), config.read_text())
    if unmet:
        raise KernelError(f"the config fragment did not take: {', '.join(unmet)}; "
                          f"build log kept: {log}")
    if before is not None and stat is not None and config.read_bytes() == before:
        # Same configuration as the copied build: keep its time so make does not
        # re-sync the configuration and rebuild what depends on it.
        os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def install(state: State, flavour: str, cmdline: tuple[str, ...] = ()) -> Kernel:
    """The state as a bootable Kernel: its image and modules_install in the cache."""
    if not state.built:
        raise KernelError(f"tree state {state.key} is not built")
    release, arch = state.release, state.arch
    image = Path(arch.image).name

    def fill(dest: Path) -> None:
        make(state.dir, state.out, state.log, "modules_install", arch=arch,
             extra=[f"INSTALL_MOD_PATH={dest}", "INSTALL_MOD_STRIP=1", "DEPMOD=/sbin/depmod"])
        shutil.copy2(state.out / arch.image, dest / image)
        shutil.copy2(state.out / ".config", dest / "config")
        for link in (*dest.glob("lib/modules/*/build"), *dest.glob("lib/modules/*/source")):
            link.unlink()
        (dest / "build-info.json").write_text(json.dumps(build_info(state), indent=1))

    key = f"kernels/tree-{state.key}"
    if (cache.cache_root() / key).is_dir():
        root = cache.cache_root() / key
    else:
        with build_lock():
            root = cache.entry(key, fill)
    # The build and source trees stay: a profile's out-of-tree modules build against them.
    return Kernel(flavour=flavour, release=release, image=root / image, modules_root=root,
                  arch=arch.name, cmdline=cmdline, kbuild=state.out, source=state.dir)


def build_info(state: State) -> dict[str, Any]:
    """What history records about a kernel built from a tree."""
    m = state.meta
    return {
        "state": state.key, "source": m.get("source"), "kind": m.get("kind"),
        "commit": m.get("rev") or m.get("identity"), "identity": m.get("identity"),
        "patches": [p["label"] for p in m.get("patches", [])],
        "config_hash": state.config_hash, "release": state.release,
    }
