"""Server configuration from flags, then environment variables, then defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from server.engine.catalog import DEFAULT_KEEP_VERSIONS
from server.security import parse_tokens
from server.store.expiry import DEFAULT_ENDED_TTL_S, DEFAULT_IDLE_TTL_S
from telemetry.logs import LOG_FORMATS

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


def parse_config(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Parses flags; each flag's default comes from its environment variable, if set."""
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="dialogue-server",
        description="Serve dialogue.v1.DialogueService: the decision service behind voice bots and IVRs.",
    )
    parser.add_argument(
        "--listen",
        default=env.get("DIALOGUE_LISTEN", DEFAULT_LISTEN),
        help=f"host:port to listen on (env DIALOGUE_LISTEN, default {DEFAULT_LISTEN})",
    )
    parser.add_argument(
        "--flows",
        type=Path,
        default=Path(env.get("DIALOGUE_FLOWS", str(DEMO_FLOWS))),
        help="directory of flow files and routing.yaml (env DIALOGUE_FLOWS, default: the demo flows)",
    )
    parser.add_argument(
        "--store",
        default=env.get("DIALOGUE_STORE", DEFAULT_STORE),
        help="session store: memory://, sqlite://PATH, a file path, or redis://[:PASSWORD@]HOST:PORT/DB "
        "(rediss:// for TLS), redis+cluster://HOST:PORT[,HOST:PORT] or "
        "redis+sentinel://HOST:PORT[,HOST:PORT]/MASTER_NAME shared by replicas "
        f"(env DIALOGUE_STORE, default {DEFAULT_STORE})",
    )
    parser.add_argument(
        "--store-idle-ttl",
        type=_positive_count,
        default=env.get("DIALOGUE_STORE_IDLE_TTL", str(DEFAULT_IDLE_TTL_S)),
        help="seconds a call's state and history live after its last turn, in every store "
        f"(env DIALOGUE_STORE_IDLE_TTL, default {DEFAULT_IDLE_TTL_S})",
    )
    parser.add_argument(
        "--store-ended-ttl",
        type=_positive_count,
        default=env.get("DIALOGUE_STORE_ENDED_TTL", str(DEFAULT_ENDED_TTL_S)),
        help="seconds an ended call's state and history live, in every store "
        f"(env DIALOGUE_STORE_ENDED_TTL, default {DEFAULT_ENDED_TTL_S})",
    )
    parser.add_argument(
        "--workers",
        type=_positive_count,
        default=env.get("DIALOGUE_WORKERS", "1"),
        help="server processes sharing the listen port (SO_REUSEPORT) to use every core; needs a "
        "fixed port and a store the processes can share (SQLite file or Redis) (env DIALOGUE_WORKERS, default 1)",
    )
    parser.add_argument(
        "--grace-seconds",
        type=float,
        default=float(env.get("DIALOGUE_GRACE_SECONDS", "10")),
        help="how long in-flight RPCs may finish after SIGTERM (env DIALOGUE_GRACE_SECONDS, default 10)",
    )
    parser.add_argument(
        "--log-level",
        default=env.get("DIALOGUE_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level (env DIALOGUE_LOG_LEVEL, default INFO)",
    )
    # argparse runs `type` over string defaults too, so a bad environment value is rejected
    # with the same usage error as a bad flag.
    parser.add_argument(
        "--reload-interval",
        type=_non_negative_seconds,
        default=env.get("DIALOGUE_RELOAD_INTERVAL", str(DEFAULT_RELOAD_INTERVAL)),
        help="seconds between checks of the flows directory for changed files; 0 disables "
        "(SIGHUP still reloads) (env DIALOGUE_RELOAD_INTERVAL, default 2)",
    )
    parser.add_argument(
        "--keep-versions",
        type=_positive_count,
        default=env.get("DIALOGUE_KEEP_VERSIONS", str(DEFAULT_KEEP_VERSIONS)),
        help="versions kept per flow, the live one included, so calls in progress finish on "
        f"the version they started with (env DIALOGUE_KEEP_VERSIONS, default {DEFAULT_KEEP_VERSIONS})",
    )
    parser.add_argument(
        "--log-format",
        default=env.get("DIALOGUE_LOG_FORMAT", "text"),
        choices=LOG_FORMATS,
        help="text for people, json for log collectors: one object per line "
        "(env DIALOGUE_LOG_FORMAT, default text)",
    )
    parser.add_argument(
        "--metrics-listen",
        default=env.get("DIALOGUE_METRICS_LISTEN", ""),
        help="host:port to serve Prometheus metrics on at /metrics, e.g. 127.0.0.1:9464; with "
        "--workers N, worker k serves on port+k (env DIALOGUE_METRICS_LISTEN, default: off)",
    )
    parser.add_argument(
        "--tls-cert",
        type=_path_or_none,
        default=env.get("DIALOGUE_TLS_CERT", ""),
        help="PEM certificate chain of the server; with --tls-key, serves TLS "
        "(env DIALOGUE_TLS_CERT, default: plaintext)",
    )
    parser.add_argument(
        "--tls-key",
        type=_path_or_none,
        default=env.get("DIALOGUE_TLS_KEY", ""),
        help="PEM private key of --tls-cert (env DIALOGUE_TLS_KEY)",
    )
    parser.add_argument(
        "--tls-client-ca",
        type=_path_or_none,
        default=env.get("DIALOGUE_TLS_CLIENT_CA", ""),
        help="PEM CA certificates; clients must present a certificate signed by one (mutual "
        "TLS) (env DIALOGUE_TLS_CLIENT_CA, default: no client certificates asked)",
    )
    args = parser.parse_args(argv)
    if args.metrics_listen:
        _check_listen(parser, "--metrics-listen", args.metrics_listen)
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
        parse_tokens(env.get("DIALOGUE_AUTH_TOKENS", "")),
    )


def _path_or_none(text: str) -> Path | None:
    return Path(text) if text.strip() else None


def _check_listen(parser: argparse.ArgumentParser, flag: str, listen: str) -> None:
    _, separator, port = listen.rpartition(":")
    if not separator or not port.isdigit() or int(port) > 65535:
        parser.error(f"{flag} {listen!r}: expected HOST:PORT")


def _non_negative_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    # NaN fails every comparison, so test for the valid range rather than the invalid one.
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0 (off) or more seconds")
    return value


def _positive_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected at least 1")
    return value


def redacted(url: str) -> str:
    """The store URL with any password replaced, for logs."""
    scheme, separator, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not separator or not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
