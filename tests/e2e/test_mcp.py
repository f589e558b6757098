"""`eksgate mcp` driven by the MCP SDK's own client over stdio, against the local stack.

The server is the real `eksgate mcp` process; every tool call goes through the gateway, so
the tests check what the agent sees (masked Secrets, a denial with its rule, an approval it
can wait for) and what the cluster and the audit trail saw.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from pathlib import Path

import pytest
import urllib3

from tests.e2e.conftest import gateway_flags

pytestmark = pytest.mark.e2e

mcp = pytest.importorskip("mcp")


def server_parameters(stack, token_file: Path, cache: Path):
    from mcp.client.stdio import StdioServerParameters

    return StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "eksgate.cli",
            "mcp",
            *gateway_flags(stack, token_file),
        ],
        env={"XDG_CACHE_HOME": str(cache), "PATH": os.environ.get("PATH", "")},
    )


async def call(client, tool: str, **arguments) -> dict:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


def session_id_in(cache: Path) -> str:
    """The session the MCP server used, from the exec plugin's cache it shares."""
    (path,) = (cache / "eksgate" / "credentials").glob("*.json")
    token = json.loads(path.read_text())["status"]["token"]
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"]


def audit_records(stack, session_id: str) -> list[dict]:
    http = urllib3.PoolManager(ca_certs=stack.gateway_ca_file)
    answer = http.request(
        "GET",
        f"{stack.gateway_url}/v1/sessions/{session_id}",
        headers={"Authorization": f"Bearer {stack.mint('auditor')}"},
    )
    assert answer.status == 200, answer.data
    document = answer.json()
    assert document["chain"]["ok"]
    return document["records"]


@pytest.fixture
def agent(stack, tmp_path):
    token_file = tmp_path / "oidc-token"
    token_file.write_text(stack.mint("ci-agent"))
    return server_parameters(stack, token_file, tmp_path / "cache"), tmp_path / "cache"


def test_an_agent_reads_is_refused_waits_for_approval_and_changes_once(stack, agent):
    from mcp import Client

    parameters, cache = agent

    async def scenario() -> dict:
        async with Client(parameters) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert {
                "list_resources",
                "get_resource",
                "delete",
                "patch",
                "approval_wait",
                "can_i",
                "whoami",
                "logs",
                "apply",
                "scale",
                "rollout_restart",
            } <= names
            pods = await call(client, "list_resources", resource="pods", namespace="shop")
            secret = await call(
                client, "get_resource", resource="secrets", name="db-credentials", namespace="shop"
            )
            refused = await call(client, "delete", resource="namespaces", name="shop")
            stack.clear_kube_calls()
            patch = json.dumps(
                {
                    "spec": {
                        "template": {"metadata": {"annotations": {"example.com/mcp-change": "one"}}}
                    }
                }
            )
            pending = await call(
                client,
                "patch",
                resource="deployments.apps",
                name="web",
                namespace="shop",
                patch=patch,
            )
            # Wait while a human decides; the approval is clicked during the wait.
            waiting = asyncio.create_task(
                call(
                    client, "approval_wait", approval_id=pending["approval_id"], timeout_seconds=60
                )
            )
            await asyncio.to_thread(stack.click, pending["approval_id"], "eksgate_approve", "U0BOB")
            done = await waiting
            return {
                "pods": pods,
                "secret": secret,
                "refused": refused,
                "pending": pending,
                "done": done,
            }

    seen = asyncio.run(scenario())
    assert seen["pods"]["outcome"] == "ok"
    assert any(row["name"].startswith("web-") for row in seen["pods"]["items"])

    data = seen["secret"]["object"]["data"]
    from eksgate_local.kube_emulator.seed import SENSITIVE_VALUES

    text = json.dumps(seen["secret"])
    assert data and all(base64.b64decode(v) == b"***MASKED***" for v in data.values())
    assert not any(
        v in text or base64.b64encode(v.encode()).decode() in text for v in SENSITIVE_VALUES
    )

    refused = seen["refused"]
    assert refused["outcome"] == "denied" and refused["rule"] == "no-namespace-deletes"
    assert refused["policy"] == "ci-agent" and "managed by the platform team" in refused["reason"]

    pending = seen["pending"]
    assert pending["outcome"] == "approval_required" and pending["approval_status"] == "pending"
    assert pending["approvers"] == ["slack-group:platform-oncall"]
    assert pending["rule"] == "change-deployments" and pending["expires_at"]
    assert "approval_wait" in pending["how_to_wait"] and "mcp-change" in pending["diff"]

    done = seen["done"]
    assert done["outcome"] == "ok" and done["approval_id"] == pending["approval_id"]
    real_patches = [
        c
        for c in stack.kube_calls()
        if c["verb"] == "patch" and not c["dry_run"] and c.get("name") == "web"
    ]
    assert len(real_patches) == 1  # approved once, sent once

    records = audit_records(stack, session_id_in(cache))
    kinds = [r["kind"] for r in records]
    for kind in (
        "token_issued",
        "request",
        "response",
        "refusal",
        "approval_requested",
        "approval_decided",
        "approval_consumed",
    ):
        assert kind in kinds, kind
    refusal = next(
        r
        for r in records
        if r["kind"] == "refusal" and r["decision"]["rule"] == "no-namespace-deletes"
    )
    assert refusal["decision"]["effect"] == "deny"


