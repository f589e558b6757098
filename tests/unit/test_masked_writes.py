"""Writes carrying eksgate's mask are found in every body type, and named by field."""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.approvals.diff import (
    HIDDEN_CHANGE,
    changes_anything,
    mark_hidden_changes,
    object_diff,
)
from chalicelib.errors import BadRequest
from chalicelib.gateway.masked_writes import WHOLE_BODY, masked_fields, masked_write_refusal
from chalicelib.masking import LAST_APPLIED_ANNOTATION, MASK, MASKED_DATA_VALUE, mask_document

pytestmark = pytest.mark.adversarial

JSON = "application/json"


def body(document) -> bytes:
    return json.dumps(document).encode()


def test_a_config_map_read_back_names_every_masked_field():
    read = mask_document(
        {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {
                "name": "app",
                "annotations": {
                    LAST_APPLIED_ANNOTATION: json.dumps(
                        {"kind": "ConfigMap", "data": {"DATABASE_URL": "postgres://u:hunter2@db/x"}}
                    )
                },
            },
            "data": {"DATABASE_URL": "postgres://u:hunter2@db/x", "LOG_LEVEL": "info"},
        }
    )
    assert masked_fields(body(read), JSON) == [
        f"metadata.annotations[{LAST_APPLIED_ANNOTATION}]",
        "data.DATABASE_URL",
    ]


def test_a_secret_read_back_is_found_by_its_base64_marker():
    read = mask_document(
        {
            "kind": "Secret",
            "metadata": {"name": "s"},
            "data": {"password": base64.b64encode(b"pw").decode()},
        }
    )
    assert read["data"]["password"] == MASKED_DATA_VALUE
    assert masked_fields(body(read), JSON) == ["data.password"]


@pytest.mark.parametrize("media", ["application/yaml", "application/apply-patch+yaml"])
def test_yaml_bodies(media):
    document = {"kind": "Secret", "metadata": {"name": "s"}, "data": {"token": MASKED_DATA_VALUE}}
    assert masked_fields(yaml.safe_dump(document).encode(), media) == ["data.token"]


def test_env_values_are_named_by_position():
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "env": [{"name": "A", "value": "1"}, {"name": "PW", "value": MASK}],
                        }
                    ]
                }
            }
        }
    }
    assert masked_fields(body(patch), "application/strategic-merge-patch+json") == [
        "spec.template.spec.containers[0].env[1].value"
    ]


def test_json_patch_writing_ops_are_checked_and_test_ops_are_not():
    patch = [
        {"op": "test", "path": "/data/a", "value": MASK},
        {"op": "replace", "path": "/data/b", "value": f"password={MASK}"},
        {"op": "add", "path": "/data", "value": {"c": MASKED_DATA_VALUE}},
        {"op": "remove", "path": "/data/d"},
    ]
    assert masked_fields(body(patch), "application/json-patch+json") == ["/data/b", "/data.c"]


def test_base64_of_text_holding_the_mask_is_found():
    inner = base64.b64encode(f"key: {MASK}\nother: 1\n".encode()).decode()
    assert masked_fields(body({"binaryData": {"blob": inner}}), JSON) == ["binaryData.blob"]


def test_json_unicode_escapes_do_not_hide_the_marker():
    escaped = b'{"data": {"pw": "\\u002a\\u002a\\u002aMASKED\\u002a\\u002a\\u002a"}}'
    assert masked_fields(escaped, JSON) == ["data.pw"]


@pytest.mark.parametrize(
    "raw",
    [
        b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret" + MASK.encode() + b"\x00",  # protobuf-like
        b"{not json " + MASKED_DATA_VALUE.encode(),
        b"\xff\xfe" + MASK.encode(),
    ],
)
def test_bodies_that_cannot_be_parsed_are_searched_as_bytes(raw):
    assert masked_fields(raw, "application/vnd.kubernetes.protobuf") == [WHOLE_BODY]


@pytest.mark.parametrize(
    "document",
    [
        {"data": {"LOG_LEVEL": "warn"}},
        {
            "data": {"note": "masking uses asterisks"},
            "binaryData": {"b": "aGVsbG8gd29ybGQgaGVsbG8="},
        },
        [{"op": "replace", "path": "/spec/replicas", "value": 3}],
    ],
)
def test_clean_bodies_pass(document):
    assert masked_fields(body(document), JSON) == []
    assert masked_fields(None, JSON) == [] and masked_fields(b"", JSON) == []


@given(
    st.recursive(
        st.text(max_size=20) | st.integers() | st.booleans() | st.none(),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(min_size=1, max_size=8), children, max_size=4)
        ),
        max_leaves=20,
    ),
    st.sampled_from([MASK, MASKED_DATA_VALUE, f"x={MASK}"]),
)
def test_the_marker_planted_anywhere_is_found(document, marker):
    planted = {"spec": document, "planted": [document, {"value": marker}]}
    assert masked_fields(body(planted), JSON), planted


def test_the_refusal_names_fields_and_the_way_that_works():
    error = masked_write_refusal(["data.password"], "secrets/db -n shop", "kubectl edit")
    assert isinstance(error, BadRequest) and error.status == 400
    assert "data.password" in error.message and "kubectl patch secrets/db -n shop" in error.message
    assert "kubectl edit sends back" in error.message
    assert error.details == {"data.password": f"holds eksgate's mask {MASK}"}


# --- the approver's diff ----------------------------------------------------------------------

CURRENT = {
    "kind": "ConfigMap",
    "metadata": {"name": "c", "resourceVersion": "1"},
    "data": {"url": "postgres://u:old-password@db/x", "level": "info"},
}


def test_a_change_only_masking_hides_is_shown_as_changed():
    proposed = {**CURRENT, "data": {**CURRENT["data"], "url": "postgres://u:new-password@db/x"}}
    masked_before, masked_after = mask_document(CURRENT), mask_document(proposed)
    assert masked_before == masked_after  # what the diff saw before
    marked = mark_hidden_changes(CURRENT, proposed, masked_before, masked_after)
    diff = object_diff(masked_before, marked)
    assert HIDDEN_CHANGE in diff and "new-password" not in diff and "old-password" not in diff
    assert "level" not in diff.split("@@")[-1].replace(" level: info", "")


def test_secret_data_changes_are_marked_per_key():
    before = {"kind": "Secret", "data": {"a": "MQ==", "b": "Mg=="}}
    after = {"kind": "Secret", "data": {"a": "MQ==", "b": "Mw=="}}
    marked = mark_hidden_changes(before, after, mask_document(before), mask_document(after))
    assert marked["data"] == {"a": MASKED_DATA_VALUE, "b": f"{HIDDEN_CHANGE} {MASKED_DATA_VALUE}"}


def test_no_op_writes_are_recognised_and_server_fields_ignored():
    echoed = {
        **CURRENT,
        "metadata": {
            **CURRENT["metadata"],
            "resourceVersion": "2",
            "managedFields": [{"manager": "kubectl"}],
        },
    }
    assert not changes_anything(CURRENT, echoed)
    assert changes_anything(CURRENT, {**CURRENT, "data": {"level": "info"}})
    assert changes_anything(CURRENT, {**CURRENT, "metadata": {"name": "c", "labels": {"a": "b"}}})
    with_status = {**CURRENT, "status": {"phase": "x"}}
    assert not changes_anything(CURRENT, with_status)
    assert changes_anything(CURRENT, with_status, subresource="status")
