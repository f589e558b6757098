"""Server-side printing: ``meta.k8s.io`` Table output as kube-apiserver produces it.

``kubectl get`` asks for ``application/json;as=Table;v=v1;g=meta.k8s.io`` and prints the
cells it gets back, so the columns here follow kube's printers (pkg/printers/internalversion)
for the common kinds; any other kind gets kube's default ``Name`` and ``Age`` (``Created At``
for RBAC roles, as kube prints them).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .objects import parse_rfc3339

Object = dict[str, Any]

TABLE_GROUP = "meta.k8s.io"
TABLE_VERSIONS = ("v1", "v1beta1")


@dataclass(frozen=True)
class Column:
    """A Table column definition plus the function computing its cell."""

    name: str
    type: str
    description: str
    cell: Callable[[Object], Any]
    priority: int = 0
    format: str = ""

    def definition(self) -> Object:
        """The ``TableColumnDefinition`` JSON."""
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


def human_duration(seconds: float) -> str:
    """kube's ``duration.HumanDuration`` (what the AGE column shows)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 60 * 2:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rem = s % 60
        return f"{minutes}m" if rem == 0 else f"{minutes}m{rem}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rem = minutes % 60
        return f"{hours}h" if rem == 0 else f"{hours}h{rem}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rem = hours % 24
        return f"{hours // 24}d" if rem == 0 else f"{hours // 24}d{rem}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rem = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if rem == 0 else f"{hours // 24 // 365}y{rem}d"
    return f"{hours // 24 // 365}y"


def _since(ts: str | None) -> str:
    when = parse_rfc3339(ts)
    if when is None:
        return "<unknown>"
    return human_duration((datetime.now(UTC) - when).total_seconds())


def _meta(obj: Object) -> Object:
    return obj.get("metadata") or {}


def _spec(obj: Object) -> Object:
    return obj.get("spec") or {}


def _status(obj: Object) -> Object:
    return obj.get("status") or {}


def _name(obj: Object) -> str:
    return _meta(obj).get("name", "")


def _age(obj: Object) -> str:
    return _since(_meta(obj).get("creationTimestamp"))


NAME = Column(
    "Name",
    "string",
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    _name,
    format="name",
)
AGE = Column(
    "Age",
    "string",
    "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "It is not guaranteed to be set in happens-before order across separate operations. Clients "
    "may not set this value. It is represented in RFC3339 form and is in UTC.",
    _age,
)


def _join(values: list[str]) -> str:
    return ",".join(values) if values else "<none>"


def _containers(obj: Object) -> list[Object]:
    return [
        c
        for c in ((_spec(obj).get("template") or {}).get("spec") or {}).get("containers") or []
        if isinstance(c, dict)
    ]


def _selector_text(selector: Object | None) -> str:
    if not selector:
        return "<none>"
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        op = expr.get("operator")
        if op in ("In", "NotIn"):
            parts.append(f"{expr.get('key')} {op.lower()} ({','.join(expr.get('values') or [])})")
        elif op == "Exists":
            parts.append(str(expr.get("key")))
        elif op == "DoesNotExist":
            parts.append(f"!{expr.get('key')}")
    return ",".join(parts) or "<none>"


def _workload_columns() -> list[Column]:
    return [
        Column(
            "Containers",
            "string",
            "Names of each container in the template.",
            lambda o: _join([c.get("name", "") for c in _containers(o)]),
            priority=1,
        ),
        Column(
            "Images",
            "string",
            "Images referenced by each container in the template.",
            lambda o: _join([c.get("image", "") for c in _containers(o)]),
            priority=1,
        ),
        Column(
            "Selector",
            "string",
            "Label selector for pods.",
            lambda o: _selector_text(_spec(o).get("selector")),
            priority=1,
        ),
    ]


# ----- pods -------------------------------------------------------------------------------


def _pod_ready(pod: Object) -> str:
    statuses = _status(pod).get("containerStatuses") or []
    total = len(_spec(pod).get("containers") or [])
    ready = sum(1 for s in statuses if s.get("ready"))
    return f"{ready}/{total}"


def _pod_status(pod: Object) -> str:
    meta = _meta(pod)
    status = _status(pod)
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
    if meta.get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def _pod_restarts(pod: Object) -> str:
    restarts = sum(
        int(s.get("restartCount", 0)) for s in _status(pod).get("containerStatuses") or []
    )
    return str(restarts)


POD_COLUMNS = [
    NAME,
    Column(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
        _pod_ready,
    ),
    Column("Status", "string", "The aggregate status of the containers in this pod.", _pod_status),
    Column(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        _pod_restarts,
    ),
    AGE,
    Column(
        "IP",
        "string",
        "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
        lambda o: _status(o).get("podIP") or "<none>",
        priority=1,
    ),
    Column(
        "Node",
        "string",
        "NodeName is a request to schedule this pod onto a specific node.",
        lambda o: _spec(o).get("nodeName") or "<none>",
        priority=1,
    ),
    Column(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node.",
        lambda o: _status(o).get("nominatedNodeName") or "<none>",
        priority=1,
    ),
    Column(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness.",
        lambda o: _join([g.get("conditionType", "") for g in _spec(o).get("readinessGates") or []]),
        priority=1,
    ),
]

# ----- workloads --------------------------------------------------------------------------

DEPLOYMENT_COLUMNS = [
    NAME,
    Column(
        "Ready",
        "string",
        "Number of the pod with ready state",
        lambda o: f"{_status(o).get('readyReplicas', 0)}/{_spec(o).get('replicas', 1)}",
    ),
    Column(
        "Up-to-date",
        "integer",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
        lambda o: int(_status(o).get("updatedReplicas", 0)),
    ),
    Column(
        "Available",
        "integer",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
        lambda o: int(_status(o).get("availableReplicas", 0)),
    ),
    AGE,
    *_workload_columns(),
]

REPLICASET_COLUMNS = [
    NAME,
    Column(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas.",
        lambda o: int(_spec(o).get("replicas", 1)),
    ),
    Column(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas.",
        lambda o: int(_status(o).get("replicas", 0)),
    ),
    Column(
        "Ready",
        "integer",
        "The number of ready replicas for this replica set.",
        lambda o: int(_status(o).get("readyReplicas", 0)),
    ),
    AGE,
    *_workload_columns(),
]

STATEFULSET_COLUMNS = [
    NAME,
    Column(
        "Ready",
        "string",
        "Number of the pod with ready state",
        lambda o: f"{_status(o).get('readyReplicas', 0)}/{_spec(o).get('replicas', 1)}",
    ),
    AGE,
    *_workload_columns()[:2],
]

DAEMONSET_COLUMNS = [
    NAME,
    Column(
        "Desired",
        "integer",
        "The total number of nodes that should be running the daemon pod.",
        lambda o: int(_status(o).get("desiredNumberScheduled", 0)),
    ),
    Column(
        "Current",
        "integer",
        "The number of nodes that are running at least 1 daemon pod.",
        lambda o: int(_status(o).get("currentNumberScheduled", 0)),
    ),
    Column(
        "Ready",
        "integer",
        "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.",
        lambda o: int(_status(o).get("numberReady", 0)),
    ),
    Column(
        "Up-to-date",
        "integer",
        "The total number of nodes that are running updated daemon pod",
        lambda o: int(_status(o).get("updatedNumberScheduled", 0)),
    ),
    Column(
        "Available",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available.",
        lambda o: int(_status(o).get("numberAvailable", 0)),
    ),
    Column(
        "Node Selector",
        "string",
        "NodeSelector is a selector which must be true for the pod to fit on a node.",
        lambda o: _join(
            [
                f"{k}={v}"
                for k, v in (
                    ((_spec(o).get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
                ).items()
            ]
        ),
    ),
    AGE,
    *_workload_columns(),
]


def _job_status(job: Object) -> str:
    for cond in _status(job).get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed", "Suspended"):
            return str(cond["type"])
    return "Running"


def _job_duration(job: Object) -> str:
    start = parse_rfc3339(_status(job).get("startTime"))
    if start is None:
        return ""
    end = parse_rfc3339(_status(job).get("completionTime")) or datetime.now(UTC)
    return human_duration((end - start).total_seconds())


JOB_COLUMNS = [
    NAME,
    Column("Status", "string", "Status of the job.", _job_status),
    Column(
        "Completions",
        "string",
        "The desired number of successfully finished pods the job should be run with.",
        lambda o: f"{_status(o).get('succeeded', 0)}/{_spec(o).get('completions', 1)}",
    ),
    Column("Duration", "string", "Time required to complete the job.", _job_duration),
    AGE,
    *_workload_columns(),
]

CRONJOB_COLUMNS = [
    NAME,
    Column(
        "Schedule",
        "string",
        "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
        lambda o: _spec(o).get("schedule", ""),
    ),
    Column(
        "Timezone",
        "string",
        "The time zone name for the given schedule.",
        lambda o: _spec(o).get("timeZone") or "<none>",
    ),
    Column(
        "Suspend",
        "boolean",
        "This flag tells the controller to suspend subsequent executions.",
        lambda o: bool(_spec(o).get("suspend", False)),
    ),
    Column(
        "Active",
        "integer",
        "A list of pointers to currently running jobs.",
        lambda o: len(_status(o).get("active") or []),
    ),
    Column(
        "Last Schedule",
        "string",
        "Information when was the last time the job was successfully scheduled.",
        lambda o: (
            _since(_status(o).get("lastScheduleTime"))
            if _status(o).get("lastScheduleTime")
            else "<none>"
        ),
    ),
    AGE,
]

# ----- core kinds ---------------------------------------------------------------------------


def _service_ports(svc: Object) -> str:
    parts = []
    for port in _spec(svc).get("ports") or []:
        text = f"{port.get('port')}/{port.get('protocol', 'TCP')}"
        if port.get("nodePort"):
            text = f"{port.get('port')}:{port['nodePort']}/{port.get('protocol', 'TCP')}"
        parts.append(text)
    return ",".join(parts) or "<none>"


def _external_ip(svc: Object) -> str:
    spec = _spec(svc)
    if spec.get("type") == "LoadBalancer":
        ingress = ((_status(svc).get("loadBalancer") or {}).get("ingress")) or []
        names = [i.get("hostname") or i.get("ip") for i in ingress]
        return ",".join(n for n in names if n) or "<pending>"
    if spec.get("type") == "ExternalName":
        return spec.get("externalName", "<none>")
    return ",".join(spec.get("externalIPs") or []) or "<none>"


SERVICE_COLUMNS = [
    NAME,
    Column(
        "Type",
        "string",
        "type determines how the Service is exposed.",
        lambda o: _spec(o).get("type", "ClusterIP"),
    ),
    Column(
        "Cluster-IP",
        "string",
        "clusterIP is the IP address of the service and is usually assigned randomly.",
        lambda o: _spec(o).get("clusterIP") or "<none>",
    ),
    Column(
        "External-IP",
        "string",
        "List of IP addresses for which nodes in the cluster will also accept traffic for this service.",
        _external_ip,
    ),
    Column(
        "Port(s)", "string", "The list of ports that are exposed by this service.", _service_ports
    ),
    AGE,
    Column(
        "Selector",
        "string",
        "Route service traffic to pods with label keys and values matching this selector.",
        lambda o: _join([f"{k}={v}" for k, v in (_spec(o).get("selector") or {}).items()]),
        priority=1,
    ),
]

CONFIGMAP_COLUMNS = [
    NAME,
    Column(
        "Data",
        "integer",
        "Data contains the configuration data.",
        lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}),
    ),
    AGE,
]

SECRET_COLUMNS = [
    NAME,
    Column(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data.",
        lambda o: o.get("type", "Opaque"),
    ),
    Column("Data", "integer", "Data contains the secret data.", lambda o: len(o.get("data") or {})),
    AGE,
]

SERVICEACCOUNT_COLUMNS = [
    NAME,
    Column(
        "Secrets",
        "integer",
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
        lambda o: len(o.get("secrets") or []),
    ),
    AGE,
]

NAMESPACE_COLUMNS = [
    NAME,
    Column(
        "Status",
        "string",
        "The status of the namespace",
        lambda o: _status(o).get("phase", "Active"),
    ),
    AGE,
]


def _node_status(node: Object) -> str:
    ready = next(
        (c for c in _status(node).get("conditions") or [] if c.get("type") == "Ready"), None
    )
    text = "Ready" if ready and ready.get("status") == "True" else "NotReady"
    if _spec(node).get("unschedulable"):
        text += ",SchedulingDisabled"
    return text


def _node_roles(node: Object) -> str:
    roles = [
        k.split("/", 1)[1]
        for k in (_meta(node).get("labels") or {})
        if k.startswith("node-role.kubernetes.io/")
    ]
    return ",".join(roles) or "<none>"


NODE_COLUMNS = [
    NAME,
    Column("Status", "string", "The status of the node", _node_status),
    Column("Roles", "string", "The roles of the node", _node_roles),
    AGE,
    Column(
        "Version",
        "string",
        "Kubelet Version reported by the node.",
        lambda o: (_status(o).get("nodeInfo") or {}).get("kubeletVersion", ""),
    ),
    Column(
        "Internal-IP",
        "string",
        "List of addresses reachable to the node.",
        lambda o: next(
            (
                a.get("address")
                for a in _status(o).get("addresses") or []
                if a.get("type") == "InternalIP"
            ),
            "<none>",
        ),
        priority=1,
    ),
    Column(
        "External-IP",
        "string",
        "List of addresses reachable to the node.",
        lambda o: next(
            (
                a.get("address")
                for a in _status(o).get("addresses") or []
                if a.get("type") == "ExternalIP"
            ),
            "<none>",
        ),
        priority=1,
    ),
    Column(
        "OS-Image",
        "string",
        "OS Image reported by the node from /etc/os-release.",
        lambda o: (_status(o).get("nodeInfo") or {}).get("osImage", ""),
        priority=1,
    ),
    Column(
        "Kernel-Version",
        "string",
        "Kernel Version reported by the node.",
        lambda o: (_status(o).get("nodeInfo") or {}).get("kernelVersion", ""),
        priority=1,
    ),
    Column(
        "Container-Runtime",
        "string",
        "Container runtime version reported by the node.",
        lambda o: (_status(o).get("nodeInfo") or {}).get("containerRuntimeVersion", ""),
        priority=1,
    ),
]

CREATED_AT = Column(
    "Created At",
    "date",
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
    lambda o: _meta(o).get("creationTimestamp", ""),
)
ROLE_COLUMNS = [NAME, CREATED_AT]


def _subjects(kind: str) -> Callable[[Object], str]:
    def cell(binding: Object) -> str:
        names = []
        for subject in binding.get("subjects") or []:
            if subject.get("kind") == kind:
                if kind == "ServiceAccount":
                    names.append(f"{subject.get('namespace', '')}/{subject.get('name', '')}")
                else:
                    names.append(subject.get("name", ""))
        return ", ".join(names)

    return cell


BINDING_COLUMNS = [
    NAME,
    Column(
        "Role",
        "string",
        "RoleRef references a Role in the current namespace or a ClusterRole in the global namespace.",
        lambda o: (
            f"{(o.get('roleRef') or {}).get('kind', '')}/{(o.get('roleRef') or {}).get('name', '')}"
        ),
    ),
    AGE,
    Column("Users", "string", "Users in the binding", _subjects("User"), priority=1),
    Column("Groups", "string", "Groups in the binding", _subjects("Group"), priority=1),
    Column(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the binding",
        _subjects("ServiceAccount"),
        priority=1,
    ),
]

EVENT_COLUMNS = [
    Column(
        "Last Seen",
        "string",
        "Time when last this event was observed.",
        lambda o: _since(
            o.get("lastTimestamp") or o.get("eventTime") or _meta(o).get("creationTimestamp")
        ),
    ),
    Column("Type", "string", "Type of this event.", lambda o: o.get("type", "")),
    Column(
        "Reason",
        "string",
        "Short, machine understandable string that gives the reason for this event.",
        lambda o: o.get("reason", ""),
    ),
    Column(
        "Object",
        "string",
        "The object that this event is about.",
        lambda o: (
            f"{((o.get('involvedObject') or {}).get('kind') or '').lower()}/{(o.get('involvedObject') or {}).get('name', '')}"
        ),
    ),
    Column(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
        lambda o: o.get("message", ""),
    ),
]

INGRESS_COLUMNS = [
    NAME,
    Column(
        "Class",
        "string",
        "The name of the IngressClass cluster resource.",
        lambda o: _spec(o).get("ingressClassName") or "<none>",
    ),
    Column(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against.",
        lambda o: ",".join(r.get("host", "*") for r in _spec(o).get("rules") or []) or "*",
    ),
    Column(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
        lambda o: ",".join(
            i.get("hostname") or i.get("ip", "")
            for i in ((_status(o).get("loadBalancer") or {}).get("ingress") or [])
        ),
    ),
    Column(
        "Ports",
        "string",
        "Ports of TLS configurations that open",
        lambda o: "80, 443" if _spec(o).get("tls") else "80",
    ),
    AGE,
]

ENDPOINTS_COLUMNS = [
    NAME,
    Column(
        "Endpoints",
        "string",
        "Endpoints is the list of endpoints.",
        lambda o: (
            ",".join(
                f"{a.get('ip')}:{p.get('port')}"
                for s in o.get("subsets") or []
                for a in s.get("addresses") or []
                for p in s.get("ports") or []
            )
            or "<none>"
        ),
    ),
    AGE,
]

_COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("", "pods"): POD_COLUMNS,
    ("apps", "deployments"): DEPLOYMENT_COLUMNS,
    ("apps", "replicasets"): REPLICASET_COLUMNS,
    ("apps", "statefulsets"): STATEFULSET_COLUMNS,
    ("apps", "daemonsets"): DAEMONSET_COLUMNS,
    ("batch", "jobs"): JOB_COLUMNS,
    ("batch", "cronjobs"): CRONJOB_COLUMNS,
    ("", "services"): SERVICE_COLUMNS,
    ("", "configmaps"): CONFIGMAP_COLUMNS,
    ("", "secrets"): SECRET_COLUMNS,
    ("", "serviceaccounts"): SERVICEACCOUNT_COLUMNS,
    ("", "namespaces"): NAMESPACE_COLUMNS,
    ("", "nodes"): NODE_COLUMNS,
    ("", "events"): EVENT_COLUMNS,
    ("", "endpoints"): ENDPOINTS_COLUMNS,
    ("networking.k8s.io", "ingresses"): INGRESS_COLUMNS,
    ("rbac.authorization.k8s.io", "roles"): ROLE_COLUMNS,
    ("rbac.authorization.k8s.io", "clusterroles"): ROLE_COLUMNS,
    ("rbac.authorization.k8s.io", "rolebindings"): BINDING_COLUMNS,
    ("rbac.authorization.k8s.io", "clusterrolebindings"): BINDING_COLUMNS,
}


