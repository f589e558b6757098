"""Masking responses: Secret data never leaves, credential patterns are masked, JSON stays valid."""

from __future__ import annotations

import base64
import copy
import json
import string
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chalicelib.masking import (
    DEFAULT_SETTINGS,
    LAST_APPLIED_ANNOTATION,
    MASK,
    MASKED_DATA_VALUE,
    PATTERN_NAMES,
    MaskingSettings,
    mask_document,
    mask_text,
    mask_watch_stream,
)

NO_PATTERNS = MaskingSettings(patterns=())


def _b64(value: bytes | str) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode()


def _secret(name: str = "db", data: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    secret: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "shop", "resourceVersion": "7"},
        "type": "Opaque",
        "data": data if data is not None else {"password": _b64("hunter2"), "user": _b64("app")},
    }
    secret.update(extra)
    return secret


def _last_applied(obj: dict[str, Any]) -> str:
    """What kubectl apply writes: the applied manifest as compact JSON plus a newline."""
    return json.dumps(obj, separators=(",", ":")) + "\n"


def _with_last_applied(obj: dict[str, Any]) -> dict[str, Any]:
    applied = {k: v for k, v in obj.items() if k != "metadata"}
    applied["metadata"] = {"name": obj["metadata"]["name"], "namespace": "shop"}
    out = copy.deepcopy(obj)
    out["metadata"].setdefault("annotations", {})[LAST_APPLIED_ANNOTATION] = _last_applied(applied)
    return out


SECRET_COLUMNS = [
    {"name": "Name", "type": "string", "format": "name"},
    {"name": "Type", "type": "string", "format": ""},
    {"name": "Data", "type": "string", "format": ""},
    {"name": "Age", "type": "string", "format": ""},
]


def _partial_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": copy.deepcopy(obj["metadata"]),
    }


def _secret_table(secrets: list[dict[str, Any]], include_object: str) -> dict[str, Any]:
    rows = []
    for secret in secrets:
        row: dict[str, Any] = {
            "cells": [secret["metadata"]["name"], "Opaque", len(secret.get("data") or {}), "3d"]
        }
        if include_object == "Object":
            row["object"] = copy.deepcopy(secret)
        elif include_object == "Metadata":
            row["object"] = _partial_metadata(secret)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": "9"},
        "columnDefinitions": copy.deepcopy(SECRET_COLUMNS),
        "rows": rows,
    }


# --- Secrets -------------------------------------------------------------------------------


def test_secret_data_values_become_one_valid_base64_marker():
    masked = mask_document(_secret(data={"a": _b64("x"), "b": _b64("a much longer value")}))
    assert masked["data"] == {"a": MASKED_DATA_VALUE, "b": MASKED_DATA_VALUE}
    assert base64.b64decode(MASKED_DATA_VALUE, validate=True).decode() == MASK


def test_secret_string_data_values_become_the_marker():
    masked = mask_document(_secret(stringData={"token": "abc", "pw": "hunter2"}))
    assert masked["stringData"] == {"token": MASK, "pw": MASK}


def test_secret_keeps_its_identity_type_and_key_names():
    masked = mask_document(_secret(immutable=True))
    assert masked["metadata"]["name"] == "db"
    assert masked["type"] == "Opaque"
    assert masked["immutable"] is True
    assert sorted(masked["data"]) == ["password", "user"]


def test_secret_data_is_masked_even_with_no_patterns_configured():
    assert mask_document(_secret(), NO_PATTERNS)["data"]["password"] == MASKED_DATA_VALUE


def test_masking_never_mutates_its_input():
    doc = {
        "kind": "List",
        "apiVersion": "v1",
        "items": [_with_last_applied(_secret()), _config_map({"password": "x"})],
    }
    before = copy.deepcopy(doc)
    mask_document(doc)
    assert doc == before


