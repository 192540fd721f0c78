"""Telnyx's side of a call, for tests: signed webhooks shaped like the spec's, and call legs
whose client_state follows the commands the gateway sent, as Telnyx's would."""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateways.app import create_app
from gateways.decider import Decider
from gateways.fallback import FallbackPolicy
from gateways.telnyx import routes, signature
from tests.gateways.telnyx import spec
from tests.gateways.telnyx.fake_api import API_KEY, FakeTelnyx, Received
from tests.support.gateway import TEST_FALLBACK, serve_app

WEBHOOKS = routes.WEBHOOK_PATH
CALLER = "+13125550123"
SERVICE_EN = "+18005550100"


def public_key_text(key: Ed25519PrivateKey) -> str:
    """The base64 raw public key, as the Telnyx portal shows it (TELNYX_PUBLIC_KEY)."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def webhook(
    event_type: str,
    call_control_id: str,
    *,
    client_state: str | None = None,
    event_id: str | None = None,
    attempt: int = 1,
    **payload: Any,
) -> dict[str, Any]:
    """A webhook body built from the spec's example of the event type.

    The example's ids are replaced, its client_state is replaced by `client_state` (or dropped),
    and `payload` overrides (None removes a field). `from_` stands for `from`.
    """
    data = spec.webhook_example(event_type)
    data["id"] = event_id or str(uuid.uuid4())
    data["occurred_at"] = "2026-11-21T10:00:00.000000Z"
    body = data["payload"]
    body["call_control_id"] = call_control_id
    body.pop("client_state", None)
    if client_state is not None:
        body["client_state"] = client_state
    for key, value in payload.items():
        name = "from" if key == "from_" else key
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return {"data": data, "meta": {"attempt": attempt, "delivered_to": "http://127.0.0.1/"}}


def signed_headers(
    raw: bytes, key: Ed25519PrivateKey, *, timestamp: int | None = None
) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    return {**signature.sign(raw, stamp, key), "content-type": "application/json"}


def gateway_env(fake: FakeTelnyx, key: Ed25519PrivateKey, **extra: str) -> dict[str, str]:
    """TELNYX_* settings for a gateway in front of the fake API (generous acknowledgement)."""
    return {
        "TELNYX_PUBLIC_KEY": public_key_text(key),
        "TELNYX_API_KEY": API_KEY,
        "TELNYX_API_BASE": fake.base_url,
        # Tests wait for the commands before the acknowledgement: nothing is left in flight.
        "TELNYX_ACK_BUDGET_MS": "30000",
        # Key-only menus unless a test turns speech on (test_spoken_menus.py): one command per
        # prompt keeps the key-driven calls readable.
        "TELNYX_SPEECH": "false",
        "TELNYX_TRANSFER_TARGETS": json.dumps(
            {"skill_queue:18005550101": "+18005550101", "skill_queue:9999": "+18005559999"}
        ),
        **extra,
    }


@contextlib.asynccontextmanager
async def serve_telnyx(
    server_address: str,
    env: Mapping[str, str],
    *,
    deadline_s: float = 5.0,
    fallback: FallbackPolicy = TEST_FALLBACK,
) -> AsyncIterator[httpx.AsyncClient]:
    """The Telnyx gateway (create_app + routes.build_router) on a free 127.0.0.1 port."""
    decider = Decider(server_address, deadline_s, fallback)
    app = create_app("telnyx", decider, routes.build_router(decider, env))
    async with serve_app(app, client_timeout_s=60) as client:
        yield client


class Leg:
    """One call leg as Telnyx sees it: sends its webhooks, follows the gateway's commands.

    Like Telnyx, the leg carries the client_state of the last command that set one, on every
    webhook after it; `commands()` reads the commands the fake executed for the leg since the
    last look and applies their client_state.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        fake: FakeTelnyx,
        key: Ed25519PrivateKey,
        call_control_id: str,
        *,
        caller: str = CALLER,
        callee: str = SERVICE_EN,
        client_state: str | None = None,
    ) -> None:
        self.client = client
        self.fake = fake
        self.key = key
        self.call_control_id = call_control_id
        self.caller = caller
        self.callee = callee
        self.client_state = client_state
        self._seen = 0

    def build(self, event_type: str, **payload: Any) -> dict[str, Any]:
        numbers = {"from_": self.caller, "to": self.callee}
        if "from" not in spec.webhook_example(event_type)["payload"]:
            numbers = {}
        return webhook(
            event_type,
            self.call_control_id,
            client_state=self.client_state,
            **{**numbers, **payload},
        )

    async def post(self, body: Mapping[str, Any]) -> httpx.Response:
        raw = json.dumps(body).encode("utf-8")
        return await self.client.post(WEBHOOKS, content=raw, headers=signed_headers(raw, self.key))

    async def send(self, event_type: str, **payload: Any) -> dict[str, Any]:
        """Sends one webhook, expects it acknowledged; returns the body sent (to redeliver)."""
        body = self.build(event_type, **payload)
        reply = await self.post(body)
        assert reply.status_code == 200, reply.text
        return body

    def commands(self) -> list[Received]:
        """The commands executed on this leg since the last call, client_state applied."""
        executed = self.fake.executed_on(self.call_control_id)
        new = executed[self._seen :]
        self._seen = len(executed)
        for command in new:
            state = command.body.get("client_state")
            if state:
                self.client_state = state
        return new

    def only_command(self) -> Received:
        new = self.commands()
        assert len(new) == 1, [(c.command, c.body) for c in new]
        return new[0]


def decoded_state(text: str) -> dict[str, Any]:
    """A client_state as the JSON it encodes."""
    state: dict[str, Any] = json.loads(base64.b64decode(text))
    return state
