"""Decisions out: the issue-15 renderings, each body checked against Telnyx's spec."""

from __future__ import annotations

from dialogue.v1 import dialogue_pb2 as pb
from gateways.telnyx import client_state, outbound, settings
from tests.gateways.telnyx import spec

CONTEXT = outbound.CommandContext(event_id="e-1", call_control_id="v3:abc")


def _plan(
    response: pb.DecideNextActionResponse, context: outbound.CommandContext = CONTEXT
) -> list[tuple[str, dict[str, object]]]:
    commands = outbound.plan_commands(response, context)
    for name, body in commands:
        assert name in outbound.COMMANDS
        assert spec.command_problems(name, body) == [], (name, body)
    return commands


def _tts(text: str, language: str = "en-US") -> pb.Prompts:
    prompts = pb.Prompts()
    prompts.items.add().tts.CopyFrom(pb.TextToSpeech(text=text, language=language))
    return prompts


def test_hand_to_assistant_starts_the_assistant_and_marks_the_hand_off() -> None:
    hand = pb.HandToAssistant(assistant_id="assistant-1", context={"account": "42"})
    [(name, body)] = _plan(pb.DecideNextActionResponse(hand_to_assistant=hand))
    assert name == "ai_assistant_start"
    assert body["assistant"] == {"id": "assistant-1", "dynamic_variables": {"account": "42"}}
    state = client_state.decode_state(body["client_state"])
    assert state is not None
    assert state.kind == client_state.KIND_ASSISTANT


def test_without_an_assistant_id_the_setting_or_its_placeholder_is_used() -> None:
    response = pb.DecideNextActionResponse(hand_to_assistant=pb.HandToAssistant())
    [(_, body)] = _plan(response)
    assert body["assistant"] == {"id": settings.PLACEHOLDER_ASSISTANT_ID}
    configured = outbound.CommandContext("e-1", settings=settings.Settings(assistant_id="a-9"))
    [(_, body)] = _plan(response, configured)
    assert body["assistant"] == {"id": "a-9"}


def test_an_assistant_already_on_the_call_is_told_not_started_twice() -> None:
    running = outbound.CommandContext("e-1", running=outbound.RUNNING_ASSISTANT)
    hand = pb.HandToAssistant(assistant_id="a", instructions="Offer the new plan.")
    [(name, body)] = _plan(pb.DecideNextActionResponse(hand_to_assistant=hand), running)
    assert name == "ai_assistant_add_messages"
    assert body["messages"] == [{"role": "system", "content": "Offer the new plan."}]
    # Any other decision takes the call back from the assistant first.
    play = pb.DecideNextActionResponse(play=pb.Play(prompts=_tts("Back to the menu.")))
    assert [name for name, _ in _plan(play, running)] == ["ai_assistant_stop", "speak"]


def test_a_spoken_answer_stops_the_key_gather_first() -> None:
    heard = outbound.CommandContext("e-1", running=outbound.RUNNING_GATHER, transcribing=True)
    listen = pb.PlayAndListen(
        prompts=_tts("Which day?"), speech=pb.SpeechRecognition(language="en-US")
    )
    commands = _plan(pb.DecideNextActionResponse(play_and_listen=listen), heard)
    # Transcription runs already: it is not started again (Telnyx would refuse: 90054).
    assert [name for name, _ in commands] == ["gather_stop", "gather_using_speak"]


def test_transcription_follows_the_calls_language() -> None:
    def listen(language: str) -> pb.DecideNextActionResponse:
        return pb.DecideNextActionResponse(
            play_and_listen=pb.PlayAndListen(
                prompts=_tts("Menu."), speech=pb.SpeechRecognition(language=language)
            )
        )

    first = _plan(listen("zh-CN"))
    assert [name for name, _ in first] == ["transcription_start", "gather_using_speak"]
    assert first[0][1]["transcription_engine_config"] == {
        "transcription_engine": "Google",
        "interim_results": False,
        "language": "zh",
    }
    state = client_state.decode_state(first[1][1]["client_state"])
    assert state is not None
    assert (state.transcribing, state.transcription_language) == (True, "zh")
    running = outbound.CommandContext("e-2", transcribing=True, transcription_language="zh")
    # The same language: transcription goes on.
    assert [name for name, _ in _plan(listen("zh-CN"), running)] == ["gather_using_speak"]
    # The call switched to English ("For English, press 9"): stopped, then started in it.
    switched = _plan(listen("en-US"), running)
    assert [name for name, _ in switched] == [
        "transcription_stop",
        "transcription_start",
        "gather_using_speak",
    ]
    assert switched[1][1]["transcription_engine_config"] == {
        "transcription_engine": "Google",
        "interim_results": False,
        "language": "en",
    }
    after = client_state.decode_state(switched[2][1]["client_state"])
    assert after is not None
    assert after.transcription_language == "en"
    # A state from before languages were kept: the running transcription stays.
    unknown = outbound.CommandContext("e-3", transcribing=True)
    assert [name for name, _ in _plan(listen("en-US"), unknown)] == ["gather_using_speak"]


def test_query_queue_is_a_short_timer_reported_back_with_unknown_figures() -> None:
    response = pb.DecideNextActionResponse(query_queue=pb.QueryQueue(skill_queue="q1"))
    [(name, body)] = _plan(response)
    assert name == "gather"
    assert body["initial_timeout_millis"] == outbound.QUEUE_WAIT_MS
    state = client_state.decode_state(body["client_state"])
    assert state is not None
    assert state.kind == client_state.KIND_QUEUE


def test_a_client_state_is_never_written_longer_than_it_is_read() -> None:
    long_url = "https://media.example.com/" + "a" * 3500 + ".mp3"
    transfer = pb.Transfer(phone_number="+18005550101")
    transfer.agent_announcement.url = long_url
    response = pb.DecideNextActionResponse(
        play_and_transfer=pb.PlayAndTransfer(prompts=_tts("Please hold."), transfer=transfer)
    )
    [(name, body)] = _plan(response)
    assert name == "speak"
    assert client_state.fits(str(body["client_state"]))
    state = client_state.decode_state(body["client_state"])
    assert state is not None
    assert state.next_command == "transfer"
    assert "audio_url" not in state.next_body  # the announcement is left out, the transfer kept
    # The longest destination Telnyx can dial, with the long announcement: still small enough.
    sip = pb.Transfer(sip_uri="sip:" + "x" * 490 + "@pbx.example.com")
    sip.agent_announcement.url = long_url
    response = pb.DecideNextActionResponse(
        play_and_transfer=pb.PlayAndTransfer(prompts=_tts("Please hold."), transfer=sip)
    )
    [(_, body)] = _plan(response)
    assert client_state.fits(str(body["client_state"]))


def test_a_chinese_prompt_gets_a_voice_that_speaks_chinese() -> None:
    response = pb.DecideNextActionResponse(play=pb.Play(prompts=_tts("您好", "zh-CN")))
    [(_, body)] = _plan(response)
    assert (body["voice"], body["language"]) == ("AWS.Polly.Zhiyu-Neural", "cmn-CN")
