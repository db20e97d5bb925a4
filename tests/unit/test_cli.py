"""Bad input ends in one clear line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.host.cache import ensure_space
from harness.pure.errors import SetupError


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.host.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def _one_clear_line(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    first = proc.stderr.strip().splitlines()[0]
    assert first.startswith("v4l2-unplug: error: ")
    for word in words:
        assert word in first


def test_kernel_path_that_is_not_a_kernel(tmp_path: Path) -> None:
    junk = tmp_path / "vmlinuz"
    junk.write_text("not a kernel\n")
    proc = _cli("topology", "--kernel", "path", "--kernel-image", str(junk),
                "--modules", str(tmp_path))
    _one_clear_line(proc, "not a Linux x86 kernel image", str(junk))


def test_unknown_flavour() -> None:
    _one_clear_line(_cli("kernel", "--kernel", "fedora"), "unknown kernel flavour 'fedora'")


def test_missing_qemu(tmp_path: Path) -> None:
    image = tmp_path / "bzImage"
    image.write_bytes(bytes(0x202) + b"HdrS" + bytes(100))
    moddir = tmp_path / "lib/modules/6.1.0-x"
    moddir.mkdir(parents=True)
    # A kernel of the user's carries vimc itself (it has no build tree to build it).
    (moddir / "modules.dep").write_text("kernel/drivers/media/test-drivers/vimc/vimc.ko:\n")
    proc = _cli("topology", "--kernel", "path", "--kernel-image", str(image),
                "--modules", str(tmp_path), env={"PATH": str(tmp_path)})
    _one_clear_line(proc, "qemu-system-x86_64 not found", "apt-get install qemu-system-x86")


def test_no_space_for_the_cache(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="free some space or point XDG_CACHE_HOME"):
        ensure_space(tmp_path, need=1 << 62)


def test_no_space_for_the_cache_through_the_cli(tmp_path: Path) -> None:
    """The kernel cache on a real 1 MiB file system (a tmpfs in a private mount namespace)."""
    small = tmp_path / "small"
    small.mkdir()
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no mount namespaces here (unshare --mount needs CAP_SYS_ADMIN)")
    script = (f"mount -t tmpfs -o size=1m tmpfs {small} && "
              f"exec {sys.executable} -m harness.host.cli kernel --kernel debug")
    proc = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True,
                          text=True, env={**os.environ, "XDG_CACHE_HOME": str(small)},
                          timeout=120)
    _one_clear_line(proc, "MiB free under", "point XDG_CACHE_HOME at a larger disk")


def test_cache_that_cannot_be_created() -> None:
    proc = _cli("kernel", "--kernel", "debug", env={"XDG_CACHE_HOME": "/proc/no-such-dir"})
    _one_clear_line(proc, "/proc/no-such-dir")


def test_missing_patch_file(tmp_path: Path) -> None:
    proc = _cli("topology", "--kernel", "debian", "--patch", str(tmp_path / "fix.patch"))
    _one_clear_line(proc, "fix.patch does not exist")


def test_kernel_image_that_is_a_directory(tmp_path: Path) -> None:
    proc = _cli("topology", "--kernel", "path", "--kernel-image", str(tmp_path),
                "--modules", str(tmp_path))
    _one_clear_line(proc, "is a directory", "arch/x86/boot/bzImage")


def test_validate_needs_a_tree_or_a_flavour() -> None:
    _one_clear_line(_cli("validate", "--patch", "fix.patch"), "--tree", "--kernel")
    _one_clear_line(_cli("validate", "--kernel", "nonsense", "--patch", "fix.patch"),
                    "--kernel", "nonsense")


def test_validate_budget_needs_a_race_and_a_time() -> None:
    patch = Path(__file__).resolve().parents[2] / "vm/patches/vimc-comment-only.patch"
    _one_clear_line(_cli("validate", "--kernel", "debian", "--patch", str(patch),
                         "--budget", "10m"), "--budget", "--race")
    _one_clear_line(_cli("validate", "--kernel", "debian", "--patch", str(patch), "--race",
                         "--budget", "ten minutes"), "length of time", "10m")
    _one_clear_line(_cli("validate", "--kernel", "debian", "--race", "--base", "v6.1",
                         "--patch", str(patch)), "--base/--head", "--tree")


def test_validate_and_run_share_every_race_option() -> None:
    import argparse

    from harness.host.commands import run, validate

    def race_options(register) -> dict[str, str | None]:
        parser = argparse.ArgumentParser()
        register(parser.add_subparsers())
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        (p,) = sub.choices.values()
        group = next(g for g in p._action_groups if g.title and g.title.startswith("race mode"))
        return {a.option_strings[0]: a.help for a in group._group_actions}

    shared = race_options(validate.register)
    ran = race_options(run.register)
    for option in ("--race", "--duration", "--seed", "--workers", "--race-mode",
                   "--race-nodes"):
        assert shared[option] == ran[option], option
