"""Identity: the verified caller (``model``, pure) and how a token becomes one (``oidc``)."""

from chalicelib.identity.model import Caller, Identity

__all__ = ["Caller", "Identity"]
