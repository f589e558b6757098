"""Masking that reads text the way its format does, and objects by what they really are.

Issue 16 (formats, fragments, metadata-only reads, binaryData) and issue 11's masking
vocabulary: each class has examples here, and a property test plants values in every format
and response shape and looks for them raw, JSON-escaped, URL-encoded and base64-encoded.
"""

from __future__ import annotations

import base64
import copy
import json
import string
import urllib.parse
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.masking import (
    DEFAULT_SETTINGS,
    LAST_APPLIED_ANNOTATION,
    MASK,
    MASKED_DATA_VALUE,
    MaskingSettings,
    kind_for_resource,
    mask_document,
    mask_json,
    mask_text,
    mask_watch_stream,
)
from chalicelib.masking.scanner import scanner_for

SECRET_VALUE = "opensesame42"


def _b64(value: bytes | str) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode()


def _config_map(data: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "shop"},
        **({"data": data} if data is not None else {}),
        **extra,
    }


# --- vocabulary (issue 11) -------------------------------------------------------------------

CREDENTIAL_KEYS = [
    "mysql_pwd",
    "pwd",
    "pass",
    "DB_PASS",
    "passphrase",
    "credentials",
    "private_key",
    "access_key",
    "auth",
    "basicAuth",
    "conn_str",
    "connectionString",
    "client_secret",
    "apiKey",
    "x-api-key",
    "refresh_token",
]
NOT_CREDENTIAL_KEYS = ["secretName", "tokenExpirationSeconds", "passwordFile", "author", "bypass"]


def _shapes(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """The same object as a get, a list, a Table row and a watch event."""
    return {
        "object": obj,
        "list": {"kind": f"{kind}List", "apiVersion": "v1", "items": [obj]},
        "table": {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "columnDefinitions": [{"name": "Name"}],
            "rows": [{"cells": ["x"], "object": obj}],
        },
        "watch": {"type": "ADDED", "object": obj},
    }


@pytest.mark.parametrize("key", CREDENTIAL_KEYS)
@pytest.mark.parametrize("shape", ["object", "list", "table", "watch"])
def test_values_under_credential_keys_are_masked_in_every_shape(key, shape):
    pod = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "p", "annotations": {f"example.com/{key}": SECRET_VALUE}},
        "spec": {"containers": [{"name": "a", "env": [{"name": key, "value": SECRET_VALUE}]}]},
    }
    widget = {
        "kind": "Widget",
        "apiVersion": "example.com/v1",
        "metadata": {"name": "w"},
        "spec": {"database": {key: SECRET_VALUE}, "notes": f"{key}: {SECRET_VALUE}"},
    }
    for obj, kind in (
        (_config_map({key: SECRET_VALUE}), "ConfigMap"),
        (pod, "Pod"),
        (widget, "Widget"),
    ):
        doc = _shapes(obj, kind)[shape]
        assert SECRET_VALUE not in json.dumps(mask_document(doc)), (kind, key)
        assert SECRET_VALUE.encode() not in mask_json(json.dumps(doc).encode())


@pytest.mark.parametrize("key", NOT_CREDENTIAL_KEYS)
def test_keys_that_only_name_where_a_credential_is_are_kept(key):
    masked = mask_document(_config_map({key: "db-creds"}))
    assert masked["data"] == {key: "db-creds"}


@pytest.mark.parametrize(
    "token",
    [
        "ghp_0123456789abcdefghijABCDEFGHIJ012345",
        "xoxb-1234567890-abcdefghijKLMN",
        "glpat-abcdefghij0123456789",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "npm_abcdefghijklmnopqrstuvwxyz0123456789",
        "sk_live_0123456789abcdefABCDEF",
        "hvs.CAESIJabcdefghijklmnopqrstuvwxyz",
    ],
)
def test_provider_tokens_are_masked_under_the_shipped_policies(token):
    from chalicelib.config import DEFAULT_POLICY_DIR
    from chalicelib.policy.loader import load_policies

    for policy in load_policies(DEFAULT_POLICY_DIR):
        assert token not in mask_text(f"token {token} end", policy.masking), policy.name


def test_a_policy_masks_every_pattern_unless_it_says_except():
    from chalicelib.policy.loader import load_policy_text
    from tests.unit.test_policy import VALID

    [default] = load_policy_text(VALID)
    [narrowed] = load_policy_text(VALID + "masking: {except: [jwt]}\n")
    assert set(default.masking.patterns) == set(DEFAULT_SETTINGS.patterns)
    assert "jwt" not in narrowed.masking.patterns
    assert set(narrowed.masking.patterns) == set(DEFAULT_SETTINGS.patterns) - {"jwt"}
    assert MaskingSettings.excepting(("jwt",)).patterns == narrowed.masking.patterns


