"""A local Kubernetes API emulator — a development and test tool, not production.

It serves a kube-apiserver look-alike over HTTPS on loopback so the gateway, the demo and
the end-to-end tests can drive real clients (the Python ``kubernetes`` client, ``kubectl``)
without a cluster: the real discovery documents, an in-memory object store with instant
"controllers", Table output, dry-run, pod logs, bounded watches and TokenRequest. It
records which principal made every call. It performs no authorization and never talks to a
real cluster; production talks to Amazon EKS.

Typical use::

    from eksgate_local.kube_emulator import KubeEmulator, StaticTokenAuthenticator

    with KubeEmulator(authenticate=StaticTokenAuthenticator({"t0k": "alice"})) as kube:
        ...  # kube.url, kube.ca_pem, kube.calls
"""

from .auth import (
    EksTokenAuthenticator,
    EksTokenError,
    StaticTokenAuthenticator,
    moto_secret_lookup,
    parse_eks_token,
)
from .emulator import KubeEmulator
from .kubeconfig import kubeconfig_dict, write_kubeconfig
from .records import CallRecord

__all__ = [
    "CallRecord",
    "EksTokenAuthenticator",
    "EksTokenError",
    "KubeEmulator",
    "StaticTokenAuthenticator",
    "kubeconfig_dict",
    "moto_secret_lookup",
    "parse_eks_token",
    "write_kubeconfig",
]
