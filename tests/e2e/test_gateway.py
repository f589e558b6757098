"""The gateway end to end: the Python kubernetes client through the local stack."""

from __future__ import annotations

import base64
import json
import time

import pytest
import urllib3
from eksgate_local.kube_emulator.seed import SENSITIVE_VALUES
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from chalicelib.masking import MASK

pytestmark = pytest.mark.e2e
MASKED_B64 = base64.b64encode(MASK.encode()).decode()


def status_of(error: ApiException) -> dict:
    body = json.loads(error.body)
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["code"] == error.status
    return body


def raw(stack, token, method, path, headers=None, body=None):
    http = urllib3.PoolManager(ca_certs=stack.gateway_ca_file)
    return http.request(
        method,
        f"{stack.gateway_url}/k8s/{stack.cluster}{path}",
        body=body,
        headers={"Authorization": f"Bearer {token}", **(headers or {})},
    )


def assert_no_secret_values(text: str) -> None:
    for value in SENSITIVE_VALUES:
        assert value not in text
        assert base64.b64encode(value.encode()).decode() not in text


def test_allowed_read_reaches_the_cluster_with_the_policy_role(stack, kube_config):
    api = client.CoreV1Api(kube_config("ci-agent"))
    stack.clear_kube_calls()
    pods = api.list_namespaced_pod("shop")
    assert {p.metadata.name.split("-")[0] for p in pods.items} >= {"web", "worker"}
    calls = [c for c in stack.kube_calls() if c["path"] == "/api/v1/namespaces/shop/pods"]
    assert calls and all(
        c["principal"].startswith("arn:aws:sts::123456789012:assumed-role/eksgate-ci-agent/")
        for c in calls
    )


def test_discovery_is_open_to_every_session(kube_config):
    api_client = kube_config("ci-agent")
    assert "v1" in client.CoreApi(api_client).get_api_versions().versions
    assert client.VersionApi(api_client).get_code().git_version.startswith("v1.")
    groups = client.ApisApi(api_client).get_api_versions().groups
    assert "apps" in {g.name for g in groups}


def test_denied_request_is_a_forbidden_status_naming_policy_and_rule(kube_config):
    api = client.CoreV1Api(kube_config("ci-agent"))
    with pytest.raises(ApiException) as err:
        api.delete_namespace("shop")
    body = status_of(err.value)
    assert err.value.status == 403 and body["reason"] == "Forbidden"
    assert "no-namespace-deletes" in body["message"] and "ci-agent" in body["message"]
    with pytest.raises(ApiException) as err:
        api.list_namespaced_pod("payments")
    assert (
        err.value.status == 403
        and "no rule of policy 'ci-agent'" in status_of(err.value)["message"]
    )


def test_a_change_needing_approval_is_refused_for_now(kube_config):
    apps = client.AppsV1Api(kube_config("ci-agent"))
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment_scale("web", "shop", {"spec": {"replicas": 3}})
    assert err.value.status == 403 and "approval required" in status_of(err.value)["message"]


