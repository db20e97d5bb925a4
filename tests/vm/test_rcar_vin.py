"""rcar-vin in emulation: the real driver, cross-built from linux-source-6.1,
on Debian's arm64 kernel in QEMU's virt board, with the project's stand-ins
for its CSI-2 receivers and its capture hardware (vm/rcar). Real boots, real
ioctls, nothing mocked.

What the emulation must do is checked by a scenario that passes: the
group's media device appears, the pipeline is set up with
MEDIA_IOC_SETUP_LINK, and frames flow (it streams again after the rebind).
What it finds in rcar-vin is checked by a scenario that fails with the
kernel's own report.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.host.kernels.flavours import get_kernel
from harness.host.kernels.kernel import Kernel
from harness.host.runner import run_scenarios
from harness.host.targets.emulated import provision
from harness.pure.profiles import get_profile
from harness.pure.scenarios.matrix import build_matrix, select

PROFILE = get_profile("rcar-vin")


@pytest.fixture(scope="module")
def arm64_kernel() -> Kernel:
    return get_kernel("debian-arm64")


def _run(kernel: Kernel, names: list[str], out: Path):
    target, _ = provision(kernel, PROFILE)
    return run_scenarios(target, PROFILE.name, select(build_matrix(PROFILE), names), out)


def test_group_rebinds_and_streams_again(arm64_kernel: Kernel, tmp_path: Path) -> None:
    # Both VINs unbound and bound with nothing open: the group completes again,
    # re-registers its media device, and VIN0 streams 5 frames that the
    # emulated hardware completed (rebind-restores restreams).
    result = _run(arm64_kernel, ["idle--unbind_bind"], tmp_path)
    (outcome,) = result.outcomes
    assert outcome.verdict == "pass", outcome.reason
    assert outcome.record is not None
    rebind = [c for c in outcome.record.contracts if c.contract == "rebind-restores"]
    assert rebind and rebind[0].passed, rebind


def test_unbinding_the_vins_while_one_streams_corrupts_the_media_graph(
    arm64_kernel: Kernel, tmp_path: Path
) -> None:
    # Linux 6.1 rcar-vin: the group's media device is torn down by the first
    # VIN's remove while the other VIN's entity is still registered, and
    # media_gobj_destroy() walks freed (slub-poisoned) list entries.
    result = _run(arm64_kernel, ["video.vin0_output-streaming--unbind"], tmp_path)
    (outcome,) = result.outcomes
    assert outcome.verdict in ("fail", "hang"), outcome.reason
    signatures = {f.signature for f in outcome.findings}
    assert "LIST:corrupted-list:media_gobj_destroy" in signatures, signatures
