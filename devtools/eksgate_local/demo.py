"""``eksgate local demo``: a scripted scenario through the real interfaces, narrated.

Every step drives a public interface (the ``eksgate`` CLI, the HTTP API, Kubernetes clients).
A step whose capability has not been built yet says so; nothing is simulated.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import jwt
import urllib3

from chalicelib.credentials.eks_token import decode_eks_token
from chalicelib.masking import MASK
from eksgate_local.oidc_issuer import DEMO_IDENTITIES
from eksgate_local.stack import CLUSTER, ComponentError, LocalStack, write_kubeconfig

if TYPE_CHECKING:  # the kubernetes client is imported by the steps that use it
    from kubernetes.client import V1Pod
    from kubernetes.client.exceptions import ApiException

BOLD, DIM, GREEN, RED, YELLOW, RESET = (
    "\033[1m",
    "\033[2m",
    "\033[32m",
    "\033[31m",
    "\033[33m",
    "\033[0m",
)


def _style(text: str, code: str) -> str:
    return f"{code}{text}{RESET}" if sys.stdout.isatty() else text


class Narrator:
    def __init__(self) -> None:
        self.step = 0
        self.failures: list[str] = []

    def title(self, text: str) -> None:
        self.step += 1
        print(f"\n{_style(f'{self.step}. {text}', BOLD)}", flush=True)

    def say(self, text: str) -> None:
        print(f"   {text}", flush=True)

    def ok(self, text: str) -> None:
        print(f"   {_style('✔', GREEN)} {text}", flush=True)

    def refused(self, text: str) -> None:
        print(f"   {_style('✘ refused:', YELLOW)} {text}", flush=True)

    def fail(self, text: str) -> None:
        self.failures.append(f"step {self.step}: {text}")
        print(f"   {_style('FAILED:', RED)} {text}", flush=True)

    def not_yet(self, what: str, issue: str) -> None:
        self.title(what)
        print(f"   {_style(f'not available yet (lands with: {issue})', DIM)}", flush=True)


def eksgate_token(
    stack: LocalStack,
    identity: str,
    cluster: str = CLUSTER,
    mode: str = "gateway",
    token: str | None = None,
    cache: bool = True,
) -> subprocess.CompletedProcess:
    """Run the real ``eksgate token`` plugin, as kubectl would."""
    env = dict(os.environ, EKSGATE_OIDC_TOKEN=token or stack.mint(identity))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "eksgate.cli",
            "token",
            "--cluster",
            cluster,
            "--gateway",
            stack.gateway_url,
            "--mode",
            mode,
            "--ca-file",
            str(stack.gateway_ca_file),
            *([] if cache else ["--no-cache"]),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def step_token_issued(stack: LocalStack, n: Narrator) -> None:
    n.title("The CI agent trades its OIDC token for a gateway session token")
    agent = DEMO_IDENTITIES["ci-agent"]
    n.say(f"who: {agent.description} (sub {agent.claims['sub']})")
    started = time.monotonic()
    result = eksgate_token(stack, "ci-agent")
    if result.returncode != 0:
        n.fail(result.stderr.strip())
        return
    credential = json.loads(result.stdout)
    claims = jwt.decode(credential["status"]["token"], options={"verify_signature": False})
    n.ok(
        f"`eksgate token` printed an {credential['kind']} ({credential['apiVersion']}) in "
        f"{time.monotonic() - started:.1f}s"
    )
    n.say(
        f"session {claims['sid'][:12]}…  policy {claims['pol']}  cluster {claims['cls']}  "
        f"expires {credential['status']['expirationTimestamp']}"
    )
    n.say("the agent holds this session token only: it never sees a cluster credential")
    again = eksgate_token(stack, "ci-agent")
    if again.returncode == 0 and json.loads(again.stdout) == credential:
        n.ok("run again (as kubectl does per command): served from the 0600 on-disk cache")
    else:
        n.fail("the second `eksgate token` did not reuse the cached credential")


def step_refusals(stack: LocalStack, n: Narrator) -> None:
    n.title("Bad requests for tokens are refused with a reason (--no-cache: the broker decides)")
    cases = [
        (
            "an expired OIDC token",
            dict(
                identity="ci-agent",
                token=stack.mint(
                    "ci-agent",
                    exp=int(time.time()) - 120,
                    iat=int(time.time()) - 900,
                    nbf=int(time.time()) - 900,
                ),
            ),
        ),
        ("a cluster this gateway does not serve", dict(identity="ci-agent", cluster="staging")),
        (
            "a feature-branch build (no policy matches)",
            dict(
                identity="ci-agent",
                token=stack.mint(
                    {
                        "sub": "repo:acme/shop:ref:refs/heads/feature-x",
                        "repository": "acme/shop",
                        "ref": "refs/heads/feature-x",
                    }
                ),
            ),
        ),
        (
            "direct mode, which the agent's policy does not allow",
            dict(identity="ci-agent", mode="direct"),
        ),
    ]
    for label, kwargs in cases:
        result = eksgate_token(stack, cache=False, **kwargs)
        if result.returncode == 0:
            n.fail(f"{label}: a credential was issued")
        else:
            n.refused(f"{label}: {result.stderr.strip().removeprefix('eksgate: ')}")


def step_direct_token(stack: LocalStack, n: Narrator) -> None:
    n.title("A read-only dashboard gets a direct, 15-minute EKS token (direct mode)")
    token = stack.mint({"sub": "service:dashboard-grafana"})
    result = eksgate_token(stack, "dashboard", mode="direct", token=token)
    if result.returncode != 0:
        n.fail(result.stderr.strip())
        return
    credential = json.loads(result.stdout)
    url = decode_eks_token(credential["status"]["token"])
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    n.ok(
        f"EKS token (k8s-aws-v1.…, {len(credential['status']['token'])} chars) expiring "
        f"{credential['status']['expirationTimestamp']}"
    )
    n.say(
        f"it is a presigned STS GetCallerIdentity URL: host {parts.hostname}, signed headers "
        f"{query['X-Amz-SignedHeaders'][0]}, X-Amz-Expires {query['X-Amz-Expires'][0]}"
    )
    n.say("the role was assumed with SourceIdentity and session tags naming the caller")


def step_api_errors(stack: LocalStack, n: Narrator) -> None:
    n.title("The API answers bad input with a JSON error, never a stack trace")
    http = urllib3.PoolManager(ca_certs=str(stack.gateway_ca_file))
    response = http.request(
        "POST",
        f"{stack.gateway_url}/v1/token",
        body=b"{not json",
        headers={
            "Authorization": f"Bearer {stack.mint('ci-agent')}",
            "Content-Type": "application/json",
        },
    )
    n.refused(f"HTTP {response.status} {json.loads(response.data)['message']}")
    response = http.request(
        "POST",
        f"{stack.gateway_url}/v1/token",
        body=b'{"cluster":"demo"}',
        headers={
            "Authorization": "Bearer " + base64.b64encode(b"x").decode(),
            "Content-Type": "application/json",
        },
    )
    n.refused(f"HTTP {response.status} {json.loads(response.data)['message']}")


LOG_FILE = Path(".eksgate-local") / "demo-app.log"


def kube_client(stack: LocalStack, identity: str) -> Any:
    """The Python kubernetes client, pointed at the gateway with a fresh session token."""
    from kubernetes import client

    result = eksgate_token(stack, identity)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip())
    configuration = client.Configuration()
    configuration.host = f"{stack.gateway_url}/k8s/{CLUSTER}"
    configuration.ssl_ca_cert = str(stack.gateway_ca_file)
    configuration.api_key = {
        "authorization": "Bearer " + json.loads(result.stdout)["status"]["token"]
    }
    return client.ApiClient(configuration)


def kubectl(stack: LocalStack, *args: str) -> subprocess.CompletedProcess | None:
    """kubectl with the stack's kubeconfig (exec plugin), or None when it is not installed."""
    if shutil.which("kubectl") is None:
        return None
    return subprocess.run(
        ["kubectl", "--context", f"{CLUSTER}-ci-agent", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KUBECONFIG": str(stack.workdir / "kubeconfig")},
    )


def step_allowed_read(stack: LocalStack, n: Narrator) -> None:
    from kubernetes import client

    n.title("An allowed read: the agent lists pods in its namespace")
    pods = client.CoreV1Api(kube_client(stack, "ci-agent")).list_namespaced_pod("shop")
    n.ok(
        f"python kubernetes client: {len(pods.items)} pods in shop "
        f"({', '.join(_names(pods.items)[:3])})"
    )
    reached = (
        [c for c in stack.kube.calls if c.path == "/api/v1/namespaces/shop/pods"]
        if stack.kube
        else []
    )
    if reached:
        n.say(f"the cluster saw the policy's role, not the agent: {reached[-1].principal}")
    result = kubectl(stack, "get", "pods", "-n", "shop")
    if result is None:
        n.say("(kubectl is not installed; skipping the kubectl half of this step)")
    elif result.returncode == 0:
        n.ok("kubectl get pods -n shop (through the `eksgate token` exec plugin):")
        for line in result.stdout.strip().splitlines():
            n.say(f"   {line}")
    else:
        n.fail(f"kubectl get pods: {result.stderr.strip()}")


def step_masked_secret(stack: LocalStack, n: Narrator) -> None:
    from kubernetes import client

    n.title("A Secret read: allowed, but its values never leave the gateway")
    secret = client.CoreV1Api(kube_client(stack, "ci-agent")).read_namespaced_secret(
        "db-credentials", "shop"
    )
    for key, value in sorted((secret.data or {}).items()):
        shown = value.decode() if isinstance(value, bytes) else value
        n.say(f"data.{key}: {shown}  (decodes to {base64.b64decode(value).decode()!r})")
    if secret.data and all(base64.b64decode(v).decode() == MASK for v in secret.data.values()):
        n.ok("every value is masked: valid base64, same marker for all, no length revealed")
    else:
        n.fail("a Secret value came back unmasked")


def step_refused_delete(stack: LocalStack, n: Narrator) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    n.title("A refused `delete namespace shop`")
    try:
        client.CoreV1Api(kube_client(stack, "ci-agent")).delete_namespace("shop")
        n.fail("the namespace delete was forwarded")
    except ApiException as err:
        n.refused(f"HTTP {err.status} {_status(err)['message']}")
    result = kubectl(stack, "delete", "namespace", "shop")
    if result is not None:
        n.say(f"kubectl says: {result.stderr.strip().splitlines()[-1]}")


def _names(pods: Iterable[V1Pod]) -> list[str]:
    """The names of listed pods (the API names every object it lists)."""
    return [p.metadata.name for p in pods if p.metadata and p.metadata.name]


def _status(err: ApiException) -> dict[str, Any]:
    """The Kubernetes Status of a refused call (the gateway always sends one)."""
    if not err.body:
        raise RuntimeError(f"HTTP {err.status} came without a Status body")
    status: dict[str, Any] = json.loads(err.body)
    return status


def _indent(text: str, n: Narrator) -> None:
    for line in text.splitlines():
        n.say(f"   {line}")


def _approval_refusal(call: Callable[[], Any]) -> tuple[str, str]:
    """Run a request that must wait for approval: (approval id, the Status message)."""
    from kubernetes.client.exceptions import ApiException

    try:
        call()
    except ApiException as err:
        body = _status(err)
        return body.get("details", {}).get("name", ""), body["message"]
    raise RuntimeError("the request went through without an approval")


def _slack_message_for(stack: LocalStack, approval_id: str) -> Any:
    return next(m for m in reversed(stack.slack.messages()) if approval_id in json.dumps(m.blocks))


def _patch_web(api_client: Any, image: str) -> Any:
    from kubernetes import client

    return client.AppsV1Api(api_client).patch_namespaced_deployment(
        "web",
        "shop",
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}},
    )


