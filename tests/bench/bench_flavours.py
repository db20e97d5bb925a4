"""Today's kernels beside 6.1: boot to the agent and the whole vimc matrix per
flavour, in one run, each as a ratio to the 6.1 flavour of the same kind
(Debian's kernel to Debian's, a debug build to the debug build), and every
boot against 6.1's debug flavour.

Target: every flavour boots to the agent within 1.5x of 6.1's debug flavour.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from harness.host.targets.emulated import provision
from harness.pure.profiles import get_profile
from tests.bench.bench_boot import ROUNDS, agent_boot
from tests.bench.bench_scenarios import matrix_run

# Each flavour and the 6.1 flavour it is compared with; 6.1's own come first.
COUNTERPART = {
    "debian": "debian", "debug": "debug",
    "debian-trixie": "debian", "debian-sid": "debian",
    "debug-trixie": "debug", "debug-sid": "debug",
}
BOOT_TARGET = 1.5


def ratio(table: dict[str, float], flavour: str, other: str) -> str:
    """flavour's figure over other's, when this run measured other."""
    return f"{table[flavour] / table[other]:.2f}" if other in table else "-"


def main() -> None:
    flavours = sys.argv[2:] or list(COUNTERPART)
    profile = get_profile("vimc")
    boots: dict[str, float] = {}
    walls: dict[str, float] = {}
    print(f"{'flavour':14} {'release':22} {'boot s':>7} {'x 6.1':>6} {'x debug':>8} "
          f"{'matrix s':>9} {'x 6.1':>6}  verdicts", flush=True)
    for flavour in flavours:
        # A counterpart measured in this run, or the flavour alone.
        base = COUNTERPART.get(flavour, flavour)
        target, kernel = provision(flavour, profile)
        with tempfile.TemporaryDirectory() as t:
            tmp = Path(t)
            boots[flavour] = statistics.median(agent_boot(target) for _ in range(ROUNDS))
            walls[flavour], result = matrix_run(target, profile, tmp / "matrix")
        verdicts = {v: n for v in ("pass", "fail", "hang", "error")
                    if (n := sum(o.verdict == v for o in result.outcomes))}
        print(f"{flavour:14} {kernel.release:22} {boots[flavour]:7.2f} "
              f"{ratio(boots, flavour, base):>6} {ratio(boots, flavour, 'debug'):>8} "
              f"{walls[flavour]:9.0f} {ratio(walls, flavour, base):>6}  {verdicts}", flush=True)
    slow = [f for f in boots if "debug" in boots and boots[f] > BOOT_TARGET * boots["debug"]]
    print(f"boot to agent: median of {ROUNDS}; target <= {BOOT_TARGET}x debug (6.1)"
          f"{': missed by ' + ', '.join(slow) if slow else ''}")


if __name__ == "__main__":
    main()
