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
        decode_object(envelope("batch/v1", "Job", b""))
    assert refused.value.code == 415 and "send JSON" in str(refused.value.status())


def empty_meta() -> bytes:
    """ObjectMeta as Go writes it for an object with only a name: every non-pointer field."""
    return b"".join(field(n, "") for n in (2, 3, 4, 5, 6)) + field(7, 0) + field(8, b"")


def container(*extra: bytes) -> bytes:
    """A Container as `kubectl create deployment` sends it, Go's empty fields included."""
    zeros = b"".join(field(n, "") for n in (5, 8, 13, 14, 20)) + b"".join(
        field(n, 0) for n in (16, 17, 18)
    )
    return field(1, "nginx") + field(2, "nginx:1.27") + zeros + b"".join(extra)


def deployment(replicas: bytes, pod_spec_extra: bytes = b"", spec_extra: bytes = b"") -> bytes:
    """The body of `kubectl create deployment web --image=nginx:1.27 --port=80`, field by field."""
    labels = field(11, field(1, "app") + field(2, "web"))
    port = field(1, "") + field(2, 0) + field(3, 80) + field(4, "") + field(5, "")
    pod_spec = (
        field(2, container(field(6, port), field(3, "nginx"), field(3, "-g")))
        + b"".join(field(n, "") for n in (3, 6, 8, 9, 10, 16, 17, 19, 24))
        + b"".join(field(n, 0) for n in (11, 12, 13))
        + pod_spec_extra
    )
    spec = (
        replicas
        + field(2, field(1, field(1, "app") + field(2, "web")))
        + field(3, field(1, empty_meta() + labels) + field(2, pod_spec))
        + field(4, field(1, ""))
        + field(5, 0)
        + field(7, 0)
        + spec_extra
    )
    status = b"".join(field(n, 0) for n in (1, 2, 3, 4, 5, 7))
    meta = field(1, "web") + field(3, "shop") + labels
    return envelope("apps/v1", "Deployment", field(1, meta) + field(2, spec) + field(3, status))


def test_a_deployment_decodes_as_kubectl_create_deployment_sends_it():
    obj = decode_object(deployment(field(1, 3)))
    assert obj == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx:1.27",
                            "ports": [{"containerPort": 80}],
                            "command": ["nginx", "-g"],
                        }
                    ]
                },
            },
        },
    }


def test_a_pointer_set_to_zero_is_kept_not_defaulted():
    # replicas: 0 and automountServiceAccountToken: false are written because they are set;
    # dropping them would let the server default them to 1 and true.
    obj = decode_object(deployment(field(1, 0), pod_spec_extra=field(21, 0)))
    assert obj["spec"]["replicas"] == 0
    assert obj["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert "replicas" not in decode_object(deployment(b""))["spec"]  # unset: the server decides


def test_a_rolling_update_keeps_numbers_and_percentages():
    rolling = field(
        2, field(1, field(1, 1) + field(3, "25%")) + field(2, field(1, 0) + field(2, 2))
    )
    obj = decode_object(
        deployment(field(1, 1), spec_extra=field(4, field(1, "RollingUpdate") + rolling))
    )
    assert obj["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 2},
    }


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (field(1, field(1, "data")), "Deployment.spec.template.spec.volumes"),
        (field(14, b""), "Deployment.spec.template.spec.securityContext"),  # set, though empty
        (field(42, 0), "field 42 of Deployment.spec.template.spec"),  # unknown, even as zero
    ],
)
def test_what_it_does_not_decode_is_refused_by_name_never_dropped(extra, named):
    with pytest.raises(ApiError) as refused:
        decode_object(deployment(field(1, 1), pod_spec_extra=extra))
    assert refused.value.code == 415 and named in refused.value.status()["message"]


def test_a_status_with_a_value_is_refused():
    body = envelope("apps/v1", "Deployment", field(1, field(1, "web")) + field(3, field(1, 5)))
    with pytest.raises(ApiError) as refused:
        decode_object(body)
    assert refused.value.code == 415 and "Deployment.status" in refused.value.status()["message"]


def test_a_secret_keeps_its_type_and_bytes():
    body = envelope(
        "v1",
        "Secret",
        field(1, field(1, "db") + field(3, "shop"))
        + field(2, field(1, "password") + field(2, b"hunter2"))
        + field(3, "Opaque")
        + field(4, field(1, "user") + field(2, "app")),
    )
    assert decode_object(body) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "shop"},
        "data": {"password": "aHVudGVyMg=="},
        "type": "Opaque",
        "stringData": {"user": "app"},
    }


def test_a_rules_review_keeps_its_namespace():
    body = envelope(
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        field(1, empty_meta()) + field(2, field(1, "shop")) + field(3, field(3, 0) + field(4, "")),
    )
    assert decode_object(body)["spec"] == {"namespace": "shop"}


def nested(depth: int) -> bytes:
    inner = b""
    for _ in range(depth):
        inner = field(1, inner)
    return inner


@pytest.mark.parametrize(
    "body",
    [
        b"not protobuf",
        MAGIC + b"\x0a\x05ab",
        MAGIC + b"\x08\xff",
        MAGIC + field(1, 7),  # a number where the type belongs
        envelope("v1", "ConfigMap", field(1, field(1, 7))),  # a number where the name belongs
        envelope("v1", "ConfigMap", field(4, "yes")),  # bytes where a bool belongs
        envelope("v1", "ConfigMap", field(1, field(8, field(1, 1 << 62)))),  # no such time
        envelope("v1", "ConfigMap", field(1, field(1, b"\xff\xfe"))),  # not UTF-8
        envelope("v1", "ConfigMap", field(2, field(1, "k") + field(2, 9))),  # a number as value
        envelope("v1", "ConfigMap", field(1, b"\x09\x00\x00")),  # a truncated fixed64
    ],
)
def test_broken_bodies_are_bad_requests(body):
    with pytest.raises(ApiError) as refused:
        decode_object(body)
    assert refused.value.code == 400


def test_a_deeply_nested_body_is_refused_not_a_crash():
    # Go writes empty structs whole, so zero-valued messages are looked into; not forever.
    body = envelope("v1", "Namespace", field(1, field(1, "ns")) + field(3, nested(5_000)))
    with pytest.raises(ApiError) as refused:
        decode_object(body)
    assert refused.value.code in (400, 415)