def step_approval(stack: LocalStack, n: Narrator) -> None:
    n.title("A deployment change waits for a human in Slack, is approved, and the retry succeeds")
    api_client = kube_client(stack, "ci-agent")
    n.say(
        "the agent patches deployment/web in shop to image nginx:1.27.4 (rule change-deployments)"
    )
    approval_id, message = _approval_refusal(lambda: _patch_web(api_client, "nginx:1.27.4"))
    n.refused(message)
    slack_message = _slack_message_for(stack, approval_id)
    n.say("the gateway dry-ran the patch, then posted this to #eksgate-approvals:")
    _indent(stack.slack.render(slack_message.ts), n)
    n.say("Bob (platform on-call) clicks Approve; Slack sends the app a signed interaction")
    clicked = stack.slack.click(slack_message.ts, "eksgate_approve", "U0BOB")
    n.ok(
        f"the app answered Slack with HTTP {clicked.status} in {clicked.elapsed:.2f}s; "
        "the message is updated in place:"
    )
    _indent(stack.slack.render(slack_message.ts), n)
    patched = _patch_web(api_client, "nginx:1.27.4")
    n.ok(
        f"the agent runs the same command again: deployment/web now runs "
        f"{patched.spec.template.spec.containers[0].image} (the approval is used up)"
    )


