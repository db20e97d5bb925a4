"""Shared fixtures: kernels by flavour, and a QEMU target per flavour."""

from __future__ import annotations

import pytest

from harness.kernels.flavours import get_kernel
from harness.kernels.kernel import Kernel

VM_FLAVOURS = ("debian", "debug")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kernel",
        action="append",
        choices=VM_FLAVOURS,
        help="kernel flavour(s) for the VM tests (default: all)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "flavour" in metafunc.fixturenames:
        flavours = metafunc.config.getoption("--kernel") or list(VM_FLAVOURS)
        metafunc.parametrize("flavour", flavours, scope="session")


@pytest.fixture(scope="session")
def kernel(flavour: str) -> Kernel:
    return get_kernel(flavour)
