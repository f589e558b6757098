"""The emulator keeps a client's Audit-ID like kube-apiserver, echoes it and records it."""

from __future__ import annotations

import http.client
import ssl

from eksgate_local.kube_emulator import KubeEmulator

from .conftest import TOKEN

HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def _get(emu: KubeEmulator, path: str, headers: dict) -> http.client.HTTPResponse:
    context = ssl.create_default_context(cadata=emu.ca_pem.decode())
    conn = http.client.HTTPSConnection("127.0.0.1", emu.port, context=context, timeout=10)
    conn.request("GET", path, headers=headers)
    answer = conn.getresponse()
    answer.read()
    conn.close()
    return answer


def test_client_audit_id_is_echoed_and_recorded(emulator: KubeEmulator) -> None:
    emulator.clear_calls()
    sent = "9d7c2a6e-1b7f-4c1e-9a43-2f7f1f0c5b11"
    answer = _get(emulator, "/api/v1/namespaces/shop/pods", {**HEADERS, "Audit-ID": sent})
    assert answer.status == 200
    assert answer.getheader("Audit-Id") == sent
    [call] = emulator.calls
    assert call.audit_id == sent


def test_refused_calls_keep_the_audit_id_too(emulator: KubeEmulator) -> None:
    emulator.clear_calls()
    answer = _get(emulator, "/api/v1/namespaces/shop/pods", {"Audit-ID": "refused-1"})
    assert answer.status == 401
    assert answer.getheader("Audit-Id") == "refused-1"
    assert [c.audit_id for c in emulator.calls] == ["refused-1"]


def test_without_one_each_call_gets_its_own(emulator: KubeEmulator) -> None:
    emulator.clear_calls()
    first = _get(emulator, "/version", HEADERS).getheader("Audit-Id")
    second = _get(emulator, "/version", HEADERS).getheader("Audit-Id")
    assert first and second and first != second
    assert [c.audit_id for c in emulator.calls] == [first, second]
