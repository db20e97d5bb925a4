"""Race amplification: time to first hit of each race signature, with and without
--amplify's delays (vm/amplify), per flavour, as medians over seeds.

The race is the media_device_get_info() hunt of issue 14: workers on the video
and media nodes only (`--race-nodes video --race-nodes media`), unbind cycles.
A race ends at its first kernel report, so a seed that did not hit a signature
counts the time it raced as a lower bound, and a median resting on one is
shown as `>=`. Figures are
printed, never asserted.

On Debian's kernels, where the media core is a module, the amplified race
also runs with patches/fixes' fix for the signature (`fixed+amp`).

    python -m tests.bench amplify                 debian and debug, 3 seeds
    python -m tests.bench amplify debug-sid 5     one flavour, 5 seeds
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from harness.host.kernels.emulation import (
    PROJECT_ROOT,
    cross_compile,
    kernel_source,
    make_vars,
    with_delays,
)
from harness.host.kernels.kernel import Kernel
from harness.host.kernels.outoftree import with_module
from harness.host.report.results import race_exposure
from harness.host.runner import run_race
from harness.host.targets.emulated import provision_kernel, target_for
from harness.pure.delays import DelayPlan
from harness.pure.errors import KernelError
from harness.pure.profiles import OutOfTreeModule, get_profile

CAP_SECONDS = 180.0
SEEDS = (2, 3, 4)
KINDS = ["video", "media"]
TARGET = "BUG:null-ptr-deref:media_device_get_info"
# The hunt's delay: media_device_get_info() alone, every call, long enough
# for the unbind to clear dev->driver behind it on a KASAN kernel too.
HUNT = DelayPlan(("media_device_get_info",), 5_000, 40_000, 1000)
# patches/fixes' fix for it; on a Debian kernel (mc.ko) the bench races it too.
FIX = PROJECT_ROOT / "patches/fixes/media_device_get_info-unbound-driver.patch"


def with_fix(kernel: Kernel) -> Kernel:
    """`kernel` with the media core module (mc.ko) rebuilt with FIX: a Debian
    kernel builds it as a module, so the fix goes in without a kernel build."""
    if not kernel.has_module("mc") or kernel.kbuild is None:
        raise KernelError(f"{kernel.flavour} has no mc module to rebuild with the fix")
    mc = OutOfTreeModule("mc", "drivers/media/mc", config="CONFIG_MEDIA_SUPPORT")
    return with_module(kernel, kernel.kbuild, kernel_source(kernel), mc, [FIX],
                       make_vars=make_vars(kernel), cross_compile=cross_compile(kernel))


def first_hits(flavour: str, delays: DelayPlan | None, seed: int, out: Path,
               fixed: bool = False) -> tuple[float, dict[str, float]]:
    """One race: (seconds raced, signature -> seconds to its first hit)."""
    profile = get_profile("vimc")
    kernel = provision_kernel(flavour, profile)
    if fixed:
        kernel = with_fix(kernel)
    if delays is not None:
        kernel = with_delays(kernel)
    target = target_for(kernel, profile)
    result = run_race(target, profile.name, CAP_SECONDS, seed, workers=3, mode="unbind",
                      report_dir=out, kinds=KINDS,
                      delays=replace(delays, seed=seed) if delays else None)
    exposure = race_exposure(result)
    if exposure is None:
        return 0.0, {}
    return exposure.seconds, {h.signature: h.seconds for h in exposure.first_hits
                              if h.seconds is not None}


def _median(times: list[tuple[float, bool]]) -> str:
    """Median time to first hit over seeds. A race ends at its first report, so a
    seed that did not hit counts as the time it raced (a hit of another signature,
    or the cap): a lower bound. A median with a lower bound at or below it is one
    too, shown as >=."""
    m = statistics.median(t for t, _ in times)
    exact = all(hit for t, hit in times if t <= m)
    return f"{m:.1f} s" if exact else f">={m:.0f} s"


def main() -> None:
    args = sys.argv[2:]
    flavours = [a for a in args if not a.isdigit()] or ["debian", "debug"]
    seeds = SEEDS if not any(a.isdigit() for a in args) else tuple(
        range(2, 2 + int(next(a for a in args if a.isdigit()))))
    print(f"time to first hit, median over seeds {', '.join(map(str, seeds))}; "
          f"race capped at {CAP_SECONDS:.0f} s; delays: {', '.join(HUNT.symbols)} "
          f"{HUNT.min_us}-{HUNT.max_us} us, {HUNT.permille}/1000", flush=True)
    for flavour in flavours:
        sides = [("plain", None, False), ("amplified", HUNT, False)]
        if flavour.startswith("debian"):
            sides.append(("fixed+amp", HUNT, True))
        for label, delays, fixed in sides:
            per_sig: dict[str, None] = {}
            runs = []
            start = time.monotonic()
            for seed in seeds:
                with tempfile.TemporaryDirectory() as tmp:
                    raced, hits = first_hits(flavour, delays, seed, Path(tmp) / "race",
                                             fixed)
                runs.append((seed, raced, hits))
                for sig in hits:
                    per_sig[sig] = None
            per_sig[TARGET] = None
            timed: dict[str, list[tuple[float, bool]]] = {
                sig: [(hits[sig], True) if sig in hits else (raced, False)
                      for _, raced, hits in runs] for sig in per_sig}
            timed["any report"] = [(min(hits.values()), True) if hits else (raced, False)
                                   for _, raced, hits in runs]
            each = "; ".join(f"seed {seed}: " + (", ".join(
                f"{sig.split(':')[-1]} {t:.1f} s" for sig, t in hits.items()) or
                f"none in {raced:.0f} s") for seed, raced, hits in runs)
            for sig, times in sorted(timed.items()):
                print(f"{flavour:10} {label:9} {sig:45} median {_median(times):>8}", flush=True)
            print(f"{'':10} {label:9} ({each}; {time.monotonic() - start:.0f} s wall)",
                  flush=True)


if __name__ == "__main__":
    main()
