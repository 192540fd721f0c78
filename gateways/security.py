"""A gateway's credentials: TLS, mTLS and a token towards the server, and counted credential
refusals towards the vendor. (Size limits are in `gateways.limits`.)

- `load_channel_security` reads the CA, client certificate and key at start-up and checks them,
  so a missing or mismatched file stops the gateway (exit 2) rather than every call later.
- `auth_failed` counts a refused signature, token or credential, by vendor and reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import grpc
from fastapi import Request

from common.pem import ConfigurationError, check_certificates, check_pair, read_pem

__all__ = [
    "ChannelSecurity",
    "ConfigurationError",
    "auth_failed",
    "load_channel_security",
]


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
        roots = read_pem(server_ca, "--server-ca")
        check_certificates(roots, f"--server-ca {server_ca}")
    if client_cert is not None and client_key is not None:
        chain = read_pem(client_cert, "--client-cert")
        key = read_pem(client_key, "--client-key")
        check_pair(chain, key, f"--client-cert {client_cert}", f"--client-key {client_key}")
    tls = server_tls or roots is not None or chain is not None
    return ChannelSecurity(tls, roots, chain, key, token.strip())


# -- towards the vendor -------------------------------------------------------------------------


def auth_failed(request: Request, reason: str) -> None:
    """Counts a request refused for its signature, token or credentials.

    `reason` must come from a fixed set (it is a metric label), e.g. "token", "signature".
    """
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        vendor = str(getattr(request.app.state, "vendor", ""))
        metrics.auth_failures.labels(vendor, reason).inc()
