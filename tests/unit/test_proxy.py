"""The proxy's decisions and limits, with a fake upstream transport (no sockets)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.config import ClusterConfig
from chalicelib.credentials.eks_token import AwsCredentials
from chalicelib.credentials.session_token import SessionTokenCodec
from chalicelib.credentials.signing_keys import SigningKey
from chalicelib.errors import (
    BadGateway,
    BadRequest,
    Forbidden,
    GatewayTimeout,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from chalicelib.gateway.clusters import ClusterEndpoint
from chalicelib.gateway.exchange import GatewayLimits, IncomingRequest, negotiate_accept
from chalicelib.gateway.forward import Forwarder
from chalicelib.gateway.pipeline import Gateway
from chalicelib.gateway.upstream import UpstreamResponse
from chalicelib.identity import Identity
from chalicelib.policy import load_policies
from chalicelib.routes.responses import status_response

AGENT = Identity(
    "repo:acme/shop:environment:production",
    "https://oidc.eksgate.local",
    claims={"repository": "acme/shop", "environment": "production"},
)


class Keys:
    key = SigningKey("k1", b"k" * 32)

    def current(self):
        return self.key

    def by_kid(self, kid):
        return self.key if kid == "k1" else None


class Clusters:
    def names(self):
        return ("demo", "prod-eu")

    def endpoint(self, name):
        return ClusterEndpoint(name, "https://127.0.0.1:1", b"", ClusterConfig(name, "us-east-1"))


class Roles:
    def credentials(self, request):
        self.request = request
        return AwsCredentials("ASIAFAKE", "secret", "token", datetime.now(UTC) + timedelta(hours=1))


class RecordingAudit:
    """Stands in for GatewayAudit; keeps the kinds of events in order."""

    def __init__(self, fail_on=None):
        self.events = []
        self.fail_on = fail_on

    def __getattr__(self, kind):
        def record(*args, **kwargs):
            if kind == self.fail_on:
                from chalicelib.audit.store import AuditUnavailable

                raise AuditUnavailable("test")
            self.events.append(kind)

        return record


class FakeUpstream:
    def __init__(self, response=None, error=None):
        self.response = response or UpstreamResponse(
            200, {"content-type": "application/json"}, b'{"kind": "PodList", "items": []}'
        )
        self.error = error
        self.sent = []

    def send(self, cluster, request, max_bytes):
        self.sent.append(request)
        if self.error:
            raise self.error
        return self.response


def gateway(upstream, watch_timeout=20, audit=None):
    from chalicelib.config import DEFAULT_POLICY_DIR

    roles = Roles()
    return Gateway(
        SessionTokenCodec(Keys()),
        load_policies(DEFAULT_POLICY_DIR),
        Forwarder(Clusters(), roles, upstream),
        audit or RecordingAudit(),
        None,
        GatewayLimits(1024, watch_timeout),
    ), roles


def incoming(path, method="GET", query=None, headers=None, body=None, token=None, cluster="demo"):
    if token is None:
        token, _ = SessionTokenCodec(Keys()).issue(
            AGENT, "demo", "ci-agent", 600, {"repository": "acme/shop"}
        )
    return IncomingRequest(
        cluster,
        method,
        path,
        query or {},
        {"authorization": f"Bearer {token}", **(headers or {})},
        body,
        29.0,
    )


def test_forwarded_request_carries_only_the_eks_token_and_safe_headers():
    upstream = FakeUpstream()
    gw, roles = gateway(upstream)
    gw.handle(
        incoming(
            "/api/v1/namespaces/shop/pods",
            headers={
                "cookie": "a=b",
                "user-agent": "kubectl/1.31",
                "x-forwarded-for": "1.2.3.4",
                "accept": "application/vnd.kubernetes.protobuf,application/json",
            },
        )
    )
    [sent] = upstream.sent
    assert sent.headers["authorization"].startswith("Bearer k8s-aws-v1.")
    assert set(sent.headers) == {
        "authorization",
        "accept",
        "accept-encoding",
        "user-agent",
        "audit-id",
    }
    assert sent.headers["accept"] == "application/json"
    assert roles.request.role_arn.endswith("role/eksgate-ci-agent")
    assert roles.request.source_identity == "repo-acme-shop-environment-production"


def test_decided_path_and_canonical_query_are_what_is_forwarded():
    upstream = FakeUpstream()
    gw, _ = gateway(upstream)
    gw.handle(
        incoming(
            "/api/v1/namespaces/shop/pods", query={"labelSelector": ["app=web"], "limit": ["5"]}
        )
    )
    assert (
        upstream.sent[0].path_and_query
        == "/api/v1/namespaces/shop/pods?labelSelector=app%3Dweb&limit=5"
    )


def test_watch_timeout_is_capped_and_streamed():
    upstream = FakeUpstream(UpstreamResponse(200, {"content-type": "application/json"}, b""))
    gw, _ = gateway(upstream, watch_timeout=7)
    gw.handle(
        incoming(
            "/api/v1/namespaces/shop/pods", query={"watch": ["true"], "timeoutSeconds": ["600"]}
        )
    )
    sent = upstream.sent[0]
    assert "timeoutSeconds=7" in sent.path_and_query and sent.stream
    gw.handle(incoming("/api/v1/namespaces/shop/pods", query={"watch": ["1"]}))
    assert "timeoutSeconds=7" in upstream.sent[1].path_and_query


def test_a_stream_cut_at_the_deadline_never_returns_half_an_event():
    secret = {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": "s"},
        "data": {"k": base64.b64encode(b"topsecret").decode()},
    }
    stream = (json.dumps({"type": "ADDED", "object": secret}) + "\n").encode() + b'{"type": "ADD'
    upstream = FakeUpstream(
        UpstreamResponse(200, {"content-type": "application/json"}, stream, cut_at_deadline=True)
    )
    gw, _ = gateway(upstream)
    result = gw.handle(incoming("/api/v1/namespaces/shop/secrets", query={"watch": ["true"]}))
    lines = result.body.strip().split("\n")
    assert len(lines) == 1 and "dG9wc2VjcmV0" not in result.body


def test_oversized_answers_get_a_status_advising_chunks():
    huge = json.dumps({"kind": "PodList", "items": [{"x": "y" * 7_000_000}]}).encode()
    gw, _ = gateway(FakeUpstream(UpstreamResponse(200, {"content-type": "application/json"}, huge)))
    with pytest.raises(PayloadTooLarge, match="--chunk-size"):
        gw.handle(incoming("/api/v1/namespaces/shop/pods"))
    gw, _ = gateway(FakeUpstream(UpstreamResponse(200, {}, b"", truncated=True)))
    with pytest.raises(PayloadTooLarge, match="limit=100"):
        gw.handle(incoming("/api/v1/namespaces/shop/pods"))


@pytest.mark.parametrize("error", [BadGateway("down"), GatewayTimeout("slow")])
def test_upstream_failures_propagate_as_502_and_504(error):
    gw, _ = gateway(FakeUpstream(error=error))
    with pytest.raises(type(error)):
        gw.handle(incoming("/api/v1/namespaces/shop/pods"))
    status = json.loads(status_response(error).body)
    assert status["code"] == error.status and status["kind"] == "Status"


def test_malformed_or_unexpected_upstream_answers_are_withheld():
    gw, _ = gateway(
        FakeUpstream(UpstreamResponse(200, {"content-type": "application/json"}, b"{broken"))
    )
    with pytest.raises(BadGateway, match="malformed"):
        gw.handle(incoming("/api/v1/namespaces/shop/pods"))
    gw, _ = gateway(
        FakeUpstream(
            UpstreamResponse(
                200, {"content-type": "application/vnd.kubernetes.protobuf"}, b"\x00k8s"
            )
        )
    )
    with pytest.raises(BadGateway, match="cannot inspect"):
        gw.handle(incoming("/api/v1/namespaces/shop/pods"))


def test_refusals_happen_before_anything_is_forwarded():
    upstream = FakeUpstream()
    gw, _ = gateway(upstream)
    cases = [
        (incoming("/api/v1/namespaces/shop/pods", token="nope"), Unauthorized),
        (incoming("/api/v1/namespaces/shop/pods", cluster="prod-eu"), Unauthorized),
        (
            incoming("/api/v1/namespaces/shop/pods", headers={"impersonate-user": "admin"}),
            Forbidden,
        ),
        (incoming("/api/v1/namespaces/shop/pods/../secrets"), BadRequest),
        (incoming("/api/v1/namespaces/shop/pods", method="OPTIONS"), BadRequest),
        (incoming("/api/v1/namespaces/shop/pods/web/exec"), Forbidden),
        (incoming("/api/v1/namespaces/shop/pods", headers={"upgrade": "websocket"}), Forbidden),
        (
            incoming("/api/v1/namespaces/shop/configmaps", method="POST", body=b"x" * 2048),
            PayloadTooLarge,
        ),
        (
            incoming(
                "/api/v1/namespaces/shop/configmaps",
                method="POST",
                body=b"\x00",
                headers={"content-type": "application/x-www-form-urlencoded"},
            ),
            UnsupportedMediaType,
        ),
        (
            incoming(
                "/api/v1/namespaces/shop/pods",
                headers={"accept": "application/vnd.kubernetes.protobuf"},
            ),
            NotAcceptable,
        ),
        (incoming("/api/v1/namespaces/kube-system/secrets"), Forbidden),
    ]
    for request, error in cases:
        with pytest.raises(error):
            gw.handle(request)
    assert upstream.sent == []


@pytest.mark.parametrize(
    "accept, expected",
    [
        ("", "application/json"),
        ("*/*", "*/*,application/json"),
        (
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        ),
        (
            "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json",
            "application/json",
        ),
    ],
)
def test_accept_keeps_json_alternatives_only(accept, expected):
    assert negotiate_accept(accept) == expected


def test_every_forwarded_request_is_recorded_before_and_after():
    audit = RecordingAudit()
    gw, _ = gateway(FakeUpstream(), audit=audit)
    gw.handle(incoming("/api/v1/namespaces/shop/pods"))
    assert audit.events == ["request", "response"]


def test_refusals_are_recorded():
    audit = RecordingAudit()
    gw, _ = gateway(FakeUpstream(), audit=audit)
    with pytest.raises(Forbidden):
        gw.handle(incoming("/api/v1/namespaces/kube-system/pods"))
    assert audit.events == ["refusal"]


def test_a_failed_audit_write_blocks_the_request():
    from chalicelib.audit.store import AuditUnavailable

    upstream = FakeUpstream()
    gw, _ = gateway(upstream, audit=RecordingAudit(fail_on="request"))
    with pytest.raises(AuditUnavailable) as err:
        gw.handle(incoming("/api/v1/namespaces/shop/pods"))
    assert err.value.status == 503 and upstream.sent == []


def test_an_answer_that_cannot_be_recorded_is_withheld():
    from chalicelib.errors import AnswerWithheld

    gw, _ = gateway(FakeUpstream(), audit=RecordingAudit(fail_on="response"))
    with pytest.raises(AnswerWithheld) as withheld:
        gw.handle(incoming("/api/v1/namespaces/shop/pods"))
    # Not a 503 ("not carried out"): the cluster answered, and the caller is told so.
    assert withheld.value.status == 500
    assert "could not record it" in withheld.value.message
    assert "cluster answered HTTP 200" in withheld.value.message


def test_approval_without_approvals_configured_is_refused():
    upstream = FakeUpstream()
    gw, _ = gateway(upstream)
    with pytest.raises(Forbidden, match="approvals are not configured"):
        gw.handle(
            incoming(
                "/apis/apps/v1/namespaces/shop/deployments/web",
                method="PATCH",
                body=b"{}",
                headers={"content-type": "application/merge-patch+json"},
            )
        )
    assert upstream.sent == []


@pytest.mark.parametrize(
    "body, resource",
    [
        (b'[{"op":"replace","path":"/data/password","value":"aHVudGVyMg=="}]', "configmaps"),
        (b"apiVersion: v1\nkind: Secret\nstringData: {password: hunter2}\n", "secrets"),
        (b'{"kind": "Secret", "stringData": {"password": "hunter2"}}', "secrets"),
        (b"password: hunter2\n", "configmaps"),
    ],
)
def test_request_bodies_that_may_hold_credentials_are_recorded_by_size_only(body, resource):
    from chalicelib.audit.recorder import masked_body_summary
    from chalicelib.masking import DEFAULT_SETTINGS

    summary = masked_body_summary(body, DEFAULT_SETTINGS, resource)
    text = json.dumps(summary)
    assert summary["size"] == len(body) and "hunter2" not in text and "aHVudGVyMg" not in text
    assert "sha256" not in summary and "inline" not in summary


def test_json_object_bodies_are_recorded_masked():
    from chalicelib.audit.recorder import masked_body_summary
    from chalicelib.masking import DEFAULT_SETTINGS

    body = b'{"kind": "ConfigMap", "data": {"dsn": "postgres://u:hunter2@db/x", "a": "b"}}'
    summary = masked_body_summary(body, DEFAULT_SETTINGS, "configmaps")
    assert "hunter2" not in summary["inline"] and '"a":"b"' in summary["inline"]


@pytest.mark.parametrize(
    "method, content_type, payload",
    [
        ("PUT", "application/json", {"kind": "ConfigMap", "data": {"url": "u:***MASKED***@db"}}),
        ("POST", "application/json", {"kind": "Secret", "data": {"pw": "KioqTUFTS0VEKioq"}}),
        ("PATCH", "application/merge-patch+json", {"data": {"pw": "***MASKED***"}}),
        (
            "PATCH",
            "application/json-patch+json",
            [{"op": "add", "path": "/data/pw", "value": "***MASKED***"}],
        ),
    ],
)
def test_writes_carrying_the_mask_are_refused_recorded_and_never_forwarded(
    method, content_type, payload
):
    # The ci-agent may not write at all: the mask is refused first, whoever asks, and the
    # refusal is recorded like any other.
    upstream, audit = FakeUpstream(), RecordingAudit()
    gw, _ = gateway(upstream, audit=audit)
    path = "/api/v1/namespaces/shop/configmaps" + ("" if method == "POST" else "/app")
    with pytest.raises(BadRequest) as refused:
        gw.handle(
            incoming(
                path,
                method=method,
                headers={"content-type": content_type},
                body=json.dumps(payload).encode(),
            )
        )
    assert "eksgate refused this write" in refused.value.message
    assert "kubectl patch configmaps/" in refused.value.message
    body = json.loads(status_response(refused.value).body)
    assert body["code"] == 400 and body["details"]["causes"]
    assert upstream.sent == [] and audit.events == ["refusal"]


def test_a_cluster_path_typo_is_a_404_naming_the_callers_clusters():
    gw, _ = gateway(FakeUpstream())
    with pytest.raises(NotFound) as typo:
        gw.handle(incoming("/api/v1/namespaces/shop/pods", cluster="dmeo"))
    assert "no cluster 'dmeo'" in typo.value.message
    assert "your session is for cluster 'demo'" in typo.value.message
    assert "may use: demo, prod-eu" in typo.value.message
    with pytest.raises(NotFound) as stranger:  # an invalid token learns nothing more
        gw.handle(incoming("/api/v1/namespaces/shop/pods", cluster="dmeo", token="forged"))
    assert "session" not in stranger.value.message


def test_protobuf_bodies_are_decided_by_the_url_and_checked_for_the_mask():
    upstream, audit = FakeUpstream(), RecordingAudit()
    gw, _ = gateway(upstream, audit=audit)
    body = b"k8s\x00\n\x0f\n\x02v1\x12\tConfigMap\x12\x05hello"
    with pytest.raises(Forbidden):  # the ci-agent may not create ConfigMaps: no 415 first
        gw.handle(
            incoming(
                "/api/v1/namespaces/shop/configmaps",
                method="POST",
                body=body,
                headers={"content-type": "application/vnd.kubernetes.protobuf"},
            )
        )
    with pytest.raises(BadRequest, match="mask"):
        gw.handle(
            incoming(
                "/api/v1/namespaces/shop/configmaps",
                method="POST",
                body=body + b"***MASKED***",
                headers={"content-type": "application/vnd.kubernetes.protobuf"},
            )
        )
    assert upstream.sent == []


def test_an_exec_refusal_says_what_the_callers_policy_offers():
    gw, _ = gateway(FakeUpstream())
    with pytest.raises(Forbidden) as refused:
        gw.handle(
            incoming(
                "/api/v1/namespaces/shop/pods/web-0/exec", method="POST", query={"command": ["ls"]}
            )
        )
    # The ci-agent's policy has no rule for exec at all: no advice to seek a grant it lacks.
    assert "offers no direct grant for it either" in refused.value.message
    assert "no rule of policy 'ci-agent'" in refused.value.message


def test_a_cluster_path_typo_repeats_its_reason_as_a_warning_kubectl_prints():
    # kubectl's discovery prints a fixed text for any 404 and drops the Status message.
    gw, _ = gateway(FakeUpstream())
    with pytest.raises(NotFound) as typo:
        gw.handle(incoming("/api/v1/namespaces/shop/pods", cluster='dm"eo\r\nX-Evil: 1'))
    answer = status_response(typo.value)
    assert answer.status == 404
    warning = answer.headers["warning"]
    assert warning.startswith('299 - "eksgate serves no cluster ') and "may use: demo" in warning
    assert '\\"' in warning and "\r" not in warning and "\n" not in warning
    assert warning.endswith('"') and warning.count('"') - warning.count('\\"') == 2


def test_declared_methods_match_path_templates_as_api_gateway_does():
    from chalicelib.routes.proxy import declared_methods

    routes = {
        "/v1/token": ["POST"],
        "/v1/sessions/{session_id}": ["GET"],
        "/k8s/{cluster}/{proxy+}": ["GET", "PUT"],
        "/{proxy+}": ["GET", "POST"],
    }
    assert declared_methods("/v1/token", routes) == ["POST"]
    assert declared_methods("/v1/token/", routes) == ["POST"]
    assert declared_methods("/v1/sessions/abc", routes) == ["GET"]
    assert declared_methods("/v1/sessions", routes) == []
    assert declared_methods("/v1/sessions/abc/def", routes) == []
    assert declared_methods("/k8s/demo/api/v1/pods", routes) == ["GET", "PUT"]
    assert declared_methods("/k8s/demo", routes) == []  # a greedy part needs a segment
    assert declared_methods("/metrics", routes) == []  # the catch-all itself never counts
