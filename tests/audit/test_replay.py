"""Rendering a session for people: kubectl equivalents, the timeline, the session table."""

from __future__ import annotations

import pytest

from chalicelib.audit.chain import genesis_hash, seal
from chalicelib.audit.records import SessionSummary, new_event
from chalicelib.audit.replay import kubectl_equivalent, render_sessions, render_timeline
from tests.audit.helpers import request_event

SID = "5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5"


@pytest.mark.parametrize(
    "request_fields, command",
    [
        ({"verb": "list", "resource": "pods", "namespace": "shop"}, "kubectl get pods -n shop"),
        (
            {"verb": "get", "resource": "pods", "namespace": "shop", "name": "web-1"},
            "kubectl get pods web-1 -n shop",
        ),
        (
            {"verb": "delete", "resource": "namespaces", "namespace": "shop", "name": "shop"},
            "kubectl delete namespace shop",
        ),
        (
            {
                "verb": "patch",
                "resource": "deployments",
                "api_group": "apps",
                "namespace": "shop",
                "name": "web",
            },
            "kubectl patch deployments.apps web -n shop",
        ),
        (
            {"verb": "create", "resource": "deployments", "api_group": "apps", "namespace": "shop"},
            "kubectl create -f - (deployments.apps) -n shop",
        ),
        (
            {"verb": "update", "resource": "configmaps", "namespace": "shop", "name": "app"},
            "kubectl replace -f - (configmaps app) -n shop",
        ),
        (
            {"verb": "watch", "resource": "pods", "namespace": "shop"},
            "kubectl get pods -n shop --watch",
        ),
        (
            {
                "verb": "get",
                "resource": "pods",
                "subresource": "log",
                "namespace": "shop",
                "name": "web-1",
            },
            "kubectl logs web-1 -n shop",
        ),
        (
            {
                "verb": "get",
                "resource": "pods",
                "subresource": "log",
                "namespace": "shop",
                "name": "web-1",
                "query": "container=app&follow=true&tailLines=50",
            },
            "kubectl logs web-1 -n shop -c app -f --tail=50",
        ),
        (
            {
                "verb": "create",
                "resource": "pods",
                "subresource": "exec",
                "namespace": "shop",
                "name": "web-1",
            },
            "kubectl exec web-1 -n shop",
        ),
        (
            {
                "verb": "create",
                "resource": "pods",
                "subresource": "exec",
                "namespace": "shop",
                "name": "web-1",
                "query": "command=sh&command=-c&command=rm+-rf+%2Ftmp%2Fx",
            },
            "kubectl exec web-1 -n shop -- sh -c 'rm -rf /tmp/x'",
        ),
        ({"verb": "get", "path": "/version", "method": "GET"}, "kubectl get --raw /version"),
        (
            {"verb": "list", "resource": "pods", "query": "labelSelector=app%3Dweb"},
            "kubectl get pods -A -l app=web",
        ),
        ({"verb": "list", "resource": "nodes"}, "kubectl get nodes"),
        (
            {"verb": "deletecollection", "resource": "pods", "namespace": "shop"},
            "kubectl delete pods -n shop --all",
        ),
        (
            {
                "verb": "patch",
                "resource": "deployments",
                "api_group": "apps",
                "subresource": "scale",
                "namespace": "shop",
                "name": "web",
            },
            "kubectl scale deployments.apps web -n shop",
        ),
        (
            {
                "verb": "get",
                "resource": "deployments",
                "api_group": "apps",
                "subresource": "status",
                "namespace": "shop",
                "name": "web",
            },
            "kubectl get deployments.apps web -n shop --subresource status",
        ),
    ],
)
def test_requests_read_as_the_kubectl_command_that_sends_them(request_fields, command):
    assert kubectl_equivalent(request_fields) == command


def _seal_all(events):
    records, prev = [], genesis_hash(SID)
    for seq, (time, fields) in enumerate(events):
        record = seal({**fields, "seq": seq, "time": f"2026-11-22T{time}Z", "expires_at": 1}, prev)
        records.append(record)
        prev = record.hash
    return records


APPROVAL = "a1b2c3d4e5f60718"