def test_lint_warns_about_narrowed_masking_and_refuses_both_forms():
    from chalicelib.policy.loader import load_policy_text
    from eksgate.policy_cmd import lint_warnings
    from tests.unit.test_policy import VALID, errors_for

    for masking in ("masking: {except: [jwt]}\n", "masking: {patterns: [jwt]}\n"):
        warnings = [str(w) for w in lint_warnings(load_policy_text(VALID + masking), None)]
        assert any("masking is narrowed" in w and "jwt" not in w.split(":")[-1] for w in warnings)
    assert not lint_warnings(load_policy_text(VALID), None)
    both = errors_for(VALID + "masking: {patterns: [jwt], except: [jwt]}\n")
    assert any("not both" in e for e in both)


# --- kind from the request (issue 16) --------------------------------------------------------


def _lying_secret(claim: str) -> dict[str, Any]:
    applied = {"kind": claim, "apiVersion": "v1", "data": {"pw": _b64(SECRET_VALUE)}}
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {
            "name": "db",
            "namespace": "shop",
            "annotations": {LAST_APPLIED_ANNOTATION: json.dumps(applied) + "\n"},
        },
    }


def _metadata_shapes(obj: dict[str, Any]) -> list[Any]:
    return [
        obj,
        {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "items": [obj]},
        {"type": "MODIFIED", "object": obj},
        {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "columnDefinitions": [{"name": "Name"}, {"name": "Age"}],
            "rows": [{"cells": ["db", "1d"], "object": obj}],
        },
    ]


@pytest.mark.parametrize("claim", ["ConfigMap", "secret", "Pod", ""])
@pytest.mark.parametrize("resource_kind", ["Secret", ""])
def test_metadata_only_reads_never_trust_a_lying_annotation(claim, resource_kind):
    for doc in _metadata_shapes(_lying_secret(claim)):
        masked = mask_document(doc, resource_kind=resource_kind)
        assert _b64(SECRET_VALUE) not in json.dumps(masked)
        stream = mask_watch_stream(
            json.dumps({"type": "ADDED", "object": doc}).encode() + b"\n",
            resource_kind=resource_kind,
        )
        assert _b64(SECRET_VALUE).encode() not in stream


def test_the_requested_kind_decides_for_a_secret_read_as_metadata():
    masked = mask_document(_lying_secret("ConfigMap"), resource_kind="Secret")
    applied = json.loads(masked["metadata"]["annotations"][LAST_APPLIED_ANNOTATION])
    assert applied["data"] == {"pw": MASKED_DATA_VALUE}
    assert applied["kind"] == "ConfigMap"  # what it claimed is shown, not obeyed


def test_a_config_maps_own_metadata_keeps_its_plain_settings():
    applied = _config_map({"mode": "fast", "password": SECRET_VALUE})
    meta = copy.deepcopy(_lying_secret("ConfigMap"))
    meta["metadata"]["annotations"][LAST_APPLIED_ANNOTATION] = json.dumps(applied)
    masked = mask_document(meta, resource_kind="ConfigMap")
    inner = json.loads(masked["metadata"]["annotations"][LAST_APPLIED_ANNOTATION])
    assert inner["data"] == {"mode": "fast", "password": MASK}


@pytest.mark.parametrize(
    "group,resource,subresource,kind",
    [
        ("", "secrets", "", "Secret"),
        ("", "configmaps", "", "ConfigMap"),
        ("", "serviceaccounts", "token", "TokenRequest"),
        ("authentication.k8s.io", "tokenreviews", "", "TokenReview"),
        ("apps", "deployments", "", ""),
        ("", "pods", "log", ""),
    ],
)
def test_kind_for_resource(group, resource, subresource, kind):
    assert kind_for_resource(group, resource, subresource) == kind


def test_a_secret_list_read_as_another_list_kind_is_still_masked_by_the_request():
    item = {"metadata": {"name": "db"}, "data": {"pw": _b64(SECRET_VALUE)}, "kind": "ConfigMap"}
    doc = {"kind": "ConfigMapList", "apiVersion": "v1", "items": [item]}
    assert mask_document(doc, resource_kind="Secret")["items"][0]["data"]["pw"] == MASKED_DATA_VALUE


def test_status_answers_to_a_secrets_request_pass_through():
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}
    assert mask_document(status, resource_kind="Secret") == status


