"""One call's first turn through each gateway, and whether the answer was the fallback.

The fault drills use these to ask "does every gateway still answer, in its own format, and is
that the real decision or the 'system busy' fallback?" — the fallback is recognised by the
prompt every test fallback speaks.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateways.telnyx import client_state as telnyx_client_state
from tests.gateways.telnyx.fake_api import FakeTelnyx, serve_fake
from tests.gateways.telnyx.harness import signed_headers, webhook
from tests.hardening.stack import VENDORS, vendor_env
from tests.support.gateway import serve_gateway

# Spoken by the test fallback (gateways.fallback.FallbackPolicy's transfer prompt).
BUSY = "系统繁忙"
# Spoken by the demo flow's greeting on the Chinese line.
WELCOME = "欢迎致电"


@dataclass(frozen=True, slots=True)
class Probe:
    """What a gateway answered: its status and whether the answer was the fallback."""

    vendor: str
    status: int
    fallback: bool
    spoken: str


@dataclass
class Gateways:
    """The four gateways in front of one server address, and the fake Telnyx API."""

    clients: dict[str, httpx.AsyncClient]
    fake: FakeTelnyx
    key: Ed25519PrivateKey

    async def probe(self, vendor: str, call_id: str) -> Probe:
        """The first turn of a new call on the Chinese demo line (10086)."""
        client = self.clients[vendor]
        transfer_hint = False
        if vendor == "aliyun-ivr":
            content = {"caller": "13800138000", "callee": "10086"}
            fields = {
                "call_id": call_id,
                "timestamp": str(int(time.time() * 1000)),
                "content_type": "callin",
                "content": json.dumps(content),
            }
            reply = await client.get("/aliyun/ivr/callback", params=fields)
            data = reply.json()["data"] if reply.status_code == 200 else {}
            if str(data.get("dynamic_id", "")).endswith(".m"):
                # callin cannot collect keys: the menu comes with the platform's first mute.
                fields["content_type"] = "mute"
                fields["content"] = json.dumps({"dynamic_id": data["dynamic_id"]})
                fields["timestamp"] = str(int(fields["timestamp"]) + 1000)
                reply = await client.get("/aliyun/ivr/callback", params=fields)
                data = reply.json()["data"] if reply.status_code == 200 else {}
            spoken = " ".join(json.loads(data.get("action_code_param") or "{}").values())
            assert reply.json()["result"] == "success", reply.text
        elif vendor == "aliyun-ccc":
            params = {
                "Action": "Dialogue",
                "CallId": call_id,
                "InstanceId": "inst-1",
                "CallingNumber": "10086",
                "CalledNumber": "13800138000",
            }
            reply = await client.get("/", params=params)
            body = reply.json()
            assert body["Success"] is True, reply.text
            spoken = body["Feedback"]["Content"]
            if (
                body["Feedback"]["Action"] == "Hangup"
                and "transfer" in body["Feedback"]["ActionParams"]
            ):
                # The API cannot transfer: the fallback's transfer is an honest goodbye + hint.
                transfer_hint = True
        elif vendor == "huawei-odfs":
            request: dict[str, Any] = {
                "userid": call_id,
                "inaction": 8,
                "inparams": {
                    "call_id": call_id,
                    "call_sor_id": "13500000001",
                    "call_dst_id": "10086",
                },
            }
            reply = await client.post("/oifde/rest/crs/process", json=request)
            body = reply.json()
            assert int(body["ret"]) == 0, reply.text
            spoken = body["outparams"].get("prompt_text", "")
        else:
            state = telnyx_client_state.encode_state(
                telnyx_client_state.ClientState(telnyx_client_state.KIND_INBOUND)
            )
            hook = webhook(
                "call.answered",
                call_id,
                client_state=state,
                from_="+13125550123",
                to="10086",
            )
            raw = json.dumps(hook).encode()
            reply = await client.post(
                "/telnyx/webhooks", content=raw, headers=signed_headers(raw, self.key)
            )
            assert reply.json().get("status") in ("ok", "accepted"), reply.text
            sent = self.fake.executed_on(call_id)
            spoken = str(sent[-1].body.get("payload", "")) if sent else ""
        return Probe(vendor, reply.status_code, BUSY in spoken or transfer_hint, spoken)

    async def probe_all(self, call_prefix: str) -> dict[str, Probe]:
        return {vendor: await self.probe(vendor, f"{call_prefix}-{vendor}") for vendor in VENDORS}


@asynccontextmanager
async def gateways(
    server_address: str, deadline_s: float, telnyx_env: dict[str, str] | None = None
) -> AsyncIterator[Gateways]:
    """All four gateways in front of server_address, with the given deadline."""
    key = Ed25519PrivateKey.generate()
    async with AsyncExitStack() as exits:
        fake = await exits.enter_async_context(serve_fake())
        clients = {}
        for vendor in VENDORS:
            env = vendor_env(vendor, fake, key)
            if vendor == "huawei-odfs":
                env = {}  # token checks are fuzzed elsewhere; drills probe the decisions
            if vendor == "telnyx":
                env.update(telnyx_env or {})
            clients[vendor] = await exits.enter_async_context(
                serve_gateway(vendor, server_address, env, deadline_s=deadline_s)
            )
        yield Gateways(clients, fake, key)
