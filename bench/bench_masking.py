"""Masking benchmark: each 5 MB answer against its floor, measured interleaved in one run.

Floors (issue 12): ``json.loads`` + ``json.dumps`` of the same bytes for JSON answers (target
<= 1.3x), the text through JSON once (``json.dumps``) for logs (target <= 2x). Peak memory is
the traced Python allocation peak while masking, as a multiple of the answer's size (target
<= 4x), printed next to the floor's own peak (decoding JSON into Python objects alone takes
more than 4x).

    .venv/bin/python bench/bench_masking.py [--rounds 15] [--size-mb 5]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import statistics
import string
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.masking import mask_json, mask_text, mask_watch_stream  # noqa: E402

RNG = random.Random(7)


def _word(n: int = 8) -> str:
    return "".join(RNG.choices(string.ascii_lowercase, k=n))


def _b64(n: int) -> str:
    return base64.b64encode(RNG.randbytes(n)).decode()


def _metadata(name: str, applied: dict | None = None) -> dict:
    meta = {
        "name": name,
        "namespace": "shop",
        "uid": f"{_word(8)}-{_word(4)}-{_word(4)}-{_word(12)}",
        "resourceVersion": str(RNG.randint(1000, 99999)),
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "labels": {"app": _word(), "tier": "backend"},
    }
    if applied is not None:
        meta["annotations"] = {
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied) + "\n"
        }
    return meta


def secret(i: int) -> dict:
    data = {f"key{j}": _b64(48) for j in range(4)}
    applied = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s{i}"}, "data": data}
    return {
        "metadata": _metadata(f"s{i}", applied),
        "type": "Opaque",
        "data": data,
    }


def pod(i: int) -> dict:
    env = [
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "DB_HOST", "value": "db.shop.svc.cluster.local"},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        {"name": "FEATURE_FLAGS", "value": ",".join(_word(5) for _ in range(4))},
    ]
    container = {
        "name": "app",
        "image": f"registry.example.com/shop/{_word()}:1.{i % 20}",
        "args": ["--port=8080", f"--name={_word()}"],
        "env": env,
        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
    }
    return {
        "metadata": _metadata(f"web-{i}")
        | {"ownerReferences": [{"kind": "ReplicaSet", "name": "web"}]},
        "spec": {
            "containers": [container, container | {"name": "sidecar"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "serviceAccountName": "web",
            "nodeName": f"ip-10-0-{i % 250}-{i % 200}.ec2.internal",
        },
        "status": {
            "phase": "Running",
            "podIP": f"10.0.{i % 250}.{i % 200}",
            "conditions": [{"type": "Ready", "status": "True"}] * 3,
            "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0}],
        },
    }


def _fill(make: Callable[[int], dict], size: int) -> list[dict]:
    items, total, i = [], 0, 0
    while total < size:
        item = make(i)
        items.append(item)
        total += len(json.dumps(item))
        i += 1
    return items


def answers(size: int) -> dict[str, tuple[bytes, str]]:
    secrets = _fill(secret, size)
    pods = _fill(pod, size)
    table = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "columnDefinitions": [{"name": n, "type": "string"} for n in ("Name", "Ready", "Age")],
        "rows": [
            {"cells": [p["metadata"]["name"], "1/1", "3d"], "object": p | {"kind": "Pod"}}
            for p in pods
        ],
    }
    watch = b"".join(
        json.dumps({"type": "ADDED", "object": p | {"kind": "Pod", "apiVersion": "v1"}}).encode()
        + b"\n"
        for p in pods
    )
    lines, total = [], 0
    while total < size:
        line = (
            f"2026-01-01T00:00:{RNG.randint(10, 59)}.000Z INFO request id={_word(12)} "
            f"GET /api/{_word()} status=200 latency={RNG.randint(1, 900)}ms user={_word(6)}"
        )
        if RNG.random() < 0.002:
            line += " password=" + _word(12)
        lines.append(line)
        total += len(line) + 1
    return {
        "SecretList": (
            json.dumps({"kind": "SecretList", "apiVersion": "v1", "items": secrets}).encode(),
            "Secret",
        ),
        "Table(includeObject)": (json.dumps(table).encode(), ""),
        "PodList": (
            json.dumps({"kind": "PodList", "apiVersion": "v1", "items": pods}).encode(),
            "",
        ),
        "watch": (watch, "watch"),
        "logs": ("\n".join(lines).encode(), "logs"),
    }


def _floor(body: bytes, shape: str) -> Callable[[], object]:
    if shape == "logs":
        text = body.decode()
        return lambda: json.dumps(text)
    if shape == "watch":
        return lambda: [json.dumps(json.loads(line)) for line in body.splitlines()]
    return lambda: json.dumps(json.loads(body))


def _masker(body: bytes, shape: str) -> Callable[[], object]:
    if shape == "logs":
        text = body.decode()
        return lambda: mask_text(text)
    if shape == "watch":
        return lambda: mask_watch_stream(body)
    return lambda: mask_json(body, resource_kind=shape)


def _time(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _peak(run: Callable[[], object]) -> int:
    """Peak traced Python allocation while ``run`` runs (the input is already allocated)."""
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--size-mb", type=float, default=5)
    args = parser.parse_args()
    size = int(args.size_mb * 1_000_000)
    targets = {"logs": 2.0}
    print(
        f"{'answer':22} {'MB':>5} {'floor ms':>9} {'mask ms':>8} {'ratio':>6} "
        f"{'spread':>13} {'target':>6} {'peak/size':>9} {'floor peak/size':>15}"
    )
    for name, (body, shape) in answers(size).items():
        floor, masker = _floor(body, shape), _masker(body, shape)
        masker()  # warm caches (compiled scanner)
        ratios, floors, masks = [], [], []
        for _ in range(args.rounds):
            f = _time(floor)
            m = _time(masker)
            floors.append(f)
            masks.append(m)
            ratios.append(m / f)
        peak = _peak(masker)
        floor_peak = _peak(floor)
        quartiles = statistics.quantiles(ratios, n=4)
        target = targets.get(name, 1.3)
        print(
            f"{name:22} {len(body) / 1e6:5.1f} {statistics.median(floors) * 1e3:9.1f} "
            f"{statistics.median(masks) * 1e3:8.1f} {statistics.median(ratios):6.2f} "
            f"{quartiles[0]:6.2f}-{quartiles[2]:<6.2f} {target:6.1f} {peak / len(body):9.2f} "
            f"{floor_peak / len(body):15.2f}"
        )


if __name__ == "__main__":
    main()
