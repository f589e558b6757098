"""Selectors, pagination and server-side Table output, through the real Python client."""

from __future__ import annotations

import base64
import json

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from .conftest import TABLE_ACCEPT, configmap, raw_request


@pytest.fixture
def labelled(core: client.CoreV1Api, namespace: str) -> str:
    core.create_namespaced_config_map(
        namespace, configmap("a", labels={"tier": "web", "env": "prod"})
    )
    core.create_namespaced_config_map(
        namespace, configmap("b", labels={"tier": "db", "env": "prod"})
    )
    core.create_namespaced_config_map(
        namespace, configmap("c", labels={"tier": "web", "env": "dev", "canary": "true"})
    )
    core.create_namespaced_config_map(namespace, configmap("d"))
    return namespace


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=web", ["a", "c"]),
        ("tier==web", ["a", "c"]),
        ("tier!=web", ["b", "d", "kube-root-ca.crt"]),
        ("tier in (web, db)", ["a", "b", "c"]),
        ("env notin (prod)", ["c", "d", "kube-root-ca.crt"]),
        ("canary", ["c"]),
        ("!canary,tier", ["a", "b"]),
        ("tier=web,env=prod", ["a"]),
    ],
)
def test_label_selectors(
    core: client.CoreV1Api, labelled: str, selector: str, expected: list[str]
) -> None:
    items = core.list_namespaced_config_map(labelled, label_selector=selector).items
    assert [cm.metadata.name for cm in items] == expected


def test_bad_label_selector_is_400(core: client.CoreV1Api, labelled: str) -> None:
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map(labelled, label_selector="tier in (web")
    assert err.value.status == 400
    assert json.loads(err.value.body)["reason"] == "BadRequest"


def test_field_selectors(core: client.CoreV1Api, labelled: str) -> None:
    assert [
        cm.metadata.name
        for cm in core.list_namespaced_config_map(labelled, field_selector="metadata.name=b").items
    ] == ["b"]
    names = {
        cm.metadata.name
        for cm in core.list_namespaced_config_map(labelled, field_selector="metadata.name!=b").items
    }
    assert "b" not in names and "a" in names
    everywhere = core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.namespace={labelled}"
    ).items
    assert {cm.metadata.namespace for cm in everywhere} == {labelled}

    running = core.list_pod_for_all_namespaces(field_selector="status.phase=Running").items
    assert running and all(p.status.phase == "Running" for p in running)
    node = running[0].spec.node_name
    on_node = core.list_pod_for_all_namespaces(
        field_selector=f"spec.nodeName={node},status.phase=Running"
    ).items
    assert on_node and all(p.spec.node_name == node for p in on_node)
    assert core.list_pod_for_all_namespaces(field_selector="status.phase=Failed").items == []
    opaque = core.list_namespaced_secret("shop", field_selector="type=Opaque").items
    assert {s.metadata.name for s in opaque} >= {"db-credentials"}

    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map(labelled, field_selector="data.k=v")
    assert err.value.status == 400
    assert "field label not supported: data.k" in json.loads(err.value.body)["message"]
    with pytest.raises(ApiException):
        core.list_namespaced_secret("shop", field_selector="status.phase=Running")


def test_limit_and_continue(core: client.CoreV1Api, namespace: str) -> None:
    for i in range(7):
        core.create_namespaced_config_map(namespace, configmap(f"page-{i}"))
    seen: list[str] = []
    token = None
    pages = 0
    first_rv = None
    while True:
        page = core.list_namespaced_config_map(namespace, limit=3, _continue=token)
        pages += 1
        first_rv = first_rv or page.metadata.resource_version
        assert page.metadata.resource_version == first_rv
        seen.extend(cm.metadata.name for cm in page.items)
        token = page.metadata.var_continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 8 - len(seen)
    assert pages == 3
    assert seen == ["kube-root-ca.crt"] + [f"page-{i}" for i in range(7)]
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map(namespace, limit=3, _continue="not-a-token")
    assert err.value.status == 400


