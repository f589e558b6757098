"""A loopback HTTP server serving a JWKS document the test can change, counting fetches."""

from __future__ import annotations

from typing import Any

from tests.loopback import Answer, LoopbackServer, Request, json_answer


class JwksServer:
    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.fetches = 0
        self._server = LoopbackServer(self._answer).start()

    def _answer(self, request: Request) -> Answer:
        self.fetches += 1
        return json_answer(200, self.document)

    @property
    def url(self) -> str:
        return f"{self._server.url}/jwks"

    def close(self) -> None:
        self._server.close()
