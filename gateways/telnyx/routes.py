"""HTTP routes of the Telnyx Call Control gateway: a thin layer over `mapping` and `commands`.

One route takes every webhook: check the signature, read it, `mapping.react`, ask the server
when the event needs a decision, send the planned commands, answer 200. See
docs/gateways/telnyx.md for the settings, the acknowledgement timing and the degradations.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from dialogue.v1 import dialogue_pb2 as pb
from gateways.answers import render_or_fallback
from gateways.decider import Decider
from gateways.limits import plain_refusal
from gateways.security import auth_failed
from gateways.telnyx import mapping, signature
from gateways.telnyx.commands import CallControl, Result, RetryPolicy

DEFAULT_LISTEN = "127.0.0.1:8084"
WEBHOOK_PATH = "/telnyx/webhooks"
METRICS_PATH = "/telnyx/metrics"
DEFAULT_API_BASE = "https://api.telnyx.com/v2"
# Telnyx's default webhook timeout is short (its messaging docs say 2 s; Call Control apps can
# set up to 30 s): acknowledge within this even when commands are still being retried.
DEFAULT_ACK_BUDGET_MS = 2000
# On shutdown, commands still being sent get this long to finish.
_DRAIN_S = 5.0
_TRUE = frozenset({"1", "true", "yes", "on"})

_log = logging.getLogger("dialogue.gateway.telnyx")


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Everything the routes read from TELNYX_* variables.

    Attributes:
        public_key: The webhook signing key; None only with the development switch.
        api_key: The Call Control API key (sent as `Authorization: Bearer`).
        api_base: The API's base URL.
        mapping: Voices, transfer targets, defaults of the commands.
        retry: How hard to try each command.
        ack_budget_s: The longest time before a webhook is acknowledged.
    """

    public_key: Ed25519PublicKey | None
    api_key: str
    api_base: str
    mapping: mapping.Settings
    retry: RetryPolicy
    ack_budget_s: float


def settings_from_env(env: Mapping[str, str]) -> GatewaySettings:
    """The gateway's settings from TELNYX_* variables (docs/gateways/telnyx.md).

    Raises:
        ValueError: no public key and no development switch, no API key, or a variable that
            does not parse.
    """
    skip = env.get("TELNYX_SKIP_SIGNATURE", "").strip().lower() in _TRUE
    key_text = env.get("TELNYX_PUBLIC_KEY", "").strip()
    public_key = None
    if key_text:
        try:
            public_key = signature.load_public_key(key_text)
        except ValueError as exc:
            raise ValueError(f"TELNYX_PUBLIC_KEY: {exc}") from exc
    elif not skip:
        raise ValueError(
            "TELNYX_PUBLIC_KEY is not set: webhooks cannot be verified (set the account's "
            "public key, or TELNYX_SKIP_SIGNATURE=true for local development only)"
        )
    if skip:
        # The switch wins over a configured key: it is explicit, and said loudly at start-up.
        public_key = None
    api_key = env.get("TELNYX_API_KEY", "").strip()
    if not api_key:
        raise ValueError("TELNYX_API_KEY is not set: commands cannot be sent")
    record_format = env.get("TELNYX_RECORD_FORMAT", "mp3").strip().lower()
    if record_format not in ("mp3", "wav"):
        raise ValueError(f"TELNYX_RECORD_FORMAT must be mp3 or wav, not {record_format!r}")
    settings = mapping.Settings(
        default_voice=env.get("TELNYX_VOICE", "").strip() or mapping.DEFAULT_VOICE,
        voices=mapping.parse_voices(env.get("TELNYX_VOICES", "")),
        transfer_targets=mapping.parse_transfer_targets(env.get("TELNYX_TRANSFER_TARGETS", "")),
        listen_timeout_ms=_positive(env, "TELNYX_LISTEN_TIMEOUT_MS", 5000),
        record_format=record_format,
    )
    retry = RetryPolicy(
        attempts=_positive(env, "TELNYX_COMMAND_ATTEMPTS", 4),
        attempt_timeout_s=_positive(env, "TELNYX_COMMAND_TIMEOUT_MS", 2000) / 1000,
        budget_s=_positive(env, "TELNYX_COMMAND_BUDGET_MS", 10000) / 1000,
    )
    return GatewaySettings(
        public_key=public_key,
        api_key=api_key,
        api_base=env.get("TELNYX_API_BASE", "").strip().rstrip("/") or DEFAULT_API_BASE,
        mapping=settings,
        retry=retry,
        ack_budget_s=_positive(env, "TELNYX_ACK_BUDGET_MS", DEFAULT_ACK_BUDGET_MS) / 1000,
    )


