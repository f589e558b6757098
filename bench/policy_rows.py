"""Policy rows: loading 200 policies x 20 rules, and decisions with and without the policy known.

Loading is measured as a Lambda cold start meets it: the policy files and the snapshot that
Chalice's packager (with eksgate's hook) compiled into the package, unzipped.

Decisions go through the public functions the request path calls: ``select_policy`` on what
``load_policies`` returned (as the broker and /v1/token do), then ``evaluate`` (as the gateway
does once a session names its policy). The floor is a dict lookup, timed interleaved.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from bench.harness import Row, interleave, spread
from bench.policy_corpus import identities, requests, write_corpus
from chalicelib.policy import evaluate, load_policies, select_policy
from chalicelib.policy.snapshot import SNAPSHOT_NAME, code_fingerprint, load_with_snapshot

POLICIES, RULES = 200, 20


def package_corpus(root: Path) -> Path:
    """The corpus as ``chalice deploy``/``package`` ship it: a project whose policies are the
    corpus, zipped by Chalice's app packager with eksgate's packaging hook (which compiles the
    snapshot), then unzipped as Lambda unzips it into /var/task. Returns the shipped policies."""
    from chalice.deploy.packager import AppOnlyDeploymentPackager
    from chalice.utils import UI, OSUtils

    from eksgate.policy_packaging import compile_when_packaging

    project = root / "project"
    write_corpus(project / "chalicelib" / "policies", POLICIES, RULES)
    (project / "chalicelib" / "__init__.py").write_text("")
    (project / "app.py").write_text("from chalice import Chalice\napp = Chalice('bench')\n")
    compile_when_packaging()
    with contextlib.redirect_stdout(io.StringIO()):
        packager = AppOnlyDeploymentPackager(OSUtils(), None, UI())  # type: ignore[arg-type]
        package = packager.create_deployment_package(str(project), "python3.11")
    with zipfile.ZipFile(package) as archive:
        archive.extractall(root / "task")
    return root / "task" / "chalicelib" / "policies"


def _cold(directory: Path, expect: str) -> Callable[[], object]:
    """What a cold start pays for its policies: load them, and build the index the first
    request uses. Process-wide caches (the code fingerprint, compiled regexes) are emptied."""

    def load() -> object:
        code_fingerprint.cache_clear()
        re.purge()
        loaded = load_with_snapshot(directory)
        assert loaded.snapshot == expect, (loaded.snapshot, loaded.detail)
        return loaded.policies.index

    return load


def _fresh_process(directory: Path, runs: int) -> float:
    """Median seconds for a new Python process to import the policy package and load."""
    script = (
        "import sys, time; start = time.perf_counter()\n"
        "from chalicelib.policy.snapshot import load_with_snapshot\n"
        "loaded = load_with_snapshot(sys.argv[1]); loaded.policies.index\n"
        "assert loaded.snapshot == 'used', loaded.detail\n"
        "print(time.perf_counter() - start)\n"
    )
    root = Path(__file__).resolve().parent.parent
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", script, str(directory)],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for _ in range(runs)
    ]
    return statistics.median(times)


def loading(quick: bool) -> Row:
    """A cold start's policy load as deployed (the files and the snapshot packaging compiled);
    the floor is libyaml parsing the same files, no more. The load without a snapshot (every
    file parsed and validated) is a note."""
    import yaml

    rounds = 3 if quick else 7
    with tempfile.TemporaryDirectory() as tmp:
        directory = package_corpus(Path(tmp))
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        def parse_only() -> None:
            for path in sorted(directory.glob("*.yaml")):
                yaml.load(path.read_bytes(), Loader=loader)

        pair = interleave(_cold(directory, "used"), parse_only, rounds)
        assert len(load_with_snapshot(directory).policies) == POLICIES
        fresh = _fresh_process(directory, 3)
        snapshot = directory / SNAPSHOT_NAME
        size = snapshot.stat().st_size
        snapshot.rename(directory.parent / SNAPSHOT_NAME)
        full = interleave(_cold(directory, "absent"), parse_only, 2 if quick else 3)
    median = statistics.median(pair.a)
    return Row(
        name=f"loading {POLICIES} policies x {RULES} rules (cold start, as packaged)",
        measured=f"{median:.3f} s p50 ({pair.ratio():.2f}x parsing the YAML alone), "
        "snapshot and index",
        floor=f"PyYAML with libyaml parsing the same {POLICIES} files: "
        f"{statistics.median(pair.b):.3f} s p50",
        spread=spread(pair.a, " s"),
        target="<= 0.3 s",
        passed=median <= 0.3,
        notes=[
            f"without the snapshot (every file parsed and validated): "
            f"{statistics.median(full.a):.3f} s p50 ({full.ratio():.2f}x parsing alone)",
            f"in a new process, importing the policy package too: {fresh:.3f} s p50",
            f"the snapshot chalice's packager compiled: {size / 1024:.0f} KiB",
        ],
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
