"""Field tables of the kinds the emulator decodes from protobuf, as k8s.io/api defines them.

Numbers, names and pointer-ness are those of the Go types (their ``protobuf:"..."`` tags and
``generated.proto``) for core/v1, apps/v1, authorization/v1, authentication/v1 and meta/v1.
Each message lists every field Go writes unasked (its non-pointer fields), so an unknown
number can only be something the client set; what the emulator does not decode is named
``REFUSED``, so the refusal says which field it was.
"""

from __future__ import annotations

from typing import Any

# field number -> (JSON name, kind, mode); kind is a scalar below or a nested Schema
Schema = dict[int, tuple[str, Any, str]]

STRING, BYTES, INT, BOOL, TIME, INT_OR_STRING = (
    "string",
    "bytes",
    "int",
    "bool",
    "time",
    "int_or_string",
)
STRING_MAP, BYTES_MAP, QUANTITY_MAP = "string_map", "bytes_map", "quantity_map"
REFUSED = "refused"  # a field the emulator does not decode: accepted only as Go's empty value

# ONE: a non-pointer field (always written; zero means unset). POINTER: written only when set,
# so a zero that is present is kept (replicas: 0). MANY: repeated.
ONE, POINTER, MANY = "one", "pointer", "many"

OWNER_REFERENCE: Schema = {
    1: ("kind", STRING, ONE),
    3: ("name", STRING, ONE),
    4: ("uid", STRING, ONE),
    5: ("apiVersion", STRING, ONE),
    6: ("controller", BOOL, POINTER),
    7: ("blockOwnerDeletion", BOOL, POINTER),
}
OBJECT_META: Schema = {
    1: ("name", STRING, ONE),
    2: ("generateName", STRING, ONE),
    3: ("namespace", STRING, ONE),
    4: ("selfLink", STRING, ONE),
    5: ("uid", STRING, ONE),
    6: ("resourceVersion", STRING, ONE),
    7: ("generation", INT, ONE),
    8: ("creationTimestamp", TIME, ONE),
    9: ("deletionTimestamp", TIME, POINTER),
    10: ("deletionGracePeriodSeconds", INT, POINTER),
    11: ("labels", STRING_MAP, MANY),
    12: ("annotations", STRING_MAP, MANY),
    13: ("ownerReferences", OWNER_REFERENCE, MANY),
    14: ("finalizers", STRING, MANY),
    17: ("managedFields", REFUSED, MANY),
}
LABEL_SELECTOR: Schema = {
    1: ("matchLabels", STRING_MAP, MANY),
    2: (
        "matchExpressions",
        {1: ("key", STRING, ONE), 2: ("operator", STRING, ONE), 3: ("values", STRING, MANY)},
        MANY,
    ),
}

# ----- core/v1 -------------------------------------------------------------------------------

CONFIG_MAP: Schema = {
    1: ("metadata", OBJECT_META, ONE),
    2: ("data", STRING_MAP, MANY),
    3: ("binaryData", BYTES_MAP, MANY),
    4: ("immutable", BOOL, POINTER),
}
SECRET: Schema = {
    1: ("metadata", OBJECT_META, ONE),
    2: ("data", BYTES_MAP, MANY),
    3: ("type", STRING, ONE),
    4: ("stringData", STRING_MAP, MANY),
    5: ("immutable", BOOL, POINTER),
}
NAMESPACE: Schema = {
    1: ("metadata", OBJECT_META, ONE),
    2: ("spec", {1: ("finalizers", STRING, MANY)}, ONE),
    3: ("status", REFUSED, ONE),
}
CONTAINER_PORT: Schema = {
    1: ("name", STRING, ONE),
    2: ("hostPort", INT, ONE),
    3: ("containerPort", INT, ONE),
    4: ("protocol", STRING, ONE),
    5: ("hostIP", STRING, ONE),
}
ENV_VAR: Schema = {
    1: ("name", STRING, ONE),
    2: ("value", STRING, ONE),
    3: ("valueFrom", REFUSED, POINTER),
}
RESOURCE_REQUIREMENTS: Schema = {
    1: ("limits", QUANTITY_MAP, MANY),
    2: ("requests", QUANTITY_MAP, MANY),
    3: ("claims", REFUSED, MANY),
}
CONTAINER: Schema = {
    1: ("name", STRING, ONE),
    2: ("image", STRING, ONE),
    3: ("command", STRING, MANY),
    4: ("args", STRING, MANY),
    5: ("workingDir", STRING, ONE),
    6: ("ports", CONTAINER_PORT, MANY),
    7: ("env", ENV_VAR, MANY),
    8: ("resources", RESOURCE_REQUIREMENTS, ONE),
    9: ("volumeMounts", REFUSED, MANY),
    10: ("livenessProbe", REFUSED, POINTER),
    11: ("readinessProbe", REFUSED, POINTER),
    12: ("lifecycle", REFUSED, POINTER),
    13: ("terminationMessagePath", STRING, ONE),
    14: ("imagePullPolicy", STRING, ONE),
    15: ("securityContext", REFUSED, POINTER),
    16: ("stdin", BOOL, ONE),
    17: ("stdinOnce", BOOL, ONE),
    18: ("tty", BOOL, ONE),
    19: ("envFrom", REFUSED, MANY),
    20: ("terminationMessagePolicy", STRING, ONE),
    21: ("volumeDevices", REFUSED, MANY),
    22: ("startupProbe", REFUSED, POINTER),
    23: ("resizePolicy", REFUSED, MANY),
    24: ("restartPolicy", STRING, POINTER),
    25: ("restartPolicyRules", REFUSED, MANY),
}
POD_SPEC: Schema = {
    1: ("volumes", REFUSED, MANY),
    2: ("containers", CONTAINER, MANY),
    3: ("restartPolicy", STRING, ONE),
    4: ("terminationGracePeriodSeconds", INT, POINTER),
    5: ("activeDeadlineSeconds", INT, POINTER),
    6: ("dnsPolicy", STRING, ONE),
    7: ("nodeSelector", STRING_MAP, MANY),
    8: ("serviceAccountName", STRING, ONE),
    9: ("serviceAccount", STRING, ONE),
    10: ("nodeName", STRING, ONE),
    11: ("hostNetwork", BOOL, ONE),
    12: ("hostPID", BOOL, ONE),
    13: ("hostIPC", BOOL, ONE),
    14: ("securityContext", REFUSED, POINTER),
    15: ("imagePullSecrets", {1: ("name", STRING, ONE)}, MANY),
    16: ("hostname", STRING, ONE),
    17: ("subdomain", STRING, ONE),
    18: ("affinity", REFUSED, POINTER),
    19: ("schedulerName", STRING, ONE),
    20: ("initContainers", CONTAINER, MANY),
    21: ("automountServiceAccountToken", BOOL, POINTER),
    22: ("tolerations", REFUSED, MANY),
    23: ("hostAliases", REFUSED, MANY),
    24: ("priorityClassName", STRING, ONE),
    25: ("priority", INT, POINTER),
    26: ("dnsConfig", REFUSED, POINTER),
    27: ("shareProcessNamespace", BOOL, POINTER),
    28: ("readinessGates", REFUSED, MANY),
    29: ("runtimeClassName", STRING, POINTER),
    30: ("enableServiceLinks", BOOL, POINTER),
    31: ("preemptionPolicy", STRING, POINTER),
    32: ("overhead", REFUSED, MANY),
    33: ("topologySpreadConstraints", REFUSED, MANY),
    34: ("ephemeralContainers", REFUSED, MANY),
    35: ("setHostnameAsFQDN", BOOL, POINTER),
    36: ("os", REFUSED, POINTER),
    37: ("hostUsers", BOOL, POINTER),
    38: ("schedulingGates", REFUSED, MANY),
    39: ("resourceClaims", REFUSED, MANY),
    40: ("resources", REFUSED, POINTER),
    41: ("hostnameOverride", STRING, POINTER),
    43: ("schedulingGroup", REFUSED, POINTER),
    44: ("evictionResponders", REFUSED, MANY),
}
POD_TEMPLATE_SPEC: Schema = {1: ("metadata", OBJECT_META, ONE), 2: ("spec", POD_SPEC, ONE)}

