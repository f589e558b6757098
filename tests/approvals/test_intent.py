"""Approvals by intent: a rollout restart matches its approval whatever kubectl stamps on it."""

from __future__ import annotations

import json

import pytest

from chalicelib.approvals.fingerprint import ApprovalSubject, client_intent

PATH = "/apis/apps/v1/namespaces/shop/deployments/web"
SMP = "application/strategic-merge-patch+json"


def restart(at: str) -> bytes:
    return json.dumps(
        {
            "spec": {
                "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": at}}}
            }
        }
    ).encode()


def test_every_restart_of_one_deployment_is_one_subject():
    first = ApprovalSubject.of("PATCH", SMP, PATH, "fieldManager=kubectl-rollout", restart("a"))
    retry = ApprovalSubject.of("PATCH", SMP, PATH, "fieldManager=kubectl-rollout", restart("b"))
    assert first.intent == "restart" and first.fingerprint() == retry.fingerprint()
    other = ApprovalSubject.of("PATCH", SMP, PATH.replace("web", "api"), "", restart("a"))
    assert (
        other.fingerprint()
        != ApprovalSubject.of("PATCH", SMP, PATH, "", restart("a")).fingerprint()
    )


@pytest.mark.parametrize(
    "body",
    [
        # anything more than the stamp is a different request, bound by its bytes
        json.dumps(
            {
                "spec": {
                    "replicas": 9,
                    "template": {
                        "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "x"}}
                    },
                }
            }
        ).encode(),
        json.dumps(
            {
                "spec": {
                    "template": {
                        "metadata": {
                            "annotations": {"kubectl.kubernetes.io/restartedAt": "x", "evil": "y"}
                        }
                    }
                }
            }
        ).encode(),
        json.dumps(
            {
                "spec": {
                    "template": {
                        "metadata": {
                            "annotations": {"kubectl.kubernetes.io/restartedAt": {"nested": 1}}
                        }
                    }
                }
            }
        ).encode(),
        json.dumps({"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}}).encode(),
        b"not json",
    ],
)
def test_only_the_exact_restart_patch_is_an_intent(body):
    assert client_intent("PATCH", PATH, SMP, body) == ""
    assert ApprovalSubject.of("PATCH", SMP, PATH, "", body).intent == ""


def test_restarts_are_recognised_only_on_workloads_and_patches():
    assert client_intent("PATCH", PATH, SMP, restart("t")) == "restart"
    assert client_intent("PUT", PATH, SMP, restart("t")) == ""
    assert client_intent("PATCH", "/api/v1/namespaces/shop/configmaps/web", SMP, restart("t")) == ""
    assert client_intent("PATCH", PATH, "application/json-patch+json", restart("t")) == ""
