"""Start/stop behaviour: free ports, TLS, clean shutdown with open connections and streams."""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time

import pytest
from eksgate_local.kube_emulator import KubeEmulator, StaticTokenAuthenticator

from .conftest import TOKEN

HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def _connect(emu: KubeEmulator) -> http.client.HTTPSConnection:
    context = ssl.create_default_context(cadata=emu.ca_pem.decode())
    return http.client.HTTPSConnection("127.0.0.1", emu.port, context=context, timeout=10)


def test_port_zero_and_url() -> None:
    auth = StaticTokenAuthenticator({TOKEN: "alice"})
    with (
        KubeEmulator(authenticate=auth, seed=False) as one,
        KubeEmulator(authenticate=auth, seed=False) as two,
    ):
        assert one.port != two.port and one.port > 0
        assert one.url == f"https://127.0.0.1:{one.port}"
        assert one.ca_pem != two.ca_pem  # every emulator has its own CA
        conn = _connect(one)
        conn.request("GET", "/api/v1/namespaces", headers=HEADERS)
        assert json.loads(conn.getresponse().read())["items"] == []  # seed=False: empty store
        conn.close()
        # A client trusting the other emulator's CA is refused.
        context = ssl.create_default_context(cadata=two.ca_pem.decode())
        wrong = http.client.HTTPSConnection("127.0.0.1", one.port, context=context, timeout=10)
        with pytest.raises(ssl.SSLError):
            wrong.request("GET", "/version", headers=HEADERS)
        wrong.close()


def test_stop_closes_keepalive_connections_and_streams() -> None:
    before = {t.ident for t in threading.enumerate()}
    emu = KubeEmulator(
        authenticate=StaticTokenAuthenticator({TOKEN: "alice"}), watch_timeout_cap=30
    ).start()
    idle = _connect(emu)
    idle.request("GET", "/version", headers=HEADERS)
    assert idle.getresponse().read()  # connection stays open (HTTP/1.1 keep-alive)

    streaming = _connect(emu)
    streaming.request("GET", "/api/v1/namespaces/shop/pods?watch=true", headers=HEADERS)
    response = streaming.getresponse()
    assert response.status == 200
    assert json.loads(response.readline())["type"] == "ADDED"

    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 5
    leftover = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert leftover == []
    idle.close()
    streaming.close()
    with pytest.raises(RuntimeError):
        emu.start()


def test_port_before_start_is_an_error() -> None:
    emu = KubeEmulator(authenticate=StaticTokenAuthenticator({}), seed=False)
    with pytest.raises(RuntimeError):
        _ = emu.url
    emu.stop()  # stopping an emulator that never started is harmless
