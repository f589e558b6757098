"""The gateway's token-signing key, held in Secrets Manager and rotatable by version.

A key's ``kid`` is the secret's VersionId. We sign with AWSCURRENT and accept AWSCURRENT and
AWSPREVIOUS, so rotating the secret (``put-secret-value`` with fresh random bytes) never cuts
off a session issued a moment before: those live at most 15 minutes.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.errors import ServiceUnavailable
from chalicelib.observability import logger

MIN_KEY_BYTES = 32


# Secret names and AWS errors go to the log; callers learn only that we fail closed.
_KEY_UNAVAILABLE = "the gateway's signing key is unavailable; the gateway's log says why"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    secret: bytes

    def __repr__(self) -> str:  # the key material must never reach a log
        return f"SigningKey(kid={self.kid!r})"


class SigningKeyStore(Protocol):
    def current(self) -> SigningKey: ...

    def by_kid(self, kid: str) -> SigningKey | None: ...


def _key_bytes(secret_string: str) -> bytes:
    """Accept base64 of the key (what the setup commands write) or a long random string."""
    try:
        raw = base64.b64decode(secret_string, validate=True)
    except ValueError:
        raw = secret_string.encode()
    if len(raw) < MIN_KEY_BYTES:
        raise ServiceUnavailable(
            f"the signing key secret holds fewer than {MIN_KEY_BYTES} bytes; "
            "put a new random value (see docs/deploy.md, rotating the signing key)"
        )
    return raw


class SecretsManagerKeyStore:
    """Signing keys from one secret; cached in the process, re-read on an unknown ``kid``."""

    def __init__(
        self,
        client: Any,
        secret_id: str,
        *,
        cache_seconds: float = 300,
        min_refresh_seconds: float = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._secret_id = secret_id
        self._cache_seconds = cache_seconds
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded_at: float | None = None
        self._current: SigningKey | None = None
        self._accepted: dict[str, SigningKey] = {}

    def current(self) -> SigningKey:
        with self._lock:
            if self._loaded_at is None or self._clock() - self._loaded_at > self._cache_seconds:
                self._load()
            assert self._current is not None
            return self._current

    def by_kid(self, kid: str) -> SigningKey | None:
        with self._lock:
            now = self._clock()
            if self._loaded_at is None or now - self._loaded_at > self._cache_seconds:
                self._load()
            elif kid not in self._accepted and now - self._loaded_at >= self._min_refresh:
                self._load()  # the secret may have been rotated since we read it
            return self._accepted.get(kid)

    def _load(self) -> None:
        keys: dict[str, SigningKey] = {}
        current = None
        for stage in ("AWSCURRENT", "AWSPREVIOUS"):
            try:
                answer = self._client.get_secret_value(SecretId=self._secret_id, VersionStage=stage)
            except self._client.exceptions.ResourceNotFoundException:
                if stage == "AWSPREVIOUS":
                    continue  # never rotated yet
                logger.error(
                    "signing key secret not found; create it (docs/deploy.md)",
                    extra={"secret_id": self._secret_id},
                )
                raise ServiceUnavailable(_KEY_UNAVAILABLE) from None
            except Exception as exc:  # botocore errors: fail closed, without the secret's content
                logger.error(
                    "cannot read the signing key",
                    extra={"secret_id": self._secret_id, "error": type(exc).__name__},
                )
                raise ServiceUnavailable(_KEY_UNAVAILABLE) from exc
            key = SigningKey(kid=answer["VersionId"], secret=_key_bytes(answer["SecretString"]))
            keys[key.kid] = key
            if stage == "AWSCURRENT":
                current = key
        self._current = current
        self._accepted = keys
        self._loaded_at = self._clock()
