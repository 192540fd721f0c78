"""Request limits towards the vendor: bodies and headers too large are refused before a route
reads them, in the vendor's own error format.

`SizeLimits` answers 413 to a body over the limit, before the route reads it (by
Content-Length) or as soon as the streamed body passes it, and 431 to a request line and headers
over theirs (h11's buffer limit bounds only headers that trickle in; headers that arrive in one
read are measured here). The words of the answer are the vendor's: each vendor's routes module
hands its `render_refusal` (a `Refusal`), so this module knows no vendor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_HEADER_BYTES",
    "Refusal",
    "SizeLimits",
    "plain_refusal",
]

# Vendor callbacks are a few KiB; a batch of Aliyun call records is the largest body expected.
DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024
# uvicorn's (h11's) own default, said aloud: the request line and headers together.
DEFAULT_MAX_HEADER_BYTES: Final = 16 * 1024

Refusal = Callable[[Mapping[str, str], str, int], tuple[str, bytes]]
"""(query parameters, reason, status 413 or 431) → (content type, body) of the refusal; the body
was not read, so the query is all a vendor has to choose its format by."""


def plain_refusal(_query: Mapping[str, str], reason: str, _status: int) -> tuple[str, bytes]:
    """`{"error": reason}`: for a vendor without an error format of its own."""
    return "application/json", json.dumps({"error": reason}).encode()


class _TooLargeError(Exception):
    """The streamed body passed the limit (not a ValueError: routes must not catch it)."""


class SizeLimits:
    """ASGI middleware: a body over `limit` bytes is answered 413, a request line and headers
    over `header_limit` bytes 431, in the format `refusal` renders."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        refusal: Refusal = plain_refusal,
        limit: int,
        header_limit: int = DEFAULT_MAX_HEADER_BYTES,
    ) -> None:
        self.app = app
        self.refusal = refusal
        self.limit = limit
        self.header_limit = header_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", ())
        # As on the wire: "name: value\r\n" per header, plus the request line.
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        size += sum(len(name) + len(value) + 4 for name, value in headers)
        if size > self.header_limit:
            await self._refuse(
                scope, send, 431, f"request line and headers larger than {self.header_limit} bytes"
            )
            return
        for name, value in headers:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                # Refused unread: h11 then closes the connection rather than reading it all.
                await self._refuse(scope, send)
                return
        received = 0
        answered = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLargeError
            return message

        async def sending(message: Message) -> None:
            nonlocal answered
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, sending)
        except _TooLargeError:
            if answered:
                raise
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send, status: int = 413, reason: str = "") -> None:
        reason = reason or f"request body larger than {self.limit} bytes"
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        content_type, body = self.refusal(query, reason, status)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
