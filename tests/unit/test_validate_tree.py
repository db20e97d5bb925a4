"""Tree states: copies, patches, content keys and incremental builds, with real make and git.

The tree is a stand-in for a kernel tree: its Makefile answers the targets
the harness runs (tinyconfig, olddefconfig, bzImage, modules,
modules_install) with O= as kbuild does, "compiles" each drivers/*.c into
its O= directory only when make finds it out of date, and logs each
compile, so the tests see exactly what a build redid.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.host.kernels import tree
from harness.host.kernels.series import read_patch_file
from harness.pure.arch import get_arch
from harness.pure.errors import KernelError

MAKEFILE = """\
VERSION = 6
PATCHLEVEL = 1
O ?= .
SRCS := $(sort $(wildcard drivers/*.c))
OBJS := $(patsubst %.c,$(O)/%.o,$(SRCS))

tinyconfig:
\tmkdir -p $(O) && echo CONFIG_TINY=y > $(O)/.config
olddefconfig:
\t@true
$(O)/%.o: %.c
\t@mkdir -p $(dir $@)
\t@if grep -q BROKEN $<; then echo "$<:1:1: error: it is broken"; exit 1; fi
\t@cp $< $@
\t@echo $< >> $(O)/compiled.log
bzImage: $(OBJS)
\t@mkdir -p $(O)/arch/x86/boot $(O)/include/config
\t@cat $(OBJS) > $(O)/arch/x86/boot/bzImage
\t@echo 6.1.0-fake > $(O)/include/config/kernel.release
\t@echo $(abspath $(O)) > $(O)/built-at
Image: $(OBJS)
\t@mkdir -p $(O)/arch/$(ARCH)/boot $(O)/include/config
\t@cat $(OBJS) > $(O)/arch/$(ARCH)/boot/Image
\t@echo 6.1.0-fake-$(ARCH) > $(O)/include/config/kernel.release
modules:
\t@true
modules_install:
\t@mkdir -p $(INSTALL_MOD_PATH)/lib/modules/6.1.0-fake
.PHONY: tinyconfig olddefconfig bzImage Image modules modules_install
"""

MERGE_CONFIG = """#!/bin/sh
# merge_config.sh -m -O OUT BASE FRAGMENT
cat "$4" "$5" > "$3/.config.new" && mv "$3/.config.new" "$3/.config"
"""

FRAGMENT = "CONFIG_FOO=y\n# CONFIG_BAR is not set\n"

B_PATCH = """\
Subject: [PATCH] b: say hello louder

--- a/drivers/b.c
+++ b/drivers/b.c
@@ -1,3 +1,3 @@
 int b1;
-int b2;
+int b2_louder;
 int b3;
"""

B_REVERT = """\
--- a/drivers/b.c
+++ b/drivers/b.c
@@ -1,3 +1,3 @@
 int b1;
-int b2_louder;
+int b2;
 int b3;
"""

TWO_HUNKS = """\
--- a/drivers/b.c
+++ b/drivers/b.c
@@ -1,2 +1,2 @@
-int b1;
+int b1x;
 int b2;
@@ -20,3 +20,3 @@
 int nothing;
-int here;
+int there;
 int at_all;
"""


def fake_tree(root: Path) -> Path:
    (root / "drivers").mkdir(parents=True)
    (root / "arch/x86").mkdir(parents=True)
    (root / "scripts/kconfig").mkdir(parents=True)
    (root / "Makefile").write_text(MAKEFILE)
    (root / "Kconfig").write_text("mainmenu \"fake\"\n")
    (root / "arch/Kconfig").write_text("config ARCH_FAKE\n\tbool\n")
    (root / "arch/x86/Kconfig").write_text("config X86\n\tdef_bool y\n")
    merge = root / "scripts/kconfig/merge_config.sh"
    merge.write_text(MERGE_CONFIG)
    merge.chmod(0o755)
    (root / "drivers/a.c").write_text("int a;\n")
    (root / "drivers/b.c").write_text("int b1;\nint b2;\nint b3;\n")
    return root


def patch_file(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def compiled(state: tree.State) -> list[str]:
    """Every compile the state's O= directory saw (its parent's included), sorted (make -j)."""
    log = state.out / "compiled.log"
    return sorted(log.read_text().split()) if log.exists() else []


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return cache / "v4l2-unplug"


def test_root_builds_once_then_is_found(tmp_path: Path) -> None:
    src = tree.DirSource(fake_tree(tmp_path / "linux"))
    first = tree.build(tree.Recipe(src, None), FRAGMENT)
    assert first.built and not first.reused
    assert compiled(first) == ["drivers/a.c", "drivers/b.c"]
    # O= sits directly in the tree, which kbuild turns into the relative srctree ".."
    assert first.out == first.dir / ".build"
    again = tree.build(tree.Recipe(tree.DirSource(tmp_path / "linux"), None), FRAGMENT)
    assert again.reused and again.key == first.key
    assert compiled(again) == ["drivers/a.c", "drivers/b.c"]


def test_a_patch_rebuilds_only_the_file_it_touches(tmp_path: Path) -> None:
    src = tree.DirSource(fake_tree(tmp_path / "linux"))
    root = tree.build(tree.Recipe(src, None), FRAGMENT)
    patches = tuple(read_patch_file(patch_file(tmp_path, "b.patch", B_PATCH)))
    head = tree.build(tree.Recipe(src, None, patches), FRAGMENT, parent=root)
    assert head.key != root.key and not head.reused
    # the copied O= directory kept a.o and b.o; only b.c was compiled again
    assert compiled(head) == ["drivers/a.c", "drivers/b.c", "drivers/b.c"]
    assert "b2_louder" in (head.dir / "drivers/b.c").read_text()
    # neither the user's tree nor the root state saw the patch
    assert "b2_louder" not in (tmp_path / "linux/drivers/b.c").read_text()
    assert "b2_louder" not in (root.dir / "drivers/b.c").read_text()
    assert head.meta["delta"].keys() == {"drivers/b.c"}


def test_every_build_runs_at_the_one_bench_path(tmp_path: Path, cache_dir: Path) -> None:
    src = tree.DirSource(fake_tree(tmp_path / "linux"))
    root = tree.build(tree.Recipe(src, None), FRAGMENT)
    patches = tuple(read_patch_file(patch_file(tmp_path, "b.patch", B_PATCH)))
    head = tree.build(tree.Recipe(src, None, patches), FRAGMENT, parent=root)
    bench = cache_dir / "trees" / ".bench"
    for state in (root, head):
        assert (state.out / "built-at").read_text().strip() == str(bench / ".build")
        assert state.dir.is_dir()
    assert not bench.exists()


def test_a_state_left_on_the_bench_is_put_back(tmp_path: Path, cache_dir: Path) -> None:
    src = tree.DirSource(fake_tree(tmp_path / "linux"))
    root = tree.build(tree.Recipe(src, None), FRAGMENT)
    bench = cache_dir / "trees" / ".bench"
    root.dir.rename(bench)  # as a build killed with SIGKILL leaves it
    again = tree.build(tree.Recipe(src, None, tuple(read_patch_file(
        patch_file(tmp_path, "b.patch", B_PATCH)))), FRAGMENT)
    assert root.dir.is_dir() and not bench.exists()
    assert again.meta["root"] == root.key


def test_patch_and_revert_land_on_the_root_and_build_nothing(tmp_path: Path) -> None:
    src = tree.DirSource(fake_tree(tmp_path / "linux"))
    root = tree.build(tree.Recipe(src, None), FRAGMENT)
    bug = tuple(read_patch_file(patch_file(tmp_path, "bug.patch", B_PATCH)))
    fix = tuple(read_patch_file(patch_file(tmp_path, "fix.patch", B_REVERT)))
    base = tree.build(tree.Recipe(src, None, bug), FRAGMENT)
    head = tree.build(tree.Recipe(src, None, bug + fix), FRAGMENT, parent=base)
    assert head.key == root.key
    assert head.reused


def test_the_cached_source_is_linked_not_copied_and_patching_breaks_the_link(
        tmp_path: Path, cache_dir: Path) -> None:
    linux = fake_tree(cache_dir / "source" / "linux-fake")
    src = tree.DirSource(linux)
    assert src.ours
    root = tree.build(tree.Recipe(src, None), FRAGMENT)
    assert os.stat(root.dir / "drivers/b.c").st_ino == os.stat(linux / "drivers/b.c").st_ino
    patches = tuple(read_patch_file(patch_file(tmp_path, "b.patch", B_PATCH)))
    head = tree.build(tree.Recipe(src, None, patches), FRAGMENT, parent=root)
    assert os.stat(head.dir / "drivers/a.c").st_ino == os.stat(linux / "drivers/a.c").st_ino
    assert os.stat(head.dir / "drivers/b.c").st_ino != os.stat(linux / "drivers/b.c").st_ino
    assert (linux / "drivers/b.c").read_text() == "int b1;\nint b2;\nint b3;\n"


def test_a_user_tree_is_copied_so_later_edits_do_not_leak_in(tmp_path: Path) -> None:
    linux = fake_tree(tmp_path / "linux")
    root = tree.build(tree.Recipe(tree.DirSource(linux), None), FRAGMENT)
    assert os.stat(root.dir / "drivers/a.c").st_ino != os.stat(linux / "drivers/a.c").st_ino
    with (linux / "drivers/a.c").open("a") as f:  # an in-place edit
        f.write("int edited;\n")
    assert "edited" not in (root.dir / "drivers/a.c").read_text()
    # and the edited tree is a new root
    edited = tree.build(tree.Recipe(tree.DirSource(linux), None), FRAGMENT)
    assert edited.key != root.key


def test_a_hunk_that_does_not_apply_is_named(tmp_path: Path, cache_dir: Path) -> None:
    src = tree.DirSource(fake_tree(tmp_path / "linux"))
    patches = tuple(read_patch_file(patch_file(tmp_path, "two.patch", TWO_HUNKS)))
    with pytest.raises(KernelError) as e:
        tree.build(tree.Recipe(src, None, patches), FRAGMENT)
    msg = str(e.value)
    assert "patch two.patch does not apply" in msg
    assert "hunk #2 of 2 in drivers/b.c (@@ -20,3 +20,3 @@)" in msg
    kept = [p for p in (cache_dir / "logs").iterdir() if p.name.startswith("apply-")]
    assert kept and str(kept[0]) in msg
    assert "patch failed: drivers/b.c:20" in kept[0].read_text()
    # nothing half-made is left behind
    assert not [p for p in (cache_dir / "trees").iterdir() if p.name.startswith(".staging")]


def test_a_build_that_fails_says_why_and_keeps_its_log(tmp_path: Path) -> None:
    src = tree.DirSource(fake_tree(tmp_path / "linux"))
    broken = patch_file(tmp_path, "broken.patch", B_PATCH.replace("int b2_louder;", "BROKEN"))
    patches = tuple(read_patch_file(broken))
    with pytest.raises(KernelError) as e:
        tree.build(tree.Recipe(src, None, patches), FRAGMENT)
    msg = str(e.value)
    assert "kernel build failed (make bzImage modules)" in msg
    assert "drivers/b.c:1:1: error: it is broken" in msg
    log = Path(msg.rsplit("build log kept: ", 1)[1])
    assert log.is_file() and "it is broken" in log.read_text()


def test_a_failed_derived_state_is_dropped_and_old_ones_pruned(tmp_path: Path) -> None:
    src = tree.DirSource(fake_tree(tmp_path / "linux"))
    root = tree.build(tree.Recipe(src, None), FRAGMENT)
    broken = patch_file(tmp_path, "broken.patch", B_PATCH.replace("int b2_louder;", "BROKEN"))
    with pytest.raises(KernelError):
        tree.build(tree.Recipe(src, None, tuple(read_patch_file(broken))), FRAGMENT)
    assert [d for d in tree.trees_root().iterdir() if not d.name.startswith(".")
            and d.name not in ("logs", "recipes")] == [root.dir]
    states = []
    for i in range(4):
        text = B_PATCH.replace("b2_louder", f"b2_v{i}")
        patches = tuple(read_patch_file(patch_file(tmp_path, f"v{i}.patch", text)))
        states.append(tree.build(tree.Recipe(src, None, patches), FRAGMENT, parent=root))
    assert tree.prune(keep=set(), limit=2) == [states[1].key, states[0].key]
    assert root.dir.is_dir() and states[3].dir.is_dir() and not states[0].dir.exists()


def test_not_a_kernel_tree(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src/Makefile").write_text("all:\n")
    with pytest.raises(KernelError, match=r"is not a Linux kernel source tree \(no Kconfig\)"):
        tree.open_source(tmp_path / "src")
    with pytest.raises(KernelError, match="does not exist"):
        tree.open_source(tmp_path / "nowhere")


def test_a_tree_built_in_place_is_refused(tmp_path: Path) -> None:
    linux = fake_tree(tmp_path / "linux")
    (linux / ".config").write_text("CONFIG_X=y\n")
    with pytest.raises(KernelError, match="make mrproper"):
        tree.open_source(linux)


def _git(repo: Path, *argv: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c",
                           "user.email=t@example.org", *argv],
                          check=True, capture_output=True, text=True).stdout


def git_tree(root: Path) -> Path:
    fake_tree(root)
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "one")
    (root / "drivers/a.c").write_text("int a_changed;\n")
    _git(root, "commit", "-qam", "two: change a")
    return root


def test_git_commits_build_from_the_object_store_and_derive(tmp_path: Path) -> None:
    repo = git_tree(tmp_path / "linux")
    (repo / "drivers/b.c").write_text("uncommitted\n")  # the user's work in progress
    src = tree.open_source(repo)
    assert src.kind == "git"
    base = tree.build(tree.Recipe(src, "HEAD~1"), FRAGMENT)
    assert (base.dir / "drivers/a.c").read_text() == "int a;\n"
    assert (base.dir / "drivers/b.c").read_text().startswith("int b1;")
    head = tree.build(tree.Recipe(src, "HEAD"), FRAGMENT, parent=base)
    assert compiled(head) == ["drivers/a.c", "drivers/a.c", "drivers/b.c"]
    assert head.meta["rev"] == _git(repo, "rev-parse", "HEAD").strip()
    # the user's checkout is as it was
    assert (repo / "drivers/b.c").read_text() == "uncommitted\n"
    assert _git(repo, "status", "--porcelain").strip() == "M drivers/b.c"
    with pytest.raises(KernelError, match="is not a commit"):
        src.resolve("no-such-branch")


def test_install_makes_a_bootable_kernel_entry(tmp_path: Path) -> None:
    src = tree.DirSource(fake_tree(tmp_path / "linux"))
    state = tree.build(tree.Recipe(src, None), FRAGMENT)
    kernel = tree.install(state, "tree", ("acpi=noirq",))
    assert kernel.release == "6.1.0-fake"
    assert kernel.image.is_file() and kernel.cmdline == ("acpi=noirq",)
    info = (kernel.image.parent / "build-info.json").read_text()
    assert state.key in info and state.config_hash in info


def test_an_arm64_recipe_is_its_own_state_and_boots_its_image(tmp_path: Path) -> None:
    # Same tree, same fragment: another architecture is another configuration.
    src = tree.DirSource(fake_tree(tmp_path / "linux"))
    arm64 = get_arch("aarch64")
    pc = tree.build(tree.Recipe(src, None), FRAGMENT)
    board = tree.build(tree.Recipe(src, None, arch=arm64), FRAGMENT)
    assert board.key != pc.key and not board.reused
    assert board.meta["arch"] == "aarch64" and board.arch == arm64
    patched = tree.build(tree.Recipe(src, None, tuple(read_patch_file(
        patch_file(tmp_path, "b.patch", B_PATCH))), arm64), FRAGMENT, parent=board)
    assert patched.arch == arm64 and compiled(patched)[-1] == "drivers/b.c"
    kernel = tree.install(patched, "tree")
    assert (kernel.arch, kernel.image.name, kernel.release) == ("aarch64", "Image",
                                                                "6.1.0-fake-arm64")
    assert tree.build(tree.Recipe(src, None), FRAGMENT).key == pc.key


# --- the command line, down to the build (no VM: --build-only)

def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.host.cli", *args], capture_output=True,
                          text=True, env=dict(os.environ), timeout=300)


def _one_clear_line(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    error = [line for line in lines if line.startswith("v4l2-unplug: error: ")]
    assert len(error) == 1, proc.stderr
    for word in words:
        assert word in error[0]
    return error[0]


def test_validate_build_only_builds_both_and_then_nothing(tmp_path: Path) -> None:
    linux = fake_tree(tmp_path / "linux")
    patch = patch_file(tmp_path, "b.patch", B_PATCH)
    first = _cli("validate", "--tree", str(linux), "--patch", str(patch), "--build-only")
    assert first.returncode == 0, first.stderr
    assert "built in" in first.stderr
    again = _cli("validate", "--tree", str(linux), "--patch", str(patch), "--build-only")
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("reused, nothing rebuilt") == 2
    assert "building" not in again.stderr


def test_validate_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    linux = fake_tree(tmp_path / "linux")
    patch = patch_file(tmp_path, "b.patch", B_PATCH)
    _one_clear_line(_cli("validate", "--tree", str(tmp_path), "--patch", str(patch)),
                    "is not a Linux kernel source tree")
    _one_clear_line(_cli("validate", "--tree", str(linux)), "nothing to compare")
    _one_clear_line(_cli("validate", "--tree", str(linux), "--patch", str(tmp_path / "x.patch")),
                    "x.patch does not exist")
    _one_clear_line(_cli("validate", "--tree", str(linux), "--base", "v6.1", "--patch",
                         str(patch)), "need a git tree")
    not_a_patch = patch_file(tmp_path, "notes.txt", "just words\n")
    _one_clear_line(_cli("validate", "--tree", str(linux), "--patch", str(not_a_patch)),
                    "holds no diff")
    two = patch_file(tmp_path, "two.patch", TWO_HUNKS)
    _one_clear_line(_cli("validate", "--tree", str(linux), "--patch", str(two), "--build-only"),
                    "two.patch does not apply", "hunk #2 of 2 in drivers/b.c")
    broken = patch_file(tmp_path, "broken.patch", B_PATCH.replace("int b2_louder;", "BROKEN"))
    line = _one_clear_line(_cli("validate", "--tree", str(linux), "--patch", str(broken),
                                "--build-only"), "kernel build failed", "it is broken")
    assert Path(line.rsplit("build log kept: ", 1)[1]).is_file()
