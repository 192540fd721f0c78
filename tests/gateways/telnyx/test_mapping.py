"""The Telnyx mapping: golden cases from `cases/`, then the properties every output must have.

A golden case is one JSON file; adding a file adds a test. Three kinds, told apart by keys:
- `webhook_*` ({"description", "webhook", "settings"?, "reaction"}): parse_webhook → react; the
  reaction's note, immediate commands, request (proto JSON) and planning context;
- `error_*` ({"description", "webhook", "error"}): parse_webhook raises, reason containing error;
- `plan_*` ({"description", "response", "context", "settings"?, "commands"}): plan_commands.

In case files a `client_state` (and `target_leg_client_state`) is written as the JSON it
encodes, not as base64, so a reader sees what the gateway remembers.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from dialogue.v1 import dialogue_pb2 as pb
from gateways.fallback import FallbackPolicy, fallback_response
from gateways.payloads import CallbackError
from gateways.telnyx import client_state, inbound, outbound, settings, values
from server.config import DEMO_FLOWS
from server.engine.catalog import load_catalog
from server.engine.interpreter import decide
from server.validation import validate_decide
from tests.gateways.telnyx import spec

CASES = Path(__file__).parent / "cases"
CASE_FILES = sorted(CASES.glob("*.json"))
_STATE_KEYS = ("client_state", "target_leg_client_state")


def _load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return case


def _files(prefix: str) -> list[Path]:
    return [path for path in CASE_FILES if path.name.startswith(prefix)]


def _encoded(state: dict[str, Any]) -> str:
    text = json.dumps(state, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _readable(commands: list[values.Command] | tuple[values.Command, ...]) -> list[Any]:
    """Commands as case files write them: [name, body] with client states decoded."""
    result = []
    for name, body in commands:
        shown = dict(body)
        for key in _STATE_KEYS:
            if key in shown:
                shown[key] = json.loads(base64.b64decode(shown[key]))
        result.append([name, shown])
    return result


def _webhook_body(case: dict[str, Any]) -> Any:
    body = json.loads(json.dumps(case["webhook"]))
    payload = body.get("data", {}).get("payload", {}) if isinstance(body, dict) else {}
    if isinstance(payload.get("client_state"), dict):
        payload["client_state"] = _encoded(payload["client_state"])
    return body


def _settings(case: dict[str, Any]) -> settings.Settings:
    return settings.Settings(**case.get("settings", {}))


def _as_json(message: Any) -> dict[str, Any]:
    result: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return result


def test_there_are_golden_cases_of_every_kind() -> None:
    kinds = {path.name.split("_")[0] for path in CASE_FILES}
    assert kinds == {"webhook", "error", "plan"}
    assert len(CASE_FILES) >= 90


@pytest.mark.parametrize("path", _files("webhook_"), ids=lambda p: p.stem)
def test_webhook_cases(path: Path) -> None:
    case = _load(path)
    assert set(case) <= {"description", "webhook", "settings", "reaction"}
    reaction = inbound.react(inbound.parse_webhook(_webhook_body(case)), _settings(case))
    expected = case["reaction"]
    assert reaction.call_control_id == expected["call_control_id"]
    assert reaction.note == expected["note"]
    assert _readable(reaction.commands) == expected["commands"]
    actual_request = _as_json(reaction.request) if reaction.request is not None else None
    assert actual_request == expected["request"]
    if reaction.request is not None:
        assert validate_decide(reaction.request) == []
        assert reaction.context is not None
        assert {
            "event_id": reaction.context.event_id,
            "call_control_id": reaction.context.call_control_id,
            "outbound": reaction.context.outbound,
        } == expected["context"]
    for name, body in reaction.commands:
        assert spec.command_problems(name, body) == [], path.name


@pytest.mark.parametrize("path", _files("webhook_"), ids=lambda p: p.stem)
def test_webhook_cases_are_shaped_like_the_spec(path: Path) -> None:
    body = _webhook_body(_load(path))
    if body["data"]["event_type"] not in spec.webhook_schema_names():
        pytest.skip("an event type the spec has no schema for")
    assert spec.webhook_problems(body) == []


@pytest.mark.parametrize("path", _files("error_"), ids=lambda p: p.stem)
def test_error_cases(path: Path) -> None:
    case = _load(path)
    with pytest.raises(CallbackError) as raised:
        inbound.parse_webhook(case["webhook"])
    assert case["error"] in raised.value.reason


@pytest.mark.parametrize("path", _files("plan_"), ids=lambda p: p.stem)
def test_plan_cases(path: Path) -> None:
    case = _load(path)
    assert set(case) <= {"description", "response", "context", "settings", "commands"}
    response = json_format.ParseDict(case["response"], pb.DecideNextActionResponse())
    context = outbound.CommandContext(
        event_id=case["context"]["event_id"],
        call_control_id=case["context"]["call_control_id"],
        outbound=case["context"].get("outbound", False),
        settings=_settings(case),
    )
    commands = outbound.plan_commands(response, context)
    assert _readable(commands) == case["commands"]
    for name, body in commands:
        assert spec.command_problems(name, body) == [], path.name


# -- every command the mapping can produce conforms to the spec ---------------------------------


def _prompts(*items: pb.Prompt, mode: int = pb.BARGE_IN_MODE_ANY) -> pb.Prompts:
    prompts = pb.Prompts(barge_in=pb.BargeIn(mode=mode))  # type: ignore[arg-type]
    prompts.items.extend(items)
    return prompts


def _tts(text: str, language: str = "en-US", voice: str = "") -> pb.Prompt:
    return pb.Prompt(tts=pb.TextToSpeech(text=text, language=language, voice=voice))


def _audio(url: str = "", media_name: str = "") -> pb.Prompt:
    audio = pb.AudioFile(url=url) if url else pb.AudioFile(media_name=media_name)
    return pb.Prompt(audio=audio)


def _prompt_shapes() -> dict[str, pb.Prompts]:
    return {
        "none": _prompts(),
        "tts": _prompts(_tts("Hello.")),
        "long_tts": _prompts(_tts("x" * 5000)),
        "zh": _prompts(_tts("您好，欢迎致电。", "zh-CN"), _tts("请按1。", "zh-CN")),
        "odd_language": _prompts(_tts("Hi", "xx-YY", "male"), mode=pb.BARGE_IN_MODE_NONE),
        "url": _prompts(_audio(url="https://media.example.com/a.wav")),
        "media": _prompts(_audio(media_name="greeting")),
        "mixed": _prompts(_audio(media_name="ding"), _tts("Hi"), _audio(url="https://x/y.mp3")),
        "blank_tts": _prompts(_tts("   ")),
    }


def _transfers() -> list[pb.Transfer]:
    return [
        pb.Transfer(phone_number="+18005550199", caller_id="+18005550100", timeout_ms=999_999),
        pb.Transfer(phone_number="not-a-number"),
        pb.Transfer(sip_uri="sip:agent@pbx.example.com"),
        pb.Transfer(skill_queue=pb.SkillQueue(access_code="18005550101")),
        pb.Transfer(skill_queue=pb.SkillQueue(name="billing")),
        pb.Transfer(agent_id="42", agent_announcement=pb.AudioFile(url="https://x/w.mp3")),
        pb.Transfer(ivr_flow="2001", agent_announcement=pb.AudioFile(media_name="whisper")),
        pb.Transfer(),
    ]


def _digit_shapes() -> list[pb.DigitCollection | None]:
    return [
        None,
        pb.DigitCollection(),
        pb.DigitCollection(min_digits=1, max_digits=1, valid_keys="*012"),
        pb.DigitCollection(min_digits=-5, max_digits=10_000, terminator="*", valid_keys="abc#"),
        pb.DigitCollection(
            min_digits=4, max_digits=4, first_digit_timeout_ms=2**31 - 1, inter_digit_timeout_ms=1
        ),
    ]


def every_response() -> list[pb.DecideNextActionResponse]:
    """Decisions of every action and shape a flow (or a fallback) can produce."""
    responses = [pb.DecideNextActionResponse(), pb.DecideNextActionResponse(dialogue_over=True)]
    for prompts in _prompt_shapes().values():
        for digits in _digit_shapes():
            for speech in (None, pb.SpeechRecognition(language="en-US", no_input_timeout_ms=1)):
                listen = pb.PlayAndListen(prompts=prompts, digits=digits, speech=speech)
                responses.append(pb.DecideNextActionResponse(play_and_listen=listen))
        responses.append(pb.DecideNextActionResponse(play=pb.Play(prompts=prompts)))
        responses.append(
            pb.DecideNextActionResponse(play_and_hang_up=pb.PlayAndHangUp(prompts=prompts))
        )
        for transfer in _transfers():
            action = pb.PlayAndTransfer(prompts=prompts, transfer=transfer)
            responses.append(pb.DecideNextActionResponse(play_and_transfer=action))
        for record in (
            pb.Record(prompts=prompts),
            pb.Record(
                prompts=prompts,
                max_duration_ms=10**9,
                end_silence_ms=1,
                beep=True,
                stop_key="##",
            ),
        ):
            responses.append(pb.DecideNextActionResponse(record=record))
    schema = outbound.struct_of({"type": "object", "properties": {"n": {"type": "number"}}})
    for gather in (
        pb.AiGather(),
        pb.AiGather(
            parameters_schema=schema,
            greeting="Hi " * 2000,
            language="he-IL",
            voice="AWS.Polly.Joanna",
            user_response_timeout_ms=1,
        ),
        pb.AiGather(language="klingon"),
    ):
        responses.append(pb.DecideNextActionResponse(ai_gather=gather))
    for wait in (0, 1, 2**31 - 1):
        responses.append(pb.DecideNextActionResponse(wait=pb.Wait(duration_ms=wait)))
    responses += [
        pb.DecideNextActionResponse(keep_playing=pb.KeepPlaying()),
        pb.DecideNextActionResponse(stop_playing=pb.StopPlaying()),
        pb.DecideNextActionResponse(end_dialogue=pb.EndDialogue(), dialogue_over=True),
    ]
    for policy in (
        FallbackPolicy(),
        FallbackPolicy(skill_queue="9999"),
        FallbackPolicy(phone_number="+18005550199"),
        FallbackPolicy(mode="hangup"),
    ):
        responses.append(fallback_response(policy, "UNAVAILABLE"))
    return responses


SETTINGS = [
    settings.Settings(),
    settings.Settings(
        default_voice="female",
        voices={"zh": "AWS.Polly.Zhiyu"},
        transfer_targets={
            "skill_queue:18005550101": "+18005550101",
            "billing": "sip:billing@pbx.example.com;transport=tls",
            "agent_id:42": "+18005550142,200",
        },
        record_format="wav",
    ),
]


@pytest.mark.parametrize("config", SETTINGS, ids=["defaults", "configured"])
@pytest.mark.parametrize("placed", [False, True])
def test_every_command_the_mapping_can_produce_conforms_to_the_spec(
    config: settings.Settings, placed: bool
) -> None:
    context = outbound.CommandContext(
        event_id="0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
        call_control_id="v3:abc",
        outbound=placed,
        settings=config,
    )
    seen: set[str] = set()
    for response in every_response():
        commands = outbound.plan_commands(response, context)
        ids = [body["command_id"] for _, body in commands]
        assert len(ids) == len(set(ids))
        for name, body in commands:
            seen.add(name)
            assert name in outbound.COMMANDS
            assert spec.command_problems(name, body) == [], (response, name, body)
            for key in _STATE_KEYS:
                if key in body:
                    state = client_state.decode_state(body[key])
                    assert state is not None
                    assert state.outbound == placed
            # What follows a prompt must itself conform once the prompt ends.
            state = client_state.decode_state(body.get("client_state"))
            if state is not None and state.kind == client_state.KIND_THEN:
                follow = _follow_up_of(state)
                seen.add(follow[0])
                assert spec.command_problems(*follow) == []
    speech_or_play = {"speak", "playback_start", "gather_using_speak", "gather_using_audio"}
    assert speech_or_play | {"transfer", "hangup", "record_start", "gather"} <= seen


def _follow_up_of(state: client_state.ClientState) -> values.Command:
    ended = inbound.Webhook(
        event_id="e2",
        event_type="call.speak.ended",
        payload={"status": "completed"},
        call_control_id="v3:abc",
        state=state,
    )
    reaction = inbound.react(ended)
    (command,) = reaction.commands
    return command


def test_every_decision_of_the_demo_flows_conforms() -> None:
    """The engine's own responses (greeting, menus, collects, transfer, hang-up) on both flows."""
    catalog = load_catalog(DEMO_FLOWS)
    context = outbound.CommandContext(event_id="e1", call_control_id="v3:abc")
    events: list[dict[str, Any]] = [
        {"call_started": {}},
        {"no_input": {}},
        {"no_match": {}},
        {"digits_entered": {"digits": "1"}},
        {"digits_entered": {"digits": "3125550123"}},
        {"digits_entered": {"digits": "2"}},
        {"playback_finished": {}},
        {"digits_entered": {"digits": "0"}},
        {"transfer_finished": {"outcome": "TRANSFER_OUTCOME_FAILED"}},
        {"call_ended": {}},
    ]
    for selector in ("+18005550100", "10086"):
        state = None
        flow = catalog.resolve(selector)
        for number, event in enumerate(events):
            request = json_format.ParseDict(
                {"request_id": f"r{number}", "call": {"call_id": "c", "flow_selector": selector}},
                pb.DecideNextActionRequest(),
            )
            json_format.ParseDict(event, request)
            decision = decide(flow, state, request, now=datetime(2026, 11, 21, 10, tzinfo=UTC))
            state = decision.state
            for name, body in outbound.plan_commands(decision.response, context):
                assert spec.command_problems(name, body) == [], (selector, event, name)


