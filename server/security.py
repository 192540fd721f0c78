"""Who may talk to the server: TLS or mutual TLS on the port, and optional bearer tokens.

Certificates are read and checked at start-up, so a missing, unreadable or mismatched file
stops the server with a clear message instead of failing the first handshake.

Tokens (`DIALOGUE_AUTH_TOKENS`) are checked on every RPC except the health service, which
Kubernetes probes and load balancers call without credentials; reflection needs a token, since
it hands out the whole schema. A refusal is UNAUTHENTICATED and never echoes what was offered.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import grpc

from common.pem import ConfigurationError, check_certificates, check_pair, read_pem

__all__ = [
    "OPEN_METHODS",
    "ConfigurationError",
    "ServerSecurity",
    "TokenInterceptor",
    "load_server_credentials",
]

OPEN_METHODS: Final = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})
_REFUSAL = "missing or invalid bearer token (metadata 'authorization: Bearer TOKEN')"


@dataclass(frozen=True, slots=True)
class ServerSecurity:
    """How the server's port is protected.

    Attributes:
        credentials: TLS (or mTLS) credentials for the port; None serves plaintext.
        tokens: Bearer tokens accepted; empty accepts every caller.
    """

    credentials: grpc.ServerCredentials | None = None
    tokens: tuple[str, ...] = field(default=(), repr=False)


def load_server_credentials(
    cert: Path | None, key: Path | None, client_ca: Path | None
) -> grpc.ServerCredentials | None:
    """TLS credentials from `--tls-cert`/`--tls-key`, requiring client certificates signed by
    `--tls-client-ca` when given; None when no certificate is configured (plaintext).

    Raises:
        ConfigurationError: half a pair, a client CA without a certificate, or a file that is
            missing, unreadable, not PEM, or a key that is not the certificate's.
    """
    if cert is None and key is None:
        if client_ca is not None:
            raise ConfigurationError("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if cert is None or key is None:
        raise ConfigurationError("set both --tls-cert and --tls-key, or neither")
    cert_pem = read_pem(cert, "--tls-cert")
    key_pem = read_pem(key, "--tls-key")
    check_pair(cert_pem, key_pem, f"--tls-cert {cert}", f"--tls-key {key}")
    ca_pem = None
    if client_ca is not None:
        ca_pem = read_pem(client_ca, "--tls-client-ca")
        check_certificates(ca_pem, f"--tls-client-ca {client_ca}")
    return grpc.ssl_server_credentials(
        [(key_pem, cert_pem)],
        root_certificates=ca_pem,
        require_client_auth=ca_pem is not None,
    )


# -- bearer tokens ------------------------------------------------------------------------------

_FACTORIES: Final = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


class TokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuses RPCs without an accepted `authorization: Bearer TOKEN`, health excepted.

    Args:
        tokens: The accepted tokens (at least one).
        on_failure: Told the reason ("missing" or "invalid") of each refusal, for metrics.
    """

    def __init__(self, tokens: Iterable[str], on_failure: Callable[[str], None]) -> None:
        self._tokens = tuple(token.encode() for token in tokens)
        if not self._tokens:
            raise ValueError("TokenInterceptor needs at least one token")
        self._on_failure = on_failure

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None or details.method in OPEN_METHODS:
            # Unknown methods are UNIMPLEMENTED either way; nothing to protect.
            return handler
        reason = self._refusal(details.invocation_metadata or ())
        if reason is None:
            return handler
        self._on_failure(reason)
        factory = _FACTORIES[(handler.request_streaming, handler.response_streaming)]
        return factory(_refuse)

    def _refusal(self, metadata: Iterable[Any]) -> str | None:
        offered = None
        for item in metadata:
            if item[0] == "authorization" and isinstance(item[1], str):
                offered = item[1]
                break
        if offered is None:
            return "missing"
        scheme, _, token = offered.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "invalid"
        candidate = token.strip().encode()
        # Every token is compared, so the time taken does not tell which one nearly matched.
        if sum(hmac.compare_digest(candidate, known) for known in self._tokens):
            return None
        return "invalid"


async def _refuse(_request: object, context: grpc.aio.ServicerContext) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, _REFUSAL)