def _session():
    return _seal_all(
        [
            (
                "13:40:29.123",
                new_event(
                    "token_issued",
                    session_id=SID,
                    subject="ci-bot",
                    cluster="prod",
                    decision={
                        "effect": "allow",
                        "policy": "ci-agent",
                        "rule": "",
                        "reason": "token",
                    },
                ),
            ),
            (
                "13:40:30.001",
                request_event(
                    SID,
                    latency_ms=12.4,
                    decision={
                        "effect": "allow",
                        "policy": "ci-agent",
                        "rule": "read-shop",
                        "reason": "reads",
                    },
                ),
            ),
            (
                "13:40:31.000",
                new_event(
                    "refusal",
                    session_id=SID,
                    approval_id=APPROVAL,
                    request={
                        "verb": "patch",
                        "resource": "deployments",
                        "api_group": "apps",
                        "namespace": "shop",
                        "name": "web",
                        "method": "PATCH",
                        "path": "/apis/apps/v1/namespaces/shop/deployments/web",
                        "query": "",
                    },
                    decision={
                        "effect": "approve",
                        "policy": "ci-agent",
                        "rule": "change-deployments",
                        "reason": "needs a human",
                    },
                    request_body={"inline": '{"spec":{"replicas":3}}', "size": 23},
                ),
            ),
            (
                "13:40:31.010",
                new_event(
                    "approval_requested",
                    session_id=SID,
                    approval_id=APPROVAL,
                    decision={
                        "effect": "approve",
                        "policy": "ci-agent",
                        "rule": "change-deployments",
                        "reason": "x",
                    },
                ),
            ),
            (
                "13:40:31.200",
                new_event(
                    "approval_posted",
                    session_id=SID,
                    approval_id=APPROVAL,
                    detail={"channel": "C0APPROVALS"},
                ),
            ),
            (
                "13:41:02.500",
                new_event(
                    "approval_decided",
                    session_id=SID,
                    approval_id=APPROVAL,
                    detail={
                        "outcome": "approved",
                        "slack_user": "U0BOB",
                        "approver": "bob@example.com",
                    },
                ),
            ),
            (
                "13:41:05.000",
                request_event(
                    SID,
                    response_body={"size": 52311, "sha256": "ab" * 32, "omitted": True},
                    user_agent="evil\x1b[2Jagent",
                ),
            ),
        ]
    )


def test_the_timeline_has_one_line_per_record():
    lines = render_timeline(_session())
    assert lines == [
        "13:40:29.123  #0  gateway token issued to ci-bot for cluster prod under policy ci-agent",
        "13:40:30.001  #1  kubectl get pods -n shop  allow (ci-agent/read-shop)  200  12ms",
        "13:40:31.000  #2  kubectl patch deployments.apps web -n shop  "
        "approve (ci-agent/change-deployments)  not forwarded  approval a1b2c3d4…",
        "13:40:31.010  #3  approval a1b2c3d4… requested (rule change-deployments)",
        "13:40:31.200  #4  approval a1b2c3d4… posted to Slack (C0APPROVALS)",
        "13:41:02.500  #5  approved by U0BOB (bob@example.com)",
        "13:41:05.000  #6  kubectl get pods -n shop  allow (ci-agent/read-shop)  200  12ms",
    ]


def test_bodies_and_details_are_indented_under_their_record_and_made_harmless():
    lines = render_timeline(_session(), show_bodies=True, details=True)
    at = lines.index(next(line for line in lines if "#2" in line))
    assert lines[at + 1 : at + 6] == [
        "      reason: needs a human",
        "      http: PATCH /apis/apps/v1/namespaces/shop/deployments/web",
        "      approval: a1b2c3d4e5f60718",
        "      request body (23 bytes):",
        '        {"spec":{"replicas":3}}',
    ]
    assert "      response body: 52311 bytes, not recorded (sha256 abababababababab…)" in lines
    assert "      from: 203.0.113.7 (evil\\x1b[2Jagent)" in lines
    assert not any("\x1b" in line for line in lines)


def test_the_session_table_lines_up():
    lines = render_sessions(
        [
            SessionSummary(
                SID,
                "alice",
                "prod",
                "2026-11-22T13:40:29.123Z",
                "2026-11-22T13:41:00.000Z",
                12,
                {"deny": 1, "allow": 11},
                1,
            ),
            SessionSummary(
                "s2", "bob", "", "2026-11-22T12:00:00.000Z", "2026-11-22T12:00:01.000Z", 1, {}, 0
            ),
        ]
    )
    assert lines[0].split() == [
        "SESSION",
        "SUBJECT",
        "CLUSTER",
        "FIRST",
        "LAST",
        "RECORDS",
        "DECISIONS",
        "APPROVALS",
    ]
    assert lines[1].split() == [
        SID,
        "alice",
        "prod",
        "2026-11-22T13:40:29.123Z",
        "2026-11-22T13:41:00.000Z",
        "12",
        "allow:11",
        "deny:1",
        "1",
    ]
    assert lines[2].split()[2] == "-"
    assert lines[0].index("SUBJECT") == lines[1].index("alice") == lines[2].index("bob")
    assert render_sessions([]) == ["no sessions match these filters"]