def test_secret_values_are_masked_in_objects_lists_and_tables(stack, kube_config):
    api_client = kube_config("ci-agent")
    api = client.CoreV1Api(api_client)
    secret = api.read_namespaced_secret("db-credentials", "shop")
    assert secret.data and set(secret.data.values()) == {MASKED_B64}
    secrets = api.list_namespaced_secret("shop")
    for item in secrets.items:
        assert all(v == MASKED_B64 for v in (item.data or {}).values())
        annotations = item.metadata.annotations or {}
        assert_no_secret_values(json.dumps(annotations))
    token = stack.session_token("ci-agent")
    for include in ("Metadata", "Object", "None"):
        answer = raw(
            stack,
            token,
            "GET",
            f"/api/v1/namespaces/shop/secrets?includeObject={include}",
            {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"},
        )
        assert answer.status == 200
        table = answer.json()
        assert table["kind"] == "Table" and table["rows"]
        assert_no_secret_values(answer.data.decode())
    by_field = raw(
        stack,
        token,
        "GET",
        "/api/v1/namespaces/shop/secrets?fieldSelector=metadata.name%3Ddb-credentials",
    )
    assert by_field.status == 200 and by_field.json()["items"]
    assert_no_secret_values(by_field.data.decode())


def test_secret_values_are_masked_in_watch_events(stack, kube_config):
    api = client.CoreV1Api(kube_config("ci-agent"))
    events = list(watch.Watch().stream(api.list_namespaced_secret, "shop", timeout_seconds=2))
    assert events and all(e["type"] in ("ADDED", "MODIFIED", "BOOKMARK") for e in events)
    for event in events:
        assert set((event["object"].data or {}).values()) <= {MASKED_B64}


def test_credential_patterns_are_masked_in_configmaps_and_logs(stack, kube_config):
    api = client.CoreV1Api(kube_config("ci-agent"))
    config = api.read_namespaced_config_map("shop-config", "shop")
    text = json.dumps(config.data)
    assert "s3cr3t-db-pass" not in text and MASK in text
    pod = api.list_namespaced_pod("shop", label_selector="app=web").items[0].metadata.name
    log = api.read_namespaced_pod_log(pod, "shop")
    assert log and "AKIAIOSFODNN7EXAMPLE" not in log and "hunter2" not in log


def test_watch_is_bounded_server_side(stack, kube_config):
    api = client.CoreV1Api(kube_config("ci-agent"))
    stack.clear_kube_calls()
    started = time.monotonic()
    list(watch.Watch().stream(api.list_namespaced_pod, "shop", timeout_seconds=600))
    assert time.monotonic() - started < 15
    [call] = [c for c in stack.kube_calls() if c["verb"] == "watch"]
    assert call["query"]["timeoutSeconds"] == ["3"]


def test_follow_logs_end_instead_of_hanging(stack, kube_config):
    api = client.CoreV1Api(kube_config("ci-agent"))
    pod = api.list_namespaced_pod("shop", label_selector="app=web").items[0].metadata.name
    started = time.monotonic()
    api.read_namespaced_pod_log(pod, "shop", follow=True, _request_timeout=60)
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/api/v1/namespaces/shop/pods/web-0/exec?command=sh&stdin=true"),
        ("GET", "/api/v1/namespaces/shop/pods/web-0/exec?command=sh"),
        ("POST", "/api/v1/namespaces/shop/pods/web-0/attach"),
        ("POST", "/api/v1/namespaces/shop/pods/web-0/portforward?ports=8080"),
        ("GET", "/api/v1/namespaces/shop/pods/web-0/proxy/metrics"),
        ("GET", "/api/v1/namespaces/shop/services/web/proxy/"),
    ],
)
def test_connection_upgrades_are_refused_with_what_to_do(stack, method, path):
    token = stack.session_token("ci-agent")
    for headers in (
        {},
        {"Connection": "Upgrade", "Upgrade": "SPDY/3.1"},
        {"Connection": "Upgrade", "Upgrade": "websocket"},
    ):
        answer = raw(stack, token, method, path, headers)
        body = answer.json()
        assert answer.status == 403 and body["kind"] == "Status" and body["code"] == 403
        assert "direct grant" in body["message"]


def test_impersonation_headers_are_refused(stack):
    token = stack.session_token("ci-agent")
    answer = raw(
        stack,
        token,
        "GET",
        "/api/v1/namespaces/shop/pods",
        {"Impersonate-User": "system:admin", "Impersonate-Group": "system:masters"},
    )
    assert answer.status == 403 and "impersonation" in answer.json()["message"]


def test_caller_credentials_never_reach_the_cluster(stack):
    token = stack.session_token("ci-agent")
    stack.clear_kube_calls()
    answer = raw(
        stack, token, "GET", "/api/v1/namespaces/shop/configmaps", {"Cookie": "session=abc"}
    )
    assert answer.status == 200
    [call] = [c for c in stack.kube_calls() if c["path"].endswith("/configmaps")]
    assert call["principal"].startswith("arn:aws:sts::123456789012:assumed-role/eksgate-ci-agent/")


@pytest.mark.parametrize(
    "mutate, code, fragment",
    [
        (lambda t: "", 401, "missing gateway session token"),
        (lambda t: t[:-4] + "AAAA", 401, "Signature"),
        (lambda t: "garbage", 401, "not an eksgate session token"),
    ],
)
def test_bad_session_tokens_get_401_status(stack, mutate, code, fragment):
    answer = raw(
        stack, mutate(stack.session_token("ci-agent")), "GET", "/api/v1/namespaces/shop/pods"
    )
    body = answer.json()
    assert answer.status == code and body["code"] == code and fragment in body["message"]