def test_secret_last_applied_annotation_is_masked_and_stays_valid_json():
    secret = _with_last_applied(_secret(stringData={"extra": "plain-secret"}))
    masked = mask_document(secret)
    annotation = masked["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
    assert annotation.endswith("\n")
    applied = json.loads(annotation)
    assert applied["data"] == {"password": MASKED_DATA_VALUE, "user": MASKED_DATA_VALUE}
    assert applied["stringData"] == {"extra": MASK}
    assert "plain-secret" not in json.dumps(masked)
    assert _b64("hunter2") not in json.dumps(masked)


def test_unparseable_last_applied_annotation_is_withheld_entirely():
    secret = _secret()
    secret["metadata"]["annotations"] = {LAST_APPLIED_ANNOTATION: '{"data": {"pw": "aHVudGVy'}
    masked = mask_document(secret)
    assert masked["metadata"]["annotations"][LAST_APPLIED_ANNOTATION] == MASK


def test_secret_last_applied_claiming_another_kind_is_still_masked_as_a_secret():
    secret = _secret()
    disguised = {"kind": "ConfigMap", "apiVersion": "v1", "data": {"pw": "c2VjcmV0LXZhbHVl"}}
    secret["metadata"]["annotations"] = {LAST_APPLIED_ANNOTATION: json.dumps(disguised)}
    masked = mask_document(secret)
    applied = json.loads(masked["metadata"]["annotations"][LAST_APPLIED_ANNOTATION])
    assert applied["data"] == {"pw": MASKED_DATA_VALUE}


@pytest.mark.parametrize(
    "field,value",
    [("data", ["aHVudGVyMg=="]), ("data", "aHVudGVyMg=="), ("stringData", "pw"), ("metadata", [])],
)
def test_secret_of_unknown_shape_is_withheld_entirely(field, value):
    secret = _secret()
    secret[field] = value
    assert mask_document(secret) == MASK


def test_field_a_secret_does_not_have_is_withheld():
    masked = mask_document(_secret(extraData={"pw": "hunter2"}, type={"nested": "x"}))
    assert masked["extraData"] == MASK
    assert masked["type"] == MASK


def test_secret_with_null_data_passes_with_null_data():
    masked = mask_document(_secret(data=None) | {"data": None})
    assert masked["data"] is None


def test_secret_of_any_api_version_is_masked_as_a_secret():
    masked = mask_document(_secret() | {"apiVersion": "example.com/v1"})
    assert masked["data"]["password"] == MASKED_DATA_VALUE


# --- lists -----------------------------------------------------------------------------------


def test_secret_list_items_without_kind_are_masked():
    item = _secret()
    del item["kind"], item["apiVersion"]
    doc = {"kind": "SecretList", "apiVersion": "v1", "metadata": {}, "items": [item, item]}
    masked = mask_document(doc)
    assert [i["data"]["password"] for i in masked["items"]] == [MASKED_DATA_VALUE] * 2


def test_generic_list_masks_each_item_by_its_own_kind():
    doc = {
        "kind": "List",
        "apiVersion": "v1",
        "items": [_secret(), _config_map({"app.properties": "db.password=hunter2\nport=5"})],
    }
    masked = mask_document(doc)
    assert masked["items"][0]["data"]["password"] == MASKED_DATA_VALUE
    assert masked["items"][1]["data"]["app.properties"] == f"db.password={MASK}\nport=5"


def test_kindless_item_with_data_in_a_generic_list_is_treated_as_a_secret():
    doc = {"kind": "List", "apiVersion": "v1", "items": [{"metadata": {}, "data": {"k": "dg=="}}]}
    assert mask_document(doc)["items"][0]["data"] == {"k": MASKED_DATA_VALUE}


def test_list_items_of_unknown_shape_are_withheld():
    doc = {"kind": "SecretList", "apiVersion": "v1", "items": {"db": _secret()}}
    assert mask_document(doc)["items"] == MASK


def test_secret_list_item_that_is_not_an_object_is_withheld():
    doc = {"kind": "SecretList", "apiVersion": "v1", "items": ["aHVudGVyMg=="]}
    assert mask_document(doc)["items"] == [MASK]


def test_items_of_other_lists_are_masked_by_the_kind_the_list_implies():
    item = _config_map({"db_password": "hunter2"})
    del item["kind"]
    masked = mask_document({"kind": "ConfigMapList", "apiVersion": "v1", "items": [item]})
    assert masked["items"][0]["data"]["db_password"] == MASK


# --- Tables ----------------------------------------------------------------------------------


@pytest.mark.parametrize("include_object", ["None", "Metadata", "Object"])
def test_secret_table_keeps_the_printer_columns(include_object):
    table = _secret_table([_with_last_applied(_secret("db-creds"))], include_object)
    masked = mask_document(table)
    assert masked["rows"][0]["cells"] == ["db-creds", "Opaque", 2, "3d"]
    dumped = json.dumps(masked)
    assert _b64("hunter2") not in dumped


def test_secret_table_with_metadata_masks_the_last_applied_annotation():
    table = _secret_table([_with_last_applied(_secret())], "Metadata")
    masked = mask_document(table)
    annotation = masked["rows"][0]["object"]["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
    assert json.loads(annotation)["data"]["password"] == MASKED_DATA_VALUE


def test_secret_table_with_objects_masks_each_object():
    masked = mask_document(_secret_table([_secret()], "Object"))
    assert masked["rows"][0]["object"]["data"]["password"] == MASKED_DATA_VALUE


def test_secret_table_masks_unexpected_cells():
    table = _secret_table([_secret()], "None")
    table["columnDefinitions"].append({"name": "Value", "type": "string", "format": ""})
    table["rows"][0]["object"] = {"kind": "Secret", "apiVersion": "v1", "metadata": {}}
    table["rows"][0]["cells"] = ["db", "Opaque", 1, "3d", "hunter2"]
    masked = mask_document(table)
    assert masked["rows"][0]["cells"] == ["db", "Opaque", 1, "3d", MASK]


@pytest.mark.parametrize(
    "cells",
    [
        ["db", "Opaque", 1, "hunter2 is the password"],  # age that is not an age
        ["db", "hunter2 with spaces", 1, "3d"],  # type that is not a type
        ["Not A DNS Name!", "Opaque", 1, "3d"],  # name that is not a name
        ["db", "Opaque", {"pw": "x"}, "3d"],  # structure where a count belongs
    ],
)
def test_secret_table_masks_cells_that_do_not_look_like_the_printers(cells):
    table = _secret_table([_secret()], "None")
    table["rows"][0]["cells"] = cells
    masked_cells = mask_document(table)["rows"][0]["cells"]
    assert MASK in masked_cells
    assert "hunter2" not in json.dumps(masked_cells)


def test_table_of_secrets_is_recognised_by_a_row_last_applied_annotation():
    secret = _with_last_applied(_secret())
    table = _secret_table([secret], "Metadata")
    table["columnDefinitions"] = [{"name": "Name", "type": "string"}, {"name": "Note"}]
    table["rows"][0]["cells"] = ["db", "sekrit-note"]
    masked = mask_document(table)
    assert masked["rows"][0]["cells"] == ["db", MASK]


def test_table_of_other_objects_keeps_cells_but_masks_patterns():
    table = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "columnDefinitions": [{"name": "Name"}, {"name": "Data"}, {"name": "Age"}],
        "rows": [
            {
                "cells": ["web", "token=abc123", "5m"],
                "object": _config_map({"password": "hunter2", "mode": "fast"}),
            }
        ],
    }
    masked = mask_document(table)
    assert masked["rows"][0]["cells"] == ["web", f"token={MASK}", "5m"]
    assert masked["rows"][0]["object"]["data"] == {"password": MASK, "mode": "fast"}


# --- watch -----------------------------------------------------------------------------------


def test_watch_event_object_is_masked():
    masked = mask_document({"type": "ADDED", "object": _secret()})
    assert masked["type"] == "ADDED"
    assert masked["object"]["data"]["password"] == MASKED_DATA_VALUE


def test_watch_error_and_bookmark_events_pass_through():
    error = {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": 410,
            "reason": "Expired",
            "message": "too old resource version: 1 (2)",
        },
    }
    bookmark = {
        "type": "BOOKMARK",
        "object": {"kind": "Secret", "apiVersion": "v1", "metadata": {"resourceVersion": "12"}},
    }
    assert mask_document(error) == error
    assert mask_document(bookmark) == bookmark


