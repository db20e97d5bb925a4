"""`run --race --repeat N`: its seeds and its argument (the series itself is checked in
test_results_schema.py on recorded consoles, and on a real kernel in tests/vm/)."""

from __future__ import annotations

import argparse

import pytest

from harness.host.commands.run import register
from harness.host.race_series import seeds


def test_a_series_counts_seeds_up_from_the_first() -> None:
    assert seeds(7, 3) == [7, 8, 9]
    assert seeds(0, 1) == [0]


def parse(*args: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["run", "--race", *args])


@pytest.mark.parametrize("text", ["0", "-2", "two"])
def test_repeat_refuses_what_is_not_a_number_of_races(
        text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--repeat", text)
    assert "argument --repeat: " in capsys.readouterr().err


def test_one_race_unless_told_otherwise() -> None:
    assert parse().repeat == 1 and parse("--repeat", "4").repeat == 4
    assert parse("--signature", "A:b:c", "--signature", "D:e:f").signature == ["A:b:c", "D:e:f"]
