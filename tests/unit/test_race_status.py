"""The verdict table over constructed exposures: every status reachable, each
resting on the numbers docs/race-statistics.md computes by hand, and too little
racing never called fixed."""

from __future__ import annotations

import math

import pytest
from scipy.stats import binom

from harness.pure.race.status import (
    RUNS,
    Stretch,
    decide,
    decide_all,
    look_alpha,
)
from harness.pure.scenarios.verdicts import SignatureStatus as S

SUBDEV = "BUG:null-ptr-deref:subdev_open"
IDA = "BUG:null-ptr-deref:ida_free"


PACE = 10.0  # cycles a second, the same on both sides unless a test says otherwise


def hit_at(cycles: float, sig: str = SUBDEV, pace: float = PACE) -> Stretch:
    """A race a report of `sig` stopped at `cycles`."""
    return Stretch(cycles, cycles / pace, censored=True, hits={sig: cycles},
                   hit_seconds={sig: cycles / pace})


def clean(cycles: float, pace: float = PACE) -> Stretch:
    """A race that ran its course without a report."""
    return Stretch(cycles, cycles / pace)


def test_fixed_needs_a_tenfold_fall_shown() -> None:
    base = [hit_at(10), hit_at(4), hit_at(6)]
    head = [clean(200), clean(200), clean(200)]
    d = decide(SUBDEV, base, head)
    assert d.status == S.FIXED
    # by hand: p = 0.1·600 / (20 + 0.1·600) = 0.75; P(X <= 0 | 3, 0.75) = 0.25³
    assert d.p_fell_by_factor == pytest.approx(0.25 ** 3)
    assert (d.base.hits, d.base.exposure, d.head.hits, d.head.exposure) == (3, 20, 0, 600)
    assert d.base.rate == pytest.approx(150.0) and d.head.rate == 0.0
    assert d.head.high == pytest.approx(-math.log(0.025) / 600 * 1000)


def test_too_little_racing_is_inconclusive_never_fixed() -> None:
    base = [hit_at(10), hit_at(4), hit_at(6)]
    head = [clean(30)]  # the crash's rate may have fallen, not shown tenfold
    d = decide(SUBDEV, base, head)
    assert d.status == S.INCONCLUSIVE
    assert d.p_fell_by_factor > 0.05
    # the exposure named decides it: with that much more clean racing, fixed
    assert d.needed is not None and d.needed.side == "head"
    more = [clean(d.needed.exposure + 1)]
    assert decide(SUBDEV, base, head + more).status == S.FIXED
    # and a little less does not
    less = [clean(d.needed.exposure - 5)]
    assert decide(SUBDEV, base, head + less).status == S.INCONCLUSIVE
    # the estimate of races and seconds follows the patched side's pace so far
    assert d.needed.stretches == math.ceil(d.needed.exposure / 30)
    assert d.needed.seconds == pytest.approx(d.needed.exposure / PACE, rel=1e-3)


@pytest.mark.parametrize("head_cycles", [0.5, 1, 2, 5, 10, 20, 50, 100, 200])
def test_no_amount_of_thin_evidence_makes_an_unproven_fall_fixed(head_cycles: float) -> None:
    # one baseline hit can never show a tenfold fall below 1/0.05 - 1 = 19x the
    # baseline's exposure on the patched side
    base = [hit_at(10)]
    d = decide(SUBDEV, base, [clean(head_cycles)])
    assert d.status == S.INCONCLUSIVE


def test_a_narrowing_patch_that_only_halves_the_rate_is_rarely_fixed() -> None:
    """The error rate the docs state: with the true patched rate a fifth of the
    baseline's (fewer than ten-fold down), fixed comes out at most alpha of the time."""
    import random

    rng = random.Random(1)
    rate_base, rate_head = 0.1, 0.02  # per cycle
    fixed = 0
    trials = 400
    for _ in range(trials):
        def races(rate: float, n: int, length: int) -> list[Stretch]:
            out = []
            for _ in range(n):
                at = next((c for c in range(1, length + 1) if rng.random() < rate), None)
                out.append(hit_at(at) if at else clean(length))
            return out
        d = decide(SUBDEV, races(rate_base, 3, 300), races(rate_head, 3, 300))
        fixed += d.status == S.FIXED
    assert fixed / trials <= 0.05