def test_table_list_pods(api_client: client.ApiClient) -> None:
    status, headers, table = raw_request(
        api_client, "GET", "/api/v1/namespaces/shop/pods", accept=TABLE_ACCEPT
    )
    assert status == 200
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    columns = [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0]
    assert columns == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert table["columnDefinitions"][0]["format"] == "name"
    web = [r for r in table["rows"] if r["cells"][0].startswith("web-")]
    assert len(web) == 2
    assert web[0]["cells"][1:4] == ["1/1", "Running", "0"]
    assert web[0]["cells"][4].startswith("3d")
    obj = web[0]["object"]
    assert obj["kind"] == "PartialObjectMetadata" and obj["apiVersion"] == "meta.k8s.io/v1"
    assert obj["metadata"]["namespace"] == "shop" and "spec" not in obj
    assert table["metadata"]["resourceVersion"].isdigit()


def test_table_columns_per_kind(api_client: client.ApiClient) -> None:
    _, _, deploys = raw_request(
        api_client, "GET", "/apis/apps/v1/namespaces/shop/deployments", accept=TABLE_ACCEPT
    )
    assert [c["name"] for c in deploys["columnDefinitions"] if c["priority"] == 0] == [
        "Name",
        "Ready",
        "Up-to-date",
        "Available",
        "Age",
    ]
    web = next(r for r in deploys["rows"] if r["cells"][0] == "web")
    assert web["cells"][1:4] == ["2/2", 2, 2]

    _, _, secrets = raw_request(
        api_client, "GET", "/api/v1/namespaces/shop/secrets/db-credentials", accept=TABLE_ACCEPT
    )
    assert [c["name"] for c in secrets["columnDefinitions"]] == ["Name", "Type", "Data", "Age"]
    assert len(secrets["rows"]) == 1 and secrets["rows"][0]["cells"][:3] == [
        "db-credentials",
        "Opaque",
        2,
    ]
    # The default row object is metadata only: the secret's data is not in a Table.
    assert "data" not in secrets["rows"][0]["object"]

    _, _, namespaces = raw_request(api_client, "GET", "/api/v1/namespaces", accept=TABLE_ACCEPT)
    assert [c["name"] for c in namespaces["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert ["shop", "Active"] in [r["cells"][:2] for r in namespaces["rows"]]

    _, _, roles = raw_request(
        api_client, "GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles", accept=TABLE_ACCEPT
    )
    assert [c["name"] for c in roles["columnDefinitions"]] == ["Name", "Created At"]


def test_table_include_object(api_client: client.ApiClient) -> None:
    path = "/api/v1/namespaces/shop/secrets/db-credentials"
    _, _, full = raw_request(
        api_client, "GET", path, accept=TABLE_ACCEPT, query=[("includeObject", "Object")]
    )
    row_obj = full["rows"][0]["object"]
    assert (
        row_obj["kind"] == "Secret"
        and base64.b64decode(row_obj["data"]["password"]) == b"s3cr3t-db-pass"
    )
    _, _, none = raw_request(
        api_client, "GET", path, accept=TABLE_ACCEPT, query=[("includeObject", "None")]
    )
    assert "object" not in none["rows"][0]
    _, _, beta = raw_request(
        api_client, "GET", path, accept="application/json;as=Table;v=v1beta1;g=meta.k8s.io"
    )
    assert beta["apiVersion"] == "meta.k8s.io/v1beta1"
    status, _, bad = raw_request(
        api_client, "GET", path, accept=TABLE_ACCEPT, query=[("includeObject", "All")]
    )
    assert status == 400 and bad["kind"] == "Status"


def test_partial_object_metadata_and_406(api_client: client.ApiClient) -> None:
    accept = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"
    _, _, listed = raw_request(api_client, "GET", "/api/v1/namespaces/shop/secrets", accept=accept)
    assert listed["kind"] == "PartialObjectMetadataList"
    assert all("data" not in item for item in listed["items"])
    status, _, body = raw_request(
        api_client,
        "GET",
        "/api/v1/namespaces/shop/pods",
        accept="application/vnd.kubernetes.protobuf",
    )
    assert status == 406 and body["reason"] == "NotAcceptable"


def test_plain_list_items_have_no_type_meta(api_client: client.ApiClient) -> None:
    _, _, body = raw_request(api_client, "GET", "/api/v1/namespaces/shop/configmaps")
    assert body["kind"] == "ConfigMapList" and body["apiVersion"] == "v1"
    assert all("kind" not in item for item in body["items"])
    _, _, one = raw_request(api_client, "GET", "/api/v1/namespaces/shop/configmaps/shop-config")
    assert list(one)[:2] == ["kind", "apiVersion"]
