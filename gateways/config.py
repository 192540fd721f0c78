"""Gateway configuration: flags, then environment, then defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateways.fallback import HANG_UP, TRANSFER, FallbackPolicy

DEFAULT_SERVER = "127.0.0.1:50051"
# Well under a second: the caller hears silence while we wait, and vendors' patience is short.
DEFAULT_DEADLINE_MS = 500


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Everything `dialogue-gateway VENDOR` needs to start."""

    vendor: str
    listen: str
    server: str
    deadline_ms: int
    fallback: FallbackPolicy
    log_level: str


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
    args = parser.parse_args(argv)
    if args.deadline_ms <= 0:
        parser.error("--deadline-ms must be positive")
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
        args.vendor, listen, args.server, args.deadline_ms, fallback, args.log_level
    )
