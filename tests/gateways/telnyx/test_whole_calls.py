"""Whole calls for what issue 15 asked of the Telnyx gateway: spoken menus, an API that hangs
and fails then recovers, refusals, and webhooks of calls the gateway does not run. A real
server with the demo flows, the gateway over real HTTP, the fake API validating every body."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dialogue.v1 import dialogue_pb2 as pb
from tests.gateways.telnyx.fake_api import FakeTelnyx, serve_fake
from tests.gateways.telnyx.harness import Leg, decoded_state, gateway_env, serve_telnyx
from tests.support.grpc_server import Served, serve


@contextlib.asynccontextmanager
async def calls(**env: str) -> AsyncIterator[tuple[Served, FakeTelnyx, Leg]]:
    """The server, the fake API, and one leg through a gateway with `env` on top."""
    key = Ed25519PrivateKey.generate()
    async with (
        serve() as served,
        serve_fake() as fake,
        serve_telnyx(f"127.0.0.1:{served.running.port}", gateway_env(fake, key, **env)) as client,
    ):
        yield served, fake, Leg(client, fake, key, "v3:call-issue-15")
        assert fake.problems == [], "every command must conform to Telnyx's spec"


async def turns(served: Served, call_id: str) -> list[str]:
    snapshot: pb.GetCallResponse = await served.stub.GetCall(
        pb.GetCallRequest(call_id=call_id), timeout=30
    )
    return [str(turn.request.WhichOneof("event")) for turn in snapshot.turns]


async def start(leg: Leg) -> None:
    await leg.send("call.initiated", direction="incoming", state="parked")
    assert leg.only_command().command == "answer"
    await leg.send("call.answered", state="answered")


# -- spoken menus --------------------------------------------------------------------------------


async def test_a_menu_that_invites_speech_hears_it() -> None:
    async with calls(TELNYX_SPEECH="true") as (served, fake, leg):
        await start(leg)
        transcription, menu = leg.commands()
        assert transcription.command == "transcription_start"
        config = transcription.body["transcription_engine_config"]
        assert (config["language"], config["interim_results"]) == ("en", False)
        assert "bill" in config["hints"]
        assert transcription.body["transcription_tracks"] == "inbound"
        assert menu.command == "gather_using_speak"
        assert decoded_state(menu.body["client_state"])["tr"] == 1

        # Interim results and speech while nothing listens are not answers.
        await leg.send(
            "call.transcription",
            transcription_data={"transcript": "bi", "is_final": False, "confidence": 0.3},
        )
        assert leg.commands() == []

        await leg.send(
            "call.transcription",
            transcription_data={"transcript": "bill", "is_final": True, "confidence": 0.97},
        )
        stop, ask = leg.commands()
        assert stop.command == "gather_stop"
        assert "phone number" in ask.body["payload"]
        # The stopped gather reports "cancelled": nothing to decide.
        await leg.send("call.gather.ended", status="cancelled")
        assert leg.commands() == []
        assert (await turns(served, leg.call_control_id))[-1] == "speech_recognized"

        # Transcription keeps running: later menus never start it again (Telnyx: 90054).
        await leg.send("call.gather.ended", status="valid", digits="13800138000#")
        later = leg.commands()
        assert "transcription_start" not in [c.command for c in later]
        assert [c.command for c in fake.executed].count("transcription_start") == 1


async def test_a_call_that_switches_language_is_transcribed_in_the_new_one() -> None:
    """carrier-intl starts in Chinese; "For English, press 9" moves recognition to English."""
    async with calls(TELNYX_SPEECH="true") as (served, fake, first_leg):
        leg = Leg(first_leg.client, fake, first_leg.key, "v3:call-issue-17", callee="+864001008600")
        await start(leg)
        transcription, menu = leg.commands()
        assert transcription.body["transcription_engine_config"]["language"] == "zh"
        assert menu.body["language"] == "cmn-CN"
        await leg.send("call.gather.ended", status="valid", digits="9")
        stop, restart, english = leg.commands()
        assert (stop.command, restart.command) == ("transcription_stop", "transcription_start")
        assert restart.body["transcription_engine_config"]["language"] == "en"
        assert english.command == "gather_using_speak"
        assert english.body["payload"].startswith("For your bill, press 1")
        assert english.body["language"] == "en-US"
        assert decoded_state(english.body["client_state"])["tl"] == "en"
        # Still English at the next menu: nothing restarts.
        await leg.send(
            "call.transcription",
            transcription_data={"transcript": "roaming", "is_final": True, "confidence": 0.9},
        )
        assert "transcription_start" not in [c.command for c in leg.commands()]
        assert [c.command for c in fake.executed].count("transcription_start") == 2
        assert (await turns(served, leg.call_control_id))[-1] == "speech_recognized"


async def test_speech_can_be_turned_off() -> None:
    async with calls(TELNYX_SPEECH="false") as (_served, _fake, leg):
        await start(leg)
        menu = leg.only_command()
        assert menu.command == "gather_using_speak"
        # The call control id is quoted as the official SDK quotes it: its ":" stays literal.
        assert menu.raw_path == "/v2/calls/v3:call-issue-15/actions/gather_using_speak"


# -- an API that hangs and fails, then recovers -------------------------------------------------


async def test_the_next_prompt_is_delivered_after_the_api_recovers() -> None:
    env = {"TELNYX_COMMAND_ATTEMPTS": "2", "TELNYX_COMMAND_TIMEOUT_MS": "300"}
    async with calls(**env) as (served, fake, leg):
        await leg.send("call.initiated", direction="incoming", state="parked")
        leg.commands()
        fake.delay_next(2.0)  # hangs past the attempt's timeout
        fake.fail_next(3, status=503, command="gather_using_speak")
        body = leg.build("call.answered", state="answered")
        deliveries = []
        # Telnyx redelivers an unacknowledged webhook; the bound only stops a broken gateway.
        for attempt in range(1, 6):
            body["meta"]["attempt"] = attempt
            reply = await leg.post(body)
            deliveries.append(reply.status_code)
            if reply.status_code == 200:
                break
        assert deliveries == [503, 503, 200]
        menu = leg.only_command()
        assert menu.command == "gather_using_speak"
        tries = [r for r in fake.received if r.command == "gather_using_speak"]
        # One hung attempt, three 503s, then accepted: the same command_id every time.
        assert len({r.command_id for r in tries}) == 1
        assert len(tries) >= 4
        assert tries[-1].executed
        assert await turns(served, leg.call_control_id) == ["call_started"]


# -- refusals ------------------------------------------------------------------------------------


async def test_a_refusal_of_the_answer_to_a_refusal_is_reported_too() -> None:
    async with calls() as (served, fake, leg):
        await leg.send("call.initiated", direction="incoming", state="parked")
        leg.commands()
        fake.fail_next(2, status=422, code="90015")
        await leg.send("call.answered", state="answered")
        events = await turns(served, leg.call_control_id)
        assert events == ["call_started", "platform_error", "platform_error"]
        assert fake.executed_on(leg.call_control_id)[-1].command != "answer"


async def test_refused_again_and_again_the_call_is_hung_up_not_left_silent() -> None:
    async with calls() as (_served, fake, leg):
        await leg.send("call.initiated", direction="incoming", state="parked")
        leg.commands()
        fake.fail_next(3, status=422, code="90015")
        await leg.send("call.answered", state="answered")
        assert leg.only_command().command == "hangup"


# -- webhooks of calls the gateway does not run -----------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        ("call.gather.ended", {"status": "valid", "digits": "1"}),
        ("call.dtmf.received", {"digit": "1"}),
        ("call.playback.ended", {"status": "completed"}),
        ("call.speak.ended", {"status": "completed"}),
    ],
)
async def test_a_webhook_of_an_unknown_call_starts_nothing(
    event_type: str, payload: dict[str, str]
) -> None:
    async with calls() as (served, _fake, leg):
        await leg.send(event_type, **payload)
        assert leg.commands() == []
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await turns(served, leg.call_control_id)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_late_call_initiated_does_not_restart_the_flow() -> None:
    async with calls() as (served, fake, leg):
        late = leg.build("call.initiated", direction="incoming", state="parked")
        await start(leg)
        leg.commands()
        fake.fail_next(1, status=422, code="90000", command="answer")  # already answered
        state = leg.client_state
        leg.client_state = None
        await leg.post(late)
        leg.client_state = state
        assert await turns(served, leg.call_control_id) == ["call_started"]
        assert leg.commands() == []


async def test_the_terminator_never_leaks_into_the_next_menu() -> None:
    async with calls() as (served, _fake, leg):
        await start(leg)
        leg.commands()
        await leg.send("call.gather.ended", status="valid", digits="1")
        ask = leg.only_command()
        assert ask.body["maximum_digits"] == 12  # the 11 digits, and room for the "#"
        await leg.send("call.gather.ended", status="valid", digits="13800138000#")
        leg.commands()
        events = await turns(served, leg.call_control_id)
        assert events[-1] == "digits_entered"
        snapshot: pb.GetCallResponse = await served.stub.GetCall(
            pb.GetCallRequest(call_id=leg.call_control_id), timeout=30
        )
        entered = snapshot.turns[-1].request.digits_entered
        assert (entered.digits, entered.terminator) == ("13800138000", "#")