# --- formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        'msg="login password=\\"opensesame42\\" ok"',
        '{\\"password\\":\\"opensesame42\\",\\"user\\":\\"bob\\"}',
        "db:\n  password: |\n    opensesame42\n    second-line\n  user: bob\n",
        "db:\n  password: >-\n    opensesame42\nother: 1\n",
        "- password: |+\n    opensesame42\n",
        "$password => 'opensesame42';",
        'password := "opensesame42"',
        "<password>opensesame42</password>",
        '<db user="x" password="opensesame42"/>',
        "<ns:dbPassword type='x'>opensesame42</ns:dbPassword>",
        "app --password opensesame42 --user bob",
        "app --db-token 'opensesame42'",
        "mysql -u root -popensesame42 shop",
        "mysql --password=x -u root -p opensesame42",
        "sshpass -p opensesame42 ssh host",
        "redis-cli -h cache -a opensesame42 ping",
        "curl -u bob:opensesame42 https://example.com",
        "export MYSQL_PWD=opensesame42\n",
        "spring.datasource.password=opensesame42\n",
        "db.pass = opensesame42\n",
        'ConnectionStrings__Default="Server=x;Password=opensesame42"',
    ],
)
def test_values_are_found_the_way_their_format_writes_them(text):
    masked = mask_text(text)
    assert SECRET_VALUE not in masked
    assert MASK in masked


def test_yaml_block_masking_keeps_the_lines_around_it():
    text = "db:\n  password: |\n    opensesame42\n  user: bob\n"
    assert mask_text(text) == f"db:\n  password: |\n    {MASK}\n  user: bob\n"


# --- PEM fragments ---------------------------------------------------------------------------

BODY = [
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
    "MzKxAIJFo2VtbGxvd29ybGRoZWxsb3dvcmxkaGVsbG93b3JsZGhlbGxvd29ybGQx",
    "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4",
    "c2hvcnQ=",
]
PEM = ["-----BEGIN RSA PRIVATE KEY-----", *BODY, "-----END RSA PRIVATE KEY-----"]


@pytest.mark.parametrize("cut", range(1, len(PEM)))
@pytest.mark.parametrize("timestamps", [False, True])
def test_a_log_window_starting_inside_a_key_shows_none_of_it(cut, timestamps):
    lines = ["starting", *PEM, "ready"]
    if timestamps:
        lines = [f"2026-01-01T00:00:0{i % 10}.123456789Z {line}" for i, line in enumerate(lines)]
    window = "\n".join(lines[cut + 1 :]) + "\n"  # kubectl logs --tail=N starting mid-key
    masked = mask_text(window)
    for body_line in BODY:
        assert body_line not in masked


def test_body_lines_between_a_masked_region_and_an_end_line_are_masked():
    text = "key: " + MASK + "\n" + "\n".join(BODY) + "\n-----END PRIVATE KEY-----\n"
    masked = mask_text(text)
    assert not any(line in masked for line in BODY)
    assert masked.endswith("-----END PRIVATE KEY-----\n")


def test_a_certificate_is_not_a_key():
    cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    assert mask_text("log line\n" + cert) == "log line\n" + cert


# --- binaryData ------------------------------------------------------------------------------


def test_a_private_key_in_binary_data_is_masked():
    pem = "\n".join(PEM) + "\n"
    masked = mask_document(_config_map(binaryData={"tls.pem": _b64(pem)}))
    decoded = base64.b64decode(masked["binaryData"]["tls.pem"]).decode()
    assert not any(line in decoded for line in BODY)
    assert decoded.startswith("-----BEGIN RSA PRIVATE KEY-----")


def test_binary_data_under_a_credential_key_is_masked_whole():
    masked = mask_document(_config_map(binaryData={"db_password": _b64("x")}))
    assert masked["binaryData"]["db_password"] == MASKED_DATA_VALUE


@pytest.mark.parametrize("value", [_b64(b"\x00\xff\xfe binary"), "not base64!"])
def test_binary_data_that_cannot_be_scanned_is_withheld_by_default(value):
    masked = mask_document(_config_map(binaryData={"blob": value}))
    assert masked["binaryData"]["blob"] == MASKED_DATA_VALUE
    keep = MaskingSettings(unscannable_binary="keep")
    assert mask_document(_config_map(binaryData={"blob": value}), keep)["binaryData"] == {
        "blob": value
    }


def test_policies_choose_what_happens_to_unscannable_binary_data():
    from chalicelib.policy.loader import load_policy_text
    from tests.unit.test_policy import VALID, errors_for

    [policy] = load_policy_text(VALID + "masking: {unscannable_binary: keep}\n")
    assert policy.masking.unscannable_binary == "keep"
    [default] = load_policy_text(VALID)
    assert default.masking.unscannable_binary == "withhold"
    assert errors_for(VALID + "masking: {unscannable_binary: maybe}\n")