# -- properties of the webhook side ------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [None, 0, 1.5, True, "", "text", [], ["a"], {}, {"nested": [1, {"x": None}]}, 10**30],
)
@pytest.mark.parametrize("event_type", inbound.EVENT_TYPES)
def test_react_never_raises_whatever_the_payload_holds(event_type: str, value: Any) -> None:
    fields = [
        "call_control_id", "client_state", "direction", "status", "digits", "digit", "from",
        "to", "hangup_cause", "hangup_source", "sip_hangup_cause", "result", "message_history",
        "media_name", "media_url", "failure_reason", "public_recording_urls",
        "recording_started_at", "recording_ended_at", "reason",
    ]  # fmt: skip
    for field in fields:
        payload = {"call_control_id": "v3:abc", field: value}
        body = {"data": {"event_type": event_type, "id": value, "payload": payload}}
        reaction = inbound.react(inbound.parse_webhook(body))
        if reaction.request is not None:
            assert validate_decide(reaction.request) == [], (field, value)
        for name, command in reaction.commands:
            assert spec.command_problems(name, command) == []


def test_long_values_are_clipped_to_what_the_contract_accepts() -> None:
    body = {
        "data": {
            "event_type": "call.answered",
            "id": "e" * 300,
            "payload": {"call_control_id": "c" * 300, "from": "1" * 300, "to": "2" * 300},
        }
    }
    reaction = inbound.react(inbound.parse_webhook(body))
    assert reaction.request is not None
    assert validate_decide(reaction.request) == []


def test_ai_gather_results_beyond_a_struct_are_kept_as_text() -> None:
    body = {
        "data": {
            "event_type": "call.ai_gather.ended",
            "id": "e1",
            "payload": {
                "call_control_id": "v3:abc",
                "status": "valid",
                "result": {"n": 10**400},
                "client_state": _encoded({"v": 1, "k": "ai"}),
            },
        }
    }
    reaction = inbound.react(inbound.parse_webhook(body))
    assert reaction.request is not None
    assert reaction.request.ai_gather_finished.complete


# -- settings -----------------------------------------------------------------------------------


def test_every_command_the_gateway_can_send_is_one_of_the_specs() -> None:
    for command in outbound.COMMANDS:
        assert spec.command_problems(command, {}) != [
            f"{command} is not a Call Control command of the spec"
        ]
