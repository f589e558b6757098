"""The preset zlib dictionary of audit items of version 2 (``items.py``). Frozen.

A record's packed fields are a few hundred bytes to a few KB of JSON: too short for zlib to
learn its own vocabulary, so it starts from this one: the record's field names and the words
of the Kubernetes objects and decisions that fill it (the API server's defaults, common
field names). It holds no data of any deployment.

Never edit ``ITEM_DICTIONARY_V2``: every stored version-2 item needs exactly these bytes to be
read back. A better dictionary is a new item version with its own constant.
"""

from __future__ import annotations

import json

_RECORD = (
    '{"approval_id":null,"decision":{"effect":"allow","policy":"","reason":"rule  of policy '
    '\'\' allows get pods \'\' in namespace \'\'","rule":""},"detail":{},'
    '"identity":{"email":null,"groups":[],"issuer":"https://","matched_claims":{},'
    '"subject":""},"kind":"request","latency_ms":null,"request":{"api_group":"",'
    '"api_version":"v1","audit_id":"","method":"GET","name":"","namespace":"","path":'
    '"/api/v1/namespaces/","query":"","resource":"pods","subresource":"","verb":"get"},'
    '"request_body":null,"response_body":{"inline":"","size":},"source_ip":"",'
    '"upstream_status":200,"user_agent":"kubectl/v1.3 (linux/amd64) kubernetes/"}'
    '"kind":"response","upstream_status":"decision":null,"response_body":null,"omitted":true,'
    '"sha256":"reason":"may hold credentials","detail":{"purpose":"outcome":"error":'
    '"effect":"deny","effect":"approve","verb":"list","verb":"watch","verb":"create",'
    '"verb":"update","verb":"patch","verb":"delete","method":"POST","method":"PUT",'
    '"method":"PATCH","method":"DELETE","api_group":"apps","resource":"deployments",'
    '"resource":"secrets","resource":"configmaps","resource":"services","resource":"events",'
    '"resource":"namespaces","resource":"replicasets","subresource":"log","subresource":'
    '"exec","subresource":"status","token.actions.githubusercontent.com","repository":'
    '"environment":"production","repo:","ref":"refs/heads/main","environment:'
)

_KUBERNETES = (
    '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"",'
    '"reason":"NotFound","details":{"name":"","kind":""},"code":404}'
    '{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":""},"items":[]}'
    '{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"","namespace":"",'
    '"uid":"","resourceVersion":"","generation":1,"creationTimestamp":"","labels":{"app":""},'
    '"annotations":{"deployment.kubernetes.io/revision":"1"},"ownerReferences":[{"apiVersion":'
    '"apps/v1","kind":"ReplicaSet","name":"","uid":"","controller":true,'
    '"blockOwnerDeletion":true}],"managedFields":[{"manager":"kubectl-client-side-apply",'
    '"operation":"Update","apiVersion":"v1","time":"","fieldsType":"FieldsV1","fieldsV1":{'
    '"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{}}}]},"spec":{"replicas":1,'
    '"selector":{"matchLabels":{"app":""}},"template":{"metadata":{"labels":{"app":""}},'
    '"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%",'
    '"maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600}},'
    '"status":{"observedGeneration":1,"replicas":1,"updatedReplicas":1,"readyReplicas":1,'
    '"availableReplicas":1,"conditions":[{"type":"Available","status":"True",'
    '"lastUpdateTime":"","lastTransitionTime":"","reason":"MinimumReplicasAvailable",'
    '"message":"Deployment has minimum availability."},{"type":"Progressing",'
    '"reason":"NewReplicaSetAvailable"}]}}'
    '{"kind":"Secret","apiVersion":"v1","type":"Opaque","data":{},"immutable":false}'
    '{"kind":"ConfigMap","data":{}}{"kind":"Service","spec":{"type":"ClusterIP","clusterIP":'
    '"","clusterIPs":[],"ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack","sessionAffinity":'
    '"None","ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080}]}}'
    '{"kind":"Pod","apiVersion":"v1","metadata":{"name":"","generateName":"","namespace":"",'
    '"uid":"","resourceVersion":"","creationTimestamp":"","labels":{"app":"",'
    '"pod-template-hash":""},"annotations":{"kubectl.kubernetes.io/restartedAt":""}},'
    '"spec":{"volumes":[{"name":"kube-api-access","projected":{"sources":[{'
    '"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},{"configMap":{"name":'
    '"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}},{"downwardAPI":{"items":'
    '[{"path":"namespace","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.namespace"}}]}}'
    '],"defaultMode":420}}],"containers":[{"name":"","image":".dkr.ecr.us-east-1.amazonaws.com/'
    '","command":[],"args":[],"ports":[{"name":"http","containerPort":8080,"protocol":"TCP"}],'
    '"env":[{"name":"","value":""},{"name":"","valueFrom":{"secretKeyRef":{"name":"","key":'
    '"password"}}},{"name":"","valueFrom":{"configMapKeyRef":{"name":"","key":""}}}],'
    '"resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"cpu":"500m",'
    '"memory":"256Mi"}},"livenessProbe":{"httpGet":{"path":"/healthz","port":8080,"scheme":'
    '"HTTP"},"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3},'
    '"readinessProbe":{"httpGet":{"path":"/healthz","port":8080}},"volumeMounts":[{"name":'
    '"kube-api-access","readOnly":true,"mountPath":"/var/run/secrets/kubernetes.io/'
    'serviceaccount"}],"terminationMessagePath":"/dev/termination-log",'
    '"terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":'
    '"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst",'
    '"serviceAccountName":"default","serviceAccount":"default","nodeName":"ip-10-0-.ec2.internal",'
    '"securityContext":{},"schedulerName":"default-scheduler","tolerations":[{"key":'
    '"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute",'
    '"tolerationSeconds":300},{"key":"node.kubernetes.io/unreachable","operator":"Exists",'
    '"effect":"NoExecute","tolerationSeconds":300}],"priority":0,"enableServiceLinks":true,'
    '"preemptionPolicy":"PreemptLowerPriority"},"status":{"phase":"Running","conditions":[{'
    '"type":"Initialized","status":"True","lastProbeTime":null,"lastTransitionTime":""},{'
    '"type":"Ready","status":"True","lastTransitionTime":""},{"type":"ContainersReady",'
    '"status":"True","lastTransitionTime":""},{"type":"PodScheduled","status":"True",'
    '"lastTransitionTime":""}],"hostIP":"10.0.","podIP":"10.0.","podIPs":[{"ip":"10.0."}],'
    '"startTime":"","containerStatuses":[{"name":"","state":{"running":{"startedAt":""}},'
    '"lastState":{},"ready":true,"restartCount":0,"image":"","imageID":"sha256:",'
    '"containerID":"containerd://","started":true}],"qosClass":"Burstable"}}'
)

# Bodies sit in the packed JSON as strings, so their quotes are escaped there: the
# Kubernetes words are given in that spelling.
ITEM_DICTIONARY_V2: bytes = (json.dumps(_KUBERNETES, ensure_ascii=False)[1:-1] + _RECORD).encode(
    "utf-8"
)
