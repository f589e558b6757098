"""Every write verb of the emulator, driven with the real Python kubernetes client."""

from __future__ import annotations

import base64
import json

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from .conftest import configmap, deployment, raw_request


def _status(exc: ApiException) -> dict:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == exc.status
    assert "details" in body and "message" in body and "reason" in body
    return body


def test_create_get_list(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_config_map(namespace, configmap("app-config", {"a": "1"}))
    meta = created.metadata
    assert meta.uid and meta.creation_timestamp and meta.resource_version.isdigit()
    assert meta.namespace == namespace

    fetched = core.read_namespaced_config_map("app-config", namespace)
    assert fetched.data == {"a": "1"}
    assert fetched.metadata.uid == meta.uid

    listed = core.list_namespaced_config_map(namespace)
    names = [cm.metadata.name for cm in listed.items]
    assert "app-config" in names
    assert int(listed.metadata.resource_version) >= int(meta.resource_version)


def test_resource_version_is_a_global_counter(core: client.CoreV1Api, namespace: str) -> None:
    first = core.create_namespaced_config_map(namespace, configmap("one"))
    second = core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="two"))
    )
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)


def test_generate_name(core: client.CoreV1Api, namespace: str) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="gen-"), data={"x": "y"})
    a = core.create_namespaced_config_map(namespace, body)
    b = core.create_namespaced_config_map(namespace, body)
    assert a.metadata.name.startswith("gen-") and len(a.metadata.name) == len("gen-") + 5
    assert a.metadata.name != b.metadata.name


def test_update_and_conflict(core: client.CoreV1Api, namespace: str) -> None:
    cm = core.create_namespaced_config_map(namespace, configmap("cfg", {"a": "1"}))
    stale_rv = cm.metadata.resource_version
    cm.data = {"a": "2"}
    updated = core.replace_namespaced_config_map("cfg", namespace, cm)
    assert updated.data == {"a": "2"}
    assert int(updated.metadata.resource_version) > int(stale_rv)

    cm.metadata.resource_version = stale_rv
    cm.data = {"a": "3"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("cfg", namespace, cm)
    assert err.value.status == 409
    status = _status(err.value)
    assert status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]
    assert core.read_namespaced_config_map("cfg", namespace).data == {"a": "2"}


def test_noop_update_keeps_resource_version(core: client.CoreV1Api, namespace: str) -> None:
    cm = core.create_namespaced_config_map(namespace, configmap("same", {"a": "1"}))
    again = core.replace_namespaced_config_map("same", namespace, cm)
    assert again.metadata.resource_version == cm.metadata.resource_version


def test_not_found_and_already_exists(
    core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str
) -> None:
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("missing", namespace)
    status = _status(err.value)
    assert err.value.status == 404 and status["reason"] == "NotFound"
    assert status["message"] == 'configmaps "missing" not found'
    assert status["details"] == {"name": "missing", "kind": "configmaps"}

    with pytest.raises(ApiException) as err:
        apps.read_namespaced_deployment("missing", namespace)
    assert _status(err.value)["message"] == 'deployments.apps "missing" not found'

    core.create_namespaced_config_map(namespace, configmap("dup"))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, configmap("dup"))
    status = _status(err.value)
    assert err.value.status == 409 and status["reason"] == "AlreadyExists"
    assert status["message"] == 'configmaps "dup" already exists'


def test_namespace_must_exist(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("no-such-namespace", configmap("x"))
    status = _status(err.value)
    assert err.value.status == 404
    assert status["message"] == 'namespaces "no-such-namespace" not found'


def test_invalid_object_is_422(apps: client.AppsV1Api, namespace: str) -> None:
    bad = deployment("bad")
    bad.spec.template.metadata.labels = {"app": "other"}
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment(namespace, bad)
    status = _status(err.value)
    assert err.value.status == 422 and status["reason"] == "Invalid"
    assert "selector` does not match template `labels`" in status["message"]
    assert status["details"]["causes"][0]["field"] == "spec.template.metadata.labels"


def test_cluster_scoped_and_namespaced(api_client: client.ApiClient, namespace: str) -> None:
    rbac = client.RbacAuthorizationV1Api(api_client)
    role = rbac.create_cluster_role(
        client.V1ClusterRole(
            metadata=client.V1ObjectMeta(name=f"{namespace}:viewer"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get"])],
        )
    )
    assert role.metadata.namespace is None
    assert rbac.read_cluster_role(f"{namespace}:viewer").rules[0].verbs == ["get"]
    rb = rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="viewers"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io",
                kind="ClusterRole",
                name=f"{namespace}:viewer",
            ),
            subjects=[
                client.RbacV1Subject(
                    kind="Group", name="viewers", api_group="rbac.authorization.k8s.io"
                )
            ],
        ),
    )
    assert rb.metadata.namespace == namespace
    rbac.delete_cluster_role(f"{namespace}:viewer")
    # A cluster-scoped resource under a namespace path does not exist.
    status, _, body = raw_request(
        api_client, "GET", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/clusterroles"
    )
    assert status == 404 and body["kind"] == "Status"


