"""The Kubernetes API emulator — a development and test tool, not production.

:class:`KubeEmulator` serves a kube-apiserver look-alike on loopback over TLS with its own
throwaway CA: discovery (legacy and aggregated), the REST verbs over an in-memory store,
Table output, pod logs, bounded watches and TokenRequest. Every request must carry
``Authorization: Bearer <token>``; the ``authenticate`` callable turns it into a principal
(or None → 401), and every call is recorded with its principal in :attr:`KubeEmulator.calls`
so tests can assert which credential reached the cluster.

It never talks to a real cluster and performs no authorization; production talks to EKS.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from .api import Api
from .controllers import Controllers
from .discovery import Discovery
from .errors import bad_request
from .logs import LogBook
from .openapi import OpenApiV3
from .records import CallLog, CallRecord
from .seed import seed_cluster
from .server import EmulatorServer
from .store import ObjectStore
from .tls import TlsMaterial, generate_tls_material, server_ssl_context

log = logging.getLogger(__name__)

Object = dict[str, Any]


class KubeEmulator:
    """A loopback HTTPS Kubernetes API server for development and tests.

    ``authenticate`` maps a bearer token to a principal string (e.g. an assumed-role ARN), or
    None for 401. ``port=0`` picks a free port. Watches and ``follow`` log streams end after
    at most ``watch_timeout_cap`` seconds. Watches can resume from the last
    ``event_history`` changes; older resourceVersions get 410 Expired. One instance serves
    one start/stop cycle.
    """

    def __init__(
        self,
        authenticate: Callable[[str], str | None],
        *,
        seed: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        watch_timeout_cap: float = 5.0,
        event_history: int = 4096,
    ) -> None:
        self.authenticate = authenticate
        self.host = host
        self._requested_port = port
        self.watch_timeout_cap = float(watch_timeout_cap)
        hosts = tuple(dict.fromkeys([host, "127.0.0.1", "localhost"]))
        self.tls: TlsMaterial = generate_tls_material(hosts)
        self.discovery = Discovery()
        self.store = ObjectStore(history_size=event_history)
        self.logs = LogBook()
        self.controllers = Controllers(
            self.store, self.discovery, root_ca_pem=self.tls.ca_pem.decode()
        )
        self.api = Api(
            self.discovery, self.store, self.controllers, token_reviewer=self._review_token
        )
        self.openapi = OpenApiV3(self.discovery)
        self.call_log = CallLog()
        # The exec subprotocols served; tests narrow this to act as an older (v4-only) server.
        self.exec_protocols: tuple[str, ...] = ("v5.channel.k8s.io", "v4.channel.k8s.io")
        # Set when stop() begins; followed logs and watches end as soon as they see it.
        self.stopping = threading.Event()
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None
        if seed:
            seed_cluster(self.api, self.logs)

    # ----- lifecycle ---------------------------------------------------------------------

    def start(self) -> KubeEmulator:
        """Bind and serve in a background thread; returns self."""
        if self._server is not None:
            raise RuntimeError("emulator already started")
        if self.stopping.is_set():
            raise RuntimeError("a stopped emulator cannot be restarted; create a new one")
        self._server = EmulatorServer(
            (self.host, self._requested_port), self, server_ssl_context(self.tls)
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="kube-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: end streams, close connections and join every server thread."""
        if self._server is None or self.stopping.is_set():
            self.stopping.set()
            return
        self.stopping.set()
        self.store.close()  # ends every watch
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join()
        self._server.close_connections()
        self._server.server_close()  # joins the handler threads

    def __enter__(self) -> KubeEmulator:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ----- addresses ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (after start)."""
        if self._server is None:
            raise RuntimeError("emulator not started")
        return int(self._server.server_address[1])

    @property
    def server_address(self) -> str:
        """``host:port`` as clients reach it (IPv6 literals bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``."""
        return f"https://{self.server_address}"

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate (PEM) clients must trust."""
        return self.tls.ca_pem

    # ----- call records ------------------------------------------------------------------

    @property
    def calls(self) -> list[CallRecord]:
        """A snapshot (copy) of the calls recorded so far, oldest first."""
        return self.call_log.snapshot()

    def clear_calls(self) -> None:
        """Forget the recorded calls."""
        self.call_log.clear()

    # ----- helpers for tests and the local stack ----------------------------------------

    def set_pod_log(
        self, namespace: str, pod: str, lines: list[str], container: str | None = None
    ) -> None:
        """Plant the log lines returned for ``pod`` (first container unless ``container``)."""
        if container is None:
            obj = self.store.get(("", "pods"), namespace, pod)
            if obj is None:
                raise KeyError(f"no pod {namespace}/{pod}")
            container = obj["spec"]["containers"][0]["name"]
        self.logs.set_lines(namespace, pod, container, lines)

    def get_object(
        self, group: str, resource: str, namespace: str | None, name: str
    ) -> Object | None:
        """Read an object straight from the store (no HTTP, no call record)."""
        return self.store.get((group, resource), namespace or "", name)

    def stream_duration(self, requested: str | None) -> float:
        """How long a watch or followed log may run: ``timeoutSeconds`` capped by the emulator."""
        cap = self.watch_timeout_cap
        if requested in (None, ""):
            return cap
        try:
            value = float(requested)
        except ValueError as exc:
            raise bad_request(f"invalid timeoutSeconds: {requested}") from exc
        return cap if value <= 0 else min(value, cap)

    def _review_token(self, token: str) -> str | None:
        try:
            return self.authenticate(token)
        except Exception:  # a failing authenticator means "not authenticated" for TokenReview
            log.exception("authenticator raised during TokenReview")
            return None
