"""Identity: the verified caller (``model``, pure) and how a token becomes one (``oidc``)."""

from chalicelib.identity.model import Identity

__all__ = ["Identity"]