def test_watch_stream_masks_every_event_line():
    events = [
        {"type": "ADDED", "object": _secret("a")},
        {"type": "MODIFIED", "object": _with_last_applied(_secret("b"))},
        {"type": "ADDED", "object": _secret_table([_secret("c")], "Object")},
    ]
    stream = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    out = mask_watch_stream(stream)
    lines = out.split(b"\n")
    assert lines[-1] == b""
    decoded = [json.loads(line) for line in lines[:-1]]
    assert [e["type"] for e in decoded] == ["ADDED", "MODIFIED", "ADDED"]
    assert decoded[0]["object"]["data"]["password"] == MASKED_DATA_VALUE
    assert decoded[2]["object"]["rows"][0]["object"]["data"]["user"] == MASKED_DATA_VALUE
    assert _b64("hunter2").encode() not in out


@pytest.mark.parametrize(
    "bad_line",
    [
        b'{"type":"ADDED","object":{"kind":"Secret","data":{"pw":"aHVudGVy',  # cut off
        b"\xff\xfe not utf-8",
        b"[1, 2, 3]",
        b'"just a string"',
        b'{"type":"ADDED","object":{"kind":"Secret","data":{"pw":NaN}}}',
        b'{"type":"ADDED","object":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_001,
    ],
)
def test_watch_stream_withholds_lines_it_cannot_parse(bad_line):
    good = json.dumps({"type": "ADDED", "object": _secret()}).encode()
    out = mask_watch_stream(good + b"\n" + bad_line + b"\n" + good + b"\n")
    decoded = [json.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in decoded] == ["ADDED", "ERROR", "ADDED"]
    assert decoded[1]["object"]["kind"] == "Status"
    assert "withheld" in decoded[1]["object"]["message"]
    assert b"aHVudGVy" not in out


def test_watch_stream_trailing_partial_line_is_withheld():
    good = json.dumps({"type": "ADDED", "object": _secret()}).encode()
    out = mask_watch_stream(good + b"\n" + good[:40])
    assert [json.loads(line)["type"] for line in out.splitlines()] == ["ADDED", "ERROR"]


