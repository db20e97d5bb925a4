"""System call numbers come from the architecture table, and an architecture the
table lacks fails where a number is needed, not when the module is imported."""

from __future__ import annotations

import importlib
import os

import pytest

from harness.pure.arch import ARCHES, syscall_number
from harness.pure.errors import KernelError


def test_delete_module_numbers_are_the_kernels() -> None:
    # arch/x86/entry/syscalls/syscall_64.tbl and include/uapi/asm-generic/unistd.h
    assert syscall_number("x86_64", "delete_module") == 176
    assert syscall_number("aarch64", "delete_module") == 106


def test_every_guest_architecture_has_a_delete_module_number() -> None:
    assert all(a.sys_delete_module for a in ARCHES.values())


def test_an_unknown_architecture_is_named_in_the_error() -> None:
    with pytest.raises(KernelError, match=r"delete_module\(2\).*'riscv64'.*harness/pure/arch.py"):
        syscall_number("riscv64", "delete_module")


def test_disrupt_imports_on_an_unknown_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    """An armv7 board imports the target-side code; only removing a module fails."""
    import harness.target.scenarios.disrupt as disrupt

    real = os.uname()
    fake = os.uname_result((real.sysname, real.nodename, real.release, real.version, "armv7l"))
    monkeypatch.setattr(os, "uname", lambda: fake)
    disrupt = importlib.reload(disrupt)
    with pytest.raises(KernelError, match="'armv7l'"):
        disrupt.delete_module("no_such_module", 1.0)