# --- escapes in the raw JSON -----------------------------------------------------------------


def test_a_key_spelled_with_json_escapes_is_still_a_key():
    body = b'{"kind":"ConfigMap","apiVersion":"v1","data":{"pass\\u0077ord":"opensesame42"}}'
    assert SECRET_VALUE.encode() not in mask_json(body)
    body = b'{"kind":"Widget","apiVersion":"v1","spec":{"u":"postgres:\\/\\/a:opensesame42@db"}}'
    assert SECRET_VALUE.encode() not in mask_json(body)


def test_mask_json_refuses_what_is_not_json():
    for body in (b"{", b"\xff", b'{"a":NaN}', b"[" * 5000 + b"]" * 5000):
        with pytest.raises(ValueError):
            mask_json(body)


# --- property: planted values in every format, shape and encoding ----------------------------

VALUES = st.text(alphabet=string.ascii_letters + string.digits, min_size=10, max_size=24).map(
    lambda s: "Pl4nt" + s
)
KEY_WORDS = st.sampled_from(
    [
        "password",
        "passwd",
        "pwd",
        "mysql_pwd",
        "DB_PASSWORD",
        "pass",
        "passphrase",
        "credentials",
        "private_key",
        "access_key",
        "apiKey",
        "auth",
        "client_secret",
        "token",
        "conn_str",
    ]
)


@st.composite
def formatted(draw: st.DrawFn) -> tuple[str, str]:
    """(text in some format holding a credential, the credential)."""
    value = draw(VALUES)
    key = draw(KEY_WORDS)
    form = draw(
        st.sampled_from(
            [
                "{k}={v}",
                "{k}: {v}",
                "{k} = '{v}'",
                '"{k}": "{v}"',
                '{{\\"{k}\\":\\"{v}\\"}}',
                '{k}=\\"{v}\\"',
                "{k}: |\n  {v}\n",
                "{k}: >-\n    {v}\n    more\n",
                "{k} => '{v}'",
                '{k} := "{v}"',
                "<{k}>{v}</{k}>",
                '<cfg {k}="{v}"/>',
                "run --{k} {v}",
                "mysql -u root -p{v}",
                "sshpass -p {v} ssh host",
                "postgres://app:{v}@db:5432/shop",
                "pem",
            ]
        )
    )
    if form == "pem":
        body = value + "A" * (64 - len(value))
        lines = [BODY[0], body, BODY[1], "-----END PRIVATE KEY-----"]
        start = draw(st.integers(0, 2))
        begin = ["-----BEGIN PRIVATE KEY-----"] if start == 0 else []
        return "\n".join(begin + lines[max(start - 1, 0) :]), value
    return form.format(k=key, v=value), value


FILLER = st.sampled_from(["", "INFO starting\n", "level=debug msg=ok\n", "# config\n"])


def _in_shape(shape: str, text: str) -> Any:
    if shape == "log":
        return text
    if shape == "configmap":
        return _config_map({"app.conf": text})
    if shape == "binarydata":
        return _config_map(binaryData={"app.conf": _b64(text)})
    if shape == "annotation":
        return {
            "kind": "Service",
            "apiVersion": "v1",
            "metadata": {"name": "s", "annotations": {"example.com/config": text}},
        }
    if shape == "env":
        return {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "env": [{"name": "CONFIG", "value": text}]}]},
        }
    if shape == "custom":
        return {
            "kind": "Widget",
            "apiVersion": "example.com/v1",
            "metadata": {"name": "w"},
            "spec": {"notes": [text]},
        }
    raise AssertionError(shape)


def _wrapped(envelope: str, obj: Any) -> Any:
    kind = obj.get("kind", "") if isinstance(obj, dict) else ""
    if envelope == "object":
        return obj
    if envelope == "list":
        return {"kind": f"{kind}List", "apiVersion": "v1", "items": [obj]}
    if envelope == "metadata":  # Accept: ...;as=PartialObjectMetadata
        return {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {}),
        }
    if envelope == "table":
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "columnDefinitions": [{"name": "Name"}],
            "rows": [{"cells": ["x"], "object": obj}],
        }
    return {"type": "ADDED", "object": obj}


def _forms(value: str) -> list[str]:
    return [
        value,
        json.dumps(value)[1:-1],
        urllib.parse.quote(value, safe=""),
        _b64(value),
    ]