def test_watch_stream_skips_blank_lines():
    good = json.dumps({"type": "DELETED", "object": _secret()}).encode()
    out = mask_watch_stream(b"\n\r\n" + good + b"\r\n\n")
    assert [json.loads(line)["type"] for line in out.splitlines()] == ["DELETED"]


# --- tokens and status -----------------------------------------------------------------------


def test_token_request_token_is_masked():
    doc = {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": "builder"},
        "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600},
        "status": {"token": "opaque-token-value", "expirationTimestamp": "2030-01-01T00:00:00Z"},
    }
    masked = mask_document(doc, NO_PATTERNS)
    assert masked["status"] == {"token": MASK, "expirationTimestamp": "2030-01-01T00:00:00Z"}
    assert masked["spec"] == doc["spec"]


def test_token_review_echoed_token_is_masked():
    doc = {
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "spec": {"token": "opaque-token-value"},
        "status": {"authenticated": True},
    }
    assert mask_document(doc, NO_PATTERNS)["spec"]["token"] == MASK


def test_status_objects_pass_through():
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'secrets "db" is forbidden: User "x" cannot get resource "secrets"',
        "reason": "Forbidden",
        "details": {"name": "db", "kind": "secrets"},
        "code": 403,
    }
    assert mask_document(status) == status


# --- ConfigMaps, env, annotations ------------------------------------------------------------


def _config_map(data: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "shop"},
        "data": data,
        **extra,
    }


def test_config_map_data_values_get_pattern_masking():
    doc = _config_map(
        {
            "application.yaml": "db:\n  url: postgres://app:hunter2@db:5432/shop\n  pool: 5\n",
            "aws": "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n",
            "plain": "nothing to see",
        }
    )
    masked = mask_document(doc)
    assert masked["data"]["application.yaml"] == (
        f"db:\n  url: postgres://app:{MASK}@db:5432/shop\n  pool: 5\n"
    )
    assert masked["data"]["aws"] == f"AWS_ACCESS_KEY_ID={MASK}\n"
    assert masked["data"]["plain"] == "nothing to see"


def test_config_map_value_under_a_password_like_key_is_masked_whole():
    masked = mask_document(_config_map({"DB_PASSWORD": "hunter2", "api-key": "k", "mode": "x"}))
    assert masked["data"] == {"DB_PASSWORD": MASK, "api-key": MASK, "mode": "x"}


def test_config_map_binary_data_is_scanned_like_data():
    # Issue 16 reversed this test's old assertion ("binaryData is untouched"): that was the leak.
    binary = {"blob": _b64("password=hunter2"), "plain": _b64("mode=fast")}
    masked = mask_document(_config_map({}, binaryData=binary))["binaryData"]
    assert base64.b64decode(masked["blob"]).decode() == f"password={MASK}"
    assert masked["plain"] == binary["plain"]


def test_config_map_is_untouched_when_no_patterns_are_configured():
    doc = _config_map({"DB_PASSWORD": "hunter2", "x": "token=abc"})
    assert mask_document(doc, NO_PATTERNS) == doc


def test_only_configured_patterns_apply():
    only_aws = MaskingSettings(patterns=("aws-access-key",))
    masked = mask_document(_config_map({"a": "AKIAIOSFODNN7EXAMPLE password=x"}), only_aws)
    assert masked["data"]["a"] == f"{MASK} password=x"


def _container(name: str, env: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "image": "shop:1", "env": env}


ENV = [
    {"name": "DB_PASSWORD", "value": "hunter2"},
    {"name": "AWS_KEY", "value": "AKIAIOSFODNN7EXAMPLE"},
    {"name": "LOG_LEVEL", "value": "debug"},
    {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
]
MASKED_ENV = [
    {"name": "DB_PASSWORD", "value": MASK},
    {"name": "AWS_KEY", "value": MASK},
    {"name": "LOG_LEVEL", "value": "debug"},
    {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
]


def _pod_spec() -> dict[str, Any]:
    return {
        "containers": [_container("app", ENV)],
        "initContainers": [_container("init", ENV)],
        "ephemeralContainers": [_container("debug", ENV)],
    }


@pytest.mark.parametrize(
    "kind,wrap",
    [
        ("Pod", lambda spec: spec),
        ("Deployment", lambda spec: {"template": {"spec": spec}}),
        ("StatefulSet", lambda spec: {"template": {"spec": spec}}),
        ("DaemonSet", lambda spec: {"template": {"spec": spec}}),
        ("ReplicaSet", lambda spec: {"template": {"spec": spec}}),
        ("Job", lambda spec: {"template": {"spec": spec}}),
        ("CronJob", lambda spec: {"jobTemplate": {"spec": {"template": {"spec": spec}}}}),
    ],
)
def test_container_env_values_are_masked_in_every_workload(kind, wrap):
    doc = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "web"}, "spec": wrap(_pod_spec())}
    masked = mask_document(doc)
    spec = masked["spec"]
    while "containers" not in spec:
        spec = spec.get("template", spec.get("jobTemplate", {})).get("spec", {})
    for field in ("containers", "initContainers", "ephemeralContainers"):
        assert spec[field][0]["env"] == MASKED_ENV


