"""What the AWS managed EKS access policies grant, as data, so rules can be checked against them.

Transcribed from the EKS User Guide, "Review access policy permissions"
(https://docs.aws.amazon.com/eks/latest/userguide/access-policy-permissions.html). Each policy
is a list of RBAC-style rows; AmazonEKSEditPolicy is AmazonEKSViewPolicy plus write rows, and
AmazonEKSAdminPolicy is AmazonEKSEditPolicy plus namespaced RBAC. These tables only decide which
*warnings* a plan shows; the choice of policy follows from verbs and resources (see desired.py).
"""

from __future__ import annotations

from dataclasses import dataclass

VIEW_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
EDIT_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminPolicy"
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

# Narrowest first: a rule gets the first one its verbs and resources call for.
POLICY_ORDER = (VIEW_POLICY, EDIT_POLICY, ADMIN_POLICY)

READ_VERBS = frozenset({"get", "list", "watch"})
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
# What "*" means when checking coverage: the verbs the access policies are written in.
ALL_VERBS = READ_VERBS | WRITE_VERBS

RBAC_GROUP = "rbac.authorization.k8s.io"
NAMESPACED_RBAC = frozenset({"roles", "rolebindings"})

# Built-in cluster-scoped resources. No access policy short of ClusterAdmin writes any of them;
# AmazonEKSViewPolicy reads only ``namespaces``. Unknown names (custom resources) are taken as
# namespaced, as the gateway's can-i does.
CLUSTER_SCOPED = frozenset(
    {
        "apiservices",
        "certificatesigningrequests",
        "clusterrolebindings",
        "clusterroles",
        "componentstatuses",
        "csidrivers",
        "csinodes",
        "customresourcedefinitions",
        "flowschemas",
        "ingressclasses",
        "ipaddresses",
        "mutatingadmissionpolicies",
        "mutatingadmissionpolicybindings",
        "mutatingwebhookconfigurations",
        "namespaces",
        "nodes",
        "persistentvolumes",
        "priorityclasses",
        "prioritylevelconfigurations",
        "runtimeclasses",
        "selfsubjectaccessreviews",
        "selfsubjectreviews",
        "selfsubjectrulesreviews",
        "servicecidrs",
        "storageclasses",
        "subjectaccessreviews",
        "tokenreviews",
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
        "validatingwebhookconfigurations",
        "volumeattachments",
        "volumeattributesclasses",
    }
)


@dataclass(frozen=True)
class PolicyRow:
    groups: frozenset[str]
    resources: frozenset[str]
    verbs: frozenset[str]


def _row(group: str, resources: str, verbs: frozenset[str] | str) -> PolicyRow:
    verb_set = frozenset(verbs.split()) if isinstance(verbs, str) else verbs
    return PolicyRow(frozenset({group}), frozenset(resources.split()), verb_set)


_VIEW_ROWS = (
    _row(
        "apps",
        "controllerrevisions daemonsets daemonsets/status deployments deployments/scale "
        "deployments/status replicasets replicasets/scale replicasets/status statefulsets "
        "statefulsets/scale statefulsets/status",
        READ_VERBS,
    ),
    _row("autoscaling", "horizontalpodautoscalers horizontalpodautoscalers/status", READ_VERBS),
    _row("batch", "cronjobs cronjobs/status jobs jobs/status", READ_VERBS),
    _row("discovery.k8s.io", "endpointslices", READ_VERBS),
    _row(
        "extensions",
        "daemonsets daemonsets/status deployments deployments/scale "
        "deployments/status ingresses ingresses/status networkpolicies replicasets "
        "replicasets/scale replicasets/status replicationcontrollers/scale",
        READ_VERBS,
    ),
    _row("networking.k8s.io", "ingresses ingresses/status networkpolicies", READ_VERBS),
    _row("policy", "poddisruptionbudgets poddisruptionbudgets/status", READ_VERBS),
    _row(
        "",
        "configmaps endpoints persistentvolumeclaims persistentvolumeclaims/status pods "
        "replicationcontrollers replicationcontrollers/scale serviceaccounts services "
        "services/status",
        READ_VERBS,
    ),
    _row(
        "",
        "bindings events limitranges namespaces/status pods/log pods/status "
        "replicationcontrollers/status resourcequotas resourcequotas/status",
        READ_VERBS,
    ),
    _row("", "namespaces", READ_VERBS),
)

_EDIT_ROWS = _VIEW_ROWS + (
    _row(
        "apps",
        "daemonsets deployments deployments/rollback deployments/scale replicasets "
        "replicasets/scale statefulsets statefulsets/scale",
        WRITE_VERBS,
    ),
    _row("autoscaling", "horizontalpodautoscalers", WRITE_VERBS),
    _row("batch", "cronjobs jobs", WRITE_VERBS),
    _row(
        "extensions",
        "daemonsets deployments deployments/rollback deployments/scale ingresses "
        "networkpolicies replicasets replicasets/scale replicationcontrollers/scale",
        WRITE_VERBS,
    ),
    _row("networking.k8s.io", "ingresses networkpolicies", WRITE_VERBS),
    _row("policy", "poddisruptionbudgets", WRITE_VERBS),
    _row(
        "", "pods/attach pods/exec pods/portforward pods/proxy secrets services/proxy", READ_VERBS
    ),
    _row("", "serviceaccounts", "impersonate"),
    _row("", "pods pods/attach pods/exec pods/portforward pods/proxy", WRITE_VERBS),
    _row(
        "",
        "configmaps events persistentvolumeclaims replicationcontrollers "
        "replicationcontrollers/scale secrets serviceaccounts services services/proxy",
        WRITE_VERBS,
    ),
)

_ADMIN_ROWS = _EDIT_ROWS + (
    _row("authorization.k8s.io", "localsubjectaccessreviews", "create"),
    _row(RBAC_GROUP, "rolebindings roles", READ_VERBS | WRITE_VERBS),
)

GRANTS: dict[str, tuple[PolicyRow, ...]] = {
    VIEW_POLICY: _VIEW_ROWS,
    EDIT_POLICY: _EDIT_ROWS,
    ADMIN_POLICY: _ADMIN_ROWS,
}


def grants(policy_arn: str, api_groups: tuple[str, ...], resource: str, verb: str) -> bool:
    """Does ``policy_arn`` allow ``verb`` on ``resource`` in any of ``api_groups`` (``*``: any)?"""
    return any(
        verb in row.verbs
        and resource in row.resources
        and ("*" in api_groups or bool(row.groups & set(api_groups)))
        for row in GRANTS[policy_arn]
    )
