"""``GET /v1/approvals/{id}``: the requester sees only what their policy lets them read."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace

from chalicelib.credentials.session_token import SessionTokenCodec
from chalicelib.identity import Identity
from chalicelib.policy import load_policies
from chalicelib.routes.approvals import DIFF_HIDDEN, approval_status
from tests.approvals.conftest import sample_approval
from tests.unit.test_proxy import Keys

POLICY = textwrap.dedent("""\
    name: writer
    subjects:
      - issuer: https://oidc.eksgate.local
        claims: {sub: user-alice}
    clusters: [prod-eu]
    role: arn:aws:iam::123456789012:role/writer
    rules:
      - name: read-shop
        effect: allow
        verbs: [get]
        resources: [configmaps]
        namespaces: [shop]
      - name: change-auth
        effect: approve
        verbs: [patch]
        resources: [configmaps]
        namespaces: [kube-system, shop]
        approvers: [U0BOB]
        approval: {mode: once}
    """)
ALICE = Identity("user-alice", "https://oidc.eksgate.local", email="alice@example.com")


def status_for(tmp_path, path: str) -> dict:
    (tmp_path / "writer.yaml").write_text(POLICY)
    codec = SessionTokenCodec(Keys())
    token, _ = codec.issue(ALICE, "prod-eu", "writer", 600, {"sub": "user-alice"})
    approval = sample_approval(
        request={
            "method": "PATCH",
            "path": path,
            "query": "",
            "verb": "patch",
            "resource": "configmaps",
        },
        diff="--- current\n+++ proposed\n-  mapRoles: secret-ish",
    )
    services = SimpleNamespace(
        sessions=codec,
        policies=load_policies(tmp_path),
        approvals=SimpleNamespace(get=lambda _: approval),
    )
    return approval_status(services, {"authorization": f"Bearer {token}"}, approval.approval_id)


def test_the_diff_of_an_object_the_requester_cannot_read_is_hidden(tmp_path):
    answer = status_for(tmp_path, "/api/v1/namespaces/kube-system/configmaps/aws-auth")
    assert answer["diff"] == DIFF_HIDDEN and "mapRoles" not in str(answer)


def test_the_diff_of_a_readable_object_is_shown(tmp_path):
    answer = status_for(tmp_path, "/api/v1/namespaces/shop/configmaps/app")
    assert "mapRoles" in answer["diff"]
