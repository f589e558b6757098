"""Policy rows: loading 200 policies x 20 rules, and decisions with and without the policy known.

Decisions go through the public functions the request path calls: ``select_policy`` on what
``load_policies`` returned (as the broker and /v1/token do), then ``evaluate`` (as the gateway
does once a session names its policy). The floor is a dict lookup, timed interleaved.
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import Row, interleave, spread
from bench.policy_corpus import identities, requests, write_corpus
from chalicelib.policy import evaluate, load_policies, select_policy

POLICIES, RULES = 200, 20


def loading(quick: bool) -> Row:
    """Cold load of the whole corpus; the floor is libyaml parsing the same files, no more."""
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        directory = write_corpus(Path(tmp) / "policies", POLICIES, RULES)
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        def parse_only() -> None:
            for path in sorted(directory.iterdir()):
                yaml.load(path.read_bytes(), Loader=loader)

        pair = interleave(lambda: load_policies(directory), parse_only, 2 if quick else 5)
        assert len(load_policies(directory)) == POLICIES
    median = statistics.median(pair.a)
    return Row(
        name=f"loading {POLICIES} policies x {RULES} rules",
        measured=f"{median:.3f} s p50 ({pair.ratio():.2f}x parsing the YAML alone)",
        floor=f"PyYAML with libyaml parsing the same {POLICIES} files: "
        f"{statistics.median(pair.b):.3f} s p50",
        spread=spread(pair.a, " s"),
        target="<= 0.3 s",
        passed=median <= 0.3,
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
    misses = _miss_rates(policies, callers, 4000 if quick else 20000)
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
                notes=[
                    f"every call a new caller and request (no memo hits): {misses[label]:,.0f}/s"
                ],
            )
        )
    return rows


def _miss_rates(policies, callers, n: int) -> dict[str, float]:
    """Decision rates when no caller and no request repeats, so every memo misses."""
    from bench.policy_corpus import KubeRequest
    from chalicelib.identity import Identity

    work = []
    for i in range(n):
        team = i % POLICIES
        caller = callers[team]
        claims = dict(caller.claims, ref=f"refs/heads/b{i}", run=str(i))
        if team % 4 == 0:
            claims["repository"] = f"acme/team-{team}-svc{i}"
        request = requests(team)[i % 42]
        request = KubeRequest(
            request.verb,
            request.path,
            api_group=request.api_group,
            namespace=request.namespace,
            resource=request.resource,
            name=f"obj-{i}",
        )
        work.append(
            (Identity(caller.subject, caller.issuer, claims=claims), request, policies[team])
        )
    rates = {}
    start = time.perf_counter()
    for identity, request, _ in work:
        evaluate(select_policy(identity, "prod-eu", policies), request)
    rates["choosing the policy as the broker does"] = n / (time.perf_counter() - start)
    fresh = [
        (
            KubeRequest(
                r.verb,
                r.path,
                api_group=r.api_group,
                namespace=r.namespace,
                resource=r.resource,
                name=r.name + "-again",
            ),
            p,
        )
        for _, r, p in work
    ]
    start = time.perf_counter()
    for request, policy in fresh:
        evaluate(policy, request)
    rates["with the policy known (gateway)"] = n / (time.perf_counter() - start)
    return rates


def run(quick: bool = False) -> list[Row]:
    return [loading(quick)] + _decision_rows(quick)


if __name__ == "__main__":
    import sys

    for row in run("--quick" in sys.argv):
        print("\n".join(row.lines()))
