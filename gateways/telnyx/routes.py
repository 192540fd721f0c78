"""HTTP routes of the Telnyx Call Control gateway: a thin layer over `mapping` and `commands`.

One route takes every webhook: check the signature, read it, `inbound.react`, ask the server
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

from common.settings import read_all
from dialogue.v1 import dialogue_pb2 as pb
from gateways.decider import Decider
from gateways.fallback import render_or_fallback
from gateways.limits import plain_refusal
from gateways.payloads import CallbackError
from gateways.security import auth_failed
from gateways.telnyx import client_state, inbound, outbound, settings, signature
from gateways.telnyx.commands import CallControl, Result, RetryPolicy
from gateways.telnyx.values import Command

DEFAULT_LISTEN = "127.0.0.1:8084"
WEBHOOK_PATH = "/telnyx/webhooks"
METRICS_PATH = "/telnyx/metrics"
# On shutdown, commands still being sent get this long to finish.
_DRAIN_S = 5.0
# Refusals in a row reported to the dialogue before the gateway hangs up instead.
_MAX_REFUSAL_REPORTS = 2

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
    mapping: settings.Settings
    retry: RetryPolicy
    ack_budget_s: float


def settings_from_env(env: Mapping[str, str]) -> GatewaySettings:
    """The gateway's settings from TELNYX_* variables (docs/gateways/telnyx.md).

    Raises:
        ValueError: no public key and no development switch, no API key, or a variable that
            does not parse.
    """
    values = read_all(settings.SETTINGS, env)
    skip = values["skip_signature"]
    key_text = values["public_key"].strip()
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
    api_key = values["api_key"].strip()
    if not api_key:
        raise ValueError("TELNYX_API_KEY is not set: commands cannot be sent")
    command_settings = settings.Settings(
        default_voice=values["default_voice"],
        voices=values["voices"],
        transfer_targets=values["transfer_targets"],
        listen_timeout_ms=values["listen_timeout_ms"],
        record_format=values["record_format"],
        speech=values["speech"],
        transcription_engine=values["transcription_engine"],
        assistant_id=values["assistant_id"].strip() or settings.PLACEHOLDER_ASSISTANT_ID,
    )
    retry = RetryPolicy(
        attempts=values["command_attempts"],
        attempt_timeout_s=values["command_timeout_ms"] / 1000,
        budget_s=values["command_budget_ms"] / 1000,
    )
    return GatewaySettings(
        public_key=public_key,
        api_key=api_key,
        api_base=values["api_base"].rstrip("/") or settings.DEFAULT_API_BASE,
        mapping=command_settings,
        retry=retry,
        ack_budget_s=values["ack_budget_ms"] / 1000,
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
        response: pb.DecideNextActionResponse, context: outbound.CommandContext
    ) -> list[Command]:
        commands, _ = render_or_fallback(
            lambda decision, _is_fallback: outbound.plan_commands(decision, context),
            response,
            is_fallback=False,
            policy=decider.fallback,
            call_id=context.call_control_id,
        )
        return commands

    async def carry_out(webhook: inbound.Webhook, reaction: inbound.Reaction) -> bool:
        """Decides if needed and sends the commands; False when a command could not be sent."""
        ccid = reaction.call_control_id
        context = reaction.context or outbound.CommandContext(
            event_id=webhook.event_id,
            call_control_id=ccid,
            outbound=client_state.is_outbound(webhook.state),
            settings=config.mapping,
        )
        commands = list(reaction.commands)
        if reaction.request is not None:
            outcome = await decider.decide(reaction.request)
            commands += plan(outcome.response, context)
        results = await control.execute(ccid, commands, outbound.OPTIONAL_COMMANDS)
        return not any(r.status == "failed" for r in await report_refusals(context, results))

    async def report_refusals(
        context: outbound.CommandContext, results: list[Result]
    ) -> list[Result]:
        """Tells the dialogue of each refusal and carries out its answer; a refusal of that
        answer is reported too, up to _MAX_REFUSAL_REPORTS in a row, then the call is hung up:
        a caller never waits in silence for a command Telnyx will not take."""
        every = list(results)
        for _ in range(_MAX_REFUSAL_REPORTS):
            refused = next(
                (
                    r
                    for r in results
                    if r.status == "refused" and r.name not in outbound.OPTIONAL_COMMANDS
                ),
                None,
            )
            if refused is None:
                return every
            request, context = inbound.failure_request(
                context, refused.name, refused.command_id, refused.code, refused.detail
            )
            outcome = await decider.decide(request)
            results = await control.execute(
                context.call_control_id,
                plan(outcome.response, context),
                outbound.OPTIONAL_COMMANDS,
            )
            every += results
        if any(r.status == "refused" and r.name not in outbound.OPTIONAL_COMMANDS for r in results):
            _log.warning("%s: refused again after reporting: hanging up", context.call_control_id)
            every += await control.execute(context.call_control_id, [outbound.give_up(context)])
        return every

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
            webhook = inbound.parse_webhook(json.loads(body))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            # RecursionError: nested too deep for the parser, which is no webhook either.
            webhooks["unreadable"] += 1
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        except CallbackError as exc:
            webhooks["unreadable"] += 1
            return JSONResponse({"error": exc.reason}, status_code=400)
        reaction = inbound.react(webhook, config.mapping)
        request.state.call_id = reaction.call_control_id or "-"
        webhooks[webhook.event_type if webhook.event_type in inbound.EVENT_TYPES else "other"] += 1
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
            # Not delivered yet: leave the webhook unacknowledged, so Telnyx redelivers it (or
            # tries the failover URL) while the commands go on being retried here. The
            # redelivery has the same event id: the same decision, the same command_ids, and
            # it joins what is still in flight, so nothing runs twice and nothing is lost.
            webhooks["unacknowledged_in_flight"] += 1
            return JSONResponse({"error": "commands still being sent"}, status_code=503)
        if not sent:
            # Not acknowledged, so Telnyx redelivers (or tries the failover URL): the same
            # event id gives the same decision and command ids, so nothing runs twice.
            webhooks["unacknowledged_failed"] += 1
            return JSONResponse({"error": "commands could not be sent"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @router.get(METRICS_PATH)
    async def metrics() -> dict[str, dict[str, int]]:
        """Counters: webhooks by type and refusal, commands by outcome (90018 is call_ended)."""
        return {"webhooks": dict(webhooks), "commands": dict(control.counters)}

    return router


# Telnyx reads only the status of an answer to its webhook: the plain JSON error will do.
render_refusal = plain_refusal
