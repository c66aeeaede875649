"""Bad-data accounting: skipped samples counted by cause, with a failure threshold."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from unicl.errors import UserInputError

EXAMPLES_PER_CAUSE = 3


@dataclass
class BadDataLog:
    """Samples read and skipped in one epoch of one rank.

    `check()` raises `UserInputError` naming examples once more than `max_fraction` of the samples
    read were bad; it waits until `1 / max_fraction` samples were read so one early bad file does
    not stop a run.
    """

    max_fraction: float = 0.01
    read: int = 0
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def record(self, read: int, bad: list[tuple[str, str]]) -> None:
        """Add `read` samples read (good and bad) and the `(cause, key)` of each bad one."""
        self.read += read
        for cause, key in bad:
            self.counts[cause] += 1
            examples = self.examples.setdefault(cause, [])
            if len(examples) < EXAMPLES_PER_CAUSE:
                examples.append(key)

    @property
    def bad(self) -> int:
        return sum(self.counts.values())

    def check(self, final: bool = False) -> None:
        if not final and self.read < math.ceil(1 / max(self.max_fraction, 1e-9)):
            return
        if self.read and self.bad / self.read > self.max_fraction:
            raise UserInputError(
                f"{self.bad} of {self.read} samples were bad ({self.bad / self.read:.1%}, more than "
                f"the allowed {self.max_fraction:.1%}): {self.summary()}; fix or remove them, or "
                "raise max_bad_fraction"
            )

    def summary(self) -> str:
        """One line: counts by cause with example keys."""
        if not self.bad:
            return f"{self.read} samples read, none bad"
        parts = [
            f"{cause} {count} (e.g. {', '.join(self.examples.get(cause, []))})"
            for cause, count in sorted(self.counts.items())
        ]
        return f"{self.bad} of {self.read} samples skipped: " + "; ".join(parts)

    def state_dict(self) -> dict:
        return {"read": self.read, "counts": dict(self.counts), "examples": self.examples}

    def load_state_dict(self, state: dict) -> None:
        self.read = int(state["read"])
        self.counts = Counter(state["counts"])
        self.examples = {k: list(v) for k, v in state["examples"].items()}
