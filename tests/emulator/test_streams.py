"""Pod logs, bounded watches and TokenRequest, through the real Python client."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eksgate_local.kube_emulator import KubeEmulator, StaticTokenAuthenticator
from eksgate_local.kube_emulator.seed import (
    DB_PASSWORD,
    EXAMPLE_AWS_ACCESS_KEY_ID,
    LOG_PASSWORD,
    SENSITIVE_VALUES,
)
from kubernetes import client, watch
from kubernetes.client import ApiException

from .conftest import TABLE_ACCEPT, TOKEN, configmap, make_api_client


@pytest.fixture(scope="module")
def emulator() -> Iterator[KubeEmulator]:
    # Short stream cap: follow/watch tests stay fast.
    with KubeEmulator(
        authenticate=StaticTokenAuthenticator({TOKEN: "alice"}), watch_timeout_cap=2.0
    ) as emu:
        yield emu


def _pod(core: client.CoreV1Api, namespace: str, app: str) -> str:
    return core.list_namespaced_pod(namespace, label_selector=f"app={app}").items[0].metadata.name


def test_logs_contain_planted_credentials(core: client.CoreV1Api) -> None:
    text = core.read_namespaced_pod_log(_pod(core, "shop", "worker"), "shop")
    assert f"password={LOG_PASSWORD}" in text
    assert EXAMPLE_AWS_ACCESS_KEY_ID in text
    assert DB_PASSWORD in text
    assert LOG_PASSWORD in SENSITIVE_VALUES


def test_log_tail_timestamps_and_container(
    core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    core.create_namespaced_pod(
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="two"),
            spec=client.V1PodSpec(
                containers=[
                    client.V1Container(name="app", image="example/app:1.0"),
                    client.V1Container(name="proxy", image="envoy:1.31"),
                ]
            ),
        ),
    )
    emulator.set_pod_log(namespace, "two", ["one", "two", "three"], container="app")
    assert core.read_namespaced_pod_log("two", namespace, container="app") == "one\ntwo\nthree\n"
    assert (
        core.read_namespaced_pod_log("two", namespace, container="app", tail_lines=2)
        == "two\nthree\n"
    )
    assert core.read_namespaced_pod_log("two", namespace, container="app", tail_lines=0) == ""
    stamped = core.read_namespaced_pod_log(
        "two", namespace, container="app", timestamps=True, tail_lines=1
    )
    assert stamped.endswith("Z three\n") and stamped[:4].isdigit()
    assert core.read_namespaced_pod_log(
        "two", namespace, container="proxy"
    )  # derived from the image
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("two", namespace)
    assert err.value.status == 400
    assert (
        "a container name must be specified for pod two, choose one of: [app proxy]"
        in json.loads(err.value.body)["message"]
    )
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("two", namespace, container="nope")
    assert err.value.status == 400
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("missing", namespace)
    assert err.value.status == 404


def test_log_follow_is_bounded(core: client.CoreV1Api) -> None:
    pod = _pod(core, "shop", "web")
    started = time.monotonic()
    resp = core.read_namespaced_pod_log(
        pod, "shop", follow=True, tail_lines=1, _preload_content=False
    )
    lines = [line for line in resp.stream(decode_content=False)]
    elapsed = time.monotonic() - started
    text = b"".join(lines).decode()
    # The tail line, then at least one freshly generated line, then the stream ends at the cap.
    assert text.count("\n") >= 2
    assert "kube-probe/1.35" in text
    assert 1.5 <= elapsed < 5


def test_watch_initial_and_live_events(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, configmap("before"))

    def writer() -> None:
        time.sleep(0.3)
        core.create_namespaced_config_map(namespace, configmap("during"))
        core.patch_namespaced_config_map("during", namespace, {"data": {"k": "v2"}})
        core.delete_namespaced_config_map("before", namespace)

    thread = threading.Thread(target=writer)
    thread.start()
    started = time.monotonic()
    events = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(core.list_namespaced_config_map, namespace, timeout_seconds=2)
    ]
    thread.join()
    assert time.monotonic() - started < 4
    assert events == [
        ("ADDED", "before"),
        ("ADDED", "kube-root-ca.crt"),
        ("ADDED", "during"),
        ("MODIFIED", "during"),
        ("DELETED", "before"),
    ]


def test_watch_from_resource_version_and_selectors(core: client.CoreV1Api, namespace: str) -> None:
    listed = core.list_namespaced_config_map(namespace)
    core.create_namespaced_config_map(namespace, configmap("x", labels={"w": "yes"}))
    core.create_namespaced_config_map(namespace, configmap("y", labels={"w": "no"}))
    core.patch_namespaced_config_map("x", namespace, {"metadata": {"labels": {"w": "no"}}})
    events = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            core.list_namespaced_config_map,
            namespace,
            label_selector="w=yes",
            resource_version=listed.metadata.resource_version,
            timeout_seconds=1,
        )
    ]
    # Replayed from history; leaving the selection is reported as DELETED, as kube does.
    assert events == [("ADDED", "x"), ("DELETED", "x")]


def test_watch_timeout_is_capped(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    started = time.monotonic()
    resp = core.list_namespaced_config_map(
        namespace, watch=True, timeout_seconds=60, _preload_content=False
    )
    assert resp.getheader("Transfer-Encoding") == "chunked"
    lines = [json.loads(line) for line in b"".join(resp.stream()).decode().splitlines()]
    assert [e["type"] for e in lines] == ["ADDED"]
    assert 1.5 <= time.monotonic() - started < 4  # the emulator caps at 2 s here


def test_legacy_watch_prefix_and_bookmarks(api_client: client.ApiClient, namespace: str) -> None:
    params = api_client.param_serialize(
        "GET",
        f"/api/v1/watch/namespaces/{namespace}/configmaps/kube-root-ca.crt",
        query_params=[("timeoutSeconds", 1), ("allowWatchBookmarks", "true")],
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    resp = api_client.call_api(*params)
    events = [json.loads(line) for line in resp.read().decode().splitlines()]
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[0]["object"]["kind"] == "ConfigMap"
    assert events[1]["object"]["metadata"]["resourceVersion"].isdigit()


def test_watch_as_table(api_client: client.ApiClient, namespace: str) -> None:
    params = api_client.param_serialize(
        "GET",
        "/api/v1/namespaces/shop/pods",
        query_params=[("watch", "true"), ("timeoutSeconds", 1)],
        header_params={"Accept": TABLE_ACCEPT},
        auth_settings=["BearerToken"],
    )
    resp = api_client.call_api(*params)
    events = [json.loads(line) for line in resp.read().decode().splitlines()]
    assert events and all(e["object"]["kind"] == "Table" for e in events)
    assert events[0]["object"]["columnDefinitions"][0]["name"] == "Name"
    assert events[-1]["object"]["columnDefinitions"] is None


def test_watch_too_old_resource_version(tmp_path: Path) -> None:
    # A tiny event history: the seed alone pushes resourceVersion 2 out of it.
    auth = StaticTokenAuthenticator({TOKEN: "alice"})
    with KubeEmulator(authenticate=auth, watch_timeout_cap=1.0, event_history=5) as small:
        ca = tmp_path / "ca.crt"
        ca.write_bytes(small.ca_pem)
        with make_api_client(small, ca) as api:
            v1 = client.CoreV1Api(api)
            with pytest.raises(ApiException) as err:
                list(
                    watch.Watch().stream(
                        v1.list_namespaced_config_map,
                        "shop",
                        resource_version="2",
                        timeout_seconds=1,
                    )
                )
            assert err.value.status == 410


def test_token_request(core: client.CoreV1Api) -> None:
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=["sts.amazonaws.com"], expiration_seconds=3600)
    )
    before = time.time()
    result = core.create_namespaced_service_account_token("deployer", "shop", request)
    assert result.kind == "TokenRequest" and result.api_version == "authentication.k8s.io/v1"
    token = result.status.token
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == "system:serviceaccount:shop:deployer"
    assert claims["aud"] == ["sts.amazonaws.com"]
    assert abs(claims["exp"] - (before + 3600)) < 5
    assert abs(result.status.expiration_timestamp.timestamp() - claims["exp"]) < 2
    with pytest.raises(ApiException) as err:
        core.create_namespaced_service_account_token("nobody", "shop", request)
    assert err.value.status == 404
