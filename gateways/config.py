"""Gateway configuration: flags, then environment, then defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common.eventloop import EVENT_LOOP
from common.settings import BOOLEAN, HOST_PORT, PATH, TEXT, Setting, choice, whole_number
from gateways.fallback import HANG_UP, TRANSFER, FallbackPolicy
from gateways.limits import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_HEADER_BYTES
from telemetry.logs import LOG_FORMAT, LOG_LEVEL

DEFAULT_SERVER = "127.0.0.1:50051"
# Well under a second: the caller hears silence while we wait, and vendors' patience is short.
DEFAULT_DEADLINE_MS = 500


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
    event_loop: str = EVENT_LOOP.default


_FALLBACK_DEFAULTS = FallbackPolicy()

# Every setting of `dialogue-gateway`, declared once (flag, env, kind, default, help).
SERVER = Setting(
    "DIALOGUE_SERVER",
    TEXT,
    DEFAULT_SERVER,
    "dialogue server host:port (or ipv4:A,B)",
    flag="--server",
)
DEADLINE_MS = Setting(
    "DIALOGUE_DEADLINE_MS",
    whole_number(1, "milliseconds"),
    DEFAULT_DEADLINE_MS,
    "deadline of each server call",
    flag="--deadline-ms",
)
METRICS_LISTEN = Setting(
    "DIALOGUE_GATEWAY_METRICS_LISTEN",
    HOST_PORT,
    "",
    "host:port to serve /metrics on instead of the callback port (none: /metrics on the callback port)",
    flag="--metrics-listen",
)
MAX_BODY_BYTES = Setting(
    "DIALOGUE_MAX_BODY_BYTES",
    whole_number(1, "bytes"),
    DEFAULT_MAX_BODY_BYTES,
    "larger request bodies are answered 413",
    flag="--max-body-bytes",
)
MAX_HEADER_BYTES = Setting(
    "DIALOGUE_MAX_HEADER_BYTES",
    whole_number(1, "bytes"),
    DEFAULT_MAX_HEADER_BYTES,
    "request line and headers larger than this are refused (HTTP 431)",
    flag="--max-header-bytes",
)
SERVER_TLS = Setting(
    "DIALOGUE_SERVER_TLS",
    BOOLEAN,
    False,
    "reach the server over TLS trusting the system's CAs (implied by --server-ca or --client-cert)",
)
SERVER_CA = Setting(
    "DIALOGUE_SERVER_CA",
    PATH,
    None,
    "PEM CA certificates the server's certificate must chain to; turns TLS on",
    flag="--server-ca",
)
CLIENT_CERT = Setting(
    "DIALOGUE_CLIENT_CERT",
    PATH,
    None,
    "PEM client certificate for mutual TLS",
    flag="--client-cert",
)
CLIENT_KEY = Setting(
    "DIALOGUE_CLIENT_KEY", PATH, None, "PEM key of --client-cert", flag="--client-key"
)
LISTEN = Setting(
    "DIALOGUE_GATEWAY_LISTEN",
    TEXT,
    "",
    "host:port for vendor callbacks (none: the vendor's own, see README)",
    flag="--listen",
)
# Environment only: the fallback is deployment policy, the token a secret (`ps` shows flags).
FALLBACK_MODE = Setting(
    "DIALOGUE_FALLBACK",
    choice(TRANSFER, HANG_UP),
    TRANSFER,
    "what a call hears when no decision comes in time",
)
FALLBACK_SKILL_QUEUE = Setting(
    "DIALOGUE_FALLBACK_SKILL_QUEUE", TEXT, "", "skill-queue access code the fallback transfers to"
)
FALLBACK_PHONE_NUMBER = Setting(
    "DIALOGUE_FALLBACK_PHONE_NUMBER",
    TEXT,
    "",
    "E.164 number the fallback transfers to (without a skill queue)",
)
FALLBACK_TRANSFER_PROMPT = Setting(
    "DIALOGUE_FALLBACK_TRANSFER_PROMPT",
    TEXT,
    _FALLBACK_DEFAULTS.transfer_prompt,
    "said before the fallback transfer",
)
FALLBACK_HANGUP_PROMPT = Setting(
    "DIALOGUE_FALLBACK_HANGUP_PROMPT",
    TEXT,
    _FALLBACK_DEFAULTS.hangup_prompt,
    "said before the fallback hang-up",
)
FALLBACK_LANGUAGE = Setting(
    "DIALOGUE_FALLBACK_LANGUAGE",
    TEXT,
    _FALLBACK_DEFAULTS.language,
    "BCP-47 language of the fallback prompts",
)
AUTH_TOKEN = Setting("DIALOGUE_AUTH_TOKEN", TEXT, "", "bearer token sent to the server")

_FLAGGED = (
    LISTEN, SERVER, DEADLINE_MS, LOG_LEVEL, LOG_FORMAT, METRICS_LISTEN, MAX_BODY_BYTES,
    MAX_HEADER_BYTES, SERVER_CA, CLIENT_CERT, CLIENT_KEY, EVENT_LOOP,
)  # fmt: skip


def parse_config(
    vendors: Mapping[str, str],
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> GatewayConfig:
    """Parses `VENDOR [flags]`; vendors maps name → default listen.

    Exits 2 (argparse's way) naming the flag or the environment variable that is wrong.
    """
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="dialogue-gateway", description="Serve one vendor's callbacks over DialogueService."
    )
    parser.add_argument("vendor", choices=sorted(vendors), help="which vendor's dialect to speak")
    try:
        for setting in _FLAGGED:
            setting.add_to(parser, env)
        parser.add_argument(
            "--server-tls",
            action="store_true",
            default=SERVER_TLS.read(env),
            help=SERVER_TLS.full_help(),
        )
        fallback = FallbackPolicy(
            mode=FALLBACK_MODE.read(env),
            skill_queue=FALLBACK_SKILL_QUEUE.read(env),
            phone_number=FALLBACK_PHONE_NUMBER.read(env),
            transfer_prompt=FALLBACK_TRANSFER_PROMPT.read(env),
            hangup_prompt=FALLBACK_HANGUP_PROMPT.read(env),
            language=FALLBACK_LANGUAGE.read(env),
        )
        auth_token = AUTH_TOKEN.read(env)
    except ValueError as exc:
        parser.error(str(exc))
    args = parser.parse_args(argv)
    return GatewayConfig(
        args.vendor,
        args.listen or vendors[args.vendor],
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
        auth_token=auth_token,
        event_loop=args.event_loop,
    )
