"""`run --race --repeat N`: its seeds and its argument (the series itself is checked in
test_results_schema.py on recorded consoles, and on a real kernel in tests/vm/)."""

from __future__ import annotations

import argparse

import pytest

from harness.host.commands.race_repeat import repeat_count
from harness.host.race_series import seeds


def test_a_series_counts_seeds_up_from_the_first() -> None:
    assert seeds(7, 3) == [7, 8, 9]
    assert seeds(0, 1) == [0]


@pytest.mark.parametrize("text, why", [("0", "at least one race"), ("-2", "at least one race"),
                                       ("two", "not a number of races")])
def test_repeat_refuses_what_is_not_a_number_of_races(text: str, why: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=why):
        repeat_count(text)
    assert repeat_count("4") == 4
