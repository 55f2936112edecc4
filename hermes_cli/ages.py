"""How long ago something happened, in the largest whole unit: `3h` in tables, `3h ago` in prose."""

from __future__ import annotations

from datetime import datetime

_UNITS = (("d", 86400), ("h", 3600), ("m", 60))
_DATED_AFTER = 30 * 86400  # past a month, a date says more than a count of days


def age(then: float, now: float) -> str:
    """Compact, for a table column: `45s`, `12m`, `3h`, `2d`; past 30 days, the date."""
    seconds = max(0, int(now - then))
    if seconds >= _DATED_AFTER:
        return datetime.fromtimestamp(then).strftime("%Y-%m-%d")
    return _largest_unit(seconds) or f"{seconds}s"


def ago(then: float, now: float) -> str:
    """For a sentence or a completion menu: `12m ago`, `3h ago`, `40d ago`; under a minute, `just now`."""
    counted = _largest_unit(max(0, int(now - then)))
    return f"{counted} ago" if counted else "just now"


def _largest_unit(seconds: int) -> str | None:
    for unit, size in _UNITS:
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return None