def test_every_listed_kind_is_storable(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    batch = client.BatchV1Api(api_client)
    pod_spec = client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36")])
    core.create_namespaced_pod(
        namespace, client.V1Pod(metadata=client.V1ObjectMeta(name="p"), spec=pod_spec)
    )
    core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="svc"),
            spec=client.V1ServiceSpec(selector={"app": "x"}, ports=[client.V1ServicePort(port=80)]),
        ),
    )
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="sa"))
    )
    sts = deployment("db")
    apps.create_namespaced_stateful_set(
        namespace,
        client.V1StatefulSet(
            metadata=sts.metadata,
            spec=client.V1StatefulSetSpec(
                service_name="db",
                selector=sts.spec.selector,
                template=sts.spec.template,
                replicas=2,
            ),
        ),
    )
    batch.create_namespaced_job(
        namespace,
        client.V1Job(
            metadata=client.V1ObjectMeta(name="once"),
            spec=client.V1JobSpec(
                template=client.V1PodTemplateSpec(
                    spec=client.V1PodSpec(
                        restart_policy="Never",
                        containers=[client.V1Container(name="c", image="busybox:1.36")],
                    )
                )
            ),
        ),
    )
    pod = core.read_namespaced_pod("p", namespace)
    assert pod.status.phase == "Running" and pod.spec.node_name
    svc = core.read_namespaced_service("svc", namespace)
    assert svc.spec.cluster_ip.startswith("10.100.") and svc.spec.ports[0].protocol == "TCP"
    assert [
        p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector="app=db").items
    ] == ["db-0", "db-1"]
    assert batch.read_namespaced_job("once", namespace).status.succeeded == 1
    # A new namespace gets its default ServiceAccount and root CA config map.
    assert core.read_namespaced_service_account("default", namespace).metadata.name == "default"
    assert (
        "BEGIN CERTIFICATE"
        in core.read_namespaced_config_map("kube-root-ca.crt", namespace).data["ca.crt"]
    )


def test_patch_merge_json_and_strategic(
    core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str
) -> None:
    core.create_namespaced_config_map(namespace, configmap("p", {"a": "1", "b": "2"}))
    merged = core.patch_namespaced_config_map(
        "p",
        namespace,
        {"data": {"b": None, "c": "3"}},
        _content_type="application/merge-patch+json",
    )
    assert merged.data == {"a": "1", "c": "3"}
    patched = core.patch_namespaced_config_map(
        "p",
        namespace,
        [
            {"op": "test", "path": "/data/a", "value": "1"},
            {"op": "replace", "path": "/data/a", "value": "9"},
            {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
        ],
        _content_type="application/json-patch+json",
    )
    assert patched.data["a"] == "9" and patched.metadata.labels == {"x": "y"}
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map(
            "p",
            namespace,
            [{"op": "test", "path": "/data/a", "value": "nope"}],
            _content_type="application/json-patch+json",
        )
    assert err.value.status == 422

    dep = deployment("web")
    dep.spec.template.spec.containers.append(client.V1Container(name="sidecar", image="envoy:1.31"))
    apps.create_namespaced_deployment(namespace, dep)
    strategic = apps.patch_namespaced_deployment(
        "web",
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}},
        _content_type="application/strategic-merge-patch+json",
    )
    containers = {c.name: c.image for c in strategic.spec.template.spec.containers}
    # Lists of containers merge by name: the sidecar survives, web gets the new image.
    assert containers == {"web": "nginx:1.28", "sidecar": "envoy:1.31"}
    assert strategic.metadata.generation == 2
    removed = apps.patch_namespaced_deployment(
        "web",
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}},
        _content_type="application/strategic-merge-patch+json",
    )
    assert [c.name for c in removed.spec.template.spec.containers] == ["web"]
    # The client's default for a dict body is a strategic merge patch as well.
    scaled = apps.patch_namespaced_deployment("web", namespace, {"spec": {"replicas": 3}})
    assert scaled.spec.replicas == 3 and scaled.status.ready_replicas == 3

    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map(
            "p", namespace, {"data": {}}, _content_type="application/apply-patch+yaml"
        )
    assert err.value.status == 415

    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map(
            "p",
            namespace,
            {"metadata": {"resourceVersion": "1"}},
            _content_type="application/merge-patch+json",
        )
    assert err.value.status == 409


def test_deployment_rollout_creates_replicasets_and_pods(
    core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, deployment("api", replicas=2))
    pods = core.list_namespaced_pod(namespace, label_selector="app=api").items
    assert len(pods) == 2 and all(p.status.phase == "Running" for p in pods)
    apps.patch_namespaced_deployment(
        "api",
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "api", "image": "nginx:1.28"}]}}}},
    )
    rs = apps.list_namespaced_replica_set(namespace, label_selector="app=api").items
    assert sorted(r.spec.replicas for r in rs) == [0, 2]
    images = {
        p.spec.containers[0].image
        for p in core.list_namespaced_pod(namespace, label_selector="app=api").items
    }
    assert images == {"nginx:1.28"}
    dep = apps.read_namespaced_deployment("api", namespace)
    assert dep.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert dep.status.observed_generation == dep.metadata.generation == 2
    apps.delete_namespaced_deployment("api", namespace)
    assert core.list_namespaced_pod(namespace, label_selector="app=api").items == []
    assert apps.list_namespaced_replica_set(namespace, label_selector="app=api").items == []


