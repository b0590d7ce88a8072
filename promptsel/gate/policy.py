"""The check's policy: how far a value may drop (``--tolerance``), the floor for new prompts
(``--floor``) and the exit code of a failed check."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import UsageError

DEFAULT_FAILED_EXIT_CODE = 100
FAILED_EXIT_CODE_ENV = "PROMPTSEL_FAILED_EXIT_CODE"

#: Float noise (and six-digit rounding in the lock) must not turn "exactly the tolerance" into
#: "more than the tolerance".
EPS = 1e-9


@dataclass(frozen=True)
class Tolerance:
    """How far a value may drop: ``value`` itself, or ``value`` × |locked value| if relative."""

    value: float = 0.02
    relative: bool = False

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        raw = text.strip()
        relative = raw.endswith("%")
        try:
            value = float(raw[:-1] if relative else raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise UsageError(f"--tolerance must be a number such as 0.02 or a percentage such as 5%, got {text!r}.")
        return cls(value / 100 if relative else value, relative)

    def allowed(self, before: float) -> float:
        return self.value * abs(before) if self.relative else self.value

    def dropped(self, before: float, after: float) -> bool:
        return before - after > self.allowed(before) + EPS

    def rose(self, before: float, after: float) -> bool:
        return after - before > self.allowed(before) + EPS

    def __str__(self) -> str:
        return f"{self.value * 100:g}% (relative)" if self.relative else f"{self.value:g} (absolute)"


@dataclass(frozen=True)
class Floor:
    """The least performance a new prompt may have: ``worst`` locked prompt minus the tolerance,
    a fixed ``value``, or ``none``."""

    mode: str = "worst"
    value: float | None = None

    @classmethod
    def parse(cls, text: str) -> Floor:
        raw = text.strip().lower()
        if raw in ("worst", "none"):
            return cls(raw)
        try:
            return cls("value", float(raw))
        except ValueError:
            raise UsageError(f"--floor must be 'worst', 'none' or a number such as 0.6, got {text!r}.") from None

    def __str__(self) -> str:
        if self.mode == "value":
            return f"{self.value:g}"
        return "the worst locked prompt minus the tolerance" if self.mode == "worst" else "none"


@dataclass(frozen=True)
class Policy:
    tolerance: Tolerance = field(default_factory=Tolerance)
    floor: Floor = field(default_factory=Floor)


def failed_exit_code(environ: Mapping[str, str] | None = None) -> int:
    """The exit code for "regressed": 100, or ``PROMPTSEL_FAILED_EXIT_CODE`` (0 reports and passes)."""
    raw = (os.environ if environ is None else environ).get(FAILED_EXIT_CODE_ENV, "").strip()
    if not raw:
        return DEFAULT_FAILED_EXIT_CODE
    try:
        code = int(raw)
    except ValueError:
        code = -1
    if not 0 <= code <= 255:
        raise UsageError(f"{FAILED_EXIT_CODE_ENV} must be an exit code from 0 to 255, got {raw!r}.")
    return code
