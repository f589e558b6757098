"""Realistic Kubernetes answers of a given size: pods, secrets, tables, watch streams, logs."""

from __future__ import annotations

import base64
import json

MB = 1024 * 1024


def pod(i: int, namespace: str = "shop") -> dict:
    """A pod as kube-apiserver returns it: managed fields, env, probes, status."""
    name = f"web-{i:05d}-7d9c8b6f5d-x{i % 97:02d}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"5f1c2a4e-{i:04x}-4b0e-9d7a-0123456789ab",
            "resourceVersion": str(100000 + i),
            "creationTimestamp": "2026-11-28T10:00:00Z",
            "labels": {"app": "web", "pod-template-hash": "7d9c8b6f5d", "tier": "frontend"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-28T09:59:00Z"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web-7d9c8b6f5d",
                    "uid": "1b2c",
                    "controller": True,
                }
            ],
            "managedFields": [
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2026-11-28T10:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}},
                }
            ],
        },
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web:1.42.0",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "env": [
                        {"name": "LOG_LEVEL", "value": "info"},
                        {"name": "DATABASE_URL", "value": "postgres://shop@db.shop.svc:5432/shop"},
                        {
                            "name": "DB_PASSWORD",
                            "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}},
                        },
                    ],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "128Mi"},
                        "limits": {"memory": "256Mi"},
                    },
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                    "volumeMounts": [
                        {
                            "name": "kube-api-access",
                            "readOnly": True,
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                        }
                    ],
                }
            ],
            "nodeName": f"ip-10-0-{i % 250}-{i % 200}.ec2.internal",
            "serviceAccountName": "web",
            "volumes": [
                {
                    "name": "kube-api-access",
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
                        ]
                    },
                }
            ],
        },
        "status": {
            "phase": "Running",
            "podIP": f"10.0.{i % 250}.{i % 200}",
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": "2026-11-28T10:00:05Z"}
                for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "containerStatuses": [
                {
                    "name": "web",
                    "ready": True,
                    "restartCount": 0,
                    "image": "shop/web:1.42.0",
                    "imageID": "sha256:" + "ab" * 32,
                    "state": {"running": {"startedAt": "2026-11-28T10:00:04Z"}},
                }
            ],
        },
    }


def _fill(make_item, size: int) -> list:
    items, total, i = [], 0, 0
    while total < size:
        item = make_item(i)
        items.append(item)
        total += len(json.dumps(item, separators=(",", ":")))
        i += 1
    return items


def pod_list(size: int = 5 * MB, count: int | None = None) -> dict:
    items = [pod(i) for i in range(count)] if count is not None else _fill(pod, size)
    return {
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": {"resourceVersion": "1"},
        "items": items,
    }


def secret(i: int) -> dict:
    value = base64.b64encode((f"s3cr3t-{i}-" * 20).encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": f"app-secret-{i}",
            "namespace": "shop",
            "resourceVersion": str(i),
            "labels": {"app": "web"},
        },
        "data": {"password": value, "api-key": value, "tls.key": value},
    }


def secret_list(size: int = 5 * MB) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "SecretList",
        "metadata": {"resourceVersion": "1"},
        "items": _fill(secret, size),
    }


def pod_table(size: int = 5 * MB) -> dict:
    """``kubectl get pods -o wide`` with ``includeObject=Object``: a row per pod with the pod."""

    def row(i: int) -> dict:
        return {
            "cells": [f"web-{i}", "1/1", "Running", 0, "2d", f"10.0.0.{i % 250}"],
            "object": pod(i),
        }

    columns = [
        {"name": n, "type": "string", "format": "", "description": "", "priority": 0}
        for n in ("Name", "Ready", "Status", "Restarts", "Age", "IP")
    ]
    return {
        "apiVersion": "meta.k8s.io/v1",
        "kind": "Table",
        "metadata": {"resourceVersion": "1"},
        "columnDefinitions": columns,
        "rows": _fill(row, size),
    }


def watch_stream(size: int = 5 * MB) -> bytes:
    lines, total, i = [], 0, 0
    while total < size:
        line = json.dumps({"type": "MODIFIED", "object": pod(i)}, separators=(",", ":")) + "\n"
        lines.append(line)
        total += len(line)
        i += 1
    return "".join(lines).encode()


def logs(size: int = 5 * MB) -> str:
    """Application logs as a busy service writes them: one line in ten names a word that may
    introduce a credential (a token, a connection, a URL) without holding one, and one in a
    hundred holds a credential."""
    return _log_lines(size, trigger_every=10, credential_every=100)


def marked_logs(size: int = 5 * MB) -> str:
    """The typical logs with an arrow on 1 line in 50 (never a line holding a trigger):
    marks that leading rules start with, away from where any could match."""
    lines = logs(size).split("\n")
    for index in range(7, len(lines), 50):
        lines[index] += " step a -> b"
    return "\n".join(lines)


def dense_logs(size: int = 5 * MB) -> str:
    """A stress case, not a typical log: two lines in five hold a credential."""
    return _log_lines(size, trigger_every=5, credential_every=5, credential_lines=2)


_PLAIN_LOG_LINES = (
    "{t} INFO request id={i} path=/api/cart status=200 ms=12",
    "{t} DEBUG user=alice@example.com cart={i} items=3 total=42.10",
    "{t} WARN retrying upstream=payments attempt=2 id={i}",
    "{t} INFO order {i} shipped to warehouse 7",
)
_TRIGGER_LOG_LINES = (
    "{t} INFO token refreshed for client web-{i}",
    "{t} WARN db connection pool at 80% ({i} in use)",
    "{t} INFO calling https://payments.internal/api/v1/charge/{i}",
)
_CREDENTIAL_LOG_LINES = (
    "{t} ERROR db connect failed password=hunter{i} host=db",
    "{t} INFO using key AKIAIOSFODNN7EXAMPLE for s3 upload {i}",
)


def _log_lines(
    size: int, trigger_every: int, credential_every: int, credential_lines: int = 1
) -> str:
    lines, total, i = [], 0, 0
    while total < size:
        stamp = f"2026-11-28T10:{i // 60 % 60:02d}:{i % 60:02d}Z"
        if i % credential_every < credential_lines:
            samples = _CREDENTIAL_LOG_LINES
        elif i % trigger_every == 0:
            samples = _TRIGGER_LOG_LINES
        else:
            samples = _PLAIN_LOG_LINES
        line = samples[i % len(samples)].format(t=stamp, i=i) + "\n"
        lines.append(line)
        total += len(line)
        i += 1
    return "".join(lines)


def encoded(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()
