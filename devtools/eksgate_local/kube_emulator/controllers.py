"""Instant, synchronous stand-ins for the controllers a cluster runs.

So that real clients see a living cluster (``kubectl apply`` makes pods appear,
``kubectl rollout status`` finishes, deleting a Deployment removes its pods), writes are
followed in the same request by what kube-controller-manager and the kubelet would
eventually do: Deployments roll out a ReplicaSet, ReplicaSets and StatefulSets keep their
pods, pods are "scheduled" and Running at once, workload status reports success, deletion
cascades through ownerReferences and namespaces. Nothing here ever fails or takes time;
it is a development and test stand-in only.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from .discovery import Discovery, ResourceInfo
from .objects import normalize, now_rfc3339, prepare_new, random_suffix, stable_hash
from .store import ObjectStore

Object = dict[str, Any]

POD_TEMPLATE_HASH = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
DEFAULT_NODE = "ip-10-0-1-23.eu-west-1.compute.internal"


def template_hash(template: Object) -> str:
    """Hash of a pod template (without its own hash label), like kube's pod-template-hash."""
    template = copy.deepcopy(template or {})
    (template.get("metadata") or {}).get("labels", {}).pop(POD_TEMPLATE_HASH, None)
    return stable_hash(template)


def _owned_by(obj: Object, uid: str) -> bool:
    return any(
        ref.get("uid") == uid for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
    )


def _owner_ref(owner: Object, *, api_version: str, kind: str) -> Object:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


# Deployment annotations the deployment controller does not copy to its ReplicaSets.
_NOT_COPIED = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION_ANNOTATION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
    }
)


def _copied_annotations(dep: Object) -> Object:
    # kubectl rollout history reads kubernetes.io/change-cause from the ReplicaSets.
    return {
        k: v
        for k, v in ((dep.get("metadata") or {}).get("annotations") or {}).items()
        if k not in _NOT_COPIED
    }


def _nonzero(status: Object) -> Object:
    # kube omits zero-valued counters (omitempty), clients treat absence as 0.
    return {k: v for k, v in status.items() if v not in (0, None)}