def columns_for(group_resource: tuple[str, str]) -> list[Column]:
    """The columns kube prints for ``group_resource`` (default: Name, Age)."""
    return _COLUMNS.get(group_resource, [NAME, AGE])


def partial_object_metadata(obj: Object, version: str = "v1") -> Object:
    """The PartialObjectMetadata form of ``obj`` (metadata only)."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": copy.deepcopy(_meta(obj)),
    }


def to_table(
    group_resource: tuple[str, str],
    objects: list[Object],
    *,
    version: str = "v1",
    include_object: str = "Metadata",
    list_metadata: Object | None = None,
    include_columns: bool = True,
) -> Object:
    """Render ``objects`` as a ``meta.k8s.io`` Table.

    ``include_object`` is kube's ``includeObject`` parameter: ``Metadata`` (default) embeds
    PartialObjectMetadata, ``Object`` the full object, ``None`` nothing.
    """
    columns = columns_for(group_resource)
    rows = []
    for obj in objects:
        row: Object = {"cells": [col.cell(obj) for col in columns]}
        if include_object == "Object":
            row["object"] = copy.deepcopy(obj)
        elif include_object == "Metadata":
            row["object"] = partial_object_metadata(obj, version)
        rows.append(row)
    table: Object = {
        "kind": "Table",
        "apiVersion": f"{TABLE_GROUP}/{version}",
        "metadata": dict(list_metadata or {}),
        "columnDefinitions": [c.definition() for c in columns] if include_columns else None,
        "rows": rows,
    }
    return table