def build_router(decider: Decider, env: Mapping[str, str]) -> APIRouter:
    """The webhook route (and a metrics route), bound to a decider and the TELNYX_* settings.

    Raises:
        ValueError: see settings_from_env; the gateway then refuses to start.
    """
    config = settings_from_env(env)
    if config.public_key is None:
        _log.warning(
            "TELNYX_SKIP_SIGNATURE is on: webhook signatures are NOT checked and anyone who "
            "can reach %s can drive calls. Use this for local development only.",
            WEBHOOK_PATH,
        )
    control = CallControl(config.api_key, config.api_base, config.retry)
    decider.metrics.watch_commands(control)
    webhooks: Counter[str] = Counter()
    background: set[asyncio.Task[bool]] = set()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if background:
            # Commands still being retried after their webhook was acknowledged: let them end.
            _done, pending = await asyncio.wait(set(background), timeout=_DRAIN_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await control.close()

    router = APIRouter(lifespan=lifespan)

    def plan(
        response: pb.DecideNextActionResponse, context: mapping.CommandContext
    ) -> list[mapping.Command]:
        return render_or_fallback(
            lambda answer, _rescue: mapping.plan_commands(answer, context),
            response,
            decider.fallback,
            context.call_control_id,
            _log,
        )

    async def carry_out(webhook: mapping.Webhook, reaction: mapping.Reaction) -> bool:
        """Decides if needed and sends the commands; False when a command could not be sent."""
        ccid = reaction.call_control_id
        context = reaction.context or mapping.CommandContext(
            event_id=webhook.event_id,
            call_control_id=ccid,
            outbound=mapping.is_outbound(webhook.state),
            settings=config.mapping,
        )
        commands = list(reaction.commands)
        if reaction.request is not None:
            outcome = await decider.decide(reaction.request)
            commands += plan(outcome.response, context)
        results = await control.execute(ccid, commands)
        refused = next((r for r in results if r.status == "refused"), None)
        if refused is not None:
            # Tell the dialogue (once: what its answer plans is not reported back again).
            results += await report_refusal(context, refused)
        return not any(r.status == "failed" for r in results)

    async def report_refusal(context: mapping.CommandContext, refused: Result) -> list[Result]:
        request, answer_context = mapping.failure_request(
            context, refused.name, refused.command_id, refused.code, refused.detail
        )
        outcome = await decider.decide(request)
        return await control.execute(
            context.call_control_id, plan(outcome.response, answer_context)
        )

    @router.post(WEBHOOK_PATH)
    async def receive(request: Request) -> Response:
        """One webhook: verify, read, react, decide, command, acknowledge."""
        body = await request.body()
        if config.public_key is not None:
            try:
                signature.verify(
                    body,
                    request.headers.get(signature.SIGNATURE_HEADER),
                    request.headers.get(signature.TIMESTAMP_HEADER),
                    config.public_key,
                    now=time.time(),
                )
            except signature.SignatureError as exc:
                webhooks["refused_signature"] += 1
                auth_failed(request, "signature")
                _log.warning("webhook refused: %s", exc.reason)
                return JSONResponse({"error": exc.reason}, status_code=401)
        try:
            webhook = mapping.parse_webhook(json.loads(body))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            # RecursionError: nested too deep for the parser, which is no webhook either.
            webhooks["unreadable"] += 1
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        except mapping.WebhookError as exc:
            webhooks["unreadable"] += 1
            return JSONResponse({"error": exc.reason}, status_code=400)
        reaction = mapping.react(webhook, config.mapping)
        request.state.call_id = reaction.call_control_id or "-"
        webhooks[webhook.event_type if webhook.event_type in mapping.EVENT_TYPES else "other"] += 1
        _log.info(
            "%s %s (attempt %d) on %s: %s",
            webhook.event_type,
            webhook.event_id,
            webhook.attempt,
            reaction.call_control_id or "-",
            reaction.note,
        )
        if reaction.request is None and not reaction.commands:
            return JSONResponse({"status": "acknowledged"})
        work = asyncio.create_task(carry_out(webhook, reaction))
        background.add(work)
        work.add_done_callback(background.discard)
        try:
            sent = await asyncio.wait_for(asyncio.shield(work), config.ack_budget_s)
        except TimeoutError:
            # Telnyx would give up on us: acknowledge now, the commands go on being sent (same
            # command_ids, so a redelivery meanwhile cannot double them).
            webhooks["acknowledged_early"] += 1
            return JSONResponse({"status": "accepted"})
        if not sent:
            # Not acknowledged, so Telnyx redelivers (or tries the failover URL): the same
            # event id gives the same decision and command ids, so nothing runs twice.
            return JSONResponse({"error": "commands could not be sent"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @router.get(METRICS_PATH)
    async def metrics() -> dict[str, dict[str, int]]:
        """Counters: webhooks by type and refusal, commands by outcome (90018 is call_ended)."""
        return {"webhooks": dict(webhooks), "commands": dict(control.counters)}

    return router


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {text!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {value}")
    return value


# Telnyx reads only the status of an answer to its webhook: the plain JSON error will do.
render_refusal = plain_refusal
