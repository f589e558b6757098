"""TLS material for the Kubernetes API emulator: a throwaway CA and a loopback server cert.

Real clients (the Python ``kubernetes`` client, ``kubectl``) verify the server certificate
against the kubeconfig CA and check the SAN against the host they dialled, so the server
certificate carries both ``IP:127.0.0.1`` and ``DNS:localhost``. Everything is generated in
memory at start-up by ``trustme``; nothing is persisted, so every emulator run has a fresh CA.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import trustme


@dataclass(frozen=True)
class TlsMaterial:
    """PEM-encoded CA certificate plus the server certificate and key it signed."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def __repr__(self) -> str:  # keep the private key out of logs and tracebacks
        return "TlsMaterial(ca_pem=..., cert_pem=..., key_pem=<redacted>)"


def generate_tls_material(
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
    *,
    valid_for: timedelta = timedelta(days=2),
) -> TlsMaterial:
    """Create a throwaway CA (trustme) and a server certificate whose SANs cover ``hosts``."""
    now = datetime.now(UTC)
    # P-256 keys keep each start fast; trustme backdates not_before for slightly skewed clocks.
    ca = trustme.CA(organization_name="eksgate local", key_type=trustme.KeyType.ECDSA)
    leaf = ca.issue_cert(
        *hosts,
        common_name="kube-apiserver",
        not_after=now + valid_for,
        key_type=trustme.KeyType.ECDSA,
    )
    return TlsMaterial(
        ca_pem=ca.cert_pem.bytes(),
        cert_pem=leaf.cert_chain_pems[0].bytes(),
        key_pem=leaf.private_key_pem.bytes(),
    )


def server_ssl_context(material: TlsMaterial) -> ssl.SSLContext:
    """Build a server-side SSLContext (TLS 1.2+, HTTP/1.1 only) from ``material``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Go clients (kubectl) would negotiate HTTP/2 if offered; this server speaks HTTP/1.1 only.
    context.set_alpn_protocols(["http/1.1"])
    # load_cert_chain only reads files; write to a private temp dir and remove it at once.
    with tempfile.TemporaryDirectory(prefix="kube-emulator-tls-") as tmp:
        cert_path = os.path.join(tmp, "server.crt")
        key_path = os.path.join(tmp, "server.key")
        with open(cert_path, "wb") as fh:
            fh.write(material.cert_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(material.key_pem)
        context.load_cert_chain(cert_path, key_path)
    return context
