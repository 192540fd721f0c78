"""The AI assistant hand-off and return, end to end: the gateway over real HTTP, the fake Call
Control API validating every command, and a real grpc.aio servicer scripting the dialogue
(hand_to_assistant → call.conversation.ended → the next menu), because the engine's assistant
node is built elsewhere; the contract is the only thing the gateway and server share."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dialogue.v1 import dialogue_pb2 as pb
from dialogue.v1 import dialogue_pb2_grpc
from tests.gateways.telnyx.fake_api import FakeTelnyx, serve_fake
from tests.gateways.telnyx.harness import Leg, decoded_state, gateway_env, serve_telnyx

ANYTHING_ELSE = "Is there anything else I can help you with? Press 1 for the menu, 2 to end."


class ScriptedDialogue(dialogue_pb2_grpc.DialogueServiceServicer):
    """Answers each event as a flow with an assistant node would, and keeps every request."""

    def __init__(self) -> None:
        self.requests: list[pb.DecideNextActionRequest] = []

    async def DecideNextAction(  # noqa: N802 (the generated servicer's name)
        self, request: pb.DecideNextActionRequest, context: Any
    ) -> pb.DecideNextActionResponse:
        self.requests.append(request)
        event = request.WhichOneof("event")
        if event == "call_started":
            return pb.DecideNextActionResponse(
                hand_to_assistant=pb.HandToAssistant(
                    assistant_id="assistant-d9082b56-ba2d-4ad1-a50c-58661eb1463d",
                    greeting="Hi, I am the billing assistant. How can I help?",
                    instructions="Answer billing questions only.",
                    context={"account": "42", "plan": "unlimited"},
                    language="en-US",
                )
            )
        if event == "assistant_finished":
            prompts = pb.Prompts()
            prompts.items.add().tts.CopyFrom(pb.TextToSpeech(text=ANYTHING_ELSE, language="en-US"))
            return pb.DecideNextActionResponse(
                play_and_listen=pb.PlayAndListen(
                    prompts=prompts, digits=pb.DigitCollection(min_digits=1, max_digits=1)
                )
            )
        if event == "call_ended":
            return pb.DecideNextActionResponse(end_dialogue=pb.EndDialogue(), dialogue_over=True)
        return pb.DecideNextActionResponse(keep_playing=pb.KeepPlaying())

    async def GetCall(  # noqa: N802 (the generated servicer's name)
        self, request: pb.GetCallRequest, context: Any
    ) -> pb.GetCallResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not scripted")
        raise AssertionError("abort raises")


@contextlib.asynccontextmanager
async def scripted_server(dialogue: ScriptedDialogue) -> AsyncIterator[str]:
    server = grpc.aio.server()
    dialogue_pb2_grpc.add_DialogueServiceServicer_to_server(dialogue, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@contextlib.asynccontextmanager
async def scripted_call(
    call_control_id: str,
) -> AsyncIterator[tuple[ScriptedDialogue, FakeTelnyx, Leg]]:
    """The scripted dialogue, the fake API and one leg through the gateway in front of both."""
    key = Ed25519PrivateKey.generate()
    dialogue = ScriptedDialogue()
    async with (
        scripted_server(dialogue) as address,
        serve_fake() as fake,
        serve_telnyx(address, gateway_env(fake, key)) as client,
    ):
        yield dialogue, fake, Leg(client, fake, key, call_control_id)


async def test_the_assistant_gets_the_call_and_gives_it_back_to_the_flow() -> None:
    async with scripted_call("v3:call-assistant") as (dialogue, fake, leg):
        await leg.send("call.initiated", direction="incoming", state="parked")
        assert leg.only_command().command == "answer"

        await leg.send("call.answered", state="answered")
        start = leg.only_command()
        assert start.command == "ai_assistant_start"
        assert start.body["assistant"]["id"] == "assistant-d9082b56-ba2d-4ad1-a50c-58661eb1463d"
        assert start.body["assistant"]["instructions"] == "Answer billing questions only."
        assert start.body["assistant"]["dynamic_variables"] == {
            "account": "42",
            "plan": "unlimited",
        }
        assert start.body["greeting"].startswith("Hi, I am the billing assistant")
        assert decoded_state(start.body["client_state"])["k"] == "bot"

        # While the assistant talks, keys and its own speech are its business.
        await leg.send("call.dtmf.received", digit="5")
        await leg.send("call.speak.ended", status="completed")
        assert leg.commands() == []

        fake.end_conversation(leg.call_control_id)
        await leg.send(
            "call.conversation.ended",
            reason="assistant_ended",
            duration_sec=42,
            assistant_id="assistant-d9082b56-ba2d-4ad1-a50c-58661eb1463d",
        )
        menu = leg.only_command()
        assert menu.command == "gather_using_speak"
        assert menu.body["payload"] == ANYTHING_ELSE

        finished = dialogue.requests[-1].assistant_finished
        assert (finished.reason, finished.duration_ms) == ("assistant_ended", 42000)

        await leg.send("call.hangup", hangup_cause="normal_clearing", hangup_source="caller")
        assert leg.commands() == []
        assert fake.problems == [], "every command must conform to Telnyx's spec"
        assert [r.WhichOneof("event") for r in dialogue.requests] == [
            "call_started",
            "assistant_finished",
            "call_ended",
        ]
        for request in dialogue.requests:
            assert list(request.call.capabilities) == [pb.CAPABILITY_VOICE_ASSISTANT]


async def test_the_hang_up_during_the_assistant_ends_the_dialogue() -> None:
    async with scripted_call("v3:call-assistant-hangup") as (dialogue, fake, leg):
        await leg.send("call.initiated", direction="incoming", state="parked")
        await leg.send("call.answered", state="answered")
        assert [c.command for c in leg.commands()] == ["answer", "ai_assistant_start"]
        await leg.send("call.hangup", hangup_cause="normal_clearing", hangup_source="caller")
        fake.hang_up(leg.call_control_id)
        # The conversation's end after the hang-up: the call is over, nothing goes out.
        await leg.send("call.conversation.ended", reason="customer_disconnect", duration_sec=3)
        assert leg.commands() == []
        events = [r.WhichOneof("event") for r in dialogue.requests]
        assert events[:2] == ["call_started", "call_ended"]
        assert fake.problems == []
