"""The scenario matrix as a pytest plugin.

Each scenario of the driver profile becomes a parametrized test, named after
the scenario, so kernel developers select scenarios as they select tests:

    pytest --kernel debug -k blocked_dqbuf tests/vm/test_scenarios.py
    pytest --kernel debug --junitxml=out.xml ...
    pytest -n 2 ...                       # flavours' VMs run at the same time

A test only reads its scenario's outcome: the first test of a flavour runs
every selected scenario of that flavour in as few boots as possible (the
way `v4l2-unplug run` does), so selecting with -k also selects what boots.

Every kernel and target comes from harness.host.targets.emulated for the --driver
profile, as the commands get theirs: `--kernel debian-arm64 --driver rcar-vin`
boots with rcar-vin's modules and device tree.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.host.kernels.flavours import FLAVOURS as ALL_FLAVOURS
from harness.pure.profiles import DEFAULT_DRIVER

if TYPE_CHECKING:
    from harness.host.kernels.kernel import Kernel
    from harness.host.targets.qemu import QemuTarget

# What VM tests run on unless --kernel says otherwise.
FLAVOURS = ("debian", "debug")
# Every flavour that needs no path of the user's.
CHOICES = tuple(name for name, f in ALL_FLAVOURS.items() if not f.needs_path)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("v4l2-unplug")
    group.addoption("--kernel", action="append", choices=CHOICES,
                    help=f"kernel flavour(s) for VM tests (default: {', '.join(FLAVOURS)})")
    group.addoption("--driver", default=DEFAULT_DRIVER,
                    help=f"driver profile for VM tests (default: {DEFAULT_DRIVER})")
    group.addoption("--scenario-report", type=Path, default=None,
                    help="keep the scenario report directories here")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vm: boots a kernel in QEMU")


def _flavours(config: pytest.Config) -> list[str]:
    return config.getoption("--kernel") or list(FLAVOURS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = metafunc.fixturenames
    if "scenario_name" in names:
        from harness.pure.profiles import get_profile
        from harness.pure.scenarios.matrix import build_matrix

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


@functools.cache
def _kernel(flavour: str, driver: str) -> Kernel:
    """The flavour's kernel with what `driver`'s profile builds, once per process."""
    from harness.host.targets.emulated import provision_kernel
    from harness.pure.profiles import get_profile

    return provision_kernel(flavour, get_profile(driver))


@functools.cache
def _target(flavour: str, driver: str) -> QemuTarget:
    from harness.host.targets.emulated import target_for
    from harness.pure.profiles import get_profile

    return target_for(_kernel(flavour, driver), get_profile(driver))


@pytest.fixture
def kernel(flavour: str, request: pytest.FixtureRequest) -> Kernel:
    """The flavour's kernel, provisioned for --driver."""
    return _kernel(flavour, request.config.getoption("--driver"))


@pytest.fixture
def target(flavour: str, request: pytest.FixtureRequest) -> QemuTarget:
    """The QEMU target that runs --driver on the flavour's kernel."""
    return _target(flavour, request.config.getoption("--driver"))


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
def boot_once(target: QemuTarget, tmp_path_factory: pytest.TempPathFactory):
    """boot_once(name, tasks) -> GuestRun: one boot of the target running `tasks`,
    shared by every test of the session that asks for the same name."""
    from harness.host.targets.qemu import GuestRun

    def boot(name: str, tasks: list[dict[str, Any]]) -> GuestRun:
        key = f"{name}-{target.kernel.flavour}"

        def produce() -> dict[str, Any]:
            out = tmp_path_factory.mktemp(key)
            return target.run(tasks, out).to_dict()

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
    from harness.host.report.results import outcome_dict
    from harness.host.runner import run_scenarios
    from harness.pure.profiles import get_profile
    from harness.pure.scenarios.matrix import build_matrix, select

    wanted = [
        item.callspec.params["scenario_name"]
        for item in request.session.items
        if hasattr(item, "callspec")
        and item.callspec.params.get("flavour") == flavour
        and "scenario_name" in item.callspec.params
    ]
    driver = request.config.getoption("--driver")
    profile = get_profile(driver)
    chosen = select(build_matrix(profile), wanted)
    base = request.config.getoption("--scenario-report")
    out = (base / flavour) if base else tmp_path_factory.mktemp(f"scenarios-{flavour}")
    result = run_scenarios(_target(flavour, driver), profile.name, chosen, out)
    return {o.scenario.name: outcome_dict(o) for o in result.outcomes}
