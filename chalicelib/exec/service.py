"""One ``POST /v1/exec/{cluster}``: decide with the policy's commands, record, run, mask, record.

Written against small interfaces so the request path can change around it: it receives the
verified session, its policy, the audit recorder and a ``run`` callable (the exec client
bound to the cluster and the policy role's EKS token). Fail closed: no "request" record, no
exec; an exec whose result cannot be recorded is not returned (the audit raises).
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.credentials.session_token import GatewaySession
from chalicelib.errors import EksgateError, Forbidden
from chalicelib.exec.approval import exec_approval_subject, stdin_sha256
from chalicelib.exec.client import ExecResult, ExecTarget
from chalicelib.exec.request import ExecInput
from chalicelib.identity import Caller
from chalicelib.kube.request import KubeRequest
from chalicelib.masking import MaskingSettings, mask_text
from chalicelib.policy.commands import render_argv
from chalicelib.policy.engine import Decision, evaluate
from chalicelib.policy.model import Policy

AUDIT_OUTPUT_BYTES = 4096  # per stream, of the masked output, in the audit record
ANSWER_MARGIN_SECONDS = 3.0  # masking, recording and API Gateway's own time

RunExec = Callable[[ExecTarget, "bytes | None", float], ExecResult]
# Given the decision and the approval subject, return the approval id once it is approved
# (or raise the refusal: pending, denied, expired). See docs/exec.md.
AwaitApproval = Callable[[Decision, dict[str, Any]], str]


class ExecAudit(Protocol):
    def session_event(
        self, kind: str, session: GatewaySession, caller: Caller, **fields: Any
    ) -> None: ...


@dataclass(frozen=True)
class ExecPorts:
    audit: ExecAudit
    run: RunExec
    await_approval: AwaitApproval | None = None
    clock: Callable[[], float] = field(default=time.monotonic)


def exec_kube_request(request: ExecInput) -> KubeRequest:
    """The Kubernetes request an exec is, as policies see it (``create pods/exec``)."""
    return KubeRequest(
        verb="create",
        path=f"/api/v1/namespaces/{request.namespace}/pods/{request.pod}/exec",
        api_prefix="api",
        api_version="v1",
        namespace=request.namespace,
        resource="pods",
        subresource="exec",
        name=request.pod,
        command=request.argv,
    )


def mask_output(data: bytes, settings: MaskingSettings) -> bytes:
    """Mask credentials in output, text or binary: bytes that are not UTF-8 pass through
    untouched around the masked text (surrogateescape), so binary output is masked too."""
    text = data.decode("utf-8", errors="surrogateescape")
    return mask_text(text, settings).encode("utf-8", errors="surrogateescape")


def output_field(data: bytes) -> dict[str, str]:
    """``{"text": ...}`` for UTF-8 output, ``{"base64": ...}`` otherwise (binary)."""
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}


def audit_output(data: bytes, cut_upstream: int) -> dict[str, Any]:
    """The masked output as the audit trail keeps it: bounded, with what was cut counted."""
    kept = data[:AUDIT_OUTPUT_BYTES]
    record: dict[str, Any] = {"size": len(data), "cut_bytes": len(data) - len(kept) + cut_upstream}
    record.update(output_field(kept) if "text" in output_field(kept) else {"binary": True})
    return record


def _exec_detail(request: ExecInput) -> dict[str, Any]:
    return {
        "exec": {
            "argv": list(request.argv),
            "container": request.container or "",
            "stdin_bytes": None if request.stdin is None else len(request.stdin),
            "stdin_sha256": stdin_sha256(request.stdin) if request.stdin is not None else "",
            "timeout_seconds": request.timeout_seconds,
        }
    }


@dataclass(frozen=True)
class _Recorder:
    """Writes this exec's records into its session's audit chain."""

    audit: ExecAudit
    session: GatewaySession
    caller: Caller
    kube: KubeRequest
    detail: dict[str, Any]
    # One Audit-ID per exec, as for proxied requests: sent to the cluster, recorded, answered.
    audit_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def event(self, kind: str, **fields: Any) -> None:
        request = {**_request_dict(self.kube), "audit_id": self.audit_id}
        self.audit.session_event(kind, self.session, self.caller, request=request, **fields)

    def refuse(self, decision: Decision, error: EksgateError) -> None:
        error.details.setdefault("audit_id", self.audit_id)
        self.event(
            "refusal",
            decision=_decision(decision),
            detail={
                **self.detail,
                "status": error.status,
                "reason": error.reason,
                "message": error.message,
            },
        )
        raise error


def run_exec(
    session: GatewaySession,
    policy: Policy,
    request: ExecInput,
    ports: ExecPorts,
    caller: Caller,
) -> dict[str, Any]:
    """Decide, record, run, mask and record one exec; the JSON answer of the route."""
    started = ports.clock()
    deadline = started + request.timeout_seconds
    kube = exec_kube_request(request)
    decision = evaluate(policy, kube)
    record = _Recorder(ports.audit, session, caller, kube, _exec_detail(request))
    approval_id = None
    if decision.effect == "approve":
        if ports.await_approval is None:
            record.refuse(
                decision,
                Forbidden(
                    f"{decision.reason}; exec approvals are not available on this gateway yet"
                ),
            )
        try:
            subject = exec_approval_subject(session.cluster, request)
            approval_id = ports.await_approval(decision, subject)  # type: ignore[misc]
        except EksgateError as error:
            record.refuse(decision, error)
    elif decision.effect != "allow":
        record.refuse(
            decision, Forbidden(f"{decision.reason}, command: {render_argv(request.argv)}")
        )
    record.event(
        "request", decision=_decision(decision), approval_id=approval_id, detail=record.detail
    )
    target = ExecTarget(
        request.namespace, request.pod, request.container, request.argv, record.audit_id
    )
    try:
        result = ports.run(target, request.stdin, deadline)
    except EksgateError as error:
        error.details.setdefault("audit_id", record.audit_id)
        record.event(
            "response",
            latency_ms=round((ports.clock() - started) * 1000, 1),
            approval_id=approval_id,
            detail={**record.detail, "error": {"status": error.status, "message": error.message}},
        )
        raise
    masking = policy.masking
    stdout, stderr = mask_output(result.stdout, masking), mask_output(result.stderr, masking)
    outcome = {
        "exit_code": result.exit_code,
        "outcome": result.outcome,
        "remote_process": result.remote_process,
        "protocol": result.protocol,
        "stdin_closed": result.stdin_closed,
        "stdout_cut_bytes": result.stdout_cut_bytes,
        "stderr_cut_bytes": result.stderr_cut_bytes,
        "duration_ms": result.duration_ms,
        "error": result.error,
    }
    record.event(
        "response",
        upstream_status=result.exit_code,
        latency_ms=round((ports.clock() - started) * 1000, 1),
        approval_id=approval_id,
        detail={
            "exec": {
                **record.detail["exec"],
                **outcome,
                "stdout": audit_output(stdout, result.stdout_cut_bytes),
                "stderr": audit_output(stderr, result.stderr_cut_bytes),
            }
        },
    )
    answer: dict[str, Any] = {
        "cluster": session.cluster,
        "namespace": request.namespace,
        "pod": request.pod,
        "argv": list(request.argv),
        "audit_id": record.audit_id,
        **outcome,
        "stdout": output_field(stdout),
        "stderr": output_field(stderr),
    }
    if approval_id:
        answer["approval_id"] = approval_id
    return answer


def _request_dict(kube: KubeRequest) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": kube.path,
        "query": "",
        "verb": kube.verb,
        "api_group": "",
        "api_version": kube.api_version,
        "resource": kube.resource,
        "subresource": kube.subresource,
        "namespace": kube.namespace,
        "name": kube.name,
    }


def _decision(decision: Decision) -> dict[str, Any]:
    return {
        "effect": decision.effect,
        "policy": decision.policy,
        "rule": decision.rule_label,
        "reason": decision.reason,
    }
