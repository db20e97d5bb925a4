"""Race amplification: time to first hit of each known race signature, with and
without --amplify's delays (vm/amplify), per flavour, as medians over seeds.

Each hunt (HUNTS) races the nodes that reach its signature (media_device_get_info:
`--race-nodes video --race-nodes media`; subdev_open: subdev nodes), unbind
cycles, with a delay at the function that uses what its caller checked.
A race ends at its first kernel report, so a seed that did not hit a signature
counts the time it raced as a lower bound, and a median resting on one is
shown as `>=`. Figures are
printed, never asserted.

On Debian's kernels, where the media core is a module, the amplified race
also runs with the hunt's patch of patches/fixes (`patched+amp`): the fix for
media_device_get_info, the window-narrowing test case for subdev_open.

    python -m tests.bench amplify                 debian and debug, 3 seeds
    python -m tests.bench amplify debug-sid 5     one flavour, 5 seeds
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
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


@dataclass(frozen=True)
class Hunt:
    """One known race: the nodes the workers use, the delay that widens its window,
    and a patch of patches/fixes for it with the Debian module it rebuilds (a
    Debian kernel builds the media core as modules, so the patch goes in
    without a kernel build)."""

    signature: str
    kinds: tuple[str, ...]
    delays: DelayPlan
    patch: str
    module: OutOfTreeModule
    make_vars: tuple[str, ...] = ()


HUNTS = (
    # Every call of media_device_get_info() waits 5-40 ms: long enough for the
    # unbind to clear dev->driver behind it on a KASAN kernel too. The patch
    # is the fix.
    Hunt("BUG:null-ptr-deref:media_device_get_info", ("video", "media"),
         DelayPlan(("media_device_get_info",)),
         "patches/fixes/media_device_get_info-unbound-driver.patch",
         OutOfTreeModule("mc", "drivers/media/mc", config="CONFIG_MEDIA_SUPPORT")),
    # subdev_open(): the patch is the window-narrowing test case. tuner-core.c
    # in the same directory needs headers Debian's headers package lacks.
    Hunt("BUG:null-ptr-deref:subdev_open", ("subdev",), DelayPlan(("subdev_open",)),
         "patches/fixes/subdev_open-narrow-window.patch",
         OutOfTreeModule("videodev", "drivers/media/v4l2-core", config="CONFIG_VIDEO_DEV",
                         objects=("videodev",)),
         make_vars=("CONFIG_VIDEO_TUNER=",)),
)


def with_patch(kernel: Kernel, hunt: Hunt) -> Kernel:
    """`kernel` with the hunt's module rebuilt with its patch."""
    if not kernel.has_module(hunt.module.name) or kernel.kbuild is None:
        raise KernelError(f"{kernel.flavour} has no {hunt.module.name} module to rebuild "
                          f"with {hunt.patch}")
    return with_module(kernel, kernel.kbuild, kernel_source(kernel), hunt.module,
                       [PROJECT_ROOT / hunt.patch],
                       make_vars=(*make_vars(kernel), *hunt.make_vars),
                       cross_compile=cross_compile(kernel))


def first_hits(flavour: str, hunt: Hunt, amplified: bool, patched: bool, seed: int,
               out: Path) -> tuple[float, dict[str, float]]:
    """One race: (seconds raced, signature -> seconds to its first hit)."""
    profile = get_profile("vimc")
    kernel = provision_kernel(flavour, profile)
    if patched:
        kernel = with_patch(kernel, hunt)
    if amplified:
        kernel = with_delays(kernel)
    target = target_for(kernel, profile)
    result = run_race(target, profile.name, CAP_SECONDS, seed, workers=3, mode="unbind",
                      report_dir=out, kinds=list(hunt.kinds),
                      delays=replace(hunt.delays, seed=seed) if amplified else None)
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
          f"race capped at {CAP_SECONDS:.0f} s", flush=True)
    for hunt in HUNTS:
        d = hunt.delays
        print(f"{hunt.signature}: --race-nodes {' '.join(hunt.kinds)}; delays at "
              f"{', '.join(d.symbols)} {d.min_us}-{d.max_us} us, {d.permille}/1000; "
              f"patched: {hunt.patch}", flush=True)
        for flavour in flavours:
            sides = [("plain", False, False), ("amplified", True, False)]
            if flavour.startswith("debian"):
                sides.append(("patched+amp", True, True))
            for label, amplified, patched in sides:
                _side(flavour, hunt, label, amplified, patched, seeds)


def _side(flavour: str, hunt: Hunt, label: str, amplified: bool, patched: bool,
          seeds: tuple[int, ...]) -> None:
    runs = []
    start = time.monotonic()
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            raced, hits = first_hits(flavour, hunt, amplified, patched, seed,
                                     Path(tmp) / "race")
        runs.append((seed, raced, hits))
    signatures = {hunt.signature, *(sig for _, _, hits in runs for sig in hits)}
    timed: dict[str, list[tuple[float, bool]]] = {
        sig: [(hits[sig], True) if sig in hits else (raced, False)
              for _, raced, hits in runs] for sig in signatures}
    timed["any report"] = [(min(hits.values()), True) if hits else (raced, False)
                           for _, raced, hits in runs]
    each = "; ".join(f"seed {seed}: " + (", ".join(
        f"{sig.split(':')[-1]} {t:.1f} s" for sig, t in hits.items()) or
        f"none in {raced:.0f} s") for seed, raced, hits in runs)
    for sig, times in sorted(timed.items()):
        print(f"{flavour:10} {label:11} {sig:45} median {_median(times):>8}", flush=True)
    print(f"{'':10} {label:11} ({each}; {time.monotonic() - start:.0f} s wall)", flush=True)


if __name__ == "__main__":
    main()