def test_seen_on_both_sides_at_a_rate_not_shown_to_fall_is_still_present() -> None:
    base = [hit_at(10), hit_at(4), hit_at(6)]
    head = [hit_at(8), hit_at(5), hit_at(12)]
    d = decide(SUBDEV, base, head)
    assert d.status == S.STILL_PRESENT and d.p_fell > 0.05


def test_a_fall_with_the_crash_still_seen_is_narrowed() -> None:
    base = [hit_at(c) for c in (3, 5, 4, 6, 2, 5, 4, 3)]
    head = [clean(300), clean(300), hit_at(250)]
    d = decide(SUBDEV, base, head)
    assert d.status == S.NARROWED and d.p_fell <= 0.05
    # by hand: n = 9, p = 850 / (32 + 850); P(X <= 1)
    assert d.p_fell == pytest.approx(binom.cdf(1, 9, 850 / 882))


def test_gone_but_a_data_race_in_its_function_remains_is_narrowed() -> None:
    base = [hit_at(10), hit_at(4), hit_at(6)]
    race = frozenset({"subdev_open", "media_device_unregister_entity"})
    head = [clean(200), Stretch(200, 20, data_races=(race,)), clean(200)]
    d = decide(SUBDEV, base, head)
    assert d.status == S.NARROWED
    assert d.remains == ("data race in media_device_unregister_entity / subdev_open",)
    # a data race elsewhere (core mm) is not this code's
    other = [clean(200), Stretch(200, 20, data_races=(frozenset({"folio_activate_fn"}),)),
             clean(200)]
    assert decide(SUBDEV, base, other).status == S.FIXED


def test_the_signature_in_an_evidence_race_is_a_remaining_race_not_a_rate() -> None:
    base = [hit_at(10), hit_at(4), hit_at(6)]
    kcsan = Stretch(77, 300, censored=True, hits={SUBDEV: 77}, evidence_only=True)  # slow
    d = decide(SUBDEV, base, [clean(200), clean(200), clean(200), kcsan])
    assert d.status == S.NARROWED
    assert d.head.hits == 0 and d.head.exposure == 600  # the evidence race is not counted


def test_seen_only_patched_where_every_baseline_race_stopped_early_is_unmasked() -> None:
    base = [hit_at(10), hit_at(4), hit_at(6)]  # subdev_open ends every baseline race
    head = [hit_at(77, IDA), clean(200), hit_at(120, IDA)]
    d = decide(IDA, base, head)
    assert d.status == S.UNMASKED
    assert "by 10 cycles" in d.reason and "at 77" in d.reason
    # one baseline race that got past cycle 77 without it: not unmasked any more
    longer = [*base, clean(200)]
    assert decide(IDA, longer, head).status != S.UNMASKED


def test_seen_only_patched_with_enough_baseline_exposure_is_introduced() -> None:
    base = [clean(200), clean(200), clean(200)]
    head = [hit_at(30, IDA), hit_at(20, IDA), hit_at(50, IDA)]
    d = decide(IDA, base, head)
    assert d.status == S.INTRODUCED
    # by hand: P(X >= 3 | 3, 100/700) = (1/7)³
    assert d.p_rose == pytest.approx((100 / 700) ** 3)


def test_seen_only_patched_in_little_baseline_exposure_is_inconclusive() -> None:
    base = [clean(20)]
    head = [hit_at(30, IDA)]
    d = decide(IDA, base, head)
    assert d.status == S.INCONCLUSIVE
    assert d.needed is not None and d.needed.side == "base"
    assert decide(IDA, [*base, clean(d.needed.exposure + 1)], head).status == S.INTRODUCED


def test_a_side_without_exposure_decides_nothing() -> None:
    d = decide(SUBDEV, [], [clean(100)])
    assert d.status == S.INCONCLUSIVE and d.needed is not None and d.needed.side == "base"


