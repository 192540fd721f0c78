"""The Telnyx gateway's configuration: it refuses to start unsafe, and says so when told to."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateways.decider import Decider
from gateways.telnyx import routes
from gateways.telnyx.routes import build_router, settings_from_env
from tests.gateways.telnyx.fake_api import serve_fake
from tests.gateways.telnyx.harness import Leg, public_key_text, serve_telnyx
from tests.support.gateway import TEST_FALLBACK
from tests.support.ports import closed_port_address

KEY = public_key_text(Ed25519PrivateKey.generate())
BASE = {"TELNYX_PUBLIC_KEY": KEY, "TELNYX_API_KEY": "KEYx"}


async def build(env: Mapping[str, str]) -> None:
    decider = Decider(closed_port_address(), 0.5, TEST_FALLBACK)
    try:
        build_router(decider, env)
    finally:
        await decider.close()


def test_the_defaults() -> None:
    settings = settings_from_env(BASE)
    assert settings.public_key is not None
    assert settings.api_base == "https://api.telnyx.com/v2"
    assert settings.ack_budget_s == 2.0
    assert (settings.retry.attempts, settings.retry.budget_s) == (4, 10.0)
    assert settings.mapping.default_voice == "Telnyx.KokoroTTS.af"
    assert routes.DEFAULT_LISTEN == "127.0.0.1:8084"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TELNYX_API_KEY": "KEYx"}, "TELNYX_PUBLIC_KEY is not set"),
        ({**BASE, "TELNYX_PUBLIC_KEY": "bm90IGEga2V5"}, "TELNYX_PUBLIC_KEY"),
        ({"TELNYX_PUBLIC_KEY": KEY}, "TELNYX_API_KEY is not set"),
        ({**BASE, "TELNYX_TRANSFER_TARGETS": "queue=+1800"}, "TELNYX_TRANSFER_TARGETS"),
        ({**BASE, "TELNYX_VOICES": "zh-CN"}, "TELNYX_VOICES"),
        ({**BASE, "TELNYX_ACK_BUDGET_MS": "soon"}, "TELNYX_ACK_BUDGET_MS"),
        ({**BASE, "TELNYX_COMMAND_ATTEMPTS": "0"}, "TELNYX_COMMAND_ATTEMPTS"),
        ({**BASE, "TELNYX_RECORD_FORMAT": "ogg"}, "TELNYX_RECORD_FORMAT"),
    ],
)
async def test_the_gateway_refuses_to_start_without_what_it_needs(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await build(env)


async def test_the_development_switch_is_said_loudly(caplog: pytest.LogCaptureFixture) -> None:
    env = {"TELNYX_API_KEY": "KEYx", "TELNYX_SKIP_SIGNATURE": "true"}
    with caplog.at_level(logging.WARNING, logger="dialogue.gateway.telnyx"):
        await build(env)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("NOT checked" in r.getMessage() for r in warnings)
    # The switch wins over a configured key (it is explicit).
    assert settings_from_env({**BASE, "TELNYX_SKIP_SIGNATURE": "yes"}).public_key is None


async def test_with_the_switch_unsigned_webhooks_are_taken() -> None:
    async with serve_fake() as fake:
        env = {
            "TELNYX_API_KEY": fake.api_key,
            "TELNYX_API_BASE": fake.base_url,
            "TELNYX_SKIP_SIGNATURE": "true",
            "TELNYX_ACK_BUDGET_MS": "30000",
        }
        async with serve_telnyx(closed_port_address(), env) as client:
            leg = Leg(client, fake, Ed25519PrivateKey.generate(), "v3:dev")
            raw = json.dumps(leg.build("call.initiated", direction="incoming")).encode()
            reply = await client.post(
                routes.WEBHOOK_PATH, content=raw, headers={"content-type": "application/json"}
            )
            assert reply.status_code == 200
            assert [r.command for r in fake.executed] == ["answer"]
