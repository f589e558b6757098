"""A bounded load run: 16 agents at once through the local stack, then the audit trail is
reconciled against what reached the cluster. Every request the cluster saw has its request
and response records; no record is lost; nothing reached the cluster unrecorded.

``EKSGATE_LOAD_SECONDS`` sets the length (the suite uses 20 s; SECURITY.md's figure is 60 s:
``EKSGATE_LOAD_SECONDS=60 .venv/bin/python -m pytest tests/e2e/test_load.py -s``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter

import pytest
import urllib3

pytestmark = [pytest.mark.e2e, pytest.mark.adversarial]

AGENTS = 16
SECONDS = float(os.environ.get("EKSGATE_LOAD_SECONDS", "20"))


def test_sixteen_agents_leave_one_audit_pair_for_every_request_the_cluster_saw(stack):
    http = urllib3.PoolManager(ca_certs=stack.gateway_ca_file, maxsize=AGENTS)
    sessions = []
    for i in range(AGENTS):
        identity = "engineer" if i % 4 == 0 else "ci-agent"
        sessions.append((identity, stack.session_token(identity)))
    base = f"{stack.gateway_url}/k8s/{stack.cluster}"
    statuses: Counter[int] = Counter()
    withheld: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def agent(index: int) -> None:
        identity, token = sessions[index]
        headers = {"Authorization": f"Bearer {token}"}
        round_ = 0
        while time.monotonic() < deadline:
            round_ += 1
            if identity == "engineer":
                body = json.dumps({"data": {f"agent{index}": str(round_)}}).encode()
                answer = http.request(
                    "PATCH",
                    f"{base}/api/v1/namespaces/default/configmaps/load-{index}",
                    body=body,
                    headers={**headers, "Content-Type": "application/merge-patch+json"},
                )
                if answer.status == 404:
                    manifest = {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": f"load-{index}", "namespace": "default"},
                    }
                    answer = http.request(
                        "POST",
                        f"{base}/api/v1/namespaces/default/configmaps",
                        body=json.dumps(manifest).encode(),
                        headers={**headers, "Content-Type": "application/json"},
                    )
            elif round_ % 3 == 0:
                answer = http.request(
                    "GET", f"{base}/api/v1/namespaces/kube-system/secrets", headers=headers
                )  # refused: never reaches the cluster
            else:
                answer = http.request(
                    "GET", f"{base}/api/v1/namespaces/shop/pods?limit=50", headers=headers
                )
            with lock:
                statuses[answer.status] += 1
                if answer.status == 500:
                    withheld.append(answer.json().get("message", ""))

    stack.clear_kube_calls()
    threads = [threading.Thread(target=agent, args=(i,)) for i in range(AGENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reached = [
        c
        for c in stack.kube_calls()
        if not c.get("dry_run")
        and c["path"].startswith(
            ("/api/v1/namespaces/shop/pods", "/api/v1/namespaces/default/configmaps")
        )
    ]

    auditor = {"Authorization": f"Bearer {stack.mint('auditor')}"}
    records = []
    for _, token in sessions:
        from jwt import decode

        session_id = decode(token, options={"verify_signature": False})["sid"]
        answer = http.request(
            "GET", f"{stack.gateway_url}/v1/sessions/{session_id}", headers=auditor
        )
        assert answer.status == 200, answer.data
        body = answer.json()
        assert body["chain"]["ok"], body["chain"]
        records += body["records"]
    kinds = Counter(r["kind"] for r in records)
    answered = [r for r in records if r["kind"] == "response" and r["upstream_status"]]
    assert statuses[200] + statuses[201] > AGENTS, statuses  # it was load, not a trickle
    assert statuses[403] > 0 and set(statuses) <= {200, 201, 403, 404, 500}, statuses
    # A 500 is only ever the truthful "answer withheld" (its record could not be written
    # under load: moto's server is slower than DynamoDB); the request record exists.
    assert all("withheld the answer" in message for message in withheld), withheld
    # Every request that reached the cluster was recorded before and after; none was lost.
    assert len(reached) == kinds["request"], (len(reached), kinds)
    assert len(answered) == len(reached) - len(withheld), (len(answered), len(withheld))
    assert kinds["refusal"] == statuses[403]
    print(
        f"\nload: {AGENTS} agents, {SECONDS:.0f} s, {sum(statuses.values())} requests "
        f"{dict(statuses)}, {len(reached)} reached the cluster, "
        f"{kinds['request']} request and {len(answered)} response records, 0 lost"
    )
