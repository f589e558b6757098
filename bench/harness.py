"""Side-by-side timing: a path and its floor measured in the same run, interleaved.

Interleaving (A B A B ...) means both see the same machine load, so the ratio stays honest on
a busy shared machine even when absolute times wander.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Row:
    """One benchmark row: what was measured against what, and whether it met its target."""

    name: str
    measured: str  # the headline figure, e.g. "1.12x" or "312,000/s"
    floor: str  # what it was compared with, and that floor's figure
    spread: str  # the spread of the ratio (or rate) over repetitions
    target: str
    passed: bool
    notes: list[str] = field(default_factory=list)
    judged: bool = True  # False: a case printed to be watched, with no target to meet

    def lines(self) -> list[str]:
        verdict = ("PASS" if self.passed else "FAIL") if self.judged else "(not judged)"
        out = [
            f"{self.name}",
            f"    measured {self.measured}   spread {self.spread}",
            f"    floor    {self.floor}",
            f"    target   {self.target}   {verdict}",
        ]
        return out + [f"    note     {n}" for n in self.notes]


@dataclass
class Pair:
    """Per-repetition seconds of a path (a) and its floor (b), taken alternately."""

    a: list[float]
    b: list[float]

    @property
    def ratios(self) -> list[float]:
        return [x / y for x, y in zip(self.a, self.b, strict=False)]

    def ratio(self) -> float:
        return statistics.median(self.ratios)

    def ratio_spread(self) -> str:
        return spread(self.ratios, "x")


def spread(values: list[float], unit: str = "", scale: float = 1.0) -> str:
    """Quartiles (p25..p75) and extremes, so one noisy repetition cannot hide."""
    v = sorted(x * scale for x in values)
    if len(v) < 4:
        return f"{v[0]:.3g}..{v[-1]:.3g}{unit} (n={len(v)})"
    q1, _, q3 = statistics.quantiles(v, n=4)
    return f"p25-p75 {q1:.3g}..{q3:.3g}{unit}, min-max {v[0]:.3g}..{v[-1]:.3g}{unit} (n={len(v)})"


def clock(fn: Callable[[], object], inner: int = 1, cpu: bool = False) -> float:
    """Seconds per call of ``fn``, over ``inner`` calls: wall time, or with ``cpu`` this
    thread's CPU time (for pure computation on a shared machine: time spent waiting for a
    core another process holds is not the computation's)."""
    now = time.thread_time if cpu else time.perf_counter
    start = now()
    for _ in range(inner):
        fn()
    return (now() - start) / inner


def interleave(
    a: Callable[[], object],
    b: Callable[[], object],
    rounds: int,
    inner: int = 1,
    cpu: bool = False,
) -> Pair:
    """Time ``a`` and ``b`` alternately ``rounds`` times (after one warm-up of each)."""
    a()
    b()
    pair = Pair([], [])
    for i in range(rounds):
        # Alternate which goes first too, so neither always inherits a warm cache from the other.
        if i % 2:
            pair.b.append(clock(b, inner, cpu))
            pair.a.append(clock(a, inner, cpu))
        else:
            pair.a.append(clock(a, inner, cpu))
            pair.b.append(clock(b, inner, cpu))
    return pair


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"
