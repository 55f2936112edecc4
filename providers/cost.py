"""What answers cost, summed: the listings of sessions and the REPL's usage lines show it.

Apart from `providers.models`, so that listing sessions defines only this one class.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cost:
    """What some answers cost: the sum over those whose price is known, and how many had none. A
    total over a session with unpriced answers is a lower bound, and said to be one everywhere."""

    usd: float = 0.0
    priced: int = 0
    unpriced: int = 0

    def plus(self, cost: float | None) -> Cost:
        if cost is None:
            return Cost(self.usd, self.priced, self.unpriced + 1)
        return Cost(self.usd + cost, self.priced + 1, self.unpriced)

    @property
    def known(self) -> float | None:
        """The sum of the priced answers; None when none was priced."""
        return self.usd if self.priced else None

    def describe(self, *, short: bool = False) -> str:
        if not self.unpriced:
            return f"${self.usd:.4f}"
        if not self.priced:
            return "-" if short else "cost unknown for this model"
        if short:
            return f"≥ ${self.usd:.4f}"
        return f"≥ ${self.usd:.4f}, {self.unpriced} answer{'s' if self.unpriced != 1 else ''} unpriced"
