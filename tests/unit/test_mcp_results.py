"""What `eksgate mcp` tells an agent: refusals read from the gateway's Status, summaries."""

from __future__ import annotations

import pytest

from eksgate import mcp_results
from eksgate.api_client import CliError
from eksgate.gateway_client import ApiResource


def status(message: str, **details: str) -> dict:
    body = {"kind": "Status", "status": "Failure", "message": message, "code": 403}
    if details:
        body["details"] = {"causes": [{"field": k, "message": v} for k, v in details.items()]}
    return body


def test_a_pending_approval_is_an_approval_required_result_with_how_to_wait():
    result = mcp_results.refusal(
        403,
        status(
            "approval required: request abc is waiting",
            approval_id="abc",
            status="pending",
            kind="approval",
        ),
    )
    assert result["outcome"] == "approval_required" and result["approval_id"] == "abc"
    assert "approval_wait" in result["how_to_wait"]
    enriched = mcp_results.with_approval(
        result,
        {
            "approvers": ["slack-group:oncall"],
            "expires_at": "2026-01-01T00:00:00Z",
            "rule": "change",
            "policy": "ci",
        },
    )
    assert enriched["approvers"] == ["slack-group:oncall"] and enriched["rule"] == "change"


def test_a_policy_denial_carries_policy_rule_and_reason():
    result = mcp_results.refusal(
        403, status("eksgate: rule no-x denies it: because", policy="ci", rule="no-x")
    )
    assert result == {
        "outcome": "denied",
        "policy": "ci",
        "rule": "no-x",
        "reason": "eksgate: rule no-x denies it: because",
    }


def test_a_human_denial_is_not_mistaken_for_a_pending_approval():
    result = mcp_results.refusal(
        403, status("approval denied: by bob", approval_id="abc", status="denied")
    )
    assert result["outcome"] == "approval_denied"


@pytest.mark.parametrize(
    ("code", "body", "outcome"),
    [
        (403, status("forbidden by the cluster's RBAC"), "forbidden"),
        (404, {"kind": "Status", "message": 'pods "x" not found'}, "not_found"),
        (401, None, "unauthenticated"),
        (502, "not json at all", "error"),
        # Causes that do not name a rule or approval grant nothing: a forged field is ignored.
        (403, {"details": {"causes": [{"message": "no field"}, "junk"]}}, "forbidden"),
    ],
)
def test_other_refusals_keep_their_message_and_status(code, body, outcome):
    result = mcp_results.refusal(code, body, "plain text")
    assert result["outcome"] == outcome and result["message"]


def test_describe_summarises_without_secret_values():
    secret = {
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "shop"},
        "data": {"password": "KioqTUFTS0VEKioq"},
    }
    summary = mcp_results.describe(secret)
    assert summary["keys"] == ["password"] and "KioqTUFTS0VEKioq" not in str(summary)


def test_paths_are_built_only_from_kubernetes_names():
    deployments = ApiResource("apps", "v1", "deployments", "Deployment", True)
    assert deployments.path("shop", "web", "scale") == (
        "/apis/apps/v1/namespaces/shop/deployments/web/scale"
    )
    namespaces = ApiResource("", "v1", "namespaces", "Namespace", False)
    assert namespaces.path("ignored", "shop") == "/api/v1/namespaces/shop"
    for bad in ("..", ".", "a/b", "a%2fb", "x?y=1", "pods#frag", "é"):
        with pytest.raises(CliError):
            deployments.path("shop", bad)


class CannedTools:
    """KubeTools' whoami alone, answering what the gateway would."""

    def __init__(self, answer: dict) -> None:
        self.answer = answer

    def whoami(self) -> dict:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_tool_descriptions_carry_the_policy_and_say_so_when_it_is_unknown():
    from chalicelib.permissions.whoami import whoami
    from eksgate.mcp_server import policy_digest
    from tests.unit.test_access_review import CI_AGENT, session

    known = policy_digest(CannedTools({"outcome": "ok", **whoami(session(), CI_AGENT, now=0)}))
    assert "[change-deployments]" in known and "needs a human's approval" in known
    refused = policy_digest(CannedTools({"outcome": "not_found", "message": "no such route"}))
    assert "could not be read" in refused and "can_i" in refused
    unreachable = policy_digest(CannedTools(CliError("cannot reach the eksgate gateway")))
    assert "cannot reach" in unreachable


def test_the_server_offers_every_tool_with_honest_hints_and_no_exec_yet():
    import asyncio

    pytest.importorskip("mcp")
    from eksgate.gateway_client import GatewayClient
    from eksgate.mcp_server import TOOL_TEXTS, build_server
    from eksgate.mcp_tools import KubeTools

    client = GatewayClient("https://gateway.invalid", "demo", lambda renew: "unused")
    tools = asyncio.run(build_server(KubeTools(client), "POLICY DIGEST").list_tools())
    by_name = {tool.name: tool for tool in tools}
    assert set(by_name) == set(TOOL_TEXTS) and "exec" not in by_name
    assert all("POLICY DIGEST" in tool.description for tool in tools)
    assert by_name["list_resources"].annotations.read_only_hint is True
    assert by_name["delete"].annotations.destructive_hint is True
