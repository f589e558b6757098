"""Policy rows: loading 200 policies x 20 rules, and decisions with and without the policy known.

Decisions go through the public functions the request path calls: ``select_policy`` on what
``load_policies`` returned (as the broker and /v1/token do), then ``evaluate`` (as the gateway
does once a session names its policy). The floor is a dict lookup, timed interleaved.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path

from bench.harness import Row, interleave, spread
from bench.policy_corpus import identities, requests, write_corpus
from chalicelib.policy import evaluate, load_policies, select_policy

POLICIES, RULES = 200, 20


def loading(quick: bool) -> Row:
    with tempfile.TemporaryDirectory() as tmp:
        directory = write_corpus(Path(tmp) / "policies", POLICIES, RULES)
        table = {i: i for i in range(POLICIES)}
        times = []
        floor_times = []
        for _ in range(2 if quick else 5):
            start = time.perf_counter()
            policies = load_policies(directory)
            times.append(time.perf_counter() - start)
            start = time.perf_counter()
            for path in sorted(directory.iterdir()):  # the floor: reading the same files
                table[len(path.read_bytes()) % POLICIES] = 0
            floor_times.append(time.perf_counter() - start)
        assert len(policies) == POLICIES
    best = sorted(times)[len(times) // 2]
    return Row(
        name=f"loading {POLICIES} policies x {RULES} rules",
        measured=f"{best:.3f} s (median)",
        floor=f"reading the same {POLICIES} files: {sorted(floor_times)[len(times) // 2] * 1e3:.1f} ms",
        spread=spread(times, " s"),
        target="<= 0.3 s",
        passed=best <= 0.3,
    )


def _decision_rows(quick: bool) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        policies = load_policies(write_corpus(Path(tmp) / "policies", POLICIES, RULES))
    callers = identities(POLICIES)
    # Every team's own requests, round robin over teams: no two consecutive calls alike.
    work = []
    for team in range(0, POLICIES, 7):
        for request in requests(team):
            work.append((callers[team], "prod-eu", request, policies[team]))
    inner = len(work) * (2 if quick else 10)
    rounds = 5 if quick else 15
    cycle_a = itertools.cycle(work)
    cycle_b = itertools.cycle(work)
    lookup = {(id(i), c): p for i, c, _, p in work}

    def chosen() -> None:
        identity, cluster, request, _ = next(cycle_a)
        evaluate(select_policy(identity, cluster, policies), request)

    def floor() -> None:
        identity, cluster, _, _ = next(cycle_b)
        lookup[(id(identity), cluster)]

    def known() -> None:
        _, _, request, policy = next(cycle_a)
        evaluate(policy, request)

    # Sanity: the chosen policy is the team's own, so the benchmark measures real decisions.
    for identity, cluster, _, policy in work[:: len(requests(0))]:
        assert select_policy(identity, cluster, policies) is policy
    rows = []
    for label, fn, target in (
        ("choosing the policy as the broker does", chosen, 200_000),
        ("with the policy known (gateway)", known, 500_000),
    ):
        pair = interleave(fn, floor, rounds, inner)
        rates = [1 / s for s in pair.a]
        rate = sorted(rates)[len(rates) // 2]
        floor_rate = sorted(1 / s for s in pair.b)[len(pair.b) // 2]
        rows.append(
            Row(
                name=f"decisions, {POLICIES} policies x {RULES} rules, {label}",
                measured=f"{rate:,.0f}/s ({pair.ratio():.1f}x a dict lookup)",
                floor=f"a dict lookup: {floor_rate:,.0f}/s",
                spread=spread(rates, "/s"),
                target=f">= {target:,}/s",
                passed=rate >= target,
            )
        )
    return rows


def run(quick: bool = False) -> list[Row]:
    return [loading(quick)] + _decision_rows(quick)


if __name__ == "__main__":
    import sys

    for row in run("--quick" in sys.argv):
        print("\n".join(row.lines()))