def step_self_approval(stack: LocalStack, n: Narrator) -> None:
    from kubernetes import client

    n.title("A refused self-approval: an approver cannot approve their own request")
    api = client.CoreV1Api(kube_client(stack, "approver"))
    n.say("Bob, signed in as an engineer, changes configmap shop-config (rule change-workloads)")
    approval_id, message = _approval_refusal(
        lambda: api.patch_namespaced_config_map(
            "shop-config", "shop", {"data": {"LOG_LEVEL": "debug"}}
        )
    )
    n.refused(message)
    slack_message = _slack_message_for(stack, approval_id)
    stack.slack.click(slack_message.ts, "eksgate_approve", "U0BOB")
    refusal = stack.slack.ephemerals("U0BOB")[-1]
    n.ok(f"Bob clicks Approve on his own request; only he sees: {refusal.text}")
    status = stack.app_module.services().approvals.get(approval_id) if stack.app_module else None
    n.say(
        f"the request is still {status.status if status else 'pending'}: someone else must decide"
    )


def eksgate_exec(stack: LocalStack, pod: str, *argv: str) -> subprocess.CompletedProcess:
    """Run the real ``eksgate exec`` as the CI agent (its cached session, as kubectl's)."""
    env = {**os.environ, "EKSGATE_OIDC_TOKEN": stack.mint("ci-agent")}
    command = ["exec", "--gateway", stack.gateway_url, "--cluster", CLUSTER, "--ca-file"]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "eksgate.cli",
            *command,
            str(stack.gateway_ca_file),
            "-n",
            "shop",
            pod,
            "--",
            *argv,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def step_exec(stack: LocalStack, n: Narrator) -> None:
    from kubernetes import client

    n.title("A command in a pod: `eksgate exec`, decided, masked and recorded")
    pods = client.CoreV1Api(kube_client(stack, "ci-agent")).list_namespaced_pod("shop").items
    pod = sorted(name for name in _names(pods) if name.startswith("web-"))[0]
    result = eksgate_exec(stack, pod, "cat", "/etc/app/config.yaml")
    n.say(f"eksgate exec -n shop {pod} -- cat /etc/app/config.yaml  (exit {result.returncode})")
    _indent(result.stdout.rstrip() or result.stderr.rstrip(), n)
    if result.returncode == 0 and "***MASKED***" in result.stdout:
        n.ok("the planted AWS keys and database password came back masked")
    else:
        n.fail("the exec failed or its output was not masked")
    refused = eksgate_exec(stack, pod, "cat", "/etc/passwd")
    if refused.returncode != 0:
        n.refused(refused.stderr.strip().splitlines()[-1])
    else:
        n.fail("a command outside the policy's patterns ran")


