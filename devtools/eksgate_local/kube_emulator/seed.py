"""Seed data: a small, realistic EKS cluster for demos and tests.

Namespaces ``default``, ``kube-system``, ``shop`` and ``payments`` (plus the usual
``kube-public`` and ``kube-node-lease``), two worker nodes, workloads with their ReplicaSets
and Running pods, Services, ConfigMaps, Secrets, ServiceAccounts and RBAC objects.

Several objects deliberately contain credentials, so that masking can be tested end to end:
the values are exported below (:data:`SEEDED_SECRET_VALUES`, :data:`SENSITIVE_VALUES`). All of
them are fake; ``AKIAIOSFODNN7EXAMPLE`` and its secret are AWS's documented example keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any

from .api import Api
from .discovery import ResourceInfo
from .logs import LogBook
from .objects import parse_rfc3339

Object = dict[str, Any]

CLUSTER_REGION = "eu-west-1"
NODE_NAMES = (
    "ip-10-0-1-23.eu-west-1.compute.internal",
    "ip-10-0-2-47.eu-west-1.compute.internal",
)
SEEDED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "shop", "payments")

DB_USERNAME = "shop"
DB_PASSWORD = "s3cr3t-db-pass"
DATABASE_URL = f"postgres://{DB_USERNAME}:{DB_PASSWORD}@db:5432/shop"
SHOP_API_TOKEN = "shp_tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
STRIPE_API_KEY = "sk_test_FAKEeksgate00000000000000000000000000"
STRIPE_WEBHOOK_SECRET = "whsec_FAKEeksgate0000000000000000000"
LOG_PASSWORD = "hunter2"
EXAMPLE_AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

# Plaintext values of every seeded Secret, by (namespace, name) then key.
SEEDED_SECRET_VALUES: dict[tuple[str, str], dict[str, str]] = {
    ("shop", "db-credentials"): {"username": DB_USERNAME, "password": DB_PASSWORD},
    ("shop", "shop-api-token"): {"token": SHOP_API_TOKEN},
    ("payments", "stripe-key"): {
        "api-key": STRIPE_API_KEY,
        "webhook-secret": STRIPE_WEBHOOK_SECRET,
    },
}
# Every credential-looking string planted anywhere (secrets, config maps, annotations, logs);
# none of these should ever reach a person through the gateway unmasked.
SENSITIVE_VALUES: frozenset[str] = frozenset(
    {
        DB_PASSWORD,
        SHOP_API_TOKEN,
        STRIPE_API_KEY,
        STRIPE_WEBHOOK_SECRET,
        LOG_PASSWORD,
        EXAMPLE_AWS_ACCESS_KEY_ID,
        EXAMPLE_AWS_SECRET_ACCESS_KEY,
    }
)

WEB_IMAGE = "nginx:1.27"
WORKER_IMAGE = "public.ecr.aws/eksgate-demo/shop-worker:2.4.1"
PAYMENTS_IMAGE = "public.ecr.aws/eksgate-demo/payments-api:1.8.0"
COREDNS_IMAGE = "602401143452.dkr.ecr.eu-west-1.amazonaws.com/eks/coredns:v1.11.3-eksbuild.2"


def b64(value: str) -> str:
    """Base64 of ``value`` as it appears in a Secret's ``data``."""
    return base64.b64encode(value.encode()).decode()