def test_a_cluster_this_gateway_does_not_serve_is_a_404_naming_the_callers(stack):
    # A typo in the cluster path, or a cluster served elsewhere: a 401 would send kubectl
    # into re-login loops ("You must be logged in") that hide the reason.
    token = stack.session_token("ci-agent")
    http = urllib3.PoolManager(ca_certs=stack.gateway_ca_file)
    answer = http.request(
        "GET",
        f"{stack.gateway_url}/k8s/prod-eu/api/v1/namespaces/shop/pods",
        headers={"Authorization": f"Bearer {token}"},
    )
    message = answer.json()["message"]
    assert answer.status == 404 and "no cluster 'prod-eu'" in message
    assert "your session is for cluster 'demo'" in message and "may use: demo" in message


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/namespaces/shop/pods/../secrets",
        "/api/v1/namespaces/shop/./secrets",
        "/api/v1/namespaces/shop//secrets",
        "/api/v1/namespaces/shop/secrets%2Fdb-credentials",
        "/api/v1/namespaces/shop/pods/%2e%2e/secrets",
    ],
)
def test_malformed_paths_are_refused_not_normalised(stack, path):
    # http.client sends the path byte for byte (urllib3 would remove dot segments first).
    import http.client
    import ssl
    from urllib.parse import urlsplit

    gateway = urlsplit(stack.gateway_url)
    connection = http.client.HTTPSConnection(
        gateway.hostname,
        gateway.port,
        context=ssl.create_default_context(cafile=stack.gateway_ca_file),
    )
    connection.request(
        "GET",
        f"/k8s/{stack.cluster}{path}",
        headers={"Authorization": f"Bearer {stack.session_token('ci-agent')}"},
    )
    answer = connection.getresponse()
    body = json.loads(answer.read())
    assert answer.status == 400 and body["kind"] == "Status" and body["code"] == 400


def test_protobuf_only_accept_is_refused_and_protobuf_bodies_are_decided_by_url(stack):
    token = stack.session_token("ci-agent")
    answer = raw(
        stack,
        token,
        "GET",
        "/api/v1/namespaces/shop/pods",
        {"Accept": "application/vnd.kubernetes.protobuf"},
    )
    assert answer.status == 406 and answer.json()["kind"] == "Status"
    # kubectl 1.32+ sends protobuf bodies: the gateway passes them (decided by the URL), and
    # the cluster itself judges the bytes; a garbled body is the cluster's 400, not our 415.
    answer = raw(
        stack,
        stack.session_token("engineer"),
        "POST",
        "/api/v1/namespaces/default/configmaps",
        {"Content-Type": "application/vnd.kubernetes.protobuf"},
        body=b"\x00k8s",
    )
    assert answer.status in (400, 415) and answer.json()["kind"] == "Status"
    assert "eksgate inspects bodies" not in answer.json()["message"]


def test_malformed_and_oversized_bodies_are_refused(stack):
    token = stack.session_token("engineer")
    answer = raw(
        stack,
        token,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        {"Content-Type": "application/json"},
        body=b"{not json",
    )
    assert answer.status == 400 and answer.json()["kind"] == "Status"
    big = json.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "big"},
            "data": {"x": "y" * 2_000_000},
        }
    ).encode()
    answer = raw(
        stack,
        token,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        {"Content-Type": "application/json"},
        body=big,
    )
    assert answer.status == 413 and answer.json()["kind"] == "Status"


def test_writes_allowed_by_policy_go_through_and_are_masked(stack, kube_config):
    api = client.CoreV1Api(kube_config("engineer"))
    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="e2e-config"),
        data={"note": "hello", "dsn": "postgres://u:topsecret@db/x"},
    )
    created = api.create_namespaced_config_map("default", body)
    assert "topsecret" not in json.dumps(created.data)
    api.patch_namespaced_config_map("e2e-config", "default", {"data": {"note": "patched"}})
    assert api.read_namespaced_config_map("e2e-config", "default").data["note"] == "patched"
    api.delete_namespaced_config_map("e2e-config", "default")
    with pytest.raises(ApiException) as err:
        api.read_namespaced_config_map("e2e-config", "default")
    assert err.value.status == 404 and status_of(err.value)["reason"] == "NotFound"
