"""A gateway's defences: TLS, mTLS and a token towards the server; size limits and counted
refusals towards the vendor.

- `load_channel_security` reads the CA, client certificate and key at start-up and checks them,
  so a missing or mismatched file stops the gateway (exit 2) rather than every call later.
- `SizeLimits` answers 413 in the vendor's own error format to a body over the limit, before the
  route reads it (by Content-Length) or as soon as the streamed body passes it, and 431 to a
  request line and headers over theirs (h11's buffer limit bounds only headers that trickle in;
  headers that arrive in one read are measured here).
- `auth_failed` counts a refused signature, token or credential, by vendor and reason.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_HEADER_BYTES",
    "ChannelSecurity",
    "ConfigurationError",
    "SizeLimits",
    "auth_failed",
    "load_channel_security",
]

# Vendor callbacks are a few KiB; a batch of Aliyun call records is the largest body expected.
DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024
# uvicorn's (h11's) own default, said aloud: the request line and headers together.
DEFAULT_MAX_HEADER_BYTES: Final = 16 * 1024


class ConfigurationError(ValueError):
    """A security setting that cannot work: the gateway refuses to start (exit 2)."""


# -- towards the server -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelSecurity:
    """How the gateway reaches the server.

    Attributes:
        tls: Use TLS (with `root_certificates`, or the system's trusted roots when None).
        root_certificates: PEM CA certificates the server's certificate must chain to.
        certificate_chain: PEM client certificate, for mutual TLS.
        private_key: Its PEM key.
        token: Sent as `authorization: Bearer TOKEN` on every call; "" sends none.
    """

    tls: bool = False
    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = field(default=None, repr=False)
    token: str = field(default="", repr=False)

    def credentials(self) -> grpc.ChannelCredentials | None:
        """Channel credentials for TLS; None for plaintext."""
        if not self.tls:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The metadata every call carries."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()


def load_channel_security(
    *,
    server_ca: Path | None = None,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    server_tls: bool = False,
    token: str = "",
) -> ChannelSecurity:
    """Reads and checks the files; TLS is on with a CA, a client certificate or `server_tls`.

    Raises:
        ConfigurationError: half a client pair, or a file that is missing, unreadable, not
            PEM, or a key that is not the certificate's.
    """
    if (client_cert is None) != (client_key is None):
        raise ConfigurationError("set both --client-cert and --client-key, or neither")
    roots = chain = key = None
    if server_ca is not None:
        roots = _read_pem(server_ca, "--server-ca")
        _certificates(roots, f"--server-ca {server_ca}")
    if client_cert is not None and client_key is not None:
        chain = _read_pem(client_cert, "--client-cert")
        key = _read_pem(client_key, "--client-key")
        _check_pair(chain, key, f"--client-cert {client_cert}", f"--client-key {client_key}")
    tls = server_tls or roots is not None or chain is not None
    return ChannelSecurity(tls, roots, chain, key, token.strip())


def _read_pem(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{what} {path}: cannot read: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data:
        raise ConfigurationError(f"{what} {path}: not a PEM file")
    return data


def _certificates(pem: bytes, what: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise ConfigurationError(f"{what}: not PEM certificates ({exc})") from None


def _check_pair(cert_pem: bytes, key_pem: bytes, cert_what: str, key_what: str) -> None:
    certificate = _certificates(cert_pem, cert_what)[0]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        # Says what is wrong with the file, never what is in it.
        raise ConfigurationError(
            f"{key_what}: not an unencrypted PEM private key ({type(exc).__name__})"
        ) from None
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if certificate.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise ConfigurationError(f"{key_what} is not the key of the certificate in {cert_what}")


# -- towards the vendor -------------------------------------------------------------------------


def auth_failed(request: Request, reason: str) -> None:
    """Counts a request refused for its signature, token or credentials.

    `reason` must come from a fixed set (it is a metric label), e.g. "token", "signature".
    """
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        vendor = str(getattr(request.app.state, "vendor", ""))
        metrics.auth_failures.labels(vendor, reason).inc()


class _TooLargeError(Exception):
    """The streamed body passed the limit (not a ValueError: routes must not catch it)."""


class SizeLimits:
    """ASGI middleware: a body over `limit` bytes is answered 413, a request line and headers
    over `header_limit` bytes 431, in the vendor's format."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        vendor: str,
        limit: int,
        header_limit: int = DEFAULT_MAX_HEADER_BYTES,
    ) -> None:
        self.app = app
        self.vendor = vendor
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
        content_type, body = too_large_answer(self.vendor, scope, reason, status)
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


def too_large_answer(vendor: str, scope: Scope, reason: str, status: int) -> tuple[str, bytes]:
    """(content type, body) of a 413 or 431 in the vendor's error format where it has one."""
    render = _TOO_LARGE.get(vendor, _plain)
    return render(scope, reason, status)


def _plain(_scope: Scope, reason: str, _status: int) -> tuple[str, bytes]:
    return "application/json", json.dumps({"error": reason}).encode()


def _aliyun_ivr(_scope: Scope, reason: str, _status: int) -> tuple[str, bytes]:
    from gateways.aliyun_ivr import outbound  # noqa: PLC0415 - only the chosen vendor is loaded

    return "application/json", json.dumps(outbound.render_failure(reason)).encode()


def _aliyun_ccc(scope: Scope, reason: str, status: int) -> tuple[str, bytes]:
    from gateways.aliyun_ccc import inbound, outbound  # noqa: PLC0415 - only the chosen vendor

    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    error = inbound.DialogueError("InvalidParameter", f"The {reason}.", status)
    request_id = str(uuid.uuid4()).upper()
    _, content_type, body = outbound.render_error(
        error, request_id, inbound.response_format_of(query)
    )
    return content_type, body.encode()


def _huawei_odfs(_scope: Scope, reason: str, _status: int) -> tuple[str, bytes]:
    from gateways.huawei_odfs import mapping  # noqa: PLC0415 - only the chosen vendor is loaded

    # The default settings: the body was not read, so `ret` is a number whatever
    # HUAWEI_ODFS_STRING_CODES says.
    return "application/json", json.dumps(
        mapping.render_error(reason, "", mapping.Settings())
    ).encode()


_TOO_LARGE: Final[dict[str, Callable[[Scope, str, int], tuple[str, bytes]]]] = {
    "aliyun-ivr": _aliyun_ivr,
    "aliyun-ccc": _aliyun_ccc,
    "huawei-odfs": _huawei_odfs,
}