# ----- apps/v1 -------------------------------------------------------------------------------

DEPLOYMENT_STRATEGY: Schema = {
    1: ("type", STRING, ONE),
    2: (
        "rollingUpdate",
        {1: ("maxUnavailable", INT_OR_STRING, POINTER), 2: ("maxSurge", INT_OR_STRING, POINTER)},
        POINTER,
    ),
}
DEPLOYMENT: Schema = {
    1: ("metadata", OBJECT_META, ONE),
    2: (
        "spec",
        {
            1: ("replicas", INT, POINTER),
            2: ("selector", LABEL_SELECTOR, POINTER),
            3: ("template", POD_TEMPLATE_SPEC, ONE),
            4: ("strategy", DEPLOYMENT_STRATEGY, ONE),
            5: ("minReadySeconds", INT, ONE),
            6: ("revisionHistoryLimit", INT, POINTER),
            7: ("paused", BOOL, ONE),
            9: ("progressDeadlineSeconds", INT, POINTER),
        },
        ONE,
    ),
    3: ("status", REFUSED, ONE),
}

# ----- authorization/v1, authentication/v1 ---------------------------------------------------

RESOURCE_ATTRIBUTES: Schema = {
    1: ("namespace", STRING, ONE),
    2: ("verb", STRING, ONE),
    3: ("group", STRING, ONE),
    4: ("version", STRING, ONE),
    5: ("resource", STRING, ONE),
    6: ("subresource", STRING, ONE),
    7: ("name", STRING, ONE),
    8: ("fieldSelector", REFUSED, POINTER),
    9: ("labelSelector", REFUSED, POINTER),
}
SELF_SUBJECT_ACCESS_REVIEW: Schema = {
    1: ("metadata", OBJECT_META, ONE),
    2: (
        "spec",
        {
            1: ("resourceAttributes", RESOURCE_ATTRIBUTES, POINTER),
            2: (
                "nonResourceAttributes",
                {1: ("path", STRING, ONE), 2: ("verb", STRING, ONE)},
                POINTER,
            ),
        },
        ONE,
    ),
    3: ("status", REFUSED, ONE),
}
SELF_SUBJECT_RULES_REVIEW: Schema = {
    1: ("metadata", OBJECT_META, ONE),
    2: ("spec", {1: ("namespace", STRING, ONE)}, ONE),
    3: ("status", REFUSED, ONE),
}
SELF_SUBJECT_REVIEW: Schema = {1: ("metadata", OBJECT_META, ONE), 2: ("status", REFUSED, ONE)}

KINDS: dict[tuple[str, str], Schema] = {
    ("v1", "ConfigMap"): CONFIG_MAP,
    ("v1", "Secret"): SECRET,
    ("v1", "Namespace"): NAMESPACE,
    ("apps/v1", "Deployment"): DEPLOYMENT,
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): SELF_SUBJECT_ACCESS_REVIEW,
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): SELF_SUBJECT_RULES_REVIEW,
    ("authentication.k8s.io/v1", "SelfSubjectReview"): SELF_SUBJECT_REVIEW,
}
