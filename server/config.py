"""Server configuration from flags, then environment variables, then defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common.eventloop import EVENT_LOOP
from common.settings import HOST_PORT, ITEMS, PATH, TEXT, Kind, Setting, whole_number
from server.engine.catalog import DEFAULT_KEEP_VERSIONS
from server.store.expiry import DEFAULT_ENDED_TTL_S, DEFAULT_IDLE_TTL_S
from telemetry.logs import LOG_FORMAT, LOG_LEVEL

# The demo flows ship beside the server package in the repository.
DEMO_FLOWS = Path(__file__).resolve().parent.parent / "flows"
DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_STORE = "sqlite://var/dialogue.db"
DEFAULT_RELOAD_INTERVAL = 2.0


@dataclass(frozen=True, slots=True)
class Config:
    """Everything `dialogue-server` needs to start.

    Attributes:
        listen: host:port to serve gRPC on; port 0 picks a free port.
        flows: Directory of flow files and routing.yaml.
        store: Session store URL (memory://, sqlite://PATH, or a file path).
        grace_seconds: How long in-flight RPCs may run on after SIGTERM.
        log_level: Python logging level name.
        reload_interval: Seconds between checks of the flows directory for changes; 0 reloads
            only on SIGHUP.
        keep_versions: Versions kept per flow (the live one included) for calls in progress.
        metrics_listen: host:port to serve Prometheus `/metrics` on; "" serves none.
        log_format: "text" (for people) or "json" (one object per line, for collectors).
        tls_cert, tls_key: The server's certificate chain and key (PEM); None serves plaintext.
        tls_client_ca: CA certificates (PEM) client certificates must chain to; set, it makes
            the TLS mutual (clients without a valid certificate are refused).
        auth_tokens: Bearer tokens accepted (DIALOGUE_AUTH_TOKENS only: never on the command
            line, where `ps` shows it); empty accepts every caller.
        event_loop: "uvloop" or "asyncio" (see common.eventloop).
    """

    listen: str
    flows: Path
    store: str
    grace_seconds: float
    log_level: str
    reload_interval: float = DEFAULT_RELOAD_INTERVAL
    keep_versions: int = DEFAULT_KEEP_VERSIONS
    store_idle_ttl_s: int = DEFAULT_IDLE_TTL_S
    store_ended_ttl_s: int = DEFAULT_ENDED_TTL_S
    workers: int = 1
    metrics_listen: str = ""
    log_format: str = "text"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    auth_tokens: tuple[str, ...] = field(default=(), repr=False)
    event_loop: str = EVENT_LOOP.default


def _seconds(text: str) -> float:
    value = float(text)
    # NaN fails every comparison, so test for the valid range rather than the invalid one.
    if not 0 <= value < float("inf"):
        raise ValueError("")
    return value


_SECONDS: Kind[float] = Kind(_seconds, "0 or more seconds")


# Every setting of `dialogue-server`, declared once (flag, env, kind, default, help).
LISTEN = Setting("DIALOGUE_LISTEN", TEXT, DEFAULT_LISTEN, "host:port to listen on", flag="--listen")
FLOWS = Setting(
    "DIALOGUE_FLOWS", PATH, DEMO_FLOWS, "directory of flow files and routing.yaml", flag="--flows"
)
STORE = Setting(
    "DIALOGUE_STORE",
    TEXT,
    DEFAULT_STORE,
    "session store: memory://, sqlite://PATH, a file path, or redis://[:PASSWORD@]HOST:PORT/DB "
    "(rediss:// for TLS), redis+cluster://HOST:PORT[,HOST:PORT] or "
    "redis+sentinel://HOST:PORT[,HOST:PORT]/MASTER_NAME shared by replicas",
    flag="--store",
)
STORE_IDLE_TTL = Setting(
    "DIALOGUE_STORE_IDLE_TTL",
    whole_number(1, "seconds"),
    DEFAULT_IDLE_TTL_S,
    "seconds a call's state and history live after its last turn, in every store",
    flag="--store-idle-ttl",
)
STORE_ENDED_TTL = Setting(
    "DIALOGUE_STORE_ENDED_TTL",
    whole_number(1, "seconds"),
    DEFAULT_ENDED_TTL_S,
    "seconds an ended call's state and history live, in every store",
    flag="--store-ended-ttl",
)
WORKERS = Setting(
    "DIALOGUE_WORKERS",
    whole_number(1),
    1,
    "server processes sharing the listen port (SO_REUSEPORT) to use every core; needs a fixed "
    "port and a store the processes can share (SQLite file or Redis)",
    flag="--workers",
)
GRACE_SECONDS = Setting(
    "DIALOGUE_GRACE_SECONDS",
    _SECONDS,
    10.0,
    "how long in-flight RPCs may finish after SIGTERM",
    flag="--grace-seconds",
)
RELOAD_INTERVAL = Setting(
    "DIALOGUE_RELOAD_INTERVAL",
    _SECONDS,
    DEFAULT_RELOAD_INTERVAL,
    "seconds between checks of the flows directory for changed files; 0 disables (SIGHUP still "
    "reloads)",
    flag="--reload-interval",
)
KEEP_VERSIONS = Setting(
    "DIALOGUE_KEEP_VERSIONS",
    whole_number(1),
    DEFAULT_KEEP_VERSIONS,
    "versions kept per flow, the live one included, so calls in progress finish on the version "
    "they started with",
    flag="--keep-versions",
)
METRICS_LISTEN = Setting(
    "DIALOGUE_METRICS_LISTEN",
    HOST_PORT,
    "",
    "host:port to serve Prometheus metrics on at /metrics, e.g. 127.0.0.1:9464; with --workers N, "
    "worker k serves on port+k (none: off)",
    flag="--metrics-listen",
)
TLS_CERT = Setting(
    "DIALOGUE_TLS_CERT",
    PATH,
    None,
    "PEM certificate chain of the server; with --tls-key, serves TLS (none: plaintext)",
    flag="--tls-cert",
)
TLS_KEY = Setting("DIALOGUE_TLS_KEY", PATH, None, "PEM private key of --tls-cert", flag="--tls-key")
TLS_CLIENT_CA = Setting(
    "DIALOGUE_TLS_CLIENT_CA",
    PATH,
    None,
    "PEM CA certificates; clients must present a certificate signed by one (mutual TLS)",
    flag="--tls-client-ca",
)
# Environment only: `ps` shows flags.
AUTH_TOKENS = Setting(
    "DIALOGUE_AUTH_TOKENS", ITEMS, (), "bearer tokens accepted (comma-separated); none accepts all"
)

_FLAGGED = (
    LISTEN, FLOWS, STORE, STORE_IDLE_TTL, STORE_ENDED_TTL, WORKERS, GRACE_SECONDS, LOG_LEVEL,
    RELOAD_INTERVAL, KEEP_VERSIONS, LOG_FORMAT, METRICS_LISTEN, TLS_CERT, TLS_KEY, TLS_CLIENT_CA,
    EVENT_LOOP,
)  # fmt: skip


def parse_config(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Parses flags; each flag's default comes from its environment variable, if set.

    Exits 2 (argparse's way) naming the flag or the environment variable that is wrong.
    """
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="dialogue-server",
        description="Serve dialogue.v1.DialogueService: the decision service behind voice bots and IVRs.",
    )
    try:
        for setting in _FLAGGED:
            setting.add_to(parser, env)
        auth_tokens = AUTH_TOKENS.read(env)
    except ValueError as exc:
        parser.error(str(exc))
    args = parser.parse_args(argv)
    return Config(
        args.listen,
        args.flows,
        args.store,
        args.grace_seconds,
        args.log_level,
        args.reload_interval,
        args.keep_versions,
        args.store_idle_ttl,
        args.store_ended_ttl,
        args.workers,
        args.metrics_listen,
        args.log_format,
        args.tls_cert,
        args.tls_key,
        args.tls_client_ca,
        auth_tokens,
        args.event_loop,
    )


def redacted(url: str) -> str:
    """The store URL with any password replaced, for logs."""
    scheme, separator, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not separator or not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
