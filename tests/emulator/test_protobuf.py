"""The emulator's protobuf request decoding, on bodies encoded here field by field."""

from __future__ import annotations

import pytest
from eksgate_local.kube_emulator.errors import ApiError
from eksgate_local.kube_emulator.protobuf import MAGIC, decode_object


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, value: bytes | str | int) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    raw = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(raw)) + raw


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return MAGIC + field(1, field(1, api_version) + field(2, kind)) + field(2, raw)


def test_a_configmap_decodes_with_go_s_empty_fields_left_out():
    meta = (
        field(1, "cm")
        + field(2, "")
        + field(3, "shop")
        + field(7, 0)
        + field(8, b"")  # creationTimestamp: an empty Time, written anyway
        + field(11, field(1, "app") + field(2, "web"))
    )
    body = envelope(
        "v1",
        "ConfigMap",
        field(1, meta)
        + field(2, field(1, "k") + field(2, "v"))
        + field(3, field(1, "bin") + field(2, b"\x00\x01")),
    )
    assert decode_object(body) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "shop", "labels": {"app": "web"}},
        "data": {"k": "v"},
        "binaryData": {"bin": "AAE="},
    }


def test_a_self_subject_access_review_keeps_its_attributes():
    attributes = field(1, "shop") + field(2, "get") + field(5, "pods")
    body = envelope(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        field(1, b"") + field(2, field(1, attributes)) + field(3, field(1, 0) + field(3, "")),
    )  # an all-zero status
    assert decode_object(body)["spec"] == {
        "resourceAttributes": {"namespace": "shop", "verb": "get", "resource": "pods"}
    }


def test_an_unknown_field_with_a_value_is_refused_not_dropped():
    body = envelope("v1", "ConfigMap", field(1, field(1, "cm")) + field(9, "surprise"))
    with pytest.raises(ApiError) as refused:
        decode_object(body)
    assert refused.value.code == 415 and "field 9 of ConfigMap" in str(refused.value.status())


def test_a_kind_it_cannot_decode_is_refused_with_a_way_out():
    with pytest.raises(ApiError) as refused:
        decode_object(envelope("apps/v1", "Deployment", b""))
    assert refused.value.code == 415 and "send JSON" in str(refused.value.status())


@pytest.mark.parametrize("body", [b"not protobuf", MAGIC + b"\x0a\x05ab", MAGIC + b"\x08\xff"])
def test_broken_bodies_are_bad_requests(body):
    with pytest.raises(ApiError) as refused:
        decode_object(body)
    assert refused.value.code == 400
