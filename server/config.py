"""Server configuration from flags, then environment variables, then defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# The demo flows ship beside the server package in the repository.
DEMO_FLOWS = Path(__file__).resolve().parent.parent / "flows"
DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_STORE = "sqlite://var/dialogue.db"


@dataclass(frozen=True, slots=True)
class Config:
    """Everything `dialogue-server` needs to start.

    Attributes:
        listen: host:port to serve gRPC on; port 0 picks a free port.
        flows: Directory of flow files and routing.yaml.
        store: Session store URL (memory://, sqlite://PATH, or a file path).
        grace_seconds: How long in-flight RPCs may run on after SIGTERM.
        log_level: Python logging level name.
    """

    listen: str
    flows: Path
    store: str
    grace_seconds: float
    log_level: str


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
        help=f"session store: memory://, sqlite://PATH or a file path (env DIALOGUE_STORE, default {DEFAULT_STORE})",
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
    args = parser.parse_args(argv)
    return Config(args.listen, args.flows, args.store, args.grace_seconds, args.log_level)
