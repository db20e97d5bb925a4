"""Race statistics (harness.pure.race): exposure of one race, rates over several.

The intervals are checked against what defines them, computed here with the
math module alone: Garwood's bounds are the means at which the observed
count sits in the 2.5% tail of a Poisson distribution. For no hits the upper
bound has a closed form, -ln(0.025) = 3.689 (the "rule of 3.7" behind a
clean race's bound).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from harness.pure.kmsg.report import parse_log
from harness.pure.race.exposure import Exposure, FirstHit, begin_time, measure
from harness.pure.race.rates import ANY_REPORT, number, poisson_interval, tally

ROOT = Path(__file__).resolve().parents[2]
RACE_CONSOLE = ROOT / "tests/data/kmsg/scenarios/race_subdev_open_null_deref_debian.log"
SUBDEV = "BUG:null-ptr-deref:subdev_open"
INFO = "BUG:null-ptr-deref:media_device_get_info"


def poisson_cdf(k: int, mean: float) -> float:
    """P(X <= k) for X ~ Poisson(mean), summed term by term."""
    return sum(math.exp(-mean) * mean**i / math.factorial(i) for i in range(k + 1))


# --- the interval


def test_no_hit_bounds_the_mean_by_minus_ln_alpha_over_2() -> None:
    i = poisson_interval(0)
    assert i.low == 0.0
    assert i.high == pytest.approx(-math.log(0.025), rel=1e-9)
    assert round(i.high, 3) == 3.689
    assert poisson_interval(0, 0.90).high == pytest.approx(-math.log(0.05), rel=1e-9)


def test_one_hit_lower_bound_has_a_closed_form_too() -> None:
    # P(X >= 1) = 1 - exp(-m) = 0.025
    assert poisson_interval(1).low == pytest.approx(-math.log(0.975), rel=1e-9)


@pytest.mark.parametrize("hits", [1, 2, 3, 7, 20, 100])
def test_bounds_put_the_count_in_each_tail_at_2_5_percent(hits: int) -> None:
    i = poisson_interval(hits)
    assert i.low < hits < i.high
    # upper: the mean at which seeing `hits` or fewer has probability 2.5%
    assert poisson_cdf(hits, i.high) == pytest.approx(0.025, rel=1e-6)
    # lower: the mean at which seeing `hits` or more has probability 2.5%
    assert 1 - poisson_cdf(hits - 1, i.low) == pytest.approx(0.025, rel=1e-6)


def test_more_confidence_widens_the_interval() -> None:
    narrow, wide = poisson_interval(4, 0.80), poisson_interval(4, 0.99)
    assert wide.low < narrow.low < 4 < narrow.high < wide.high


@pytest.mark.parametrize("hits, confidence", [(-1, 0.95), (3, 1.0), (3, 0.0)])
def test_nonsense_is_refused(hits: int, confidence: float) -> None:
    with pytest.raises(ValueError):
        poisson_interval(hits, confidence)


# --- one race's exposure


def stats(**over: Any) -> dict[str, Any]:
    """The agent's result for a race, shaped as harness.target.scenarios.race.race() returns it."""
    base: dict[str, Any] = {
        "seed": 7, "mode": "unbind", "kinds": ["video", "media", "subdev"], "duration": 0.42,
        "cycles": 3, "workers": [{"worker": 0, "iterations": 40}, {"worker": 1, "iterations": 35},
                                 {"worker": 2, "iterations": 41}],
        "first_report": {"kernel_time": 7.552667, "message": "BUG: kernel NULL pointer",
                         "iterations": [30, 28, 33], "cycle": 2},
        "stopped_early": True,
        # the recorded race began at 7.241734: cycles began 0.012, 0.205 and 0.330 s later
        "cycle_starts": [0.012, 0.205, 0.33]}
    return {**base, **over}


def recorded() -> tuple[str, list[Any]]:
    console = RACE_CONSOLE.read_text()
    return console, parse_log(console)


def test_the_begin_marker_gives_the_race_its_start_on_the_printk_clock() -> None:
    console, _ = recorded()
    assert begin_time(console) == 7.241734
    assert begin_time("[    1.000000] vimc: no race here\n") is None


def test_a_race_stopped_by_a_report_counts_up_to_that_report() -> None:
    console, findings = recorded()
    e = measure(stats(), findings, begin_time(console))
    assert e is not None and e.censored
    # 7.552667 - 7.241734 = 0.311 s: the second cycle (began at 0.205) was under way
    assert e.seconds == 0.311
    assert e.cycles == 2  # not the agent's 3: the third began after the report
    assert e.iterations == 30 + 28 + 33  # at the stop, not at the end of the workers
    assert e.first_hits == (FirstHit(SUBDEV, 0.311, 2),)
    assert e.signatures == {SUBDEV}


def test_a_race_that_ran_its_course_counts_whole() -> None:
    e = measure(stats(stopped_early=False, first_report=None, duration=20.01, cycles=61),
                [], 7.0)
    assert e == Exposure(7, 20.01, 61, 116, False, ())


def test_a_report_that_did_not_stop_the_race_is_still_a_hit() -> None:
    console, findings = recorded()
    e = measure(stats(stopped_early=False, first_report=None, duration=20.0, cycles=61),
                findings, begin_time(console))
    assert e is not None and not e.censored and e.cycles == 61
    assert e.first_hits == (FirstHit(SUBDEV, 0.311, 2),)