class Controllers:
    """Hooks the API layer calls around every persisted write and delete."""

    def __init__(self, store: ObjectStore, discovery: Discovery, *, root_ca_pem: str = "") -> None:
        self._store = store
        self._discovery = discovery
        # Published in every namespace as ConfigMap kube-root-ca.crt, as kube does.
        self._root_ca_pem = root_ca_pem

    def _info(self, group: str, version: str, resource: str) -> ResourceInfo:
        info = self._discovery.resource(group, version, resource)
        if info is None:  # the shipped discovery documents always list these
            raise RuntimeError(f"discovery lacks {group}/{version} {resource}")
        return info

    # ----- status simulation (runs before the write is stored, also for dry-run) ----------

    def before_write(self, info: ResourceInfo, obj: Object) -> None:
        """Fill in status as if the object had already converged."""
        key = info.group_resource
        if key == ("", "pods"):
            self._pod_status(obj)
        elif key == ("apps", "deployments"):
            self._deployment_status(obj)
        elif key == ("apps", "replicasets"):
            replicas = int((obj.get("spec") or {}).get("replicas", 1))
            obj["status"] = {
                "replicas": replicas,
                "fullyLabeledReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "observedGeneration": obj["metadata"].get("generation", 1),
            }
            if replicas == 0:
                obj["status"] = {
                    "replicas": 0,
                    "observedGeneration": obj["metadata"].get("generation", 1),
                }
        elif key == ("apps", "statefulsets"):
            replicas = int((obj.get("spec") or {}).get("replicas", 1))
            revision = f"{obj['metadata']['name']}-{template_hash((obj.get('spec') or {}).get('template') or {})}"
            obj["status"] = {
                "observedGeneration": obj["metadata"].get("generation", 1),
                "replicas": replicas,
                "readyReplicas": replicas,
                "currentReplicas": replicas,
                "updatedReplicas": replicas,
                "availableReplicas": replicas,
                "currentRevision": revision,
                "updateRevision": revision,
                "collisionCount": 0,
            }
        elif key == ("apps", "daemonsets"):
            nodes = max(len(self._store.list(("", "nodes"))), 1)
            obj["status"] = {
                "currentNumberScheduled": nodes,
                "desiredNumberScheduled": nodes,
                "numberAvailable": nodes,
                "numberMisscheduled": 0,
                "numberReady": nodes,
                "observedGeneration": obj["metadata"].get("generation", 1),
                "updatedNumberScheduled": nodes,
            }
        elif key == ("batch", "jobs"):
            self._job_status(obj)

    def _pod_status(self, pod: Object) -> None:
        status = pod.get("status") or {}
        if status.get("phase"):
            return  # explicitly provided (seed data, status updates): keep it
        spec = pod.setdefault("spec", {})
        nodes = sorted(n["metadata"]["name"] for n in self._store.list(("", "nodes")))
        digest = hashlib.sha256(pod["metadata"]["uid"].encode()).digest()
        if not spec.get("nodeName"):
            spec["nodeName"] = nodes[digest[0] % len(nodes)] if nodes else DEFAULT_NODE
        node = spec["nodeName"]
        host_ip = (
            node.split(".", 1)[0].removeprefix("ip-").replace("-", ".")
            if node.startswith("ip-")
            else "10.0.1.23"
        )
        pod_ip = f"10.0.{1 + digest[1] % 3}.{10 + digest[2] % 240}"
        started = now_rfc3339()
        containers = spec.get("containers") or []
        pod["status"] = {
            "phase": "Running",
            "conditions": [
                {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": started}
                for t in (
                    "PodReadyToStartContainers",
                    "Initialized",
                    "Ready",
                    "ContainersReady",
                    "PodScheduled",
                )
            ],
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": started,
            "containerStatuses": [
                {
                    "name": c.get("name", ""),
                    "state": {"running": {"startedAt": started}},
                    "lastState": {},
                    "ready": True,
                    "restartCount": 0,
                    "image": c.get("image", ""),
                    "imageID": f"{c.get('image', '').split(':')[0]}@sha256:{hashlib.sha256(str(c.get('image')).encode()).hexdigest()}",
                    "containerID": f"containerd://{hashlib.sha256((pod['metadata']['uid'] + str(c.get('name'))).encode()).hexdigest()}",
                    "started": True,
                }
                for c in containers
                if isinstance(c, dict)
            ],
            "qosClass": "BestEffort",
        }

    def _deployment_status(self, dep: Object) -> None:
        spec = dep.get("spec") or {}
        meta = dep["metadata"]
        replicas = int(spec.get("replicas", 1))
        current_hash = template_hash(spec.get("template") or {})
        owned = [
            rs
            for rs in self._store.list(("apps", "replicasets"), meta.get("namespace"))
            if _owned_by(rs, meta["uid"])
        ]
        revisions = [
            int((rs["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION, "0"))
            for rs in owned
        ]
        current = next(
            (
                rs
                for rs in owned
                if (rs["metadata"].get("labels") or {}).get(POD_TEMPLATE_HASH) == current_hash
            ),
            None,
        )
        if current is not None and int(
            (current["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION, "0")
        ) == max(revisions, default=0):
            revision = max(revisions, default=1)
        else:
            revision = max(revisions, default=0) + 1
        meta.setdefault("annotations", {})[REVISION_ANNOTATION] = str(revision)
        now = now_rfc3339()
        previous = {c.get("type"): c for c in (dep.get("status") or {}).get("conditions") or []}
        rs_name = f"{meta['name']}-{current_hash}"
        conditions = []
        for ctype, reason, message in (
            ("Available", "MinimumReplicasAvailable", "Deployment has minimum availability."),
            (
                "Progressing",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
            ),
        ):
            old = previous.get(ctype) or {}
            if (
                old.get("status") == "True"
                and old.get("reason") == reason
                and old.get("message") == message
            ):
                # Unchanged condition: keep it verbatim so no-op writes stay no-ops.
                conditions.append(old)
                continue
            conditions.append(
                {
                    "type": ctype,
                    "status": "True",
                    "lastUpdateTime": now,
                    "lastTransitionTime": old.get("lastTransitionTime", now),
                    "reason": reason,
                    "message": message,
                }
            )
        dep["status"] = _nonzero(
            {
                "observedGeneration": meta.get("generation", 1),
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
            }
        )
        dep["status"]["conditions"] = conditions

    def _job_status(self, job: Object) -> None:
        spec = job.setdefault("spec", {})
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        if (job.get("status") or {}).get("conditions"):
            return
        start = job["metadata"].get("creationTimestamp") or now_rfc3339()
        done = now_rfc3339()
        job["status"] = {
            "startTime": start,
            "completionTime": done,
            "succeeded": int(spec.get("completions") or 1),
            "ready": 0,
            "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [
                {
                    "type": t,
                    "status": "True",
                    "lastProbeTime": done,
                    "lastTransitionTime": done,
                    "reason": r,
                    "message": m,
                }
                for t, r, m in (
                    (
                        "SuccessCriteriaMet",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods",
                    ),
                    ("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
                )
            ],
        }

    # ----- reconciliation of dependents (after the write is stored; never for dry-run) ----

    def after_write(self, info: ResourceInfo, obj: Object) -> None:
        """Create, scale or retire the objects ``obj`` controls."""
        key = info.group_resource
        if key == ("apps", "deployments"):
            self._reconcile_deployment(obj)
        elif key == ("apps", "replicasets"):
            self._reconcile_pods(obj, kind="ReplicaSet", ordinal=False)
        elif key == ("apps", "statefulsets"):
            self._reconcile_pods(obj, kind="StatefulSet", ordinal=True)
        elif key == ("", "namespaces"):
            self._populate_namespace(obj["metadata"]["name"])

    def _populate_namespace(self, ns: str) -> None:
        # The service-account and root-CA publisher controllers seed every namespace.
        if self._store.get(("", "serviceaccounts"), ns, "default") is None:
            self._save_new(
                self._info("", "v1", "serviceaccounts"),
                {"metadata": {"name": "default", "namespace": ns}},
            )
        if (
            self._root_ca_pem
            and self._store.get(("", "configmaps"), ns, "kube-root-ca.crt") is None
        ):
            self._save_new(
                self._info("", "v1", "configmaps"),
                {
                    "metadata": {
                        "name": "kube-root-ca.crt",
                        "namespace": ns,
                        "annotations": {
                            "kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."
                        },
                    },
                    "data": {"ca.crt": self._root_ca_pem},
                },
            )

    def _save_new(self, info: ResourceInfo, obj: Object) -> Object:
        obj = normalize(info, prepare_new(info, obj, obj["metadata"].get("namespace")))
        self.before_write(info, obj)
        stored = self._store.put(info.group_resource, obj)
        self.after_write(info, stored)
        return stored

    def _save(self, info: ResourceInfo, obj: Object) -> Object:
        self.before_write(info, obj)
        stored = self._store.put(info.group_resource, obj)
        self.after_write(info, stored)
        return stored

    def _reconcile_deployment(self, dep: Object) -> None:
        rs_info = self._info("apps", "v1", "replicasets")
        meta = dep["metadata"]
        spec = dep.get("spec") or {}
        template = copy.deepcopy(spec.get("template") or {})
        current_hash = template_hash(template)
        revision = (meta.get("annotations") or {}).get(REVISION_ANNOTATION, "1")
        replicas = int(spec.get("replicas", 1))
        owned = [
            rs
            for rs in self._store.list(("apps", "replicasets"), meta.get("namespace"))
            if _owned_by(rs, meta["uid"])
        ]
        current = next(
            (
                rs
                for rs in owned
                if (rs["metadata"].get("labels") or {}).get(POD_TEMPLATE_HASH) == current_hash
            ),
            None,
        )
        copied = _copied_annotations(dep)
        if current is None:
            labels = dict((template.get("metadata") or {}).get("labels") or {})
            labels[POD_TEMPLATE_HASH] = current_hash
            template.setdefault("metadata", {})["labels"] = labels
            selector = copy.deepcopy(spec.get("selector") or {})
            selector.setdefault("matchLabels", {})[POD_TEMPLATE_HASH] = current_hash
            self._save_new(
                rs_info,
                {
                    "metadata": {
                        "name": f"{meta['name']}-{current_hash}",
                        "namespace": meta.get("namespace"),
                        "labels": labels,
                        "annotations": {
                            **copied,
                            REVISION_ANNOTATION: revision,
                            "deployment.kubernetes.io/desired-replicas": str(replicas),
                            "deployment.kubernetes.io/max-replicas": str(
                                replicas + max(1, replicas // 4)
                            ),
                        },
                        "ownerReferences": [
                            _owner_ref(dep, api_version="apps/v1", kind="Deployment")
                        ],
                    },
                    "spec": {"replicas": replicas, "selector": selector, "template": template},
                },
            )
        else:
            annotations = current["metadata"].setdefault("annotations", {})
            wanted = {
                **{
                    k: v
                    for k, v in annotations.items()
                    if k.startswith("deployment.kubernetes.io/")
                },
                **copied,
                REVISION_ANNOTATION: revision,
                "deployment.kubernetes.io/desired-replicas": str(replicas),
            }
            if current["spec"].get("replicas") != replicas or annotations != wanted:
                current["spec"]["replicas"] = replicas
                current["metadata"]["annotations"] = wanted
                self._save(rs_info, current)
        retired = []
        for rs in owned:
            if (
                rs is current
                or (rs["metadata"].get("labels") or {}).get(POD_TEMPLATE_HASH) == current_hash
            ):
                continue
            if rs["spec"].get("replicas", 0) != 0:
                rs["spec"]["replicas"] = 0
                rs = self._save(rs_info, rs)
            retired.append(rs)
        # Keep at most revisionHistoryLimit old ReplicaSets, dropping the oldest revisions.
        limit = int(spec.get("revisionHistoryLimit", 10))
        retired.sort(
            key=lambda rs: int(
                (rs["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION, "0")
            )
        )
        for rs in retired[: max(len(retired) - limit, 0)]:
            self.delete_cascade(rs_info, rs, propagation="Background")

    def _reconcile_pods(self, owner: Object, *, kind: str, ordinal: bool) -> None:
        pod_info = self._info("", "v1", "pods")
        meta = owner["metadata"]
        spec = owner.get("spec") or {}
        desired = int(spec.get("replicas", 1))
        pods = [
            p
            for p in self._store.list(("", "pods"), meta.get("namespace"))
            if _owned_by(p, meta["uid"])
        ]
        if ordinal:
            pods.sort(key=lambda p: p["metadata"]["name"])
        else:
            pods.sort(key=lambda p: p["metadata"].get("creationTimestamp", ""))
        template = spec.get("template") or {}
        existing = {p["metadata"]["name"] for p in pods}
        index = 0
        while len(pods) < desired:
            if ordinal:
                while f"{meta['name']}-{index}" in existing:
                    index += 1
                name = f"{meta['name']}-{index}"
            else:
                name = f"{meta['name']}-{random_suffix()}"
            labels = dict((template.get("metadata") or {}).get("labels") or {})
            if ordinal:
                labels["apps.kubernetes.io/pod-index"] = str(index)
                labels["statefulset.kubernetes.io/pod-name"] = name
            pod = {
                "metadata": {
                    "name": name,
                    "namespace": meta.get("namespace"),
                    "labels": labels,
                    "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                    "ownerReferences": [_owner_ref(owner, api_version="apps/v1", kind=kind)],
                },
                "spec": copy.deepcopy(template.get("spec") or {}),
            }
            if not pod["metadata"]["annotations"]:
                del pod["metadata"]["annotations"]
            pods.append(self._save_new(pod_info, pod))
            existing.add(name)
        # Scale down: remove the newest (or highest ordinal) pods first.
        while len(pods) > desired:
            victim = pods.pop()
            self._store.remove(
                ("", "pods"), victim["metadata"].get("namespace", ""), victim["metadata"]["name"]
            )

    # ----- deletion ---------------------------------------------------------------------

    def delete_cascade(self, info: ResourceInfo, obj: Object, *, propagation: str) -> Object | None:
        """Remove ``obj`` and, unless orphaning, everything it owns (and namespace contents)."""
        meta = obj["metadata"]
        removed = self._store.remove(info.group_resource, meta.get("namespace", ""), meta["name"])
        if removed is None:
            return None
        self.after_delete(info, removed, propagation=propagation)
        return removed

    def after_delete(self, info: ResourceInfo, obj: Object, *, propagation: str) -> None:
        """Garbage-collect dependents and let owning controllers replace deleted pods."""
        uid = obj["metadata"].get("uid")
        if info.group_resource == ("", "namespaces"):
            ns = obj["metadata"]["name"]
            for group_resource, child in self._store.iter_all():
                if (child.get("metadata") or {}).get("namespace") == ns:
                    self._store.remove(group_resource, ns, child["metadata"]["name"])
            return
        for group_resource, child in self._store.iter_all():
            if not uid or not _owned_by(child, uid):
                continue
            child_info = self._info_for(group_resource)
            if propagation == "Orphan":
                child["metadata"]["ownerReferences"] = [
                    ref for ref in child["metadata"]["ownerReferences"] if ref.get("uid") != uid
                ]
                if not child["metadata"]["ownerReferences"]:
                    del child["metadata"]["ownerReferences"]
                self._store.put(group_resource, child)
            elif child_info is not None:
                self.delete_cascade(child_info, child, propagation=propagation)
        if info.group_resource == ("", "pods"):
            # A controller replaces a pod deleted out from under it.
            for ref in obj["metadata"].get("ownerReferences") or []:
                if ref.get("kind") in ("ReplicaSet", "StatefulSet") and ref.get("controller"):
                    resource = "replicasets" if ref["kind"] == "ReplicaSet" else "statefulsets"
                    owner = self._store.get(
                        ("apps", resource), obj["metadata"].get("namespace", ""), ref["name"]
                    )
                    if owner is not None and owner["metadata"].get("uid") == ref.get("uid"):
                        self.after_write(self._info("apps", "v1", resource), owner)

    def _info_for(self, group_resource: tuple[str, str]) -> ResourceInfo | None:
        group, resource = group_resource
        version = self._discovery.preferred_version(group)
        return self._discovery.resource(group, version, resource) if version else None