def test_container_args_with_credentials_are_masked():
    pod = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "a", "args": ["--db-password=hunter2", "--v=2"]}]},
    }
    assert mask_document(pod)["spec"]["containers"][0]["args"] == [f"--db-password={MASK}", "--v=2"]


def test_workload_last_applied_annotation_has_its_env_masked():
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [_container("app", ENV)]}}},
    }
    doc = _with_last_applied(deployment)
    doc["metadata"]["namespace"] = "shop"
    masked = mask_document(doc)
    applied = json.loads(masked["metadata"]["annotations"][LAST_APPLIED_ANNOTATION])
    assert applied["spec"]["template"]["spec"]["containers"][0]["env"] == MASKED_ENV


def test_other_objects_get_patterns_on_annotation_values():
    doc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web",
            "annotations": {
                "example.com/hook": "https://ci:hunter2@ci.example.com/hook",
                "example.com/owner": "team-shop",
            },
        },
    }
    annotations = mask_document(doc)["metadata"]["annotations"]
    assert annotations == {
        "example.com/hook": f"https://ci:{MASK}@ci.example.com/hook",
        "example.com/owner": "team-shop",
    }


def test_secret_embedded_in_a_custom_resource_is_masked():
    doc = {
        "apiVersion": "example.com/v1",
        "kind": "Bundle",
        "metadata": {"name": "b"},
        "spec": {"resources": [_secret(), {"kind": "Secret", "data": {"k": _b64("hunter2")}}]},
    }
    resources = mask_document(doc)["spec"]["resources"]
    assert [r["data"] for r in resources] == [
        {"password": MASKED_DATA_VALUE, "user": MASKED_DATA_VALUE},
        {"k": MASKED_DATA_VALUE},
    ]


def test_references_to_secrets_are_not_mangled():
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "db.1", "namespace": "shop"},
        "involvedObject": {"kind": "Secret", "apiVersion": "v1", "name": "db", "namespace": "shop"},
        "message": "Secret db was rotated",
    }
    assert mask_document(event) == event


def test_pattern_masking_keeps_json_structure_of_string_values():
    value = '{"password": "hunter2", "nested": {"token": "abc"}}'
    masked = mask_document(_config_map({"config.json": value}))
    inner = json.loads(masked["data"]["config.json"])
    assert inner == {"password": MASK, "nested": {"token": MASK}}


# --- text patterns ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern,text,expected",
    [
        (
            "aws-access-key",
            "id AKIAIOSFODNN7EXAMPLE, tmp ASIAY34FZKBOKMUTVV7A.",
            f"id {MASK}, tmp {MASK}.",
        ),
        (
            "aws-secret-key",
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            f"aws_secret_access_key = {MASK}",
        ),
        (
            "aws-secret-key",
            '"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
            f'"SecretAccessKey": "{MASK}"',
        ),
        (
            "private-key",
            "key:\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\nAoGCCqGSM49\n"
            "-----END EC PRIVATE KEY-----\nok",
            f"key:\n-----BEGIN EC PRIVATE KEY-----{MASK}-----END EC PRIVATE KEY-----\nok",
        ),
        (
            "private-key",
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----",
            f"-----BEGIN PGP PRIVATE KEY BLOCK-----{MASK}-----END PGP PRIVATE KEY BLOCK-----",
        ),
        (
            "private-key",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhk (truncated",
            f"-----BEGIN ENCRYPTED PRIVATE KEY-----{MASK}",
        ),
        (
            "private-key",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        ),
        (
            "jwt",
            "id_token=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhYmMifQ.c2lnbmF0dXJl done",
            f"id_token={MASK} done",
        ),
        (
            "password-assignment",
            "login password=hunter2 user=bob",
            f"login password={MASK} user=bob",
        ),
        ("password-assignment", "PASSWD: 'hunter 2'", f"PASSWD: '{MASK}'"),
        ("password-assignment", "Secret = s3cr3t; next", f"Secret = {MASK}; next"),
        (
            "password-assignment",
            "client_secret=abc&grant_type=x",
            f"client_secret={MASK}&grant_type=x",
        ),
        ("password-assignment", '{"api_key":"k-123","id":1}', f'{{"api_key":"{MASK}","id":1}}'),
        ("password-assignment", 'token: "unterminated', f'token: "{MASK}'),
        ("password-assignment", "redis://:hunter2@cache:6379/0", f"redis://:{MASK}@cache:6379/0"),
        ("password-assignment", "https://user:p@ss@host/x", f"https://user:{MASK}@host/x"),
        ("password-assignment", "https://host/x?user=bob", "https://host/x?user=bob"),
        ("bearer-token", "Authorization: Bearer abc.def-ghi", f"Authorization: Bearer {MASK}"),
        (
            "bearer-token",
            "-H 'authorization: Basic dXNlcjpwYXNz'",
            f"-H 'authorization: Basic {MASK}'",
        ),
        ("bearer-token", "Authorization: Negotiate YIIabc==", f"Authorization: {MASK}"),
        ("bearer-token", "sent bearer 0123456789abcdef", f"sent bearer {MASK}"),
        ("slack-token", "SLACK=xoxb-1234-5678-abcdEFGH", f"SLACK={MASK}"),
        (
            "github-token",
            "t ghp_0123456789abcdefghijABCDEFGHIJ012345 gho_0123456789abcdefghijK",
            f"t {MASK} {MASK}",
        ),
        ("github-token", "github_pat_11ABCDEFG0_0123456789abcdefghij", MASK),
    ],
)
def test_each_pattern_masks_only_the_secret_part(pattern, text, expected):
    assert mask_text(text, MaskingSettings(patterns=(pattern,))) == expected


