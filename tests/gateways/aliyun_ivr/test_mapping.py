"""The Aliyun intelligent-voice mapping: golden cases from data files, plus the properties every
answer must have (envelope, documented keys only, no forbidden characters, never a crash).

A golden case is one JSON file in `cases/`; adding a file adds a test:
- parsing: {"description", "fields", "json_body", "request"} (request as proto JSON),
- bad input: {"description", "fields", "json_body", "error"} (a substring of the reason),
- rendering: {"description", "callback", "response", "settings", "answer"}.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from dialogue.v1 import dialogue_pb2 as pb
from gateways.aliyun_ivr import inbound, outbound, pending
from gateways.aliyun_ivr.inbound import (
    CONTENT_TYPES,
    REPORT_ACK,
    Callback,
    CallbackError,
    parse_callback,
    parse_reports,
    report_to_request,
    request_id,
    to_request,
)
from gateways.aliyun_ivr.outbound import (
    AnswerSettings,
    render_answer,
    render_failure,
)
from server.engine.catalog import load_catalog
from server.engine.interpreter import decide
from server.engine.state import CallState
from server.validation import validate_decide

CASES = Path(__file__).parent / "cases"
CASE_FILES = sorted(CASES.glob("*.json"))
PARSE_KEYS = {"description", "fields", "json_body", "request"}
ERROR_KEYS = {"description", "fields", "json_body", "error"}
RENDER_KEYS = {"description", "callback", "response", "settings", "answer"}

# The answer keys the vendor documents, per action (vendor doc + VENDOR-NOTES for callin). The
# response table is one table for every action: action_code is required (必须) for all, and
# mute_time may come with any answer that waits for the platform.
COMMON_KEYS = {"call_id", "action", "dynamic_id", "action_code", "mute_time"}
# Answers after which only the platform's next callback moves the call on: each must say how
# soon (mute_time), or the call could idle.
WAITING_ACTIONS = {"answer", "play", "donothing", "continue", "break"}
PROMPT_KEYS = {
    "action_code",
    "action_code_param",
    "action_break",
    "action_code_break",
    "action_code_time_break",
}
ALLOWED_KEYS = {
    "answer": COMMON_KEYS
    | PROMPT_KEYS
    | {"session_timeout", "record_flag", "asr_model_id", "asr_base_id", "mute_time"},
    "hangup": COMMON_KEYS | PROMPT_KEYS,
    "play": COMMON_KEYS | PROMPT_KEYS | {"mute_time"},
    "dtmf": COMMON_KEYS
    | PROMPT_KEYS
    | {"dtmf_nonin_overtime", "dtmf_max_numbers", "dtmf_end_character"},
    "break": COMMON_KEYS,
    "continue": COMMON_KEYS,
    "donothing": COMMON_KEYS | {"mute_time"},
    "transfer": COMMON_KEYS | PROMPT_KEYS | {"number"},
    "parallel_transfer": COMMON_KEYS | PROMPT_KEYS | {"transfer_playfile", "is_monitor", "cc_name"},
    "parallel_bridge": COMMON_KEYS,
}
CALLIN_ACTIONS = {"answer", "hangup"}
TURN_ACTIONS = set(ALLOWED_KEYS) - {"answer"}
FORBIDDEN = set('@=:"${}^*¥')
CONTRACT_ACTIONS = {
    f.name for f in pb.DecideNextActionResponse.DESCRIPTOR.oneofs_by_name["action"].fields
}
PLACEHOLDER = re.compile(r"\$(tts\d+)\$")


def _load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return case


def _cases_with(key: str) -> list[dict[str, Any]]:
    return [case for case in map(_load, CASE_FILES) if key in case]


def _as_json(message: Any) -> dict[str, Any]:
    result: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return result


def _callback(case: dict[str, Any]) -> Callback:
    return Callback(**case["callback"])


def _response(case: dict[str, Any]) -> pb.DecideNextActionResponse:
    return json_format.ParseDict(case["response"], pb.DecideNextActionResponse())


def check_answer(answer: dict[str, Any], callback: Callback) -> None:
    """What every answer must satisfy, whatever it renders."""
    assert set(answer) == {"result", "msg", "code", "data"}
    assert (answer["result"], answer["msg"], answer["code"]) == ("success", "成功", 200)
    data = answer["data"]
    assert data["call_id"] == callback.call_id
    action = data["action"]
    allowed_actions = CALLIN_ACTIONS if callback.content_type == "callin" else TURN_ACTIONS
    assert action in allowed_actions
    assert set(data) <= ALLOWED_KEYS[action], set(data) - ALLOWED_KEYS[action]
    if "mute_time" in data:
        assert isinstance(data["mute_time"], int)
        assert 1000 <= data["mute_time"] <= 20000
    for key in ("action_break", "action_code_break", "record_flag", "is_monitor"):
        if key in data:
            assert isinstance(data[key], bool)
    if action == "dtmf":
        assert 3 <= data["dtmf_nonin_overtime"] <= 60
        assert 1 <= data["dtmf_max_numbers"] <= 50
        assert data["dtmf_end_character"] in ("", "*", "#")
    # The docs mark action_code required (必须) for every answer.
    assert isinstance(data["action_code"], str)
    if action in WAITING_ACTIONS:
        assert "mute_time" in data, "an answer that waits for the platform says how long"
    if action == "play":
        assert data["action_code"], "play always has something to play"
    if action == "transfer":
        assert re.fullmatch(r"\+?\d{3,32}", data["number"])
    check_prompt_text(data)
    # What the route serialises is what was checked.
    assert json.loads(json.dumps(answer, ensure_ascii=False)) == answer


def check_prompt_text(data: dict[str, Any]) -> None:
    """action_code_param is a JSON string naming exactly the placeholders; no forbidden text."""
    code = data.get("action_code", "")
    names = PLACEHOLDER.findall(code)
    assert FORBIDDEN.isdisjoint(PLACEHOLDER.sub("", code))
    if "action_code_param" in data:
        assert isinstance(data["action_code_param"], str)
        params = json.loads(data["action_code_param"])
        assert isinstance(params, dict)
        assert list(params) == names
        for text in params.values():
            assert isinstance(text, str)
            assert text.strip()
            assert FORBIDDEN.isdisjoint(text), text
    else:
        assert names == []
    assert FORBIDDEN.isdisjoint(data.get("dynamic_id", ""))


# -- golden cases --------------------------------------------------------------------------------


def test_there_are_golden_cases() -> None:
    assert len(CASE_FILES) >= 100


@pytest.mark.parametrize("path", CASE_FILES, ids=[path.stem for path in CASE_FILES])
def test_golden_case(path: Path) -> None:
    case = _load(path)
    assert isinstance(case["description"], str)
    assert case["description"].strip()
    if "error" in case:
        assert set(case) == ERROR_KEYS
        with pytest.raises(CallbackError) as caught:
            parse_callback(case["fields"], case["json_body"])
        assert case["error"] in caught.value.reason
        assert render_failure(caught.value.reason)["msg"] == caught.value.reason
    elif "request" in case:
        assert set(case) == PARSE_KEYS
        actual = to_request(parse_callback(case["fields"], case["json_body"]))
        expected = json_format.ParseDict(case["request"], pb.DecideNextActionRequest())
        assert _as_json(actual) == _as_json(expected)
        assert validate_decide(actual) == []
    else:
        assert set(case) == RENDER_KEYS
        callback = _callback(case)
        answer = render_answer(callback, _response(case), AnswerSettings(**case["settings"]))
        assert answer == case["answer"]
        check_answer(answer, callback)


def test_parsing_cases_cover_every_content_type() -> None:
    kinds = {
        parse_callback(case["fields"], case["json_body"]).content_type
        for case in _cases_with("request")
    }
    assert kinds == set(CONTENT_TYPES)


def test_rendering_cases_cover_every_vendor_action() -> None:
    callin: set[str] = set()
    turns: set[str] = set()
    for case in _cases_with("answer"):
        target = callin if case["callback"]["content_type"] == "callin" else turns
        target.add(case["answer"]["data"]["action"])
    assert callin == CALLIN_ACTIONS
    assert turns == TURN_ACTIONS


def test_rendering_cases_cover_every_contract_action_on_callin_and_later() -> None:
    callin: set[str | None] = set()
    turns: set[str | None] = set()
    for case in _cases_with("answer"):
        target = callin if case["callback"]["content_type"] == "callin" else turns
        target.add(_response(case).WhichOneof("action"))
    everything = {*CONTRACT_ACTIONS, None}
    assert turns == everything
    # On callin, StopPlaying renders like KeepPlaying (covered by the sweep below).
    assert callin == everything - {"stop_playing"}


# -- request ids --------------------------------------------------------------------------------

FIELDS = {
    "call_id": "100001616500^100001871490",
    "timestamp": "1504174341229",
    "content_type": "normal",
    "content": '{"words":"你好","begin_offset":"1000","end_offset":"9000"}',
}


def test_request_id_is_stable_for_a_resent_callback() -> None:
    first = request_id(parse_callback(dict(FIELDS)))
    assert request_id(parse_callback(dict(FIELDS))) == first
    assert first.startswith("aliyun-ivr-")
    assert len(first) <= 128


def test_request_id_ignores_how_the_same_event_was_encoded() -> None:
    first = request_id(parse_callback(FIELDS))
    curly = {
        **FIELDS,
        "content": "{“words”: “你好”, “ begin_offset”: “1000”, “end_offset”: “9000”}",
    }
    body = {**FIELDS, "timestamp": 1504174341229, "content": json.loads(FIELDS["content"])}
    assert request_id(parse_callback(curly)) == first
    assert request_id(parse_callback({}, body)) == first


@pytest.mark.parametrize(
    "change",
    [
        {"call_id": "another-call"},
        {"timestamp": "1504174341230"},
        {"content_type": "mute"},
        {"content": '{"words":"您好","begin_offset":"1000","end_offset":"9000"}'},
        {"content": '{"words":"你好","begin_offset":"1000","end_offset":"9001"}'},
    ],
)
def test_request_id_differs_for_a_different_event(change: dict[str, str]) -> None:
    assert request_id(parse_callback({**FIELDS, **change})) != request_id(parse_callback(FIELDS))


def test_to_request_carries_the_request_id() -> None:
    callback = parse_callback(FIELDS)
    assert to_request(callback).request_id == request_id(callback)


# -- dynamic_id ---------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["main_menu-1", "a", "A_b-9" * 12 + "abcd", "bill_phone-12"])
def test_dynamic_id_round_trip(token: str) -> None:
    response = pb.DecideNextActionResponse(
        play=pb.Play(prompts=pb.Prompts(items=[pb.Prompt(tts=pb.TextToSpeech(text="好"))])),
        call_data=pb.CallData(continuation_token=token),
    )
    answer = render_answer(parse_callback(FIELDS), response, AnswerSettings())
    echoed = answer["data"]["dynamic_id"]
    following = {**FIELDS, "content_type": "mute", "content": json.dumps({"dynamic_id": echoed})}
    assert to_request(parse_callback(following)).call_data.continuation_token == token


@pytest.mark.parametrize(
    "dynamic_id", ["", " ", "a" * 65, "a b", "x:y", "<script>", "名字", "a\nb", "1=1", 42.5]
)
def test_an_untrusted_dynamic_id_is_dropped(dynamic_id: Any) -> None:
    fields = {**FIELDS, "content": json.dumps({"words": "好", "dynamic_id": dynamic_id})}
    assert to_request(parse_callback(fields)).call_data.continuation_token == ""


# -- robustness ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"words": ' + "1" * 5000 + "}",
        "{“words”: “未闭合",
        "%7B%ZZ",
        "%",
        "“”",
        "{“a”：}",
        '{"a":"\\',
        "\ufeff{}",
    ],
)
def test_hostile_content_is_a_callback_error_or_a_callback(content: str) -> None:
    try:
        callback = parse_callback({**FIELDS, "content": content})
    except CallbackError as error:
        reason = error.reason
    else:
        assert validate_decide(to_request(callback)) == []
        return
    assert "content" in reason


@pytest.mark.parametrize("kind", CONTENT_TYPES)
def test_odd_values_of_every_content_type_still_make_valid_requests(kind: str) -> None:
    content = {
        "caller": {"nested": True},
        "callee": "9" * 200,
        "words": "话" * 5000,
        "begin_offset": "-1",
        "end_offset": 10**30,
        "is_playing": "maybe",
        "current_media_code": None,
        "play_begin_time": "9" * 19,
        "play_end_time": -5,
        "dtmf_digits": "1" * 100,
        "asr_begin_time": 1,
        "status": ["x"],
        "dynamic_id": "ok-1",
    }
    request = to_request(parse_callback({**FIELDS, "content_type": kind}, {"content": content}))
    assert validate_decide(request) == []
    assert request.call_data.continuation_token == "ok-1"


def test_to_request_rejects_a_callback_built_with_an_unknown_type() -> None:
    with pytest.raises(CallbackError, match="content_type 'hangup'"):
        to_request(Callback("c", 1, "hangup", {}))


def _responses() -> Iterator[pb.DecideNextActionResponse]:
    """Every contract action, empty and with extreme or odd values."""
    for name in sorted(CONTRACT_ACTIONS):
        response = pb.DecideNextActionResponse()
        getattr(response, name).SetInParent()
        yield response
    yield pb.DecideNextActionResponse()
    nasty = '时间10:30 ¥5 $x$ {a} ^ * @ = " , ，' * 3
    prompts = pb.Prompts(
        items=[
            pb.Prompt(),
            pb.Prompt(audio=pb.AudioFile()),
            pb.Prompt(audio=pb.AudioFile(url="")),
            pb.Prompt(audio=pb.AudioFile(url="https://x.example/")),
            pb.Prompt(audio=pb.AudioFile(media_name=nasty)),
            pb.Prompt(tts=pb.TextToSpeech(text=nasty, language="en")),
            pb.Prompt(tts=pb.TextToSpeech(text="")),
        ],
        barge_in=pb.BargeIn(mode=99, min_speech_ms=-5),  # type: ignore[arg-type]
    )
    extreme = 2**31 - 1
    digits = pb.DigitCollection(
        max_digits=-3, terminator="##", first_digit_timeout_ms=extreme, min_digits=extreme
    )
    yield pb.DecideNextActionResponse(
        play_and_listen=pb.PlayAndListen(prompts=prompts, digits=digits),
        call_data=pb.CallData(continuation_token=nasty),
    )
    yield pb.DecideNextActionResponse(
        play_and_listen=pb.PlayAndListen(
            prompts=prompts, speech=pb.SpeechRecognition(no_input_timeout_ms=-extreme)
        )
    )
    yield pb.DecideNextActionResponse(wait=pb.Wait(duration_ms=-extreme))
    yield pb.DecideNextActionResponse(wait=pb.Wait(duration_ms=extreme))
    yield pb.DecideNextActionResponse(record=pb.Record(prompts=prompts, end_silence_ms=-1))
    yield pb.DecideNextActionResponse(ai_gather=pb.AiGather(greeting=nasty))
    targets: list[dict[str, Any]] = [
        {},
        {"phone_number": ""},
        {"phone_number": nasty},
        {"skill_queue": pb.SkillQueue()},
        {"skill_queue": pb.SkillQueue(name="vip")},
        {"agent_id": "7"},
        {"ivr_flow": "sales"},
        {"sip_uri": "sip:a@b"},
    ]
    for target in targets:
        for mode in (pb.TRANSFER_MODE_BLIND, pb.TRANSFER_MODE_PARALLEL, 42):
            transfer = pb.Transfer(
                mode=mode,  # type: ignore[arg-type]
                agent_announcement=pb.AudioFile(url="ftp://h/a,b.wav"),
                **target,
            )
            yield pb.DecideNextActionResponse(
                play_and_transfer=pb.PlayAndTransfer(prompts=prompts, transfer=transfer)
            )
    yield pb.DecideNextActionResponse(
        play_and_hang_up=pb.PlayAndHangUp(prompts=prompts, reason=77)  # type: ignore[arg-type]
    )


SETTINGS = [
    AnswerSettings(),
    AnswerSettings(
        session_timeout_s=-1,
        default_mute_time_ms=-1,
        cc_name="cc",
        asr_model_id="m",
        transfer_numbers={"vip": "95555", "agent_id:7": "8001", "sip_uri:sip:a@b": "x"},
    ),
]


@pytest.mark.parametrize("kind", CONTENT_TYPES)
@pytest.mark.parametrize("settings", SETTINGS, ids=["default settings", "odd settings"])
def test_every_response_renders_a_documented_answer(kind: str, settings: AnswerSettings) -> None:
    callback = Callback("call-1", 1504174341229, kind, {"status": "success"})
    for response in _responses():
        check_answer(render_answer(callback, response, settings), callback)


def test_action_code_param_is_a_json_string_built_from_the_inner_object() -> None:
    response = pb.DecideNextActionResponse(
        play=pb.Play(
            prompts=pb.Prompts(
                items=[
                    pb.Prompt(tts=pb.TextToSpeech(text='他说"你好"\\再见')),
                    pb.Prompt(tts=pb.TextToSpeech(text="第二句")),
                ]
            )
        )
    )
    data = render_answer(parse_callback(FIELDS), response, AnswerSettings())["data"]
    assert data["action_code"] == "$tts1$,$tts2$"
    assert json.loads(data["action_code_param"]) == {"tts1": "他说”你好”\\再见", "tts2": "第二句"}
    # Serialised into the answer, the param is a string with escaped quotes, like the vendor's.
    assert '"action_code_param": "{\\"tts1\\":' in json.dumps(data, ensure_ascii=False)


def test_render_failure() -> None:
    assert render_failure("call_id is required") == {
        "result": "fail",
        "msg": "call_id is required",
        "data": {},
    }


# -- a call through the demo flow ----------------------------------------------------------------


def test_a_call_walks_the_demo_flow_through_the_mapping() -> None:
    """Callbacks → requests → the real engine → answers, for one inbound call."""
    catalog = load_catalog(Path(__file__).parents[3] / "flows")
    state: CallState | None = None
    answers: list[dict[str, Any]] = []
    callbacks = [
        ("callin", '{"caller":" 8613800138000","callee":"10086","orgcallee":"10086"}'),
        ("mute", "{}"),
        ("dtmf", '{"dtmf_digits":"1"}'),
        ("dtmf", '{"dtmf_digits":"13800138000#"}'),
        ("normal", "{“words”: “没有了，再见”, “begin_offset”: “1000”, “end_offset”: “2000”}"),
    ]
    for turn, (kind, content) in enumerate(callbacks):
        token = answers[-1]["data"].get("dynamic_id", "") if answers else ""
        fields = {
            "call_id": "100001616500^100001871490",
            "timestamp": str(1504174341229 + turn * 10_000),
            "content_type": kind,
            "content": content,
        }
        if token:
            fields["dynamic_id"] = token
        callback = parse_callback(fields)
        request = to_request(callback)
        assert validate_decide(request) == []
        flow = (
            catalog.resolve(request.call.flow_selector)
            if state is None
            else catalog.flows[state.flow_id]
        )
        decision = decide(flow, state, request)
        state = decision.state
        answer = render_answer(callback, decision.response, AnswerSettings())
        check_answer(answer, callback)
        answers.append(answer)
    actions = [answer["data"]["action"] for answer in answers]
    assert actions == ["answer", "dtmf", "dtmf", "dtmf", "hangup"]
    assert answers[2]["data"]["dtmf_max_numbers"] == 11
    assert answers[2]["data"]["dtmf_end_character"] == "#"
    assert "13800138000" in answers[3]["data"]["action_code_param"]
    assert state is not None
    assert state.over


# -- call records --------------------------------------------------------------------------------

REPORT = {
    "call_id": "100001616500^100001871490",
    "start_time": "2019-01-01 10:00:00",
    "end_time": 1546308060000,
    "duration": 60,
    "status_code": "200000",
    "status_msg": "用户接听",
    "hangup_direction": "用户",
    "caller": "057100000000",
    "callee": " 8613800138000",
    "out_id": "order-1",
    "dtmf": "1",
}


def test_reports_map_to_call_ended() -> None:
    body = [REPORT, {" call_id ": "c-2", "hangup_direction": "机器"}, {"call_id": "c-3"}]
    reports = parse_reports(body)
    assert [r.call_id for r in reports] == ["100001616500^100001871490", "c-2", "c-3"]
    first = reports[0]
    assert (first.duration, first.callee, first.out_id) == ("60", "+8613800138000", "order-1")
    requests = [report_to_request(report) for report in reports]
    for request in requests:
        assert validate_decide(request) == []
        assert request.WhichOneof("event") == "call_ended"
        assert request.call.platform == pb.PLATFORM_ALIYUN_IVR
    assert [r.call_ended.hung_up_by for r in requests] == [
        pb.HANG_UP_PARTY_CALLER,
        pb.HANG_UP_PARTY_SYSTEM,
        pb.HANG_UP_PARTY_UNSPECIFIED,
    ]
    assert requests[0].call_ended.reason == "200000 用户接听"
    assert requests[0].occurred_at.ToMilliseconds() == 1546308060000
    assert not requests[2].HasField("occurred_at")


def test_duplicate_reports_make_identical_requests() -> None:
    again = json.loads(json.dumps(REPORT))
    reports = parse_reports([REPORT, again])
    assert len(reports) == 2
    first, second = (report_to_request(report) for report in reports)
    assert first.request_id == second.request_id
    assert first.SerializeToString(deterministic=True) == second.SerializeToString(
        deterministic=True
    )
    # Delivered again later, in another batch: still the same request.
    (later,) = parse_reports([again])
    assert report_to_request(later) == first
    assert first.request_id != report_to_request(parse_reports([{"call_id": "c-2"}])[0]).request_id
    assert len(first.request_id) <= 128


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"call_id": "c"}, "must be a JSON array"),
        ("[]", "must be a JSON array"),
        (None, "must be a JSON array"),
        ([1], "report [0] must be an object"),
        ([REPORT, ["c"]], "report [1] must be an object"),
        ([{"duration": 3}], "report [0] has no call_id"),
        ([{"call_id": " "}], "report [0] has no call_id"),
        ([{"call_id": "x" * 129}], "report [0] call_id is 129 characters long"),
    ],
)
def test_bad_report_bodies(body: Any, reason: str) -> None:
    with pytest.raises(CallbackError) as caught:
        parse_reports(body)
    assert reason in caught.value.reason


def test_an_empty_batch_is_no_reports() -> None:
    assert parse_reports([]) == []


def test_report_ack() -> None:
    assert REPORT_ACK == {"code": 0, "msg": "接收成功"}
    assert type(REPORT_ACK["code"]) is int


# -- purity ---------------------------------------------------------------------------------------


def test_the_mapping_is_pure() -> None:
    """No web framework, network, clock or randomness: only these imports."""
    allowed = {
        "__future__",
        "hashlib",
        "json",
        "math",
        "re",
        "collections.abc",
        "dataclasses",
        "types",
        "typing",
        "urllib.parse",
        "google.protobuf.timestamp_pb2",
        "dialogue.v1",
        "gateways.payloads",  # the shared pure JSON checks
        "common.jsontext",  # the one JSON-value-as-text rule
        "gateways.aliyun_ivr.inbound",
        "gateways.aliyun_ivr.pending",
    }
    for module in (inbound, outbound, pending):
        tree = ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))
        imported = {
            node.module if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        assert imported <= allowed, (module.__name__, imported - allowed)


# -- the call's language ------------------------------------------------------------------------


def test_an_english_call_gets_its_texts_and_no_language_field() -> None:
    """The platform has no per-answer language (docs/gateways/aliyun-ivr.md, Languages): the
    engine's texts in the call's language go out as they are, voice and ASR stay configured."""
    listen = pb.PlayAndListen(
        prompts=pb.Prompts(
            items=[
                pb.Prompt(tts=pb.TextToSpeech(text="For your bill, press 1.", language="en-US")),
                pb.Prompt(tts=pb.TextToSpeech(text="中文服务请按8。", language="zh-CN")),
            ]
        ),
        speech=pb.SpeechRecognition(language="en-US", no_input_timeout_ms=5000),
    )
    answer = render_answer(
        parse_callback(FIELDS),
        pb.DecideNextActionResponse(play_and_listen=listen),
        AnswerSettings(),
    )
    params = json.loads(answer["data"]["action_code_param"])
    assert list(params.values()) == ["For your bill, press 1.", "中文服务请按8。"]
    assert "en-US" not in json.dumps(answer)
    assert "language" not in json.dumps(answer)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('话费@100元=5:"$"{}^*¥', "话费＠100元＝5：”＄”｛｝＾＊￥"),
        ("您的话费余额为100元。", "您的话费余额为100元。"),
    ],
)
def test_tts_text_gets_look_alikes_for_the_forbidden_characters_only(text: str, said: str) -> None:
    callback = parse_callback(
        {"call_id": "c", "timestamp": "1", "content_type": "dtmf", "content": '{"dtmf_digits":"1"}'}
    )
    prompt = pb.Prompt(tts=pb.TextToSpeech(text=text))
    response = pb.DecideNextActionResponse(play=pb.Play(prompts=pb.Prompts(items=[prompt])))
    answer = outbound.render_answer(callback, response, outbound.AnswerSettings())
    assert json.loads(answer["data"]["action_code_param"]) == {"tts1": said}