def deny(stack, approval_id: str, user: str = "U0CAROL") -> None:
    stack.click(approval_id, "eksgate_deny", user)
    view = [v for v in stack.slack_state()["views"] if v["user"] == user][-1]
    answer = urllib3.PoolManager().request(
        "POST",
        f"{stack.slack_url}_fake/submit_view",
        json={"view_id": view["id"], "user_id": user, "values": {"reason": "not today"}},
    )
    assert answer.status == 200


def test_a_denied_change_is_reported_and_never_sent(stack, agent):
    from mcp import Client

    parameters, _ = agent

    async def scenario() -> tuple[dict, dict, dict]:
        async with Client(parameters) as client:
            pending = await call(client, "scale", name="worker", namespace="shop", replicas=4)
            await asyncio.to_thread(deny, stack, pending["approval_id"])
            denied = await call(
                client, "approval_wait", approval_id=pending["approval_id"], timeout_seconds=30
            )
            unknown = await call(client, "approval_status", approval_id="not-an-approval")
            return pending, denied, unknown

    stack.clear_kube_calls()
    pending, denied, unknown = asyncio.run(scenario())
    assert pending["outcome"] == "approval_required"
    assert denied["outcome"] == "approval_denied"
    assert denied["approval"]["decisions"][0]["reason"] == "not today"
    assert not [c for c in stack.kube_calls() if c["verb"] == "patch" and not c["dry_run"]]
    assert unknown["outcome"] == "not_found"


def test_bad_input_is_a_result_the_agent_can_read(stack, agent):
    from mcp import Client

    parameters, _ = agent

    async def scenario() -> list[dict]:
        async with Client(parameters) as client:
            return [
                await call(
                    client, "get_resource", resource="nosuchthings", name="x", namespace="shop"
                ),
                await call(
                    client, "get_resource", resource="pods", name="../secrets", namespace="shop"
                ),
                await call(client, "apply", manifest="kind: [unclosed"),
                await call(
                    client,
                    "patch",
                    resource="deployments",
                    name="web",
                    namespace="shop",
                    patch="{not json",
                ),
                await call(client, "logs", pod="web", namespace="shop", tail_lines=10**9),
            ]

    results = asyncio.run(scenario())
    assert [r["outcome"] for r in results[:4]] == ["error"] * 4
    assert "no resource type" in results[0]["message"]
    assert "not a Kubernetes name" in results[1]["message"]
    assert results[4]["outcome"] in ("ok", "not_found")


def test_apply_shows_the_dry_run_diff_before_anything_changes(stack, agent):
    from mcp import Client

    parameters, _ = agent
    manifest = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {replicas: 5}
"""

    async def scenario() -> dict:
        async with Client(parameters) as client:
            return await call(client, "apply", manifest=manifest, dry_run_only=True)

    stack.clear_kube_calls()
    result = asyncio.run(scenario())
    assert result["outcome"] == "dry_run" and "+  replicas: 5" in result["diff"].replace(
        "+replicas", "+  replicas"
    )
    assert all(c["dry_run"] for c in stack.kube_calls() if c["verb"] in ("patch", "create"))


def test_whoami_and_can_i_answer_from_the_policy(stack, agent):
    from mcp import Client

    parameters, _ = agent

    async def scenario() -> tuple[dict, dict, dict, str]:
        async with Client(parameters) as client:
            description = (await client.list_tools()).tools[0].description
            return (
                await call(client, "whoami"),
                await call(client, "can_i", verb="delete", resource="namespaces"),
                await call(client, "can_i", verb="patch", resource="deployments", namespace="shop"),
                description,
            )

    whoami, delete, patch, description = asyncio.run(scenario())
    assert whoami["outcome"] == "ok" and whoami["policy"]["name"] == "ci-agent"
    assert delete["allowed"] is False and delete["denied"] is True
    assert patch["allowed"] is False and patch["approval_required"] is True
    assert "change-deployments" in description