def _visible_text(masked: Any) -> str:
    """Everything a client could read: the JSON, plus binaryData decoded."""
    parts = [masked if isinstance(masked, str) else json.dumps(masked)]

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "binaryData" and isinstance(item, dict):
                    parts.extend(
                        base64.b64decode(v).decode("utf-8", "replace") for v in item.values()
                    )
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(masked)
    return "\n".join(parts)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(formatted(), min_size=1, max_size=3),
    FILLER,
    st.sampled_from(["log", "configmap", "binarydata", "annotation", "env", "custom"]),
    st.sampled_from(["object", "list", "table", "watch", "metadata"]),
    st.sampled_from(["document", "json", "stream"]),
)
def test_no_planted_value_survives_in_any_format_shape_or_encoding(
    planted, filler, shape, envelope, path
):
    text = filler + "\n".join(t for t, _ in planted) + "\n" + filler
    values = [v for _, v in planted]
    obj = _in_shape(shape, text)
    if isinstance(obj, str):
        visible = mask_text(obj)
    else:
        doc = _wrapped(envelope, obj)
        if path == "document":
            masked = mask_document(doc)
        elif path == "json":
            masked = json.loads(mask_json(json.dumps(doc).encode()))
        else:
            line = json.dumps(doc if envelope == "watch" else {"type": "ADDED", "object": doc})
            masked = json.loads(mask_watch_stream(line.encode() + b"\n"))
        visible = _visible_text(masked)
    for value in values:
        for form in _forms(value):
            assert form not in visible, (form, text)


LINE_PARTS = st.sampled_from(
    [
        "INFO ok",
        "password=Pl4ntSecretValue1",
        "  token: |",
        "    Pl4ntSecretValue2",
        BODY[0],
        "-----BEGIN PRIVATE KEY-----",
        "-----END PRIVATE KEY-----",
        "curl -u a:Pl4ntSecretValue3 https://x",
        "GET https://user:Pl4ntSecretValue4@host/",
        "plain line with no credentials at all " * 3,
    ]
)


@settings(max_examples=100, deadline=None)
@given(st.lists(LINE_PARTS, min_size=1, max_size=400))
def test_large_texts_are_masked_as_if_whole(lines):
    """Big texts are scanned in windows around trigger words; the result is the same."""
    text = "\n".join(lines) + "\n"
    scanner = scanner_for(DEFAULT_SETTINGS.families)
    assert scanner._mask_in_windows(text, True) == scanner._mask_window(text, True)


def test_a_key_that_only_ends_like_the_annotation_is_still_scanned():
    key = 'x\\"kubectl.kubernetes.io/last-applied-configuration'
    body = (
        '{"kind":"Widget","apiVersion":"v1","metadata":{"name":"w"},"spec":{"'
        + key
        + '":"password=opensesame42"}}'
    ).encode()
    assert SECRET_VALUE.encode() not in mask_json(body)


def test_an_annotation_that_is_not_json_is_withheld_even_in_a_fast_read():
    body = json.dumps(
        {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": "p",
                "annotations": {LAST_APPLIED_ANNOTATION: "password=opensesame42 {not json"},
            },
        }
    ).encode()
    masked = json.loads(mask_json(body))
    assert masked["metadata"]["annotations"][LAST_APPLIED_ANNOTATION] == MASK


@pytest.mark.parametrize("padding", [0, 6000])
def test_an_xml_value_on_its_own_lines_is_masked_in_small_and_large_texts(padding):
    text = "x\n" * padding + "<config>\n  <password>\n    opensesame42\n  </password>\n</config>\n"
    assert SECRET_VALUE not in mask_text(text)


HOSTILE = {
    "begin-lines": "-----BEGIN RSA PRIVATE KEY-----\n" * 5_000,
    "nested-yaml-blocks": "".join(" " * (i % 60) + "password: |\n" for i in range(5_000)),
    "open-tags": "<password>\n" * 10_000,
    "unclosed-tags": "<password" * 20_000,
    "flags": "--password " * 20_000,
    "end-lines": ("QUJD" * 16 + "\n-----END PRIVATE KEY-----\n") * 3_000,
    "escaped-quotes": '\\"password\\":\\"' * 20_000,
    "tool-names": "mysql " * 30_000 + "-p x",
    "assignments": "password=" * 30_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_texts_are_masked_without_leaking_their_tail(name):
    """Shapes that made earlier scanners quadratic; each must still come out masked (the
    benchmark measures that they take linear time)."""
    text = HOSTILE[name] + "\npassword=opensesame42\n"
    assert SECRET_VALUE not in mask_text(text)


def test_integers_beyond_64_bits_come_back_exact():
    body = b'{"kind":"Widget","apiVersion":"v1","spec":{"n":123456789012345678901234567890}}'
    assert json.loads(mask_json(body))["spec"]["n"] == 123456789012345678901234567890
