"""Gateway configuration: flags, then environment, then defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateways.fallback import HANG_UP, TRANSFER, FallbackPolicy
from gateways.limits import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_HEADER_BYTES
from telemetry.logs import LOG_FORMATS

DEFAULT_SERVER = "127.0.0.1:50051"
# Well under a second: the caller hears silence while we wait, and vendors' patience is short.
DEFAULT_DEADLINE_MS = 500
_TRUE = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Everything `dialogue-gateway VENDOR` needs to start.

    `auth_token` comes from DIALOGUE_AUTH_TOKEN only (never a flag, which `ps` would show).
    """

    vendor: str
    listen: str
    server: str
    deadline_ms: int
    fallback: FallbackPolicy
    log_level: str
    log_format: str = "text"
    metrics_listen: str = ""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    server_tls: bool = False
    server_ca: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    auth_token: str = field(default="", repr=False)


def parse_config(
    vendors: Mapping[str, str],
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> GatewayConfig:
    """Parses `VENDOR [--listen] [--server] [--deadline-ms]`; vendors maps name → default listen."""
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="dialogue-gateway", description="Serve one vendor's callbacks over DialogueService."
    )
    parser.add_argument("vendor", choices=sorted(vendors), help="which vendor's dialect to speak")
    parser.add_argument(
        "--listen", help="host:port for vendor callbacks (default: the vendor's own, see README)"
    )
    parser.add_argument(
        "--server",
        default=env.get("DIALOGUE_SERVER", DEFAULT_SERVER),
        help=f"dialogue server host:port (env DIALOGUE_SERVER, default {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--deadline-ms",
        type=int,
        default=int(env.get("DIALOGUE_DEADLINE_MS", DEFAULT_DEADLINE_MS)),
        help=f"deadline of each server call (env DIALOGUE_DEADLINE_MS, default {DEFAULT_DEADLINE_MS})",
    )
    parser.add_argument(
        "--log-level",
        default=env.get("DIALOGUE_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
    parser.add_argument(
        "--log-format",
        default=env.get("DIALOGUE_LOG_FORMAT", "text"),
        choices=LOG_FORMATS,
        help="text for people, json for log collectors (env DIALOGUE_LOG_FORMAT, default text)",
    )
    parser.add_argument(
        "--metrics-listen",
        default=env.get("DIALOGUE_GATEWAY_METRICS_LISTEN", ""),
        help="host:port to serve /metrics on instead of the callback port "
        "(env DIALOGUE_GATEWAY_METRICS_LISTEN, default: /metrics on the callback port)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=_positive,
        default=env.get("DIALOGUE_MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES)),
        help="larger request bodies are answered 413 "
        f"(env DIALOGUE_MAX_BODY_BYTES, default {DEFAULT_MAX_BODY_BYTES})",
    )
    parser.add_argument(
        "--max-header-bytes",
        type=_positive,
        default=env.get("DIALOGUE_MAX_HEADER_BYTES", str(DEFAULT_MAX_HEADER_BYTES)),
        help="request line and headers larger than this are refused (HTTP 431) "
        f"(env DIALOGUE_MAX_HEADER_BYTES, default {DEFAULT_MAX_HEADER_BYTES})",
    )
    parser.add_argument(
        "--server-tls",
        action="store_true",
        default=env.get("DIALOGUE_SERVER_TLS", "").strip().lower() in _TRUE,
        help="reach the server over TLS trusting the system's CAs (implied by --server-ca or "
        "--client-cert) (env DIALOGUE_SERVER_TLS=1)",
    )
    parser.add_argument(
        "--server-ca",
        type=_path_or_none,
        default=env.get("DIALOGUE_SERVER_CA", ""),
        help="PEM CA certificates the server's certificate must chain to; turns TLS on "
        "(env DIALOGUE_SERVER_CA)",
    )
    parser.add_argument(
        "--client-cert",
        type=_path_or_none,
        default=env.get("DIALOGUE_CLIENT_CERT", ""),
        help="PEM client certificate for mutual TLS (env DIALOGUE_CLIENT_CERT)",
    )
    parser.add_argument(
        "--client-key",
        type=_path_or_none,
        default=env.get("DIALOGUE_CLIENT_KEY", ""),
        help="PEM key of --client-cert (env DIALOGUE_CLIENT_KEY)",
    )
    args = parser.parse_args(argv)
    if args.deadline_ms <= 0:
        parser.error("--deadline-ms must be positive")
    if args.metrics_listen:
        _, separator, port = args.metrics_listen.rpartition(":")
        if not separator or not port.isdigit() or int(port) > 65535:
            parser.error(f"--metrics-listen {args.metrics_listen!r}: expected HOST:PORT")
    mode = env.get("DIALOGUE_FALLBACK", TRANSFER)
    if mode not in (TRANSFER, HANG_UP):
        parser.error(f"DIALOGUE_FALLBACK must be {TRANSFER} or {HANG_UP}, not {mode!r}")
    defaults = FallbackPolicy()
    fallback = FallbackPolicy(
        mode=mode,
        skill_queue=env.get("DIALOGUE_FALLBACK_SKILL_QUEUE", ""),
        phone_number=env.get("DIALOGUE_FALLBACK_PHONE_NUMBER", ""),
        transfer_prompt=env.get("DIALOGUE_FALLBACK_TRANSFER_PROMPT", defaults.transfer_prompt),
        hangup_prompt=env.get("DIALOGUE_FALLBACK_HANGUP_PROMPT", defaults.hangup_prompt),
        language=env.get("DIALOGUE_FALLBACK_LANGUAGE", defaults.language),
    )
    listen = args.listen or env.get("DIALOGUE_GATEWAY_LISTEN") or vendors[args.vendor]
    return GatewayConfig(
        args.vendor,
        listen,
        args.server,
        args.deadline_ms,
        fallback,
        args.log_level,
        log_format=args.log_format,
        metrics_listen=args.metrics_listen,
        max_body_bytes=args.max_body_bytes,
        max_header_bytes=args.max_header_bytes,
        server_tls=args.server_tls,
        server_ca=args.server_ca,
        client_cert=args.client_cert,
        client_key=args.client_key,
        auth_token=env.get("DIALOGUE_AUTH_TOKEN", "").strip(),
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected at least 1")
    return value


def _path_or_none(text: str) -> Path | None:
    return Path(text) if text.strip() else None