def test_text_without_credentials_is_unchanged():
    log = "2024-01-01T00:00:00Z INFO served GET /api/v1/pods in 5ms (tokens used: none)\n"
    assert mask_text(log) == log


def test_disabled_patterns_leave_text_alone():
    text = "password=hunter2 AKIAIOSFODNN7EXAMPLE"
    assert mask_text(text, NO_PATTERNS) == text


def test_masking_a_huge_hostile_log_line_takes_linear_time():
    hostile = "token" * 200_000 + "eyJ" * 100_000 + "a://" * 100_000 + "password   " * 50_000
    started = time.monotonic()
    mask_text(hostile)
    assert time.monotonic() - started < 5


# --- settings --------------------------------------------------------------------------------


def test_pattern_names_are_the_documented_built_ins():
    assert PATTERN_NAMES == {
        "aws-access-key",
        "aws-secret-key",
        "private-key",
        "jwt",
        "password-assignment",
        "bearer-token",
        "slack-token",
        "github-token",
    }


def test_default_settings_enable_every_pattern():
    assert set(DEFAULT_SETTINGS.patterns) == PATTERN_NAMES
    assert DEFAULT_SETTINGS.secret_data is True


def test_unknown_pattern_names_are_refused():
    with pytest.raises(ValueError, match="unknown masking pattern"):
        MaskingSettings(patterns=("aws-access-key", "credit-card"))


def test_secret_data_masking_cannot_be_turned_off():
    with pytest.raises(ValueError, match="always on"):
        MaskingSettings(secret_data=False)


# --- properties ------------------------------------------------------------------------------

NAMES = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=12)
KEYS = st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=1, max_size=12)
# Planted values carry a marker no generated structure contains, so finding one means a leak.
TEXT_SECRETS = st.text(min_size=4, max_size=40).map(lambda s: "PLANTED" + s)
BINARY_SECRETS = st.binary(min_size=4, max_size=40).map(lambda b: b"\x00PLANTED" + b)


