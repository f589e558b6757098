"""Pure-function behaviour: patches, selectors, durations, TLS material."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from eksgate_local.kube_emulator.errors import ApiError
from eksgate_local.kube_emulator.patch import json_patch, merge_patch, strategic_merge_patch
from eksgate_local.kube_emulator.selectors import parse_field_selector, parse_label_selector
from eksgate_local.kube_emulator.tables import human_duration
from eksgate_local.kube_emulator.tls import generate_tls_material


def test_merge_patch_rfc7386() -> None:
    assert merge_patch({"a": "b", "c": {"d": "e", "f": "g"}}, {"a": "z", "c": {"f": None}}) == {
        "a": "z",
        "c": {"d": "e"},
    }
    assert merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}
    original = {"a": {"b": 1}}
    merge_patch(original, {"a": {"b": 2}})
    assert original == {"a": {"b": 1}}


def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2, 3]}, "x": 1}
    result = json_patch(
        doc,
        [
            {"op": "add", "path": "/a/b/-", "value": 4},
            {"op": "remove", "path": "/a/b/0"},
            {"op": "move", "from": "/x", "path": "/y"},
            {"op": "copy", "from": "/y", "path": "/z"},
            {"op": "add", "path": "/a~1b", "value": True},
        ],
    )
    assert result == {"a": {"b": [2, 3, 4]}, "y": 1, "z": 1, "a/b": True}
    with pytest.raises(ApiError) as err:
        json_patch(doc, [{"op": "remove", "path": "/missing"}])
    assert err.value.code == 422
    with pytest.raises(ApiError) as err:
        json_patch(doc, {"op": "add"})
    assert err.value.code == 400


def _deployment(*containers: dict) -> dict:
    return {"spec": {"template": {"spec": {"containers": list(containers)}}}}


def test_strategic_merge_by_name_and_directives() -> None:
    current = _deployment(
        {
            "name": "app",
            "image": "a:1",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "ports": [{"containerPort": 80}, {"containerPort": 443}],
        },
        {"name": "side", "image": "s:1"},
    )
    patched = strategic_merge_patch(
        current,
        _deployment(
            {
                "name": "app",
                "image": "a:2",
                "env": [{"name": "B", "$patch": "delete"}, {"name": "C", "value": "3"}],
                "ports": [{"containerPort": 443, "name": "https"}],
            },
        ),
    )
    app, side = patched["spec"]["template"]["spec"]["containers"]
    assert side == {"name": "side", "image": "s:1"}
    assert app["image"] == "a:2"
    assert app["env"] == [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}]
    assert app["ports"] == [{"containerPort": 80}, {"containerPort": 443, "name": "https"}]

    ordered = strategic_merge_patch(
        current,
        {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
                        "containers": [{"name": "side", "image": "s:2"}],
                    }
                }
            }
        },
    )
    assert [c["name"] for c in ordered["spec"]["template"]["spec"]["containers"]] == ["side", "app"]

    replaced = strategic_merge_patch(
        {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}},
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
    )
    assert replaced == {"spec": {"strategy": {"type": "Recreate"}}}
    assert strategic_merge_patch({"a": {"b": 1}}, {"a": {"$patch": "replace", "c": 2}}) == {
        "a": {"c": 2}
    }
    assert strategic_merge_patch({"a": {"b": 1}, "k": 1}, {"a": {"$patch": "delete"}}) == {"k": 1}
    # Lists without a merge key are replaced, as kube does for atomic lists.
    assert strategic_merge_patch({"args": ["a", "b"]}, {"args": ["c"]}) == {"args": ["c"]}
    assert strategic_merge_patch(
        {"metadata": {"finalizers": ["a"]}}, {"metadata": {"finalizers": ["b"]}}
    ) == {"metadata": {"finalizers": ["a", "b"]}}


def test_label_selector_grammar() -> None:
    sel = parse_label_selector("app in (web,api), tier!=db, !legacy, env")
    assert sel.matches({"app": "web", "env": "prod"})
    assert not sel.matches({"app": "web", "env": "prod", "legacy": "1"})
    assert not sel.matches({"app": "web", "tier": "db", "env": "x"})
    assert not sel.matches({"app": "web"})
    assert parse_label_selector("replicas>2").matches({"replicas": "3"})
    assert not parse_label_selector("replicas<2").matches({"replicas": "3"})
    assert parse_label_selector("").empty
    for bad in ("a in (b", "a=b=c=", "!", "a b", "x=in valid!"):
        with pytest.raises(ApiError) as err:
            parse_label_selector(bad)
        assert err.value.code == 400, bad


def test_field_selector_support() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "n"},
        "spec": {"nodeName": "node-1"},
        "status": {"phase": "Running"},
    }
    assert parse_field_selector("spec.nodeName=node-1,status.phase!=Failed", "", "pods").matches(
        pod
    )
    assert not parse_field_selector("status.phase==Pending", "", "pods").matches(pod)
    with pytest.raises(ApiError, match="field label not supported: spec.nodeName"):
        parse_field_selector("spec.nodeName=x", "", "configmaps")
    assert parse_field_selector("metadata.name=p", "", "pods").exact_name() == "p"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (0, "0s"),
        (119, "119s"),
        (150, "2m30s"),
        (600, "10m"),
        (3 * 3600 + 120, "3h2m"),
        (10 * 3600, "10h"),
        (3 * 86400 + 5 * 3600, "3d5h"),
        (27 * 86400, "27d"),
        (3 * 365 * 86400, "3y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_tls_material_has_loopback_sans() -> None:
    material = generate_tls_material()
    cert = x509.load_pem_x509_certificate(material.cert_pem)
    ca = x509.load_pem_x509_certificate(material.ca_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert cert.issuer == ca.subject
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert "PRIVATE" not in repr(material)
