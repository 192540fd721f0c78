"""Whole calls through the Telnyx gateway: a real server with the demo flows, the gateway over
real HTTP, signed webhooks, and the fake Call Control API validating every command."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dialogue.v1 import dialogue_pb2 as pb
from tests.gateways.telnyx.fake_api import FakeTelnyx, serve_fake
from tests.gateways.telnyx.harness import (
    WEBHOOKS,
    Leg,
    decoded_state,
    gateway_env,
    serve_telnyx,
    signed_headers,
    webhook,
)
from tests.support.grpc_server import Served, serve
from tests.support.ports import closed_port_address


@dataclass
class World:
    """A running server, the fake API, the gateway, and the key that signs webhooks."""

    served: Served
    fake: FakeTelnyx
    client: httpx.AsyncClient
    key: Ed25519PrivateKey

    def leg(self, call_control_id: str, **options: str) -> Leg:
        return Leg(self.client, self.fake, self.key, call_control_id, **options)

    async def snapshot(self, call_id: str) -> pb.GetCallResponse:
        response: pb.GetCallResponse = await self.served.stub.GetCall(
            pb.GetCallRequest(call_id=call_id), timeout=30
        )
        return response

    async def metrics(self) -> dict[str, dict[str, int]]:
        reply = await self.client.get("/telnyx/metrics")
        data: dict[str, dict[str, int]] = reply.json()
        return data


@pytest.fixture
async def world() -> AsyncIterator[World]:
    key = Ed25519PrivateKey.generate()
    async with (
        serve() as served,
        serve_fake() as fake,
        serve_telnyx(f"127.0.0.1:{served.running.port}", gateway_env(fake, key)) as client,
    ):
        yield World(served, fake, client, key)
        assert fake.problems == [], "every command must conform to Telnyx's spec"


async def answer(leg: Leg) -> None:
    """call.initiated (inbound) → the gateway answers; Telnyx then sends call.answered."""
    await leg.send("call.initiated", direction="incoming", state="parked")
    answered = leg.only_command()
    assert answered.command == "answer"
    assert decoded_state(answered.body["client_state"])["k"] == "in"


async def test_a_whole_call_by_keys_ending_in_a_goodbye_the_caller_hears(world: World) -> None:
    leg = world.leg("v3:call-goodbye")
    await answer(leg)
    await leg.send("call.answered", state="answered")
    menu = leg.only_command()
    assert menu.command == "gather_using_speak"
    assert menu.body["payload"].startswith("Thank you for calling customer service.")
    assert "For your bill, press 1" in menu.body["payload"]
    assert (menu.body["minimum_digits"], menu.body["maximum_digits"]) == (1, 1)
    assert set(menu.body["valid_digits"]) == set("*0124")
    assert menu.body["language"] == "en-US"
    assert menu.body["maximum_tries"] == 1

    await leg.send("call.gather.ended", status="valid", digits="2")
    anything_else = leg.only_command()
    assert "30 gigabytes" in anything_else.body["payload"]
    assert "To end the call, press 2" in anything_else.body["payload"]

    await leg.send("call.gather.ended", status="valid", digits="2")
    goodbye = leg.only_command()
    assert goodbye.command == "speak"
    assert goodbye.body["payload"] == "Thank you for calling. Goodbye."
    # The hang-up waits for the goodbye to end: nothing else was sent yet.
    assert decoded_state(goodbye.body["client_state"])["n"] == "hangup"

    await leg.send("call.speak.started")
    assert leg.commands() == []
    await leg.send("call.speak.ended", status="completed")
    assert leg.only_command().command == "hangup"

    await leg.send("call.hangup", hangup_cause="normal_clearing", hangup_source="callee")
    assert leg.commands() == []
    snapshot = await world.snapshot(leg.call_control_id)
    assert snapshot.call.dialogue_over
    assert snapshot.turns[-1].request.call_ended.hung_up_by == pb.HANG_UP_PARTY_SYSTEM


async def test_a_call_transferred_to_an_agent_who_answers(world: World) -> None:
    leg = world.leg("v3:call-agent")
    await answer(leg)
    await leg.send("call.answered")
    leg.commands()
    await leg.send("call.gather.ended", status="valid", digits="0")
    hold = leg.only_command()
    assert hold.command == "speak"
    assert hold.body["payload"] == "Connecting you to an agent, please hold."

    await leg.send("call.speak.ended", status="completed")
    transfer = leg.only_command()
    assert transfer.command == "transfer"
    assert transfer.body["to"] == "+18005550101"

    agent = world.leg(
        "v3:agent-leg",
        caller=leg.callee,
        callee="+18005550101",
        client_state=transfer.body["target_leg_client_state"],
    )
    await agent.send("call.initiated", direction="outgoing", state="bridging")
    await agent.send("call.answered")
    await leg.send("call.bridged")
    assert agent.commands() == []
    assert leg.commands() == []
    snapshot = await world.snapshot(leg.call_control_id)
    assert snapshot.call.dialogue_over
    assert snapshot.call.node_id == "agent"
    # The agent's leg never became a dialogue of its own.
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await world.snapshot(agent.call_control_id)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_transfer_nobody_answers_runs_the_flows_failure_path(world: World) -> None:
    leg = world.leg("v3:call-busy")
    await answer(leg)
    await leg.send("call.answered")
    leg.commands()
    await leg.send("call.gather.ended", status="valid", digits="0")
    leg.commands()
    await leg.send("call.speak.ended", status="completed")
    transfer = leg.only_command()
    agent = world.leg(
        "v3:busy-leg", client_state=transfer.body["target_leg_client_state"], caller=leg.callee
    )
    # The transfer's timeout ran out while it rang: no answer, which the flow leaves to on_failure.
    await agent.send("call.hangup", hangup_cause="timeout", hangup_source="callee")
    sorry = leg.only_command()
    assert sorry.command == "speak"
    assert "all our agents are busy" in sorry.body["payload"]
    await leg.send("call.speak.ended", status="completed")
    assert leg.only_command().command == "hangup"


async def test_a_busy_agent_line_takes_the_flows_on_busy_path(world: World) -> None:
    leg = world.leg("v3:call-line-busy")
    await answer(leg)
    await leg.send("call.answered")
    leg.commands()
    await leg.send("call.gather.ended", status="valid", digits="0")
    leg.commands()
    await leg.send("call.speak.ended", status="completed")
    transfer = leg.only_command()
    agent = world.leg(
        "v3:line-busy-leg",
        client_state=transfer.body["target_leg_client_state"],
        caller=leg.callee,
    )
    await agent.send(
        "call.hangup", hangup_cause="user_busy", sip_hangup_cause="486", hangup_source="callee"
    )
    # carrier-en's on_busy: say so, and self-service goes on at the anything-else menu.
    menu = leg.only_command()
    assert menu.command == "gather_using_speak"
    assert menu.body["payload"].startswith("Sorry, all our agent lines are busy.")
    assert "To go back to the main menu, press 1." in menu.body["payload"]
    snapshot = await world.snapshot(leg.call_control_id)
    assert snapshot.call.node_id == "anything_else"


async def test_silence_and_wrong_keys_escalate_like_the_flow_says(world: World) -> None:
    leg = world.leg("v3:call-silent")
    await answer(leg)
    await leg.send("call.answered")
    leg.commands()
    await leg.send("call.gather.ended", status="timeout", digits="")
    again = leg.only_command()
    assert again.body["payload"].startswith("Sorry, I didn't hear anything.")
    await leg.send("call.gather.ended", status="invalid", digits="9")
    assert leg.only_command().body["payload"].startswith("Sorry, I didn't catch that.")
    # Keys pressed during a gather are the gather's business, not a decision of their own.
    await leg.send("call.dtmf.received", digit="1")
    assert leg.commands() == []
    snapshot = await world.snapshot(leg.call_control_id)
    assert snapshot.call.turn_count == 3


async def test_a_phone_number_collected_with_the_terminator(world: World) -> None:
    leg = world.leg("v3:call-bill")
    await answer(leg)
    await leg.send("call.answered")
    leg.commands()
    await leg.send("call.gather.ended", status="valid", digits="1")
    ask = leg.only_command()
    assert "phone number" in ask.body["payload"]
    assert ask.body["terminating_digit"] == "#"
    # Room for one key more than the 11 the menu takes, so the terminator is always collected.
    assert (ask.body["minimum_digits"], ask.body["maximum_digits"]) == (10, 12)
    await leg.send("call.gather.ended", status="valid", digits="3125550123#")
    told = leg.only_command()
    assert "The bill for 3125550123 is ready" in told.body["payload"]


async def test_redelivered_webhooks_send_no_duplicate_commands(world: World) -> None:
    leg = world.leg("v3:call-redelivered")
    initiated = leg.build("call.initiated", direction="incoming")
    for attempt in (1, 2):
        assert (await leg.post({**initiated, "meta": {"attempt": attempt}})).status_code == 200
    leg.commands()
    answered = leg.build("call.answered")
    for _ in range(3):
        assert (await leg.post(answered)).status_code == 200
    leg.commands()
    press = leg.build("call.gather.ended", status="valid", digits="2")
    await leg.post(press)
    await leg.post(press)
    leg.commands()

    ids = [r.command_id for r in world.fake.received if r.call_control_id == leg.call_control_id]
    assert len(ids) == len(set(ids)) == 3, "each command reached the API once"
    assert [r.command for r in world.fake.executed_on(leg.call_control_id)] == [
        "answer",
        "gather_using_speak",
        "gather_using_speak",
    ]
    snapshot = await world.snapshot(leg.call_control_id)
    assert snapshot.call.turn_count == 2
    assert (await world.metrics())["commands"]["deduplicated"] == 4


async def test_a_redelivery_to_another_gateway_is_ignored_by_telnyx(world: World) -> None:
    # A second gateway (a restart, or the failover URL) has no memory of what was sent: the
    # same event gives the same command_id, and Telnyx executes it once.
    leg = world.leg("v3:call-failover")
    await answer(leg)
    answered = leg.build("call.answered")
    await leg.post(answered)
    env = gateway_env(world.fake, world.key)
    async with serve_telnyx(f"127.0.0.1:{world.served.running.port}", env) as other:
        again = Leg(other, world.fake, world.key, leg.call_control_id)
        assert (await again.post(answered)).status_code == 200
    gathers = [r for r in world.fake.received if r.command == "gather_using_speak"]
    assert len(gathers) == 2
    assert gathers[0].command_id == gathers[1].command_id
    assert [r.executed for r in gathers] == [True, False]


@pytest.mark.parametrize(
    ("case", "headers_of"),
    [
        ("missing", lambda raw, key: {"content-type": "application/json"}),
        ("forged", lambda raw, key: signed_headers(raw, Ed25519PrivateKey.generate())),
        ("stale", lambda raw, key: signed_headers(raw, key, timestamp=int(time.time()) - 301)),
        ("future", lambda raw, key: signed_headers(raw, key, timestamp=int(time.time()) + 301)),
        ("other body", lambda raw, key: signed_headers(raw + b" ", key)),
    ],
)
async def test_unsigned_forged_or_stale_webhooks_are_refused(
    world: World, case: str, headers_of: object
) -> None:
    body = webhook("call.answered", "v3:call-forged", from_="+13125550123", to="+18005550100")
    raw = json.dumps(body).encode()
    headers = headers_of(raw, world.key)  # type: ignore[operator]
    reply = await world.client.post(WEBHOOKS, content=raw, headers=headers)
    assert 400 <= reply.status_code < 500, case
    assert world.fake.received == []
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await world.snapshot("v3:call-forged")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await world.metrics())["webhooks"]["refused_signature"] == 1


async def test_commands_failing_with_5xx_are_retried_and_executed_once(world: World) -> None:
    leg = world.leg("v3:call-retried")
    await answer(leg)
    world.fake.fail_next(2, status=503, command="gather_using_speak")
    await leg.send("call.answered")
    assert leg.only_command().command == "gather_using_speak"
    tries = [r for r in world.fake.received if r.command == "gather_using_speak"]
    assert [r.status for r in tries] == [503, 503, 200]
    assert len({r.command_id for r in tries}) == 1
    assert (await world.metrics())["commands"]["retried"] == 2


async def test_a_command_on_an_ended_call_is_not_retried_and_is_counted(world: World) -> None:
    leg = world.leg("v3:call-gone")
    await answer(leg)
    world.fake.hang_up(leg.call_control_id)
    await leg.send("call.answered")
    refused = [r for r in world.fake.received if r.command == "gather_using_speak"]
    assert [(r.status, r.executed) for r in refused] == [(422, False)]
    assert (await world.metrics())["commands"]["call_ended"] == 1


async def test_a_refused_transfer_runs_the_flows_failure_path(world: World) -> None:
    leg = world.leg("v3:call-refused")
    await answer(leg)
    await leg.send("call.answered")
    await leg.send("call.gather.ended", status="valid", digits="0")
    leg.commands()
    world.fake.fail_next(1, status=422, code="90034", command="transfer")
    await leg.send("call.speak.ended", status="completed")
    sorry = leg.only_command()
    assert "all our agents are busy" in sorry.body["payload"]
    assert (await world.metrics())["commands"]["refused"] == 1


async def test_unacknowledged_while_commands_take_too_long_so_telnyx_redelivers() -> None:
    key = Ed25519PrivateKey.generate()
    async with serve() as served, serve_fake() as fake:
        env = gateway_env(fake, key, TELNYX_ACK_BUDGET_MS="50")
        async with serve_telnyx(f"127.0.0.1:{served.running.port}", env) as client:
            leg = Leg(client, fake, key, "v3:call-slow")
            fake.delay_next(3.0)
            body = leg.build("call.initiated", direction="incoming")
            reply = await leg.post(body)
            # Not acknowledged (Telnyx will redeliver), while the answer goes on being sent.
            assert reply.status_code == 503
            await fake.wait_for(lambda f: len(f.executed) == 1)
            assert fake.executed[0].command == "answer"
            # The redelivery finds it accepted: acknowledged, nothing sent twice.
            assert (await leg.post(body)).status_code == 200
            assert len(fake.executed) == 1


async def test_the_server_down_renders_the_fallback_as_valid_commands() -> None:
    key = Ed25519PrivateKey.generate()
    async with serve_fake() as fake:
        env = gateway_env(fake, key)
        async with serve_telnyx(closed_port_address(), env, deadline_s=0.5) as client:
            leg = Leg(client, fake, key, "v3:call-no-server")
            await answer(leg)
            await leg.send("call.answered")
            hold = leg.only_command()
            assert hold.command == "speak"
            assert "系统繁忙" in hold.body["payload"]
            await leg.send("call.speak.ended", status="completed")
            transfer = leg.only_command()
            assert (transfer.command, transfer.body["to"]) == ("transfer", "+18005559999")
        assert fake.problems == []


async def test_the_server_down_without_a_transfer_number_apologises_and_hangs_up() -> None:
    key = Ed25519PrivateKey.generate()
    async with serve_fake() as fake:
        env = gateway_env(fake, key, TELNYX_TRANSFER_TARGETS="")
        async with serve_telnyx(closed_port_address(), env, deadline_s=0.5) as client:
            leg = Leg(client, fake, key, "v3:call-no-target")
            await answer(leg)
            await leg.send("call.answered")
            apology = leg.only_command()
            assert "无法为您转接" in apology.body["payload"]
            await leg.send("call.speak.ended", status="completed")
            assert leg.only_command().command == "hangup"
        assert fake.problems == []


async def test_a_chinese_call_speaks_mandarin_with_the_configured_voice() -> None:
    key = Ed25519PrivateKey.generate()
    async with serve() as served, serve_fake() as fake:
        env = gateway_env(fake, key, TELNYX_VOICES="zh-CN=AWS.Polly.Zhiyu")
        async with serve_telnyx(f"127.0.0.1:{served.running.port}", env) as client:
            leg = Leg(client, fake, key, "v3:call-zh", callee="10086")
            await answer(leg)
            await leg.send("call.answered")
            menu = leg.only_command()
            assert menu.command == "gather_using_speak"
            assert (menu.body["language"], menu.body["voice"]) == ("cmn-CN", "AWS.Polly.Zhiyu")
            assert "欢迎致电" in menu.body["payload"]
        assert fake.problems == []


async def test_unknown_events_and_unreadable_bodies(world: World) -> None:
    leg = world.leg("v3:call-odd")
    reply = await leg.post(leg.build("call.machine.detection.ended", result="human"))
    assert (reply.status_code, reply.json()) == (200, {"status": "acknowledged"})
    raw = b"{not json"
    bad = await world.client.post(WEBHOOKS, content=raw, headers=signed_headers(raw, world.key))
    assert bad.status_code == 400
    flat = json.dumps({"event_type": "call.answered", "payload": {}}).encode()
    v1 = await world.client.post(WEBHOOKS, content=flat, headers=signed_headers(flat, world.key))
    assert v1.status_code == 400
    assert "version 2" in v1.json()["error"]
    assert world.fake.received == []