def test_scenario_runs_fall_is_a_fall_and_needs_five_runs_a_side() -> None:
    def run(hit: bool) -> Stretch:
        return Stretch(1, 10, hits={SUBDEV: None} if hit else {})  # seconds are not tested
    one = decide(SUBDEV, [run(True)], [run(False)], RUNS)
    assert one.status == S.INCONCLUSIVE
    assert one.needed is not None and one.needed.exposure == pytest.approx(18.0)
    four = decide(SUBDEV, [run(True)] * 4, [run(False)] * 4, RUNS)
    assert four.status == S.INCONCLUSIVE  # 0.5⁴ = 0.0625
    five = decide(SUBDEV, [run(True)] * 5, [run(False)] * 5, RUNS)
    assert five.status == S.FIXED and five.p_fell_by_factor == pytest.approx(0.5 ** 5)
    assert decide(SUBDEV, [run(False)] * 5, [run(True)] * 5, RUNS).status == S.INTRODUCED


def test_every_status_is_reachable_and_decide_all_covers_both_sides() -> None:
    base = [hit_at(10), hit_at(4), hit_at(6)]
    head = [hit_at(77, IDA), clean(200), clean(200)]
    assert [d.signature for d in decide_all(base, head)] == sorted([SUBDEV, IDA])
    reached = {
        decide(SUBDEV, base, [clean(200)] * 3).status,
        decide(SUBDEV, base, [clean(30)]).status,
        decide(SUBDEV, base, [hit_at(8), hit_at(5), hit_at(12)]).status,
        decide(SUBDEV, [hit_at(c) for c in (3, 5, 4, 6, 2, 5, 4, 3)],
               [clean(300), clean(300), hit_at(250)]).status,
        decide(IDA, base, head).status,
        decide(IDA, [clean(200)] * 3, [hit_at(30, IDA), hit_at(20, IDA), hit_at(50, IDA)]).status,
    }
    assert reached == set(S)


def test_the_looks_of_a_budget_spend_no_more_than_alpha() -> None:
    assert look_alpha(0.95, 1) == pytest.approx(0.025)
    assert look_alpha(0.95, 2) == pytest.approx(0.05 / 6)
    assert sum(look_alpha(0.95, i) for i in range(1, 10_000)) < 0.05
    # a stricter look asks for more exposure before fixed
    base = [hit_at(10), hit_at(4), hit_at(6)]
    head = [clean(200)] * 3
    assert decide(SUBDEV, base, head, alpha=0.05).status == S.FIXED
    assert decide(SUBDEV, base, head, alpha=look_alpha(0.95, 3)).status == S.INCONCLUSIVE


def test_a_fall_per_cycle_that_the_seconds_do_not_show_is_the_pace_not_the_patch() -> None:
    """validate --kernel debian --race --repeat 3 with a patch that changes nothing, on
    a loaded host: the baseline's races crawled (3 cycles in 10.7 s), the patched ones
    did not. Per cycle the rate fell (P = 0.0416); per second it did not: still-present."""
    base = [Stretch(1, 1.703, True, {SUBDEV: 1}), Stretch(1, 0.975, True, {SUBDEV: 1}),
            Stretch(3, 10.67, True, {SUBDEV: 3})]
    head = [Stretch(1, 0.941, True, {SUBDEV: 1}), Stretch(13, 7.845, True, {SUBDEV: 13}),
            Stretch(16, 9.612, True, {SUBDEV: 16})]
    d = decide(SUBDEV, base, head)
    assert d.by_measure["cycles"]["fell"] == pytest.approx(binom.cdf(3, 6, 30 / 35))
    assert d.by_measure["cycles"]["fell"] < 0.05 < d.by_measure["seconds"]["fell"]
    assert d.status == S.STILL_PRESENT and d.p_fell == d.by_measure["seconds"]["fell"]
    # and the other way round: the clean patched races' cycles came ten times as fast,
    # so 600 clean cycles are only 6 s of racing: fixed per cycle, not per second
    fast = [clean(200, pace=100.0)] * 3
    d = decide(SUBDEV, [hit_at(10), hit_at(4), hit_at(6)], fast)
    assert d.by_measure["cycles"]["fell_by_factor"] <= 0.05
    assert d.status == S.INCONCLUSIVE and d.needed is not None and d.needed.side == "head"
    assert d.needed.seconds == pytest.approx(10 * 2 * (1 - 0.05 ** (1 / 3))
                                             / 0.05 ** (1 / 3) - 6, abs=0.1)