@st.composite
def planted_secrets(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    """A Secret with random text and binary values, and the strings that must not survive."""
    name = draw(NAMES)
    binary = draw(st.dictionaries(KEYS, BINARY_SECRETS, max_size=4))
    text = draw(st.dictionaries(KEYS, TEXT_SECRETS, max_size=4))
    string_data = draw(st.dictionaries(KEYS, TEXT_SECRETS, max_size=2))
    data = {k: _b64(v) for k, v in binary.items()} | {k: _b64(v) for k, v in text.items()}
    secret = _secret(name, data)
    if string_data:
        secret["stringData"] = string_data
    if draw(st.booleans()):
        secret = _with_last_applied(secret)
    if draw(st.booleans()):
        del secret["kind"], secret["apiVersion"]  # as items of a typed list arrive
    forbidden = (
        [_b64(v) for v in binary.values()]
        + [_b64(v) for v in text.values()]
        + list(text.values())
        + list(string_data.values())
    )
    return secret, forbidden


def _strings(value: Any) -> Iterator[str]:
    """Every string in a document, looking inside strings that are themselves JSON."""
    if isinstance(value, str):
        yield value
        try:
            inner = json.loads(value)
        except ValueError:
            return
        if isinstance(inner, (dict, list)):
            yield from _strings(inner)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _assert_nothing_survives(masked: Any, forbidden: list[str]) -> None:
    dumped = json.dumps(masked)
    dumped_utf8 = json.dumps(masked, ensure_ascii=False)
    strings = list(_strings(masked))
    for value in forbidden:
        assert json.dumps(value)[1:-1] not in dumped
        assert json.dumps(value, ensure_ascii=False)[1:-1] not in dumped_utf8
        assert not any(value in s for s in strings)


def _secret_data_values(value: Any) -> Iterator[str]:
    """Every value under a ``data`` key of anything that looks like a Secret."""
    if isinstance(value, dict):
        if value.get("kind") == "Secret" or ("data" in value and "type" in value):
            data = value.get("data")
            if isinstance(data, dict):
                yield from data.values()
        for item in value.values():
            yield from _secret_data_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _secret_data_values(item)
    elif isinstance(value, str) and value.startswith("{"):
        try:
            yield from _secret_data_values(json.loads(value))
        except ValueError:
            return


@st.composite
def secret_documents(draw: st.DrawFn) -> tuple[Any, list[str]]:
    """Secrets inside an object, typed list, generic List, Table or watch event."""
    planted = draw(st.lists(planted_secrets(), min_size=1, max_size=3))
    secrets = [s for s, _ in planted]
    forbidden = [f for _, fs in planted for f in fs]
    shape = draw(st.sampled_from(["object", "SecretList", "List", "Table", "event", "TableEvent"]))
    kinded = [s | {"kind": "Secret", "apiVersion": "v1"} for s in secrets]
    if shape == "object":
        doc: Any = kinded[0]
    elif shape == "SecretList":
        doc = {"kind": "SecretList", "apiVersion": "v1", "metadata": {}, "items": secrets}
    elif shape == "List":
        doc = {"kind": "List", "apiVersion": "v1", "items": kinded}
    elif shape == "Table":
        doc = _secret_table(kinded, draw(st.sampled_from(["None", "Metadata", "Object"])))
    elif shape == "event":
        doc = {"type": draw(st.sampled_from(["ADDED", "MODIFIED", "DELETED"])), "object": kinded[0]}
    else:
        table = _secret_table(kinded[:1], draw(st.sampled_from(["None", "Metadata", "Object"])))
        doc = {"type": "ADDED", "object": table}
    return doc, forbidden


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secret_documents())
def test_no_secret_value_survives_masking_in_any_shape(case):
    doc, forbidden = case
    masked = mask_document(doc)
    _assert_nothing_survives(masked, forbidden)
    values = list(_secret_data_values(masked))
    assert all(v == MASKED_DATA_VALUE for v in values)
    assert all(base64.b64decode(v, validate=True).decode() == MASK for v in values)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(secret_documents(), min_size=1, max_size=4), st.booleans())
