"""The Huawei ODFS mapping: golden cases from data files, plus the properties every answer must
have (envelope, documented keys only, string values, a valid model_type, never a crash).

A golden case is one JSON file in `cases/`; adding a file adds a test:
- parsing: {"description", "body", "vdn_id", "transcript", "settings", "request"} (request as
  proto JSON; transcript null or {"text"} / {"problem"}),
- bad input: {"description", "body", "settings", "error", "answer"} (error: a substring of the
  reason; answer: the 400 body),
- rendering: {"description", "body", "response", "settings", "facts", "fallback", "answer"},
- tokens: {"description", "auth", "body", "settings", "failure", "answer"} (a token issued at
  `auth.issue_at` is "$issued" in the body; checked at `auth.check_at`),
- the model_type table: {"description", "model_type_table": [{plays, digits, speech, barge_in,
  model_type}]}.
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
from gateways.huawei_odfs import inbound, outbound, protocol, settings
from gateways.huawei_odfs.inbound import (
    parse_request,
    to_request,
)
from gateways.huawei_odfs.outbound import (
    model_type,
    render_answer,
    render_auth_failure,
    render_error,
)
from gateways.huawei_odfs.protocol import (
    FLOW_RESULT_TYPES,
    INPUT_WORDS,
    OUTACTIONS,
    CallFacts,
    OdfsRequest,
    RequestError,
    Transcript,
)
from gateways.huawei_odfs.settings import Settings
from gateways.huawei_odfs.tokens import TokenIssuer
from server.engine.catalog import load_catalog
from server.engine.interpreter import decide
from server.engine.state import CallState
from server.validation import validate_decide

CASES = Path(__file__).parent / "cases"
CASE_FILES = sorted(CASES.glob("*.json"))
REQUEST_KEYS = {"description", "body", "vdn_id", "transcript", "settings", "request"}
ERROR_KEYS = {"description", "body", "settings", "error", "answer"}
ANSWER_KEYS = {"description", "body", "response", "settings", "facts", "fallback", "answer"}
AUTH_KEYS = {"description", "auth", "body", "settings", "failure", "answer"}
TABLE_KEYS = {"description", "model_type_table"}

# The outparams the vendor documents, per outaction (Tables 1, 5 and 6 of the vendor doc).
ALLOWED_KEYS = {
    9: {
        "call_id",
        "prompt_type",
        "prompt_wav",
        "prompt_text",
        "language",
        "inter_idx",
        "model_type",
        "timeout",
        "tone",
        "grammar",
        "ttsGroupId",
        "ttsSoundEffect",
        "ttsSoundSpeed",
        "ttsMRCPVendor",
        "asrMRCPId",
        "asrNoInputTimeout",
        "asrRecognitionTimeout",
        "asrSpeechCompleteTimeout",
    },
    # Table 6, with its optional voice-navigation fields.
    10: {
        "call_id",
        "call_sor_id",
        "call_dst_id",
        "start_time",
        "end_time",
        "release_reason",
        "region_id",
        "entrance_id",
        "exit_id",
        "user_type_id",
        "suilu_region_id",
    },
    11: {
        "call_id",
        "call_sor_id",
        "trans_type",
        "route_value",
        "trans_data",
        "calling_num",
        "record_path",
        "inter_idx",
    },
    # Table 4; the queue/agent id field is the settings' (skillId/agentId by default).
    12: {"call_id", "prompt_type", "inter_idx", "moduleName", "skillId", "agentId", "workNo"},
}
REQUIRED_KEYS = {
    9: {"call_id", "prompt_type", "prompt_text", "language", "inter_idx", "timeout"},
    10: {"call_id", "call_sor_id", "call_dst_id", "start_time", "end_time", "release_reason"},
    11: {"call_id", "call_sor_id", "trans_type", "route_value", "inter_idx"},
    12: {"call_id", "prompt_type", "inter_idx", "moduleName"},
}
MODEL_TYPE = re.compile(r"(100|101|110|120|122|111|102)\d\d[01][01]")
CONTRACT_ACTIONS = {
    f.name for f in pb.DecideNextActionResponse.DESCRIPTOR.oneofs_by_name["action"].fields
}
DEMO_FLOWS = Path(__file__).parents[3] / "flows"


def _load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return case


def _cases_with(key: str) -> list[dict[str, Any]]:
    return [case for case in map(_load, CASE_FILES) if key in case]


def _settings(raw: dict[str, Any]) -> Settings:
    values = dict(raw)
    if "transfer_success" in values:
        values["transfer_success"] = frozenset(values["transfer_success"])
    return Settings(**values)


def _as_json(message: Any) -> dict[str, Any]:
    result: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return result


def _response(raw: dict[str, Any]) -> pb.DecideNextActionResponse:
    return json_format.ParseDict(raw, pb.DecideNextActionResponse())


def _transcript(raw: dict[str, Any] | None) -> Transcript | None:
    return None if raw is None else Transcript(**raw)


def check_answer(answer: dict[str, Any], request: OdfsRequest, settings: Settings) -> None:
    """What every answer must satisfy, whatever it renders."""
    assert list(answer) == ["ret", "userid", "outaction", "outparams"]
    code_type = str if settings.string_codes else int
    assert type(answer["ret"]) is code_type
    assert type(answer["outaction"]) is code_type
    assert int(answer["ret"]) == 0
    assert answer["userid"] == request.userid
    outaction = int(answer["outaction"])
    assert outaction in OUTACTIONS
    params = answer["outparams"]
    assert all(isinstance(value, str) for value in params.values()), params
    assert set(params) <= ALLOWED_KEYS[outaction], set(params) - ALLOWED_KEYS[outaction]
    assert set(params) >= REQUIRED_KEYS[outaction], REQUIRED_KEYS[outaction] - set(params)
    assert params["call_id"] == request.userid
    if outaction == 9:
        _check_interaction(params)
    elif outaction == 10:
        assert params["release_reason"] in ("0", "1")
    elif outaction == 12:
        assert params["prompt_type"] in ("1", "2", "3")
    else:
        assert params["trans_type"] in ("1", "2", "3", "4", "5")
        assert params["route_value"].strip()
        if params["trans_type"] == "5":
            assert re.fullmatch(r"\+?\d{3,32}", params["route_value"])
    if "inter_idx" in params:
        assert re.fullmatch(r"[1-9]\d*", params["inter_idx"])
    # The end of a call is the vendor's: always 10.
    if request.is_hangup:
        assert outaction == 10
    # What the route serialises is what was checked.
    assert json.loads(json.dumps(answer, ensure_ascii=False)) == answer


def _check_interaction(params: dict[str, str]) -> None:
    kind = params["prompt_type"]
    assert kind in ("0", "1", "2", "4")
    assert params["language"] in ("0", "1")
    assert re.fullmatch(r"\d{1,3}", params["timeout"])
    if kind == "4":
        assert params["prompt_wav"].endswith(".wav")
        assert params["tone"] in ("true", "false")
        assert "model_type" not in params
        return
    # Only the heads the document lists, and every interaction plays something real.
    assert MODEL_TYPE.fullmatch(params["model_type"]), params["model_type"]
    assert params["prompt_wav"] or params["prompt_text"]
    if kind == "2":
        assert params["prompt_text"].strip()
    listens = params["model_type"][1:3] != "00"
    assert (params["timeout"] != "0") == listens
    if kind == "1":
        assert params["prompt_wav"]
        assert not re.search(r"[/\\:]", params["prompt_wav"])
    elif kind == "0":
        assert params["prompt_wav"]
    else:
        assert params["prompt_wav"] == ""
    if params["model_type"][1] == "0":
        assert not any(key.startswith("asr") for key in params)
        assert params["grammar"] == ""


# -- golden cases --------------------------------------------------------------------------------


def test_there_are_golden_cases() -> None:
    assert len(CASE_FILES) >= 140


@pytest.mark.parametrize("path", CASE_FILES, ids=[path.stem for path in CASE_FILES])
def test_golden_case(path: Path) -> None:
    case = _load(path)
    assert isinstance(case["description"], str)
    assert case["description"].strip()
    if "model_type_table" in case:
        assert set(case) == TABLE_KEYS
        _check_model_type_table(case["model_type_table"])
    elif "auth" in case:
        assert set(case) == AUTH_KEYS
        _check_auth_case(case)
    elif "error" in case:
        assert set(case) == ERROR_KEYS
        with pytest.raises(RequestError) as caught:
            parse_request(case["body"])
        assert case["error"] in caught.value.reason
        settings = _settings(case["settings"])
        assert render_error(caught.value.reason, caught.value.userid, settings) == case["answer"]
    elif "request" in case:
        assert set(case) == REQUEST_KEYS
        parsed = parse_request(case["body"], case["vdn_id"])
        actual = to_request(parsed, _settings(case["settings"]), _transcript(case["transcript"]))
        expected = json_format.ParseDict(case["request"], pb.DecideNextActionRequest())
        assert _as_json(actual) == _as_json(expected)
        assert validate_decide(actual) == []
    else:
        assert set(case) == ANSWER_KEYS
        parsed = parse_request(case["body"])
        settings = _settings(case["settings"])
        answer = render_answer(
            parsed,
            _response(case["response"]),
            settings,
            CallFacts(**case["facts"]),
            fallback=case["fallback"],
        )
        assert answer == case["answer"]
        check_answer(answer, parsed, settings)


def _check_model_type_table(rows: list[dict[str, Any]]) -> None:
    assert rows
    for row in rows:
        digits = (
            None
            if row["digits"] is None
            else json_format.ParseDict(row["digits"], pb.DigitCollection())
        )
        speech = (
            None
            if row["speech"] is None
            else json_format.ParseDict(row["speech"], pb.SpeechRecognition())
        )
        barge_in = pb.BargeIn(mode=pb.BargeInMode.Value(row["barge_in"]))
        encoded = model_type(plays=row["plays"], digits=digits, speech=speech, barge_in=barge_in)
        assert encoded == row["model_type"], row
        # Without something to play (never rendered: the filler plays) the head is 0xx.
        assert MODEL_TYPE.fullmatch(encoded) or not row["plays"]
    # Every value of every digit appears in the table.
    for position, values in enumerate(["01", "012", "012", None, None, "01", "01"]):
        if values is not None:
            assert {row["model_type"][position] for row in rows} == set(values), position


def _check_auth_case(case: dict[str, Any]) -> None:
    auth = case["auth"]
    now = [0.0]
    issuer = TokenIssuer(
        app_key=auth.get("app_key", ""),
        app_secret=auth.get("app_secret", ""),
        static_tokens=auth.get("static_tokens", []),
        ttl_s=auth.get("ttl_s", 3600),
        clock=lambda: now[0],
    )
    token = ""
    if auth.get("issue_at") is not None:
        now[0] = auth["issue_at"]
        token = issuer.issue(auth["app_key"], auth["app_secret"])
    now[0] = auth["check_at"]
    parsed = parse_request(json.loads(json.dumps(case["body"]).replace("$issued", token)))
    failure = issuer.check(parsed.auth_token)
    if case["failure"] is None:
        assert failure is None
        assert case["answer"] is None
        return
    assert failure is not None
    assert {"code": failure.code, "reason": failure.reason} == case["failure"]
    settings = _settings(case["settings"])
    answer = render_auth_failure(failure.code, failure.reason, parsed.userid, settings)
    assert answer == case["answer"]


def test_parsing_cases_cover_every_result_type_input_and_inaction() -> None:
    parsed = [parse_request(case["body"], case["vdn_id"]) for case in _cases_with("request")]
    assert {p.flow_result_type for p in parsed} >= set(FLOW_RESULT_TYPES)
    assert {p.input_word for p in parsed} >= set(INPUT_WORDS)
    assert {p.inaction for p in parsed} >= {8, 9, 11}
    events = {to_request(p, Settings()).WhichOneof("event") for p in parsed if p.inaction != 8} | {
        "call_started"
    }
    # Everything Huawei can report; barge-in, AI gather and playback state it cannot.
    assert events == {
        "call_started",
        "speech_recognized",
        "digits_entered",
        "no_input",
        "no_match",
        "playback_finished",
        "recording_finished",
        "transfer_finished",
        "call_ended",
        "platform_error",
        "queue_status_reported",
    }


def test_rendering_cases_cover_every_contract_action_and_outaction() -> None:
    cases = _cases_with("response")
    actions = {_response(case["response"]).WhichOneof("action") for case in cases}
    assert actions == {*CONTRACT_ACTIONS, None}
    assert {int(case["answer"]["outaction"]) for case in cases} == set(OUTACTIONS)
    prompt_types = {
        case["answer"]["outparams"].get("prompt_type")
        for case in cases
        if int(case["answer"]["outaction"]) == 9
    }
    assert prompt_types == {"0", "1", "2", "4"}
    trans_types = {
        case["answer"]["outparams"]["trans_type"]
        for case in cases
        if int(case["answer"]["outaction"]) == 11
    }
    assert trans_types == {"1", "2", "3", "4", "5"}


def test_auth_cases_cover_both_codes_and_acceptance() -> None:
    failures = {None if c["failure"] is None else c["failure"]["code"] for c in _cases_with("auth")}
    assert failures == {None, protocol.RET_NO_TOKEN, protocol.RET_BAD_TOKEN}


# -- request ids --------------------------------------------------------------------------------

TURN: dict[str, Any] = {
    "userid": "1528780879-9581",
    "inaction": 9,
    "inparams": {
        "call_id": "1528780879-9581",
        "call_dst_id": "10086",
        "flow_result_type": "2",
        "input": "1",
        "inter_idx": "3",
        "result_time": "2018090407:16:31",
        "auth_token": "t1",
    },
}


def _responses() -> Iterator[pb.DecideNextActionResponse]:
    """Every contract action, empty and with extreme or odd values."""
    for name in sorted(CONTRACT_ACTIONS):
        response = pb.DecideNextActionResponse()
        getattr(response, name).SetInParent()
        yield response
    yield pb.DecideNextActionResponse()
    prompts = pb.Prompts(
        items=[
            pb.Prompt(),
            pb.Prompt(audio=pb.AudioFile()),
            pb.Prompt(audio=pb.AudioFile(url="")),
            pb.Prompt(audio=pb.AudioFile(media_name="a/b.wav")),
            pb.Prompt(tts=pb.TextToSpeech(text="", language="en")),
            pb.Prompt(
                tts=pb.TextToSpeech(text='时间10:30 ¥5 "x" {a}', voice="?", speed=float("nan"))
            ),
        ],
        barge_in=pb.BargeIn(mode=99, min_speech_ms=-5),  # type: ignore[arg-type]
    )
    extreme = 2**31 - 1
    digits = pb.DigitCollection(
        max_digits=-3, terminator="##", first_digit_timeout_ms=extreme, cancel_key="**"
    )
    speech = pb.SpeechRecognition(
        no_input_timeout_ms=-extreme, end_silence_timeout_ms=extreme, max_duration_ms=-1
    )
    yield pb.DecideNextActionResponse(
        play_and_listen=pb.PlayAndListen(prompts=prompts, digits=digits, speech=speech)
    )
    yield pb.DecideNextActionResponse(play_and_listen=pb.PlayAndListen(speech=speech))
    yield pb.DecideNextActionResponse(wait=pb.Wait(duration_ms=-extreme))
    yield pb.DecideNextActionResponse(wait=pb.Wait(duration_ms=extreme))
    yield pb.DecideNextActionResponse(record=pb.Record(prompts=prompts, max_duration_ms=-1))
    yield pb.DecideNextActionResponse(record=pb.Record(max_duration_ms=extreme))
    yield pb.DecideNextActionResponse(ai_gather=pb.AiGather(greeting="x", language="en"))
    targets: list[dict[str, Any]] = [
        {},
        {"phone_number": ""},
        {"phone_number": "call me"},
        {"skill_queue": pb.SkillQueue()},
        {"skill_queue": pb.SkillQueue(name=" ")},
        {"agent_id": "7"},
        {"ivr_flow": " "},
        {"sip_uri": "sip:a@b"},
        {"sip_uri": "tel:+8610086"},
        {"sip_uri": "http://x"},
    ]
    for target in targets:
        for items in (pb.Prompts(), prompts):
            transfer = pb.Transfer(
                mode=42,  # type: ignore[arg-type]
                caller_id=" ",
                associated_data={"k": "值"},
                **target,
            )
            yield pb.DecideNextActionResponse(
                play_and_transfer=pb.PlayAndTransfer(prompts=items, transfer=transfer)
            )
    for reason in (pb.HANG_UP_REASON_FAILED, 77):
        yield pb.DecideNextActionResponse(
            play_and_hang_up=pb.PlayAndHangUp(reason=reason)  # type: ignore[arg-type]
        )


REQUESTS = [
    {"userid": "c-1", "inaction": 8, "inparams": {"call_id": "c-1", "call_dst_id": "10086"}},
    {**TURN, "inparams": {**TURN["inparams"], "flow_result_type": "1", "input": "人工"}},
    {**TURN, "inparams": {**TURN["inparams"], "flow_result_type": "3", "input": "playover"}},
    {**TURN, "inparams": {**TURN["inparams"], "input": "hangup"}},
    {"userid": "c-1", "inaction": 11, "inparams": {"trans_result": "0"}},
    {"userid": "c-1", "inaction": 11, "inparams": {"trans_result": "1"}},
    {"userid": "c-1", "inaction": 11, "inparams": {"input": "hangup"}},
]
SETTINGS = [
    Settings(),
    Settings(
        string_codes=True,
        transfer_success=frozenset({"1"}),
        record_dir="",
        record_transfers=True,
        trans_data="json",
        asr_timeout_unit="ms",
        grammar="g",
        tts_group_id="1",
        tts_mrcp_vendor="v" * 50,
        asr_mrcp_id="2",
    ),
]


@pytest.mark.parametrize(
    "body", REQUESTS, ids=lambda body: f"{body['inaction']}-{body['inparams'].get('input', '')}"
)
@pytest.mark.parametrize("settings", SETTINGS, ids=["default settings", "odd settings"])
@pytest.mark.parametrize("fallback", [False, True], ids=["decision", "fallback"])
def test_every_response_renders_a_documented_answer(
    body: dict[str, Any], settings: Settings, fallback: bool
) -> None:
    parsed = parse_request(body)
    facts = CallFacts(start_time="s", end_time="e", call_sor_id="13500000001")
    for response in _responses():
        check_answer(
            render_answer(parsed, response, settings, facts, fallback=fallback), parsed, settings
        )


def test_a_successful_transfer_report_is_answered_10_whatever_was_decided() -> None:
    parsed = parse_request(REQUESTS[4])
    for response in _responses():
        assert render_answer(parsed, response, Settings())["outaction"] == 10


def test_render_error_and_auth_failure() -> None:
    assert render_error("inparams is required", "c-1", Settings()) == {
        "ret": -1,
        "userid": "c-1",
        "errorMsg": "inparams is required",
    }
    assert render_auth_failure(900002, "no", "c-1", Settings(string_codes=True))["ret"] == "900002"


# -- a call through the demo flow ----------------------------------------------------------------


def test_a_call_walks_the_demo_flow_through_the_mapping() -> None:
    """Requests → the real engine → answers, for one inbound call, by keys and voice to an agent."""
    catalog = load_catalog(DEMO_FLOWS)
    state: CallState | None = None
    call = "1528780879-9581"
    common = {"call_id": call, "call_dst_id": "10086"}
    steps: list[tuple[int, dict[str, str]]] = [
        (8, {"call_sor_id": "13500000001"}),
        (9, {"flow_result_type": "2", "input": "1"}),
        (9, {"flow_result_type": "2", "input": "13800138000#"}),
        (9, {"flow_result_type": "1", "input": "我要转人工"}),
        (12, {"queueIndex": "2"}),  # answers the queue query
        (9, {"flow_result_type": "3", "input": "playover"}),
        (11, {"trans_result": "0"}),
        (11, {"input": "hangup"}),
    ]
    answers: list[dict[str, Any]] = []
    echoed: dict[str, str] = {}
    for inaction, inparams in steps:
        extparams = {"transin_data": "95,22714"} if inaction == 8 else {}
        body = {
            "userid": call,
            "inaction": inaction,
            "inparams": {**common, **echoed, **inparams},
            "extparams": extparams,
        }
        parsed = parse_request(body)
        request = to_request(parsed, Settings())
        assert validate_decide(request) == []
        flow = (
            catalog.resolve(request.call.flow_selector)
            if state is None
            else catalog.flows.get(state.flow_id)
        )
        decision = decide(flow, state, request)
        state = decision.state
        answer = render_answer(parsed, decision.response, Settings())
        check_answer(answer, parsed, Settings())
        answers.append(answer)
        # The IVR echoes the last inter_idx it was given (outaction=10 has none).
        if "inter_idx" in answer["outparams"]:
            echoed = {"inter_idx": answer["outparams"]["inter_idx"]}
    assert [a["outaction"] for a in answers] == [9, 9, 9, 12, 9, 11, 10, 10]
    assert "欢迎致电" in answers[0]["outparams"]["prompt_text"]
    assert answers[1]["outparams"]["model_type"] == "1111101"
    assert "13800138000" in answers[2]["outparams"]["prompt_text"]
    assert answers[3]["outparams"]["prompt_type"] == "2"  # the skill queue's figures, by its id
    assert "您前面还有2位" in answers[4]["outparams"]["prompt_text"]
    assert answers[4]["outparams"]["model_type"] == "1000000"
    transfer = answers[5]["outparams"]
    assert (transfer["trans_type"], transfer["route_value"]) == ("1", "10086001")
    assert transfer["call_sor_id"] == "13500000001"
    assert json.loads(transfer["trans_data"])["transin_data"] == "95,22714"
    assert state is not None
    assert state.over


def test_the_doc_names_every_contract_action() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "gateways" / "huawei-odfs.md").read_text("utf-8")
    fields = pb.DecideNextActionResponse.DESCRIPTOR.oneofs_by_name["action"].fields
    names = [f.message_type.name for f in fields if f.message_type is not None]
    assert len(names) == len(CONTRACT_ACTIONS)
    assert [name for name in names if name not in doc] == []


# -- purity ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [protocol, settings, inbound, outbound])
def test_the_mapping_is_pure(module: Any) -> None:
    """No web framework, network, clock or randomness: only these imports."""
    allowed = {
        "__future__",
        "hashlib",
        "json",
        "math",
        "re",
        "collections.abc",
        "dataclasses",
        "typing",
        "urllib.parse",
        "dialogue.v1",
        "common.jsontext",
        "common.settings",
        "gateways.payloads",  # the shared pure JSON checks and CallbackError
        "gateways.huawei_odfs.protocol",
        "gateways.huawei_odfs.settings",
        "gateways.huawei_odfs.inbound",
    }
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= allowed, imported - allowed


# -- promises -------------------------------------------------------------------------------------


def _announced(action: str) -> pb.DecideNextActionResponse:
    prompts = pb.Prompts()
    prompts.items.add().tts.text = "请稍候。"
    queue = pb.Transfer(skill_queue=pb.SkillQueue(access_code="10086001"))
    responses = {
        "transfer": pb.DecideNextActionResponse(
            play_and_transfer=pb.PlayAndTransfer(prompts=prompts, transfer=queue)
        ),
        "hang_up": pb.DecideNextActionResponse(play_and_hang_up=pb.PlayAndHangUp(prompts=prompts)),
        "record": pb.DecideNextActionResponse(record=pb.Record(prompts=prompts)),
        "query": pb.DecideNextActionResponse(query_queue=pb.QueryQueue(agent_id="1001")),
        "assistant": pb.DecideNextActionResponse(
            hand_to_assistant=pb.HandToAssistant(assistant_id="a")
        ),
    }
    return responses[action]


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        ("transfer", protocol.PENDING_FINAL),
        ("hang_up", protocol.PENDING_FINAL),
        ("record", protocol.PENDING_RECORD),
        ("query", protocol.PENDING_QUERY),
        ("assistant", protocol.PENDING_ASSISTANT),
    ],
)
def test_what_an_answer_promises(action: str, kind: str) -> None:
    parsed = parse_request(TURN)
    response = _announced(action)
    answer = render_answer(parsed, response, Settings())
    promise = outbound.promise_of(parsed, "r1", response, answer)
    assert promise is not None
    assert (promise.kind, promise.origin) == (kind, "r1")
    assert not promise.applies_to("r1")
    assert promise.applies_to("r2")


def test_a_plain_listen_or_a_final_outaction_promises_nothing() -> None:
    parsed = parse_request(TURN)
    for response in (
        _responses_listen(),
        pb.DecideNextActionResponse(end_dialogue=pb.EndDialogue()),
    ):
        answer = render_answer(parsed, response, Settings())
        assert outbound.promise_of(parsed, "r1", response, answer) is None


def _responses_listen() -> pb.DecideNextActionResponse:
    return pb.DecideNextActionResponse(
        play_and_listen=pb.PlayAndListen(digits=pb.DigitCollection())
    )


@pytest.mark.parametrize("decided", ["keep_playing", "menu", "nothing"])
def test_a_kept_promise_wins_over_whatever_was_decided(decided: str) -> None:
    parsed = parse_request({**TURN, "inparams": {**TURN["inparams"], "input": "sys_err"}})
    responses = {
        "keep_playing": pb.DecideNextActionResponse(keep_playing=pb.KeepPlaying()),
        "menu": _responses_listen(),
        "nothing": pb.DecideNextActionResponse(),
    }
    for action, outaction, prompt_type in (("transfer", 11, None), ("record", 9, "4")):
        kind = protocol.PENDING_RECORD if action == "record" else protocol.PENDING_FINAL
        pending = protocol.Pending(kind, "r1", _announced(action))
        answer = render_answer(parsed, responses[decided], Settings(), CallFacts(pending=pending))
        assert answer["outaction"] == outaction
        assert answer["outparams"].get("prompt_type") == prompt_type
    failed = protocol.Pending(protocol.PENDING_FINAL, "r1", _announced("hang_up"), failed=True)
    answer = render_answer(parsed, responses[decided], Settings(), CallFacts(pending=failed))
    assert (answer["outaction"], answer["outparams"]["release_reason"]) == (10, "1")


# -- the call's language -------------------------------------------------------------------------


def _tts(text: str, language: str) -> pb.Prompt:
    return pb.Prompt(tts=pb.TextToSpeech(text=text, language=language))


@pytest.mark.parametrize(
    ("first_prompt", "recognise", "expected"),
    [
        # An English call's menu ends with 中文服务请按8 in Chinese: the caller answers in English.
        (_tts("For your bill, press 1.", "en-US"), "en-US", "1"),
        # A Chinese call's menu may open with "For English, press 9": recognise Chinese.
        (_tts("For English, press 9.", "en-US"), "zh-CN", "0"),
    ],
)
def test_a_listening_step_recognises_the_calls_language(
    first_prompt: pb.Prompt, recognise: str, expected: str
) -> None:
    listen = pb.PlayAndListen(
        prompts=pb.Prompts(items=[first_prompt, _tts("中文服务请按8。", "zh-CN")]),
        speech=pb.SpeechRecognition(language=recognise, no_input_timeout_ms=5000),
    )
    answer = render_answer(
        parse_request(REQUESTS[1]), pb.DecideNextActionResponse(play_and_listen=listen), Settings()
    )
    assert answer["outaction"] == 9
    assert answer["outparams"]["language"] == expected


def test_a_step_that_only_plays_speaks_in_its_prompts_language() -> None:
    play = pb.Play(prompts=pb.Prompts(items=[_tts("Please hold.", "en-US")]))
    answer = render_answer(
        parse_request(REQUESTS[1]), pb.DecideNextActionResponse(play=play), Settings()
    )
    assert answer["outparams"]["language"] == "1"
