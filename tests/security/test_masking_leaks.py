"""Masking leaks: planted credentials read back through the gateway in every response shape.

The cluster (a fake upstream) holds objects with planted values; the ci-agent reads them as
an object, a list, a Table with its objects, a watch stream, and (for text) logs. No planted
value, nor its base64, may come back.
"""

from __future__ import annotations

import base64
import json

import pytest

from chalicelib.gateway.upstream import UpstreamResponse
from chalicelib.masking import LAST_APPLIED_ANNOTATION
from tests.unit.test_proxy import FakeUpstream, gateway, incoming

pytestmark = pytest.mark.adversarial

PLANTED = {
    "aws_key": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLXBsYW50ZWQ",
    "github": "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "slack": "xoxb-1234567890-abcdefghijklmnop",
    "password": "hunter2-planted-secret",
    "pem_body": "MIIEowIBAAKCAQEAplantedkeymaterialplantedkeymaterial",
}
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PLANTED['pem_body']}\n-----END RSA PRIVATE KEY-----"


def secret() -> dict:
    data = {"password": PLANTED["password"], "token": PLANTED["github"]}
    applied = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": data}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "db",
            "namespace": "shop",
            "annotations": {LAST_APPLIED_ANNOTATION: json.dumps(applied)},
        },
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def config_map() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app", "namespace": "shop"},
        "data": {
            "DATABASE_URL": f"postgres://shop:{PLANTED['password']}@db/shop",
            "config.yaml": f"aws_secret_access_key: {PLANTED['aws_secret']}\n",
            "AWS_ACCESS_KEY_ID": PLANTED["aws_key"],
            "key.pem": PEM,
            "notify": f"slack={PLANTED['slack']}",
        },
    }


def pod() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-0",
            "namespace": "shop",
            "annotations": {"ci/token": PLANTED["jwt"]},
        },
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "nginx",
                    "env": [
                        {"name": "DB_PASSWORD", "value": PLANTED["password"]},
                        {"name": "GITHUB_TOKEN", "value": PLANTED["github"]},
                        {"name": "AUTH", "value": f"Bearer {PLANTED['jwt']}"},
                    ],
                }
            ]
        },
    }


OBJECTS = {
    "secret": (secret, "secrets"),
    "configmap": (config_map, "configmaps"),
    "pod": (pod, "pods"),
}


def as_list(obj: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": f"{obj['kind']}List",
        "metadata": {},
        "items": [{k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}],
    }


def as_table(obj: dict) -> dict:
    return {
        "apiVersion": "meta.k8s.io/v1",
        "kind": "Table",
        "metadata": {},
        "columnDefinitions": [{"name": "Name", "type": "string"}],
        "rows": [{"cells": [obj["metadata"]["name"]], "object": obj}],
    }


def as_metadata(obj: dict) -> dict:
    return {
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": obj["metadata"],
    }


def as_watch(obj: dict) -> bytes:
    return b"".join(
        json.dumps({"type": kind, "object": obj}).encode() + b"\n"
        for kind in ("ADDED", "MODIFIED", "DELETED")
    )


SHAPES = {
    "object": (lambda o: json.dumps(o).encode(), lambda r: f"/api/v1/namespaces/shop/{r}/x", {}),
    "list": (
        lambda o: json.dumps(as_list(o)).encode(),
        lambda r: f"/api/v1/namespaces/shop/{r}",
        {},
    ),
    "table": (
        lambda o: json.dumps(as_table(o)).encode(),
        lambda r: f"/api/v1/namespaces/shop/{r}",
        {},
    ),
    "metadata": (
        lambda o: json.dumps(as_metadata(o)).encode(),
        lambda r: f"/api/v1/namespaces/shop/{r}/x",
        {},
    ),
    "watch": (as_watch, lambda r: f"/api/v1/namespaces/shop/{r}", {"watch": ["true"]}),
}


def leaked(text: str) -> list[str]:
    found = []
    for name, value in PLANTED.items():
        forms = {value, base64.b64encode(value.encode()).decode()}
        found += [name for form in forms if form in text]
    return found


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("kind", sorted(OBJECTS))
def test_no_planted_value_comes_back_in_any_shape(kind, shape):
    make, resource = OBJECTS[kind]
    encode, path, query = SHAPES[shape]
    upstream = FakeUpstream(
        UpstreamResponse(200, {"content-type": "application/json"}, encode(make()))
    )
    gw, _ = gateway(upstream)
    answer = gw.handle(incoming(path(resource), query=query))
    assert answer.status == 200
    assert leaked(answer.body) == [], answer.body[:2000]


LOG_LINES = [
    f"connecting with password={PLANTED['password']}",
    f"AWS_ACCESS_KEY_ID={PLANTED['aws_key']} AWS_SECRET_ACCESS_KEY={PLANTED['aws_secret']}",
    f"Authorization: Bearer {PLANTED['jwt']}",
    f"token {PLANTED['github']} used",
    f"slack bot {PLANTED['slack']}",
    PEM,
    f'{{"level":"debug","db":"postgres://u:{PLANTED["password"]}@db/x"}}',
]


@pytest.mark.parametrize("line", LOG_LINES)
@pytest.mark.parametrize("query", [{}, {"timestamps": ["true"]}, {"tailLines": ["50"]}])
def test_no_planted_value_comes_back_in_logs(line, query):
    upstream = FakeUpstream(
        UpstreamResponse(
            200, {"content-type": "text/plain"}, f"2026-11-29T00:00:00Z {line}\n".encode()
        )
    )
    gw, _ = gateway(upstream)
    answer = gw.handle(incoming("/api/v1/namespaces/shop/pods/web-0/log", query=query))
    assert leaked(answer.body) == [], answer.body
