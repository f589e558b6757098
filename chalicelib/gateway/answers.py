"""What goes back to the caller: the cluster's answer masked, or a Kubernetes ``Status``.

Nothing leaves unmasked: a body we cannot read (an unknown media type, malformed JSON) is
withheld, a stream cut at the deadline never ends in half an event, and an answer too large
for Lambda is refused with advice rather than cut.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.errors import BadGateway, PayloadTooLarge
from chalicelib.gateway.upstream import UpstreamResponse
from chalicelib.kube.request import KubeRequest
from chalicelib.masking import (
    MaskingSettings,
    kind_for_resource,
    mask_json,
    mask_text,
    mask_watch_stream,
)
from chalicelib.policy.engine import describe_request

# Lambda's synchronous response limit is 6 MB for the whole JSON envelope; the body is a JSON
# string inside it, so we measure the encoded size and keep headroom for headers.
MAX_RESPONSE_PAYLOAD = 6 * 1024 * 1024 - 64 * 1024


@dataclass(frozen=True)
class ProxyResponse:
    status: int
    content_type: str
    body: str
    headers: Mapping[str, str]

    def with_warning(self, text: str) -> ProxyResponse:
        """The same answer with a ``Warning`` header, which kubectl prints as ``Warning: ...``."""
        # A quoted-string (RFC 9111): quotes and backslashes escaped, no control characters,
        # so text that echoes the request (a cluster name) can neither break nor add a header.
        quoted = "".join(
            "\\" + c if c in '"\\' else c if c.isprintable() and c.isascii() else "?" for c in text
        )
        warning = f'299 - "{quoted}"'
        if self.headers.get("warning"):  # the cluster's own warnings stay
            warning = f"{self.headers['warning']}, {warning}"
        return ProxyResponse(
            self.status, self.content_type, self.body, {**self.headers, "warning": warning}
        )


def masked_response(
    answer: UpstreamResponse, request: KubeRequest, settings: MaskingSettings
) -> ProxyResponse:
    if answer.truncated:
        raise PayloadTooLarge(
            f"the answer to {describe_request(request)} is larger than the gateway can return "
            "(Lambda's 6 MB limit); ask for pages: kubectl --chunk-size=100, or ?limit=100 "
            "with continue"
        )
    content_type = answer.headers.get("content-type", "application/json")
    media = content_type.split(";")[0].strip().lower()
    body = answer.body
    if answer.cut_at_deadline and b"\n" in body:
        body = body[: body.rfind(b"\n") + 1]  # never a half event or half line
    if media == "application/json":
        # What the object is comes from the request, never from what it says about itself
        # (a Secret read as metadata, with a last-applied annotation claiming ConfigMap).
        kind = kind_for_resource(request.api_group, request.resource, request.subresource)
        if request.verb == "watch":
            text = mask_watch_stream(body, settings, resource_kind=kind).decode("utf-8")
        else:
            try:
                masked = mask_json(body, settings, resource_kind=kind) if body.strip() else b""
            except ValueError:
                raise BadGateway("the cluster answered with malformed JSON; withheld") from None
            text = masked.decode("utf-8", "surrogatepass")
    elif media.startswith("text/"):
        text = mask_text(body.decode("utf-8", errors="replace"), settings)
    else:
        raise BadGateway(
            f"the cluster answered with {media!r}, which eksgate cannot inspect; withheld"
        )
    if len(json.dumps(text)) > MAX_RESPONSE_PAYLOAD:
        raise PayloadTooLarge(
            f"the answer to {describe_request(request)} is larger than the gateway can return "
            "(Lambda's 6 MB limit); ask for pages: kubectl --chunk-size=100, or ?limit=100 "
            "with continue"
        )
    headers = {"cache-control": "no-store"}
    for name in ("audit-id", "warning", "x-kubernetes-pf-flowschema-uid"):
        if name in answer.headers:
            # Admission webhooks may echo field values in warnings: mask them like bodies.
            headers[name] = mask_text(answer.headers[name], settings)
    return ProxyResponse(answer.status, content_type, text, headers)
