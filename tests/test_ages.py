"""Ages as `hermes sessions list` (age) and the REPL's /sessions and /resume menu (ago) show them."""

from __future__ import annotations

from datetime import datetime

import pytest

from hermes_cli.ages import age, ago

NOW = 1_800_000_000.0
DAY = 86400


@pytest.mark.parametrize(
    ("seconds", "compact", "prose"),
    [
        (-5, "0s", "just now"),  # a clock a little behind another process's
        (0, "0s", "just now"),
        (59.9, "59s", "just now"),
        (60, "1m", "1m ago"),
        (3599, "59m", "59m ago"),
        (3600, "1h", "1h ago"),
        (DAY - 1, "23h", "23h ago"),
        (DAY, "1d", "1d ago"),
        (30 * DAY - 1, "29d", "29d ago"),
        (400 * DAY, None, "400d ago"),
    ],
)
def test_the_largest_whole_unit(seconds: float, compact: str | None, prose: str) -> None:
    then = NOW - seconds
    assert age(then, NOW) == (compact or datetime.fromtimestamp(then).strftime("%Y-%m-%d"))
    assert ago(then, NOW) == prose
