"""`eksgate token` with a warm cache, as kubectl runs it (a whole process), side by side with
its floor `aws eks get-token` and with `python -c pass`, interleaved.

Run: .venv/bin/python bench/bench_token.py [--runs 40]

Target (issue 12): the warm `eksgate token` costs at most 0.08x `aws eks get-token`. Needs the
AWS CLI on PATH (it signs locally with dummy credentials; no network). Measured here, never
asserted in tests.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def fake_oidc_token() -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    claims = {"iss": "https://oidc.example", "sub": "repo:acme/shop:environment:production"}
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def warm_cache(home: Path, oidc_token: str) -> None:
    from eksgate.token_cmd import cache_dir, cache_key, store_cached

    os.environ["XDG_CACHE_HOME"] = str(home)
    expires = datetime.now(UTC) + timedelta(hours=1)
    key = cache_key(
        oidc_token,
        "demo",
        "https://gateway.example",
        "gateway",
        "client.authentication.k8s.io/v1beta1",
    )
    store_cached(
        cache_dir() / f"{key}.json",
        {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "kind": "ExecCredential",
            "spec": {},
            "status": {
                "token": "session." + "x" * 400,
                "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        },
    )


def run(command: list[str], env: dict) -> tuple[float, float]:
    """Wall time, and CPU time (user + system) of the process: on a shared machine the CPU
    time is the steadier measure of what the command itself costs."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    runs = parser.parse_args().runs
    aws = shutil.which("aws")
    if not aws:
        sys.exit("bench_token: the AWS CLI (`aws`) is not on PATH")
    eksgate = str(Path(sys.executable).parent / "eksgate")
    oidc = fake_oidc_token()
    home = Path(tempfile.mkdtemp(prefix="eksgate-bench-"))
    warm_cache(home, oidc)
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(home),
        "EKSGATE_OIDC_TOKEN": oidc,
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "x" * 40,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    commands = {
        "aws eks get-token": [aws, "eks", "get-token", "--cluster-name", "demo"],
        "eksgate token (warm cache)": [
            eksgate,
            "token",
            "--cluster",
            "demo",
            "--gateway",
            "https://gateway.example",
        ],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    for command in commands.values():  # warm the page cache and .pyc files
        run(command, env)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(run(command, env))
    shutil.rmtree(home, ignore_errors=True)
    print(f"{runs} interleaved runs each, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}")
    for measure, index in (("wall", 0), ("CPU", 1)):
        floor = statistics.median(t[index] for t in times["aws eks get-token"])
        for name, samples in times.items():
            values = [t[index] for t in samples]
            low, _, high = statistics.quantiles(values, n=4)
            median = statistics.median(values)
            print(
                f"{measure:<4} {name:<28} median {median * 1000:7.1f} ms  IQR "
                f"{low * 1000:6.1f}-{high * 1000:6.1f} ms  {median / floor:5.3f}x the floor"
            )


if __name__ == "__main__":
    main()