def test_without_cycle_starts_the_agents_cycle_of_the_first_report_stands() -> None:
    console, findings = recorded()
    old = stats()
    del old["cycle_starts"]
    e = measure(old, findings, begin_time(console))
    assert e is not None and e.cycles == 2 and e.first_hits == (FirstHit(SUBDEV, 0.311, None),)


def test_a_race_without_counts_has_no_exposure() -> None:
    assert measure({"error": "RuntimeError: /dev/media0 lacks Sensor A"}, [], 7.0) is None
    assert measure({}, [], None) is None


# --- rates over races


def race(seed: int, cycles: int, *hits: str, seconds: float = 10.0) -> Exposure:
    return Exposure(seed, seconds, cycles, cycles * 100, bool(hits),
                    tuple(FirstHit(h, seconds, cycles) for h in hits))


def test_hits_count_races_and_exposure_sums_over_all_races() -> None:
    t = tally([race(1, 40, SUBDEV), race(2, 60), race(3, 100, SUBDEV, INFO)])
    assert (t.exposure.races, t.exposure.cycles, t.exposure.seconds) == (3, 200, 30.0)
    assert t.exposure.censored == 2
    subdev, info = t.signatures
    assert (subdev.signature, subdev.hits, info.signature, info.hits) == (SUBDEV, 2, INFO, 1)
    assert subdev.rate == pytest.approx(2 / 200 * 1000)
    assert subdev.low == pytest.approx(poisson_interval(2).low / 200 * 1000)
    assert subdev.high == pytest.approx(poisson_interval(2).high / 200 * 1000)
    assert t.any_report.hits == 2


def test_a_signature_never_seen_gets_an_upper_bound_only() -> None:
    t = tally([race(1, 500), race(2, 500)], expected=[INFO])
    (info,) = t.signatures
    assert info.hits == 0 and info.rate == 0 and info.low == 0
    assert info.high == pytest.approx(-math.log(0.025) / 1000 * 1000)
    assert info.line() == (f"{INFO}: not seen in 1000 cycles (20.0 s, 2 races): "
                           "rate < 3.69 per 1,000 cycles, 95%")
    assert t.any_report.line().startswith(f"{ANY_REPORT}: not seen in 1000 cycles")
    text = "\n".join(t.lines()).lower()
    assert "fixed" not in text and "pass" not in text


def test_a_seen_signature_line_gives_rate_and_interval() -> None:
    t = tally([race(1, 7, SUBDEV, seconds=1.5)])
    assert t.signatures[0].line() == (
        f"{SUBDEV}: 1 hit in 7 cycles (1.5 s, 1 race): 143 per 1,000 cycles, "
        f"95% interval {number(poisson_interval(1).low / 7 * 1000)} to "
        f"{number(poisson_interval(1).high / 7 * 1000)}")


def test_no_exposure_gives_no_rate() -> None:
    t = tally([], expected=[SUBDEV], unmeasured=2)
    assert t.signatures[0].rate is None and t.signatures[0].high is None
    assert "no rate" in t.signatures[0].line()
    assert t.lines()[-1].startswith("not counted: 2 races that recorded no exposure")


def test_the_tally_serialises_every_figure() -> None:
    d = tally([race(1, 40, SUBDEV)], unmeasured=1).to_dict()
    assert d["method"] == "garwood" and d["confidence"] == 0.95 and d["per_cycles"] == 1000
    assert d["exposure"] == {"races": 1, "seconds": 10.0, "cycles": 40, "iterations": 4000,
                             "censored": 1}
    (row,) = d["signatures"]
    assert row["hits"] == 1 and row["seen"] and row["rate"] == 25.0
    assert row["count_high"] == pytest.approx(poisson_interval(1).high)
    assert d["unmeasured"] == 1


@pytest.mark.parametrize("x, text", [(0, "0"), (3.68888, "3.69"), (1252.3, "1,252"),
                                     (88.41, "88.4"), (0.0123456, "0.0123"), (100.0, "100")])
def test_numbers_keep_three_significant_figures(x: float, text: str) -> None:
    assert number(x) == text


def test_the_stop_is_the_reports_first_line_when_it_precedes_the_watchs() -> None:
    # KASAN prints a rule of '=' before its BUG line; the watch matches the BUG line
    console, findings = recorded()
    later = stats(first_report={"kernel_time": 7.56, "message": "BUG: KASAN: ...",
                                "iterations": [1, 2, 3], "cycle": 2})
    e = measure(later, findings, begin_time(console))
    assert e is not None and e.seconds == 0.311 == e.first_hits[0].seconds


def test_the_worked_example_in_the_docs_is_what_the_code_prints() -> None:
    doc = (ROOT / "docs/race-statistics.md").read_text()
    example = [race_of_doc(7, 1.016, 10, 865), race_of_doc(8, 0.423, 4, 272),
               race_of_doc(9, 0.674, 6, 554)]
    for line in tally(example, expected=[INFO]).lines():
        assert f"    {line}\n" in doc, line


def race_of_doc(seed: int, seconds: float, cycles: int, iterations: int) -> Exposure:
    return Exposure(seed, seconds, cycles, iterations, True, (FirstHit(SUBDEV, seconds, cycles),))
