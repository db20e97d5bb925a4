"""The scenario matrix as a pytest plugin.

Each scenario of the driver profile becomes a parametrized test, named after
the scenario, so kernel developers select scenarios as they select tests:

    pytest --kernel debug -k blocked_dqbuf tests/vm/test_scenarios.py
    pytest --kernel debug --junitxml=out.xml ...
    pytest -n 2 ...                       # flavours' VMs run at the same time

A test only reads its scenario's outcome: the first test of a flavour runs
every selected scenario of that flavour in as few boots as possible (the
way `v4l2-unplug run` does), so selecting with -k also selects what boots.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FLAVOURS = ("debian", "debug")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("v4l2-unplug")
    group.addoption("--kernel", action="append", choices=FLAVOURS,
                    help="kernel flavour(s) for VM tests (default: all)")
    group.addoption("--driver", default="vimc", help="driver profile for scenario tests")
    group.addoption("--scenario-report", type=Path, default=None,
                    help="keep the scenario report directories here")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vm: boots a kernel in QEMU")


def _flavours(config: pytest.Config) -> list[str]:
    return config.getoption("--kernel") or list(FLAVOURS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = metafunc.fixturenames
    if "scenario_name" in names:
        from harness.profiles import get_profile
        from harness.scenarios.matrix import build_matrix

        matrix = build_matrix(get_profile(metafunc.config.getoption("--driver")))
        params = [
            pytest.param(flavour, s.name, id=f"{flavour}-{s.name}",
                         marks=[pytest.mark.vm])
            for flavour in _flavours(metafunc.config)
            for s in matrix
        ]
        metafunc.parametrize(("flavour", "scenario_name"), params)
    elif "flavour" in names:
        metafunc.parametrize("flavour", _flavours(metafunc.config), scope="session")


@pytest.fixture(scope="session")
def kernel_cache() -> dict:
    return {}


@pytest.fixture
def kernel(flavour: str, kernel_cache: dict):
    from harness.kernels.flavours import get_kernel

    if flavour not in kernel_cache:
        kernel_cache[flavour] = get_kernel(flavour)
    return kernel_cache[flavour]


def _shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory every xdist worker of this session sees (the session's basetemp)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _once(tmp_path_factory: pytest.TempPathFactory, key: str,
          produce: Callable[[], Any]) -> Any:
    """produce() once per test session, whichever xdist worker asks first; its
    JSON-able result is shared through the session's basetemp under a lock.
    (xdist's loadgroup does not keep a group on one worker here, so a
    per-worker cache would boot the same VM once per worker.)"""
    shared = _shared_dir(tmp_path_factory)
    results = shared / f"{key}.json"
    with open(shared / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not results.exists():
            results.write_text(json.dumps(produce()))
    return json.loads(results.read_text())


@pytest.fixture
def session_once(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    """session_once(key, produce) -> produce()'s JSON-able result, computed by
    the first test of the whole session (any xdist worker) that asks for `key`."""
    return lambda key, produce: _once(tmp_path_factory, key, produce)


@pytest.fixture
def boot_once(kernel, tmp_path_factory: pytest.TempPathFactory):
    """boot_once(name, tasks) -> GuestRun: one boot of `kernel` running `tasks`,
    shared by every test of the session that asks for the same name."""
    from harness.targets.qemu import GuestRun, QemuTarget

    def boot(name: str, tasks: list[dict[str, Any]]) -> GuestRun:
        key = f"{name}-{kernel.flavour}"

        def produce() -> dict[str, Any]:
            out = tmp_path_factory.mktemp(key)
            return QemuTarget(kernel).run(tasks, out).to_dict()

        return GuestRun.from_dict(_once(tmp_path_factory, key, produce))

    return boot


@pytest.fixture
def scenario_outcome(request: pytest.FixtureRequest, flavour: str, scenario_name: str,
                     tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The outcome of this test's scenario on this flavour, as results.json records it.

    The first test of a flavour, in whichever worker, runs every selected
    scenario of that flavour in one batch under a file lock; the other tests,
    in any worker, read the batch's results. So one VM runs per flavour, and
    flavours run in parallel when xdist has workers for them.
    """
    batch = _once(tmp_path_factory, f"scenarios-{flavour}",
                  lambda: _run_batch(request, flavour, tmp_path_factory))
    return batch[scenario_name]


def _run_batch(request: pytest.FixtureRequest, flavour: str,
               tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from harness.kernels.flavours import get_kernel
    from harness.profiles import get_profile
    from harness.report.results import outcome_dict
    from harness.scenarios.matrix import build_matrix, select
    from harness.scenarios.runner import run_scenarios
    from harness.targets.qemu import QemuTarget

    wanted = [
        item.callspec.params["scenario_name"]
        for item in request.session.items
        if hasattr(item, "callspec")
        and item.callspec.params.get("flavour") == flavour
        and "scenario_name" in item.callspec.params
    ]
    profile = get_profile(request.config.getoption("--driver"))
    chosen = select(build_matrix(profile), wanted)
    base = request.config.getoption("--scenario-report")
    out = (base / flavour) if base else tmp_path_factory.mktemp(f"scenarios-{flavour}")
    result = run_scenarios(QemuTarget(get_kernel(flavour)), profile.name, chosen, out)
    return {o.scenario.name: outcome_dict(o) for o in result.outcomes}