def _node(name: str, zone: str, ip: str) -> Object:
    return {
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "m6i.large",
                "topology.kubernetes.io/region": CLUSTER_REGION,
                "topology.kubernetes.io/zone": zone,
                "eks.amazonaws.com/nodegroup": "default",
                "eks.amazonaws.com/capacityType": "ON_DEMAND",
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {
            "providerID": f"aws:///{zone}/i-0{hashlib.sha256(name.encode()).hexdigest()[:16]}"
        },
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "InternalDNS", "address": name},
                {"type": "Hostname", "address": name},
            ],
            "capacity": {
                "cpu": "2",
                "memory": "7934440Ki",
                "pods": "29",
                "ephemeral-storage": "83873772Ki",
            },
            "allocatable": {
                "cpu": "1930m",
                "memory": "7244264Ki",
                "pods": "29",
                "ephemeral-storage": "76224326324",
            },
            "conditions": [
                {
                    "type": "MemoryPressure",
                    "status": "False",
                    "reason": "KubeletHasSufficientMemory",
                    "message": "kubelet has sufficient memory available",
                },
                {
                    "type": "DiskPressure",
                    "status": "False",
                    "reason": "KubeletHasNoDiskPressure",
                    "message": "kubelet has no disk pressure",
                },
                {
                    "type": "PIDPressure",
                    "status": "False",
                    "reason": "KubeletHasSufficientPID",
                    "message": "kubelet has sufficient PID available",
                },
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                },
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "osImage": "Amazon Linux 2023.6.20241212",
                "kernelVersion": "6.1.119-129.201.amzn2023.x86_64",
                "containerRuntimeVersion": "containerd://1.7.23",
                "kubeletVersion": "v1.35.0-eks-3cfe0ce",
                "kubeProxyVersion": "v1.35.0-eks-3cfe0ce",
            },
        },
    }


def _deployment(
    ns: str,
    name: str,
    image: str,
    replicas: int,
    *,
    labels: Object,
    port: int,
    env: list[Object] | None = None,
    annotations: Object | None = None,
) -> Object:
    container: Object = {
        "name": name,
        "image": image,
        "ports": [{"containerPort": port, "protocol": "TCP"}],
    }
    if env:
        container["env"] = env
    meta: Object = {"name": name, "namespace": ns, "labels": dict(labels)}
    if annotations:
        meta["annotations"] = annotations
    return {
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": labels["app"]}},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [container]},
            },
        },
    }


def _service(
    ns: str, name: str, app: str, port: int, target: int, *, cluster_ip: str | None = None
) -> Object:
    spec: Object = {
        "selector": {"app": app},
        "ports": [{"name": "http", "port": port, "targetPort": target, "protocol": "TCP"}],
    }
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {"metadata": {"name": name, "namespace": ns, "labels": {"app": app}}, "spec": spec}


def _last_applied_secret(ns: str, name: str, data: dict[str, str]) -> str:
    # What `kubectl apply -f secret.yaml` leaves behind: the whole manifest, data included.
    manifest = {
        "apiVersion": "v1",
        "data": {k: b64(v) for k, v in data.items()},
        "kind": "Secret",
        "metadata": {"annotations": {}, "name": name, "namespace": ns},
        "type": "Opaque",
    }
    return json.dumps(manifest, separators=(",", ":"), sort_keys=True) + "\n"