def step_audit_replay(stack: LocalStack, n: Narrator) -> None:
    n.title("The agent's session, replayed from the audit trail by an auditor")
    credential = json.loads(eksgate_token(stack, "ci-agent").stdout)
    session_id = jwt.decode(credential["status"]["token"], options={"verify_signature": False})[
        "sid"
    ]
    env = dict(os.environ, EKSGATE_AUDITOR_TOKEN=stack.mint("auditor"))
    common = [
        "--gateway",
        stack.gateway_url,
        "--ca-file",
        str(stack.gateway_ca_file),
        "--oidc-token-env",
        "EKSGATE_AUDITOR_TOKEN",
    ]
    replay = subprocess.run(
        [sys.executable, "-m", "eksgate.cli", "sessions", "replay", session_id, *common],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    if replay.returncode != 0:
        n.fail(replay.stderr.strip())
        return
    n.say(f"eksgate sessions replay {session_id[:12]}… (Dana, security-auditors):")
    _indent(replay.stdout.rstrip(), n)
    verify = subprocess.run(
        [sys.executable, "-m", "eksgate.cli", "sessions", "verify", session_id, *common],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    if verify.returncode == 0:
        n.ok(f"eksgate sessions verify: {verify.stdout.strip().splitlines()[0]}")
    else:
        n.fail(f"verify: {verify.stdout.strip()} {verify.stderr.strip()}")


K8S_AUDIT_FILE = LOG_FILE.parent / "demo-k8s-audit.jsonl"
CLUSTER_CALLS_FILE = LOG_FILE.parent / "demo-cluster-calls.jsonl"
ANSWERS_FILE = LOG_FILE.parent / "demo-answers.jsonl"


def _write_jsonl(path: Path, rows: list[Any]) -> None:
    path.write_text("".join(json.dumps(row, default=str) + "\n" for row in rows))


def step_k8s_audit_join(stack: LocalStack, n: Narrator) -> None:
    import dataclasses

    n.title("Everything above as Kubernetes audit events, joined to the cluster's own log")
    env = dict(os.environ, EKSGATE_AUDITOR_TOKEN=stack.mint("auditor"))
    export = subprocess.run(
        [
            *(sys.executable, "-m", "eksgate.cli", "sessions", "export", "--cluster", CLUSTER),
            *("--format", "k8s-audit", "--gateway", stack.gateway_url),
            *("--ca-file", str(stack.gateway_ca_file), "--oidc-token-env", "EKSGATE_AUDITOR_TOKEN"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if export.returncode != 0:
        n.fail(f"eksgate sessions export: {export.stderr.strip()}")
        return
    K8S_AUDIT_FILE.write_text(export.stdout)
    events = [json.loads(line) for line in export.stdout.splitlines()]
    # The emulator's call log stands in for EKS's audit log; the local API Gateway's answers
    # for what each client saw. Both are written beside the export for the join test.
    calls = [dataclasses.asdict(c) for c in stack.kube.calls] if stack.kube else []
    _write_jsonl(CLUSTER_CALLS_FILE, calls)
    _write_jsonl(ANSWERS_FILE, stack.gateway.answers() if stack.gateway else [])
    ids = [e["auditID"] for e in events]
    at_cluster = [c["audit_id"] for c in calls]
    # One request, one ID: an ID the cluster saw twice would stand for two requests.
    unmatched = [i for i in at_cluster if ids.count(i) != 1 or at_cluster.count(i) != 1]
    refused = [e for e in events if e["annotations"]["authorization.k8s.io/decision"] == "forbid"]
    n.say(f"eksgate sessions export --cluster {CLUSTER} --format k8s-audit > {K8S_AUDIT_FILE}")
    if unmatched or not calls:
        n.fail(f"{len(unmatched)} of {len(calls)} cluster calls lack exactly one event")
        return
    own = sum(1 for e in events if "eksgate.io/gateway-call" in e["annotations"])
    n.ok(
        f"{len(calls)} requests reached the cluster; each has exactly one event with its "
        f"Audit-ID ({own} of them the gateway's own dry runs and reads for an approver's diff)"
    )
    n.ok(f"{len(refused)} refusals are events too, with the status the agent saw; none ran")


STEPS: list[Callable[[LocalStack, Narrator], None]] = [
    step_token_issued,
    step_refusals,
    step_direct_token,
    step_api_errors,
    step_allowed_read,
    step_masked_secret,
    step_refused_delete,
    step_exec,
    step_approval,
    step_self_approval,
    step_audit_replay,
    step_k8s_audit_join,
]


def run_demo() -> int:
    n = Narrator()
    LOG_FILE.parent.mkdir(exist_ok=True)
    LOG_FILE.write_text("")
    print(_style("eksgate local demo: the whole system on loopback, no AWS account", BOLD))
    started = time.monotonic()
    try:
        stack = LocalStack(log_file=LOG_FILE).start()
    except ComponentError as exc:
        print(f"eksgate local demo: {exc}", file=sys.stderr)
        return 1
    try:
        write_kubeconfig(stack, stack.workdir / "kubeconfig")
        n.say(
            f"gateway {stack.gateway_url}, AWS (moto) {stack.aws.endpoint_url}, "
            f"OIDC issuer {stack.oidc.base_url}, Kubernetes emulator "
            f"{stack.kube.url if stack.kube else ''}"
        )
        for step in STEPS:
            try:
                step(stack, n)
            except Exception as exc:  # a broken step is reported, the rest still run
                n.fail(f"{type(exc).__name__}: {exc}")
    finally:
        stack.stop()
    elapsed = time.monotonic() - started
    if n.failures:
        print(f"\n{_style('demo failed', RED)} after {elapsed:.0f}s:", *n.failures, sep="\n  ")
        return 1
    print(f"\n{_style('demo complete', GREEN)} in {elapsed:.0f}s; everything has been stopped.")
    print(f"the gateway's structured logs and metrics are in {LOG_FILE}")
    return 0
