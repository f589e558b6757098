"""The approver sees what would change, without noise, within Slack's limits."""

from __future__ import annotations

from chalicelib.approvals.diff import NO_CHANGES, object_diff
from chalicelib.masking import mask_document


def deployment(replicas: int, **metadata: object) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", **metadata},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "web", "image": "shop/web:1.2.3"}]}},
        },
    }


def test_a_change_shows_as_a_unified_diff_of_the_yaml() -> None:
    text = object_diff(deployment(2), deployment(5))
    assert "--- current\n+++ proposed" in text
    assert "-  replicas: 2" in text and "+  replicas: 5" in text


def test_fields_the_server_maintains_are_left_out() -> None:
    current = deployment(
        2,
        uid="abc",
        resourceVersion="41",
        generation=3,
        creationTimestamp="2024-01-01T00:00:00Z",
        managedFields=[{"manager": "kubectl"}],
        annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}"},
    )
    current["status"] = {"replicas": 2}
    proposed = deployment(2, uid="abc", resourceVersion="42", generation=4)
    assert object_diff(current, proposed) == NO_CHANGES
    assert "managedFields" not in object_diff(current, deployment(3))


def test_a_new_object_is_all_additions() -> None:
    text = object_diff(None, deployment(1))
    body = text.split("\n")[3:]
    assert text.startswith("--- (new object)\n+++ proposed")
    assert body and all(line.startswith("+") for line in body)


def test_a_long_diff_is_cut_at_a_line_with_a_note() -> None:
    current = {"data": {f"key{i}": "a" for i in range(400)}}
    proposed = {"data": {f"key{i}": "b" for i in range(400)}}
    text = object_diff(current, proposed, limit=500)
    assert len(text) <= 500
    assert text.splitlines()[-1].startswith("… ") and text.endswith("more lines")


def test_masked_objects_keep_secrets_out_of_the_diff() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "data": {"password": "aHVudGVyMg=="},
    }
    changed = {**secret, "data": {"password": "c2VjcmV0Mg=="}}
    text = object_diff(mask_document(secret), mask_document(changed))
    assert "aHVudGVyMg" not in text and "c2VjcmV0Mg" not in text
