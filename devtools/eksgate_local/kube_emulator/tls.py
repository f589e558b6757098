"""TLS material for the Kubernetes API emulator: a throwaway CA and a loopback server cert.

Real clients (the Python ``kubernetes`` client, ``kubectl``) verify the server certificate
against the kubeconfig CA and check the SAN against the host they dialled, so the server
certificate carries both ``IP:127.0.0.1`` and ``DNS:localhost``. Everything is generated in
memory at start-up; nothing is persisted, so every emulator run has a fresh CA.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


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
    """Create a CA and a server certificate whose SANs cover ``hosts`` (IPs and DNS names)."""
    now = datetime.now(timezone.utc)
    # Backdate a little: clients on a slightly skewed clock would otherwise see "not yet valid".
    not_before = now - timedelta(minutes=5)
    not_after = now + valid_for

    # P-256 keeps generation fast (RSA-2048 would add ~100 ms per emulator start).
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "eksgate local"),
            x509.NameAttribute(NameOID.COMMON_NAME, "eksgate-kube-emulator-ca"),
        ]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    san: list[x509.GeneralName] = []
    for host in hosts:
        try:
            san.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            san.append(x509.DNSName(host))

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    return TlsMaterial(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert_pem=server_cert.public_bytes(serialization.Encoding.PEM),
        key_pem=server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
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