def seed_objects() -> list[tuple[str, str, Object]]:
    """The seed objects as (group, kind, object), in creation order."""
    objs: list[tuple[str, str, Object]] = []

    def add(group: str, kind: str, obj: Object) -> None:
        objs.append((group, kind, obj))

    add("", "Node", _node(NODE_NAMES[0], "eu-west-1a", "10.0.1.23"))
    add("", "Node", _node(NODE_NAMES[1], "eu-west-1b", "10.0.2.47"))
    for ns in SEEDED_NAMESPACES:
        add("", "Namespace", {"metadata": {"name": ns}})

    # --- default / kube-system ---------------------------------------------------------
    kubernetes_svc = _service("default", "kubernetes", "", 443, 443, cluster_ip="10.100.0.1")
    kubernetes_svc["metadata"]["labels"] = {"component": "apiserver", "provider": "kubernetes"}
    kubernetes_svc["spec"]["ports"][0]["name"] = "https"
    del kubernetes_svc["spec"]["selector"]
    add("", "Service", kubernetes_svc)
    add(
        "",
        "ConfigMap",
        {
            "metadata": {"name": "aws-auth", "namespace": "kube-system"},
            "data": {
                "mapRoles": (
                    "- groups:\n  - system:bootstrappers\n  - system:nodes\n"
                    "  rolearn: arn:aws:iam::123456789012:role/eksgate-demo-node\n"
                    "  username: system:node:{{EC2PrivateDNSName}}\n"
                ),
            },
        },
    )
    coredns = _deployment(
        "kube-system",
        "coredns",
        COREDNS_IMAGE,
        2,
        labels={"app": "coredns", "k8s-app": "kube-dns", "eks.amazonaws.com/component": "coredns"},
        port=53,
    )
    coredns["spec"]["selector"] = {
        "matchLabels": {"k8s-app": "kube-dns", "eks.amazonaws.com/component": "coredns"}
    }
    add("apps", "Deployment", coredns)
    dns = _service("kube-system", "kube-dns", "coredns", 53, 53, cluster_ip="10.100.0.10")
    dns["spec"]["selector"] = {"k8s-app": "kube-dns"}
    dns["spec"]["ports"] = [
        {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
    ]
    add("", "Service", dns)

    # --- shop ---------------------------------------------------------------------------
    add(
        "apps",
        "Deployment",
        _deployment(
            "shop",
            "web",
            WEB_IMAGE,
            2,
            labels={"app": "web", "tier": "frontend"},
            port=80,
            annotations={"kubernetes.io/change-cause": "release 2024.12.1"},
        ),
    )
    add(
        "apps",
        "Deployment",
        _deployment(
            "shop",
            "worker",
            WORKER_IMAGE,
            1,
            labels={"app": "worker", "tier": "backend"},
            port=8080,
            env=[
                {
                    "name": "QUEUE_URL",
                    "value": "https://sqs.eu-west-1.amazonaws.com/123456789012/shop-orders",
                },
                {
                    "name": "DB_USER",
                    "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "username"}},
                },
                {
                    "name": "DB_PASSWORD",
                    "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password"}},
                },
            ],
        ),
    )
    add("", "Service", _service("shop", "web", "web", 80, 80))
    add(
        "",
        "ConfigMap",
        {
            "metadata": {"name": "shop-config", "namespace": "shop", "labels": {"app": "shop"}},
            "data": {
                "application.properties": (f"DATABASE_URL={DATABASE_URL}\nCACHE_TTL_SECONDS=300\n"),
                "LOG_LEVEL": "info",
            },
        },
    )
    add(
        "",
        "Secret",
        {
            "metadata": {"name": "db-credentials", "namespace": "shop", "labels": {"app": "shop"}},
            "type": "Opaque",
            "data": {
                k: b64(v) for k, v in SEEDED_SECRET_VALUES[("shop", "db-credentials")].items()
            },
        },
    )
    token_data = SEEDED_SECRET_VALUES[("shop", "shop-api-token")]
    add(
        "",
        "Secret",
        {
            "metadata": {
                "name": "shop-api-token",
                "namespace": "shop",
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": _last_applied_secret(
                        "shop", "shop-api-token", token_data
                    ),
                },
            },
            "type": "Opaque",
            "data": {k: b64(v) for k, v in token_data.items()},
        },
    )
    add(
        "",
        "ServiceAccount",
        {
            "metadata": {
                "name": "deployer",
                "namespace": "shop",
                "labels": {"app.kubernetes.io/managed-by": "eksgate"},
            }
        },
    )
    add(
        "rbac.authorization.k8s.io",
        "Role",
        {
            "metadata": {"name": "deployer", "namespace": "shop"},
            "rules": [
                {
                    "apiGroups": ["apps"],
                    "resources": ["deployments", "replicasets"],
                    "verbs": ["get", "list", "watch", "update", "patch"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["pods", "pods/log"],
                    "verbs": ["get", "list", "watch"],
                },
            ],
        },
    )
    add(
        "rbac.authorization.k8s.io",
        "RoleBinding",
        {
            "metadata": {"name": "deployer", "namespace": "shop"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "deployer",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": "shop"}],
        },
    )
    add(
        "batch",
        "Job",
        {
            "metadata": {
                "name": "db-migrate-1842",
                "namespace": "shop",
                "labels": {"app": "shop", "job": "db-migrate"},
            },
            "spec": {
                "completions": 1,
                "template": {
                    "metadata": {"labels": {"job": "db-migrate"}},
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {
                                "name": "migrate",
                                "image": WORKER_IMAGE,
                                "args": ["migrate", "--to", "latest"],
                            }
                        ],
                    },
                },
            },
        },
    )

    # --- payments -------------------------------------------------------------------------
    add(
        "apps",
        "Deployment",
        _deployment(
            "payments",
            "api",
            PAYMENTS_IMAGE,
            2,
            labels={"app": "api", "team": "payments"},
            port=8443,
            env=[
                {
                    "name": "STRIPE_API_KEY",
                    "valueFrom": {"secretKeyRef": {"name": "stripe-key", "key": "api-key"}},
                }
            ],
        ),
    )
    add("", "Service", _service("payments", "api", "api", 443, 8443))
    add(
        "",
        "Secret",
        {
            "metadata": {"name": "stripe-key", "namespace": "payments", "labels": {"app": "api"}},
            "type": "Opaque",
            "stringData": dict(SEEDED_SECRET_VALUES[("payments", "stripe-key")]),
        },
    )

    # --- cluster-wide RBAC --------------------------------------------------------------------
    add(
        "rbac.authorization.k8s.io",
        "ClusterRole",
        {
            "metadata": {
                "name": "eksgate:readonly",
                "labels": {"app.kubernetes.io/managed-by": "eksgate"},
            },
            "rules": [
                {
                    "apiGroups": ["", "apps", "batch"],
                    "resources": ["*"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
    )
    add(
        "rbac.authorization.k8s.io",
        "ClusterRole",
        {
            "metadata": {
                "name": "eksgate:deployer",
                "labels": {"app.kubernetes.io/managed-by": "eksgate"},
            },
            "rules": [
                {
                    "apiGroups": ["apps"],
                    "resources": ["deployments", "deployments/scale"],
                    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["pods", "pods/log", "services", "configmaps"],
                    "verbs": ["get", "list", "watch"],
                },
            ],
        },
    )
    add(
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        {
            "metadata": {
                "name": "eksgate:readonly",
                "labels": {"app.kubernetes.io/managed-by": "eksgate"},
            },
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "eksgate:readonly",
            },
            "subjects": [
                {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Group",
                    "name": "eksgate:readonly",
                }
            ],
        },
    )
    return objs


def _pod_logs(namespace: str, app: str, pod_index: int) -> list[str]:
    # {iso}, {clf} and {slash} are filled with times relative to the pod's start (logs.py).
    if app == "web":
        return [
            "/docker-entrypoint.sh: /docker-entrypoint.d/ is not empty, will attempt to perform configuration",
            "/docker-entrypoint.sh: Configuration complete; ready for start up",
            "{slash} [notice] 1#1: nginx/1.27.3",
            "{slash} [notice] 1#1: start worker processes",
            f'10.0.2.{31 + pod_index} - - [{{clf}}] "GET / HTTP/1.1" 200 615 "-" "Mozilla/5.0"',
            f'10.0.2.{31 + pod_index} - - [{{clf}}] "POST /login HTTP/1.1" 302 0 "-" "Mozilla/5.0"',
            f'10.0.1.{44 + pod_index} - - [{{clf}}] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.35"',
        ]
    if app == "worker":
        return [
            "{iso} INFO  shop-worker 2.4.1 starting",
            f"{{iso}} DEBUG connecting to {DATABASE_URL}",
            f"{{iso}} DEBUG aws: using static credentials access_key_id={EXAMPLE_AWS_ACCESS_KEY_ID} "
            f"aws_secret_access_key={EXAMPLE_AWS_SECRET_ACCESS_KEY}",
            f"{{iso}} WARN  legacy smtp relay configured with user=mailer password={LOG_PASSWORD}",
            "{iso} INFO  polling https://sqs.eu-west-1.amazonaws.com/123456789012/shop-orders",
            "{iso} INFO  processed order id=10492 items=3 total=54.20",
            "{iso} INFO  processed order id=10493 items=1 total=12.00",
        ]
    if app == "api" and namespace == "payments":
        return [
            '{"level":"info","ts":"{iso}","msg":"payments-api 1.8.0 listening","addr":":8443"}',
            f'{{"level":"debug","ts":"{{iso}}","msg":"stripe client configured","key":"{STRIPE_API_KEY}"}}',
            '{"level":"info","ts":"{iso}","msg":"charge created","charge":"ch_3FAKE","amount":5420}',
        ]
    return []


_TIMESTAMP_KEYS = frozenset(
    {
        "creationTimestamp",
        "startTime",
        "startedAt",
        "lastTransitionTime",
        "lastUpdateTime",
        "completionTime",
        "lastProbeTime",
    }
)


def _age(group_resource: tuple[str, str], namespace: str) -> timedelta:
    """How long ago a seeded object was created: a cluster that has been running a while."""
    group, resource = group_resource
    if resource == "nodes":
        return timedelta(days=9, hours=4)
    if resource == "namespaces" or namespace.startswith("kube-") or namespace == "default":
        return timedelta(days=41, hours=2) if resource != "pods" else timedelta(days=9, hours=3)
    if resource in ("pods", "replicasets"):
        return timedelta(days=3, hours=5, minutes=12)
    if resource == "jobs":
        return timedelta(days=11, hours=6)
    return timedelta(days=27, hours=1)


def _shift(node: Any, delta: timedelta) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            when = (
                parse_rfc3339(value) if key in _TIMESTAMP_KEYS and isinstance(value, str) else None
            )
            out[key] = (
                (when - delta).strftime("%Y-%m-%dT%H:%M:%SZ") if when else _shift(value, delta)
            )
        return out
    if isinstance(node, list):
        return [_shift(v, delta) for v in node]
    return node


def _backdate(api: Api) -> None:
    for group_resource, obj in api.store.iter_all():
        namespace = obj["metadata"].get("namespace", "")
        aged = _shift(obj, _age(group_resource, namespace))
        if group_resource == ("batch", "jobs"):
            start = parse_rfc3339(aged["status"]["startTime"])
            if start is not None:
                aged["status"]["completionTime"] = (start + timedelta(seconds=47)).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                )
        api.store.put(group_resource, aged)


def seed_cluster(api: Api, logs: LogBook) -> None:
    """Create the seed objects through the API (so controllers create RS and pods)."""
    for group, kind, obj in seed_objects():
        info: ResourceInfo | None = api.discovery.resource_for_kind(group, kind)
        if info is None:  # the shipped discovery documents list every seeded kind
            raise RuntimeError(f"discovery lacks {group}/{kind}")
        namespace = obj["metadata"].get("namespace") if info.namespaced else None
        if (
            kind == "Namespace"
            and api.store.get(("", "namespaces"), "", obj["metadata"]["name"]) is not None
        ):
            continue
        api.create(info, namespace, obj, dry_run=False, principal="system:admin")
    pods = api.discovery.resource("", "v1", "pods")
    assert pods is not None
    for namespace in ("shop", "payments"):
        for app in ("web", "worker", "api"):
            selected = [
                p
                for p in api.store.list(("", "pods"), namespace)
                if (p["metadata"].get("labels") or {}).get("app") == app
            ]
            for index, pod in enumerate(selected):
                lines = _pod_logs(namespace, app, index)
                if lines:
                    container = pod["spec"]["containers"][0]["name"]
                    logs.set_lines(namespace, pod["metadata"]["name"], container, lines)
    _backdate(api)
