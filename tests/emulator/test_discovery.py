"""Discovery documents, /version, OpenAPI index and unknown paths."""

from __future__ import annotations

from eksgate_local.kube_emulator import KubeEmulator
from kubernetes import client

from .conftest import raw_request

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
KUBECTL_DISCOVERY_ACCEPT = (
    f"{AGGREGATED},application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)


def test_python_client_discovery(api_client: client.ApiClient, emulator: KubeEmulator) -> None:
    versions = client.CoreApi(api_client).get_api_versions()
    assert versions.versions == ["v1"]
    assert versions.server_address_by_client_cidrs[0].server_address == emulator.server_address

    groups = client.ApisApi(api_client).get_api_versions()
    names = {g.name for g in groups.groups}
    assert {"apps", "batch", "rbac.authorization.k8s.io", "authentication.k8s.io"} <= names
    apps = next(g for g in groups.groups if g.name == "apps")
    assert apps.preferred_version.group_version == "apps/v1"

    code = client.VersionApi(api_client).get_code()
    assert (
        code.major == "1"
        and code.minor == "35+"
        and code.git_version.startswith("v1.35.")
        and "-eks-" in code.git_version
    )

    core_resources = client.CoreV1Api(api_client).get_api_resources()
    pods = next(r for r in core_resources.resources if r.name == "pods")
    assert pods.namespaced and "watch" in pods.verbs and pods.kind == "Pod"
    assert any(r.name == "serviceaccounts/token" for r in core_resources.resources)

    apps_resources = client.AppsV1Api(api_client).get_api_resources()
    assert apps_resources.group_version == "apps/v1"
    assert {"deployments", "replicasets", "statefulsets"} <= {
        r.name for r in apps_resources.resources
    }


def test_group_and_derived_group_versions(api_client: client.ApiClient) -> None:
    status, _, group = raw_request(api_client, "GET", "/apis/apps")
    assert status == 200 and group["kind"] == "APIGroup" and group["name"] == "apps"
    # No fixture file for authentication.k8s.io/v1: derived from the aggregated document.
    status, _, derived = raw_request(api_client, "GET", "/apis/authentication.k8s.io/v1")
    assert status == 200 and derived["groupVersion"] == "authentication.k8s.io/v1"
    assert {"selfsubjectreviews", "tokenreviews"} <= {r["name"] for r in derived["resources"]}


def test_aggregated_discovery(api_client: client.ApiClient) -> None:
    status, headers, apis = raw_request(api_client, "GET", "/apis", accept=KUBECTL_DISCOVERY_ACCEPT)
    assert status == 200
    content_type = headers["Content-Type"].replace(" ", "")
    assert content_type == AGGREGATED
    assert (
        apis["kind"] == "APIGroupDiscoveryList" and apis["apiVersion"] == "apidiscovery.k8s.io/v2"
    )
    assert any(item["metadata"]["name"] == "apps" for item in apis["items"])

    status, headers, core = raw_request(api_client, "GET", "/api", accept=KUBECTL_DISCOVERY_ACCEPT)
    assert status == 200 and headers["Content-Type"].replace(" ", "") == AGGREGATED
    resources = {r["resource"]: r for r in core["items"][0]["versions"][0]["resources"]}
    assert resources["pods"]["scope"] == "Namespaced"
    assert resources["pods"]["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert {s["subresource"] for s in resources["pods"]["subresources"]} >= {
        "log",
        "status",
        "exec",
    }
    assert resources["namespaces"]["scope"] == "Cluster"

    # Without the aggregated media type: legacy documents.
    _, headers, legacy = raw_request(api_client, "GET", "/apis", accept="application/json")
    assert legacy["kind"] == "APIGroupList" and headers["Content-Type"] == "application/json"


def test_unknown_paths_are_404_status(api_client: client.ApiClient) -> None:
    for path in (
        "/nope",
        "/api/v2",
        "/apis/example.com/v1",
        "/api/v1/widgets",
        "/apis/apps/v1/namespaces/shop/pods",
    ):
        status, _, body = raw_request(api_client, "GET", path)
        assert status == 404, path
        assert body == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "the server could not find the requested resource",
            "reason": "NotFound",
            "details": {},
            "code": 404,
        }


def test_openapi_v3_index(api_client: client.ApiClient) -> None:
    _, _, root = raw_request(api_client, "GET", "/openapi/v3")
    url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    _, _, doc = raw_request(api_client, "GET", url.split("?")[0])
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
    }
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    status, _, _ = raw_request(api_client, "GET", "/openapi/v2")
    assert status == 404


def test_health_endpoints_need_no_token(emulator: KubeEmulator) -> None:
    import ssl
    import urllib.request

    context = ssl.create_default_context(cadata=emulator.ca_pem.decode())
    with urllib.request.urlopen(f"{emulator.url}/readyz", context=context) as resp:
        assert resp.read() == b"ok"