def test_secrets_string_data(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="creds"),
            data={"user": base64.b64encode(b"admin").decode()},
            string_data={"password": "pa55"},
        ),
    )
    assert created.string_data is None
    assert created.type == "Opaque"
    assert base64.b64decode(created.data["password"]) == b"pa55"
    assert base64.b64decode(created.data["user"]) == b"admin"
    patched = core.patch_namespaced_secret("creds", namespace, {"stringData": {"user": "root"}})
    assert base64.b64decode(patched.data["user"]) == b"root"


def test_delete_returns_status_or_object(
    core: client.CoreV1Api, api_client: client.ApiClient, namespace: str
) -> None:
    cm = core.create_namespaced_config_map(namespace, configmap("gone"))
    status, _, body = raw_request(
        api_client, "DELETE", f"/api/v1/namespaces/{namespace}/configmaps/gone"
    )
    assert status == 200
    assert body["kind"] == "Status" and body["status"] == "Success"
    assert body["details"] == {"name": "gone", "kind": "configmaps", "uid": cm.metadata.uid}

    core.create_namespaced_pod(
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="doomed"),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36")]),
        ),
    )
    deleted = core.delete_namespaced_pod("doomed", namespace)
    assert deleted.metadata.name == "doomed" and deleted.metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_pod("doomed", namespace)
    assert err.value.status == 404


def test_delete_collection(
    core: client.CoreV1Api, api_client: client.ApiClient, namespace: str
) -> None:
    for i in range(3):
        core.create_namespaced_config_map(
            namespace, configmap(f"bulk-{i}", labels={"batch": "yes"})
        )
    core.create_namespaced_config_map(namespace, configmap("keep", labels={"batch": "no"}))
    status, _, body = raw_request(
        api_client,
        "DELETE",
        f"/api/v1/namespaces/{namespace}/configmaps",
        query=[("labelSelector", "batch=yes")],
    )
    assert status == 200 and body["kind"] == "ConfigMapList"
    assert sorted(i["metadata"]["name"] for i in body["items"]) == ["bulk-0", "bulk-1", "bulk-2"]
    core.delete_collection_namespaced_config_map(namespace, label_selector="batch=no")
    left = {cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items}
    assert left == {"kube-root-ca.crt"}


def test_dry_run_all(core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str) -> None:
    dry = core.create_namespaced_config_map(namespace, configmap("dry"), dry_run="All")
    assert dry.metadata.name == "dry" and dry.metadata.uid and not dry.metadata.resource_version
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("dry", namespace)

    cm = core.create_namespaced_config_map(namespace, configmap("real", {"a": "1"}))
    cm.data = {"a": "2"}
    assert core.replace_namespaced_config_map("real", namespace, cm, dry_run="All").data == {
        "a": "2"
    }
    assert core.patch_namespaced_config_map(
        "real", namespace, {"data": {"a": "3"}}, dry_run="All"
    ).data == {"a": "3"}
    assert core.read_namespaced_config_map("real", namespace).data == {"a": "1"}

    core.delete_namespaced_config_map("real", namespace, dry_run="All")
    assert (
        core.read_namespaced_config_map("real", namespace).metadata.resource_version
        == cm.metadata.resource_version
    )

    # Dry-run still validates.
    bad = deployment("bad")
    bad.spec.template.metadata.labels = {"app": "other"}
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment(namespace, bad, dry_run="All")
    assert err.value.status == 422
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, configmap("x"), dry_run="Some")
    assert err.value.status == 400


def test_scale_subresource(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment("scaled", replicas=1))
    scale = apps.read_namespaced_deployment_scale("scaled", namespace)
    assert scale.spec.replicas == 1 and scale.status.selector == "app=scaled"
    apps.patch_namespaced_deployment_scale("scaled", namespace, {"spec": {"replicas": 4}})
    assert apps.read_namespaced_deployment("scaled", namespace).status.available_replicas == 4


def test_reviews(api_client: client.ApiClient) -> None:
    review = client.AuthenticationV1Api(api_client).create_self_subject_review(
        client.V1SelfSubjectReview(metadata=client.V1ObjectMeta())
    )
    assert (
        review.status.user_info.username
        == "arn:aws:sts::123456789012:assumed-role/eksgate-test/alice"
    )
    access = client.AuthorizationV1Api(api_client).create_self_subject_access_review(
        client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    verb="get", resource="pods", namespace="shop"
                )
            )
        )
    )
    assert access.status.allowed is True