def test_no_secret_value_survives_a_watch_stream(cases, cut_last_line):
    events = [
        doc if isinstance(doc, dict) and "object" in doc else {"type": "ADDED", "object": doc}
        for doc, _ in cases
    ]
    stream = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    if cut_last_line:
        stream = stream[: -len(stream) // 7]
    out = mask_watch_stream(stream)
    decoded = [json.loads(line) for line in out.splitlines()]
    for value in [f for _, fs in cases for f in fs]:
        assert json.dumps(value)[1:-1].encode() not in out
    _assert_nothing_survives(decoded, [f for _, fs in cases for f in fs])
    assert all(v == MASKED_DATA_VALUE for v in _secret_data_values(decoded))


B64URL = string.ascii_letters + string.digits + "-_"
B64 = string.ascii_letters + string.digits + "+/"
ALNUM = string.ascii_letters + string.digits


@st.composite
def pattern_secrets(draw: st.DrawFn) -> tuple[str, str]:
    """(text as it would appear, the secret part that must not survive)."""
    kind = draw(st.sampled_from([*sorted(PATTERN_NAMES), "url-credentials"]))
    if kind == "aws-access-key":
        secret = draw(st.sampled_from(["AKIA", "ASIA"])) + draw(
            st.text(alphabet=string.ascii_uppercase + string.digits, min_size=16, max_size=16)
        )
        return secret, secret
    if kind == "aws-secret-key":
        secret = draw(st.text(alphabet=B64, min_size=40, max_size=40))
        key = draw(
            st.sampled_from(
                [
                    "aws_secret_access_key",
                    "AWS_SECRET_ACCESS_KEY",
                    "SecretAccessKey",
                    "aws-secret-key",
                ]
            )
        )
        sep = draw(st.sampled_from(["=", " = ", ": ", '": "']))
        return f"{key}{sep}{secret}", secret
    if kind == "private-key":
        label = draw(st.sampled_from(["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED ", "DSA "]))
        body = draw(
            st.lists(st.text(alphabet=B64, min_size=16, max_size=64), min_size=1, max_size=4)
        )
        text = (
            f"-----BEGIN {label}PRIVATE KEY-----\n"
            + "\n".join(body)
            + f"\n-----END {label}PRIVATE KEY-----"
        )
        return text, body[0]
    if kind == "jwt":
        header = "eyJ" + draw(st.text(alphabet=B64URL, min_size=8, max_size=40))
        payload = "eyJ" + draw(st.text(alphabet=B64URL, min_size=8, max_size=80))
        signature = draw(st.text(alphabet=B64URL, min_size=8, max_size=60))
        token = f"{header}.{payload}.{signature}"
        return token, token
    if kind == "password-assignment":
        key = draw(
            st.sampled_from(
                [
                    "password",
                    "passwd",
                    "secret",
                    "token",
                    "api_key",
                    "DB_PASSWORD",
                    "Api-Key",
                    "client_secret",
                ]
            )
        )
        value = draw(st.text(alphabet=ALNUM, min_size=8, max_size=30))
        form = draw(st.sampled_from(["{k}={v}", "{k}: {v}", '"{k}": "{v}"', "{k} = '{v}'"]))
        return form.format(k=key, v=value), value
    if kind == "url-credentials":
        password = draw(st.text(alphabet=ALNUM + "!$*", min_size=8, max_size=30))
        return f"postgres://app:{password}@db.shop:5432/orders", password
    if kind == "bearer-token":
        token = draw(st.text(alphabet=ALNUM + "._-", min_size=16, max_size=60))
        return f"Authorization: Bearer {token}", token
    if kind == "slack-token":
        token = (
            "xox"
            + draw(st.sampled_from("baprs"))
            + "-"
            + draw(st.text(alphabet=ALNUM + "-", min_size=10, max_size=40))
        )
        return token, token
    token = draw(st.sampled_from(["ghp_", "gho_", "ghs_"])) + draw(
        st.text(alphabet=ALNUM, min_size=36, max_size=36)
    )
    return token, token


FILLER = st.text(alphabet=string.ascii_letters + string.digits + " .,:-_\n", max_size=20)


def _place(where: str, texts: list[str], keys: list[str]) -> Any:
    """Put texts where credentials turn up: log, ConfigMap, env, annotation, cell, custom."""
    if where == "log":
        return "\n".join(texts)
    if where == "configmap":
        return _config_map(dict(zip(keys, texts, strict=False)))
    if where == "env":
        env = [{"name": f"VAR_{i}", "value": text} for i, text in enumerate(texts)]
        return {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"name": "p"},
            "spec": {"containers": [_container("app", env)]},
        }
    if where == "annotation":
        annotations = {f"example.com/a{i}": text for i, text in enumerate(texts)}
        return {
            "kind": "Service",
            "apiVersion": "v1",
            "metadata": {"name": "s", "annotations": annotations},
        }
    if where == "cell":
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "columnDefinitions": [{"name": "Name"}, {"name": "Info"}],
            "rows": [{"cells": ["x", text]} for text in texts],
        }
    return {
        "kind": "Widget",
        "apiVersion": "example.com/v1",
        "metadata": {"name": "w"},
        "spec": {"notes": texts},
    }


@st.composite
def pattern_documents(draw: st.DrawFn) -> tuple[Any, list[str]]:
    """Pattern secrets planted in log text, ConfigMap data, env values, annotations, cells."""
    planted = draw(st.lists(pattern_secrets(), min_size=1, max_size=4))
    forbidden = [secret for _, secret in planted]
    # Generated filler and keys must not happen to contain a planted secret themselves.
    filler = FILLER.filter(lambda text: not any(secret in text for secret in forbidden))
    texts = [f"{draw(filler)} {text}\n{draw(filler)}" for text, _ in planted]
    keys = draw(
        st.lists(
            KEYS.filter(lambda key: not any(s in key for s in forbidden)),
            min_size=len(texts),
            max_size=len(texts),
            unique=True,
        )
    )
    where = draw(st.sampled_from(["log", "configmap", "env", "annotation", "cell", "custom"]))
    # Nor may the surrounding structure ("apiVersion", ...) contain one by chance.
    skeleton = json.dumps(_place(where, ["" for _ in texts], keys))
    assume(not any(secret in skeleton for secret in forbidden))
    # A "secret" that is a piece of the mask marker itself is found in every masked output.
    assume(not any(secret in MASK or secret in MASKED_DATA_VALUE for secret in forbidden))
    return _place(where, texts, keys), forbidden


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern_documents())
def test_no_configured_pattern_secret_survives_masking(case):
    doc, forbidden = case
    masked = mask_text(doc) if isinstance(doc, str) else mask_document(doc)
    dumped = json.dumps(masked)
    for secret in forbidden:
        assert secret not in dumped
        assert json.dumps(secret)[1:-1] not in dumped
