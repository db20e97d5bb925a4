"""Which compiler a kernel build tree wants, and how make is run when the
host lacks it."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.host.kernels import toolchain
from harness.host.kernels.toolchain import Compiler, compiler_of, kbuild_package, make_in
from harness.pure.errors import KernelError


def tree(tmp_path: Path, config: str) -> Path:
    kbuild = tmp_path / "linux-headers-6.12.117+deb13-amd64"
    kbuild.mkdir()
    (kbuild / ".config").write_text(config)
    return kbuild


def test_compiler_from_the_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toolchain.platform, "machine", lambda: "x86_64")
    kbuild = tree(tmp_path, 'CONFIG_CC_VERSION_TEXT="x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19)'
                            ' 14.2.0"\nCONFIG_GCC_VERSION=140200\n')
    compiler = compiler_of(kbuild)
    assert compiler == Compiler("x86_64-linux-gnu", 14)
    assert compiler.command == "x86_64-linux-gnu-gcc-14"
    assert compiler.package == "gcc-14-x86-64-linux-gnu"


def test_cross_compiler_follows_cross_compile(tmp_path: Path) -> None:
    kbuild = tree(tmp_path, "CONFIG_GCC_VERSION=160200\n")
    compiler = compiler_of(kbuild, "aarch64-linux-gnu-")
    assert compiler is not None
    assert compiler.command == "aarch64-linux-gnu-gcc-16"
    assert compiler.package == "gcc-16-aarch64-linux-gnu"


def test_a_clang_kernel_wants_no_gcc(tmp_path: Path) -> None:
    assert compiler_of(tree(tmp_path, "CONFIG_GCC_VERSION=0\nCONFIG_CLANG_VERSION=190000\n")) \
        is None


def test_not_a_build_tree(tmp_path: Path) -> None:
    with pytest.raises(KernelError, match="no .config"):
        compiler_of(tmp_path)


def test_kbuild_package_from_the_scripts_link(tmp_path: Path) -> None:
    kbuild = tree(tmp_path, "")
    assert kbuild_package(kbuild) is None
    (kbuild / "scripts").symlink_to("../../lib/linux-kbuild-6.12.117+deb13/scripts")
    assert kbuild_package(kbuild) == "linux-kbuild-6.12.117+deb13"


def test_make_in_binds_only_outermost_directories(tmp_path: Path) -> None:
    (tmp_path / "cache/kernels/x").mkdir(parents=True)
    (tmp_path / "tree").mkdir()
    argv = make_in(tmp_path / "root", ["make", "-C", "k"],
                   [tmp_path / "cache", tmp_path / "cache/kernels/x", tmp_path / "tree"])
    binds = argv[argv.index(str(tmp_path / "root")) + 1: argv.index("--", 5)]
    assert binds == [str(tmp_path / "cache"), str(tmp_path / "tree")]
    assert argv[-3:] == ["make", "-C", "k"]
    assert "env" in argv and "-i" in argv
