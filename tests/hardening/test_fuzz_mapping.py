"""Property-based fuzzing of every gateway's pure mapping.

Parsing: whatever arrives (random, truncated, oversized, wrongly typed, lone surrogates, nested
thousands deep), the parse functions raise only their documented error, and what they accept
maps to a request the server accepts. Rendering: any response the contract allows renders to a
valid vendor answer and never raises. The answer checks are the vendor tests' own.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from dialogue.v1 import dialogue_pb2 as pb
from gateways.aliyun_ccc import inbound as ccc
from gateways.aliyun_ccc import outbound as ccc_out
from gateways.aliyun_ccc import signature as ccc_signature
from gateways.aliyun_ivr import inbound as ivr
from gateways.aliyun_ivr import outbound as ivr_out
from gateways.huawei_odfs import inbound as huawei_inbound
from gateways.huawei_odfs import outbound as huawei_outbound
from gateways.huawei_odfs import protocol as huawei_protocol
from gateways.huawei_odfs import settings as huawei_settings
from gateways.huawei_odfs.tokens import CredentialsError, TokenIssuer
from gateways.payloads import CallbackError
from gateways.telnyx import client_state as telnyx_client_state
from gateways.telnyx import inbound as telnyx_inbound
from gateways.telnyx import outbound as telnyx_outbound
from gateways.telnyx import settings as telnyx_settings
from gateways.telnyx import signature as telnyx_signature
from server.validation import validate_decide
from tests.gateways.aliyun_ivr.test_mapping import check_answer as check_ivr_answer
from tests.gateways.huawei_odfs.test_outbound import check_answer as check_huawei_answer
from tests.gateways.telnyx import spec
from tests.hardening import vendor_inputs as inputs
from tests.hardening.strategies import (
    bounded,
    hostile_text,
    proto_text,
    responses,
    shallow_json,
    unicode_text,
)

# Examples per property: enough to reach every branch the strategies steer at, few enough that
# the whole file runs in seconds on a slow machine.
PARSE_EXAMPLES = 400
RENDER_EXAMPLES = 300


def assert_acceptable(request: pb.DecideNextActionRequest) -> None:
    """What every mapped request must be: one the server takes, and serialisable."""
    assert validate_decide(request) == [], request
    assert request.request_id
    request.SerializeToString()


def refused(reason: str) -> None:
    """A refusal must say why; its first words are counted in the statistics."""
    assert reason.strip()
    event("refused: " + " ".join(reason.split()[:2]))


def assert_failure_answer(answer: dict[str, Any]) -> None:
    """The vendor's failure answer carries the reason."""
    assert answer.get("msg") or answer.get("errorMsg"), answer
    assert answer.get("result", "fail") == "fail"


# -- Aliyun intelligent voice -----------------------------------------------------------------


@bounded(PARSE_EXAMPLES)
@given(fields=inputs.ivr_fields, body=inputs.ivr_json_body)
def test_ivr_callbacks_parse_or_raise_callback_error(fields: dict[str, str], body: Any) -> None:
    try:
        callback = ivr.parse_callback(fields, body)
    except ivr.CallbackError as error:
        refused(error.reason)
        assert_failure_answer(ivr_out.render_failure(error.reason))
        return
    event(f"mapped {callback.content_type}")
    assert_acceptable(ivr.to_request(callback))


@bounded(PARSE_EXAMPLES)
@given(body=inputs.ivr_reports)
def test_ivr_reports_parse_or_raise_callback_error(body: Any) -> None:
    try:
        reports = ivr.parse_reports(body)
    except ivr.CallbackError as error:
        refused(error.reason)
        return
    event("mapped")
    for report in reports:
        assert_acceptable(ivr.report_to_request(report))


_ivr_callbacks = st.builds(
    ivr.Callback,
    call_id=st.sampled_from(["c-1", "100001616500^100001871490"]),
    timestamp=st.integers(0, 2**40),
    content_type=st.sampled_from(inputs.IVR_CONTENT_TYPES),
    content=st.one_of(
        st.just({}), st.just({"status": "success"}), st.just({"dynamic_id": "menu-1"})
    ),
)
_ivr_settings = st.builds(
    ivr_out.AnswerSettings,
    session_timeout_s=st.integers(-5, 10**6),
    record_flag=st.booleans(),
    asr_model_id=st.sampled_from(["", "m-1"]),
    cc_name=st.sampled_from(["", "cc"]),
    transfer_numbers=st.sampled_from([{}, {"9999": "+8610086", "skill_queue:1": "x"}]),
    default_mute_time_ms=st.integers(-(2**31), 2**31 - 1),
)


@bounded(RENDER_EXAMPLES)
@given(callback=_ivr_callbacks, response=responses, settings=_ivr_settings)
def test_ivr_renders_every_response_as_a_documented_answer(
    callback: ivr.Callback, response: pb.DecideNextActionResponse, settings: ivr_out.AnswerSettings
) -> None:
    check_ivr_answer(ivr_out.render_answer(callback, response, settings), callback)


# -- Aliyun CloudCallCenter -------------------------------------------------------------------

_ccc_settings = st.builds(
    ccc.Settings,
    allowed_instances=st.sampled_from([frozenset(), frozenset({"inst-1"})]),
    transfer_text=st.sampled_from(["", "请稍后拨打人工客服热线。"]),
    action_params_hints=st.booleans(),
)


@bounded(PARSE_EXAMPLES)
@given(params=inputs.ccc_params, settings=_ccc_settings, method=st.sampled_from(["GET", "POST"]))
def test_ccc_requests_parse_or_raise_dialogue_error(
    params: dict[str, str], settings: ccc.Settings, method: str
) -> None:
    # As the route does: text first (the signature encodes every value), then the signature.
    try:
        ccc.check_text(params)
        ccc_signature.verify(
            method, params, "LTAIkey", "secret", now=datetime(2026, 11, 21, 10, tzinfo=UTC)
        )
    except ccc.DialogueError as error:
        _check_ccc_error(error, params)
    try:
        call = ccc.parse_dialogue(params, settings)
    except ccc.DialogueError as error:
        event(f"refused {error.code}")
        _check_ccc_error(error, params)
        return
    event("mapped")
    request = ccc.to_request(call, request_id=ccc.request_id(call, params))
    assert_acceptable(request)


def _check_ccc_error(error: ccc.DialogueError, params: dict[str, str]) -> None:
    assert 400 <= error.http_status < 500
    status, content_type, body = ccc_out.render_error(error, "RID", ccc.response_format_of(params))
    assert status == error.http_status
    if content_type == ccc_out.XML_CONTENT_TYPE:
        assert ET.fromstring(body.encode("utf-8")).findtext("Success") == "false"
    else:
        assert json.loads(body)["Success"] is False


_ccc_calls = st.builds(
    ccc.DialogueCall,
    instance_id=st.just("inst-1"),
    call_id=st.just("ccc-1"),
    call_type=st.sampled_from(["Outbound", "Inbound"]),
    calling_number=st.just("10086"),
    called_number=st.just("13800138000"),
    utterance=st.just(""),
    scenario_id=st.just(""),
    task_id=st.just(""),
    script_id=st.just(""),
    action_key=st.just(""),
    response_format=st.sampled_from(["JSON", "XML"]),
)


@bounded(RENDER_EXAMPLES)
@given(call=_ccc_calls, response=responses, settings=_ccc_settings, request_id=proto_text)
def test_ccc_renders_every_response_as_a_feedback(
    call: ccc.DialogueCall,
    response: pb.DecideNextActionResponse,
    settings: ccc.Settings,
    request_id: str,
) -> None:
    status, content_type, body = ccc_out.render_answer(call, response, request_id, settings)
    assert status == 200
    if call.response_format == "XML":
        assert content_type == ccc_out.XML_CONTENT_TYPE
        root = ET.fromstring(body.encode("utf-8"))
        assert root.tag == "DialogueResponse"
        assert root.findtext("Success") == "true"
        assert root.findtext("Feedback/Action") in (ccc_out.BROADCAST, ccc.HANGUP)
        assert root.findtext("Feedback/Interruptible") in ("true", "false")
    else:
        assert content_type == ccc_out.JSON_CONTENT_TYPE
        document = json.loads(body)
        assert document["Success"] is True
        feedback = document["Feedback"]
        assert set(feedback) == {"Action", "ActionParams", "Content", "Interruptible"}
        assert feedback["Action"] in (ccc_out.BROADCAST, ccc.HANGUP)
        assert isinstance(feedback["Interruptible"], bool)
        if feedback["ActionParams"]:
            assert isinstance(json.loads(feedback["ActionParams"]), dict)


# -- Huawei CEC ODFS --------------------------------------------------------------------------

_huawei_settings = st.builds(
    huawei_settings.Settings,
    string_codes=st.booleans(),
    transfer_success=st.sampled_from([frozenset({"0"}), frozenset({"0", "success"})]),
    default_timeout_s=st.integers(1, 100),
    record_dir=st.sampled_from(["Y:/record", "D:\\rec", ""]),
    record_transfers=st.booleans(),
    trans_data=st.sampled_from(huawei_settings.TRANS_DATA_MODES),
    asr_timeout_unit=st.sampled_from(huawei_settings.ASR_TIMEOUT_UNITS),
    tts_group_id=st.sampled_from(["", "g1"]),
)


@bounded(PARSE_EXAMPLES)
@given(
    body=inputs.huawei_body,
    vdn_id=st.one_of(st.just(""), hostile_text),
    settings=_huawei_settings,
    transcript=st.one_of(
        st.none(),
        st.builds(
            huawei_protocol.Transcript, text=st.one_of(st.none(), proto_text), problem=proto_text
        ),
    ),
)
def test_huawei_requests_parse_or_raise_request_error(
    body: Any,
    vdn_id: str,
    settings: huawei_settings.Settings,
    transcript: huawei_protocol.Transcript | None,
) -> None:
    try:
        parsed = huawei_inbound.parse_request(body, vdn_id)
    except huawei_protocol.RequestError as error:
        refused(error.reason)
        assert_failure_answer(huawei_outbound.render_error(error.reason, error.userid, settings))
        return
    event(f"mapped inaction {parsed.inaction}")
    huawei_inbound.speech_reference(parsed)
    assert_acceptable(huawei_inbound.to_request(parsed, settings, transcript))
    # The end of a call and a refused token are answered from the request alone.
    facts = huawei_protocol.CallFacts(start_time="2026112110:00:00", end_time="2026112110:00:09")
    empty = huawei_outbound.render_answer(parsed, pb.DecideNextActionResponse(), settings, facts)
    check_huawei_answer(empty, parsed, settings)
    huawei_outbound.render_auth_failure(
        huawei_protocol.RET_BAD_TOKEN, "no", parsed.userid, settings
    )


_huawei_requests = st.builds(
    huawei_protocol.OdfsRequest,
    userid=st.sampled_from(["1528780879-9581", "u/2:x"]),
    inaction=st.sampled_from(huawei_protocol.INACTIONS),
    inparams=st.sampled_from(
        [
            {},
            {"input": "playover", "inter_idx": "3", "call_sor_id": "13500000001"},
            {"input": "hangup"},
            {"trans_result": "0"},
            {"trans_result": "1", "inter_idx": "99999999999999999"},
            {"input": "12#", "flow_result_type": "2", "call_dst_id": "10086"},
        ]
    ),
)


@bounded(RENDER_EXAMPLES)
@given(
    request=_huawei_requests,
    response=responses,
    settings=_huawei_settings,
    fallback=st.booleans(),
)
def test_huawei_renders_every_response_as_a_documented_answer(
    request: huawei_protocol.OdfsRequest,
    response: pb.DecideNextActionResponse,
    settings: huawei_settings.Settings,
    fallback: bool,
) -> None:
    facts = huawei_protocol.CallFacts(start_time="2026112110:00:00", end_time="2026112110:00:09")
    answer = huawei_outbound.render_answer(request, response, settings, facts, fallback=fallback)
    check_huawei_answer(answer, request, settings)


@bounded(PARSE_EXAMPLES)
@given(
    token=unicode_text,
    app_key=shallow_json.filter(lambda value: not huawei_protocol.json_problem(value)),
    app_secret=shallow_json.filter(lambda value: not huawei_protocol.json_problem(value)),
)
def test_huawei_tokens_check_any_text_and_refuse_bad_credentials(
    token: str, app_key: Any, app_secret: Any
) -> None:
    # Tokens and credentials reach the issuer only through parse_request and the token
    # route, which refuse what json_problem finds (fuzzed above and over HTTP).
    issuer = TokenIssuer(app_key="tenant-1", app_secret="s3cret", clock=lambda: 1e9)
    failure = issuer.check(token)
    assert failure is not None
    assert failure.code in (huawei_protocol.RET_NO_TOKEN, huawei_protocol.RET_BAD_TOKEN)
    with pytest.raises(CredentialsError):
        issuer.issue(app_key, app_secret)


# -- Telnyx -----------------------------------------------------------------------------------

_telnyx_settings = st.builds(
    telnyx_settings.Settings,
    voices=st.sampled_from([{}, {"zh-cn": "AWS.Polly.Zhiyu", "en": "Telnyx.KokoroTTS.af"}]),
    transfer_targets=st.sampled_from(
        [{}, {"skill_queue:9999": "+18005559999", "agent_id:7": "sip:7@pbx.example.com"}]
    ),
    listen_timeout_ms=st.integers(1, 10**6),
    record_format=st.sampled_from(["mp3", "wav"]),
)


@bounded(PARSE_EXAMPLES)
@given(body=inputs.telnyx_body, settings=_telnyx_settings)
def test_telnyx_webhooks_parse_or_raise_webhook_error(
    body: Any, settings: telnyx_settings.Settings
) -> None:
    try:
        webhook = telnyx_inbound.parse_webhook(body)
    except CallbackError as error:
        refused(error.reason)
        return
    reaction = telnyx_inbound.react(webhook, settings)
    event("decision asked" if reaction.request is not None else "no decision")
    if reaction.request is not None:
        assert_acceptable(reaction.request)
    for name, command in reaction.commands:
        assert spec.command_problems(name, command) == [], (name, command)


@bounded(PARSE_EXAMPLES)
@given(state=inputs.client_states)
def test_telnyx_client_states_decode_or_are_ignored(state: Any) -> None:
    decoded = telnyx_client_state.decode_state(state)
    event("ignored" if decoded is None else "decoded")
    if decoded is not None:
        assert decoded.kind in telnyx_client_state.KINDS
        # A state we accept is one we could have written.
        assert (
            telnyx_client_state.decode_state(telnyx_client_state.encode_state(decoded)) == decoded
        )


@bounded(RENDER_EXAMPLES)
@given(
    response=responses,
    settings=_telnyx_settings,
    outbound=st.booleans(),
    event_id=st.one_of(st.uuids().map(str), proto_text),
)
def test_telnyx_plans_every_response_as_commands_of_the_spec(
    response: pb.DecideNextActionResponse,
    settings: telnyx_settings.Settings,
    outbound: bool,
    event_id: str,
) -> None:
    context = telnyx_outbound.CommandContext(
        event_id=event_id, call_control_id="v3:call-1", outbound=outbound, settings=settings
    )
    commands = telnyx_outbound.plan_commands(response, context)
    # One command, after transcription_start on a spoken menu, or a prompt then a command
    # too large to wait in client_state.
    assert len(commands) <= 2
    for name, body in commands:
        assert name in telnyx_outbound.COMMANDS
        assert spec.command_problems(name, body) == [], (name, body)
        state = telnyx_client_state.decode_state(body.get("client_state"))
        if state is not None and state.kind == telnyx_client_state.KIND_THEN:
            # What waits for the prompt's end must conform too once it is sent.
            ended = telnyx_inbound.Webhook(
                event_id="e2",
                event_type="call.speak.ended",
                payload={"status": "completed"},
                call_control_id="v3:call-1",
                state=state,
            )
            for follow_name, follow in telnyx_inbound.react(ended, settings).commands:
                assert spec.command_problems(follow_name, follow) == []


@bounded(PARSE_EXAMPLES)
@given(
    body=st.binary(max_size=64),
    signature=st.one_of(st.none(), hostile_text, st.binary(max_size=64).map(repr)),
    timestamp=st.one_of(st.none(), hostile_text, st.integers(0, 10**13).map(str)),
)
def test_telnyx_signatures_of_any_shape_are_refused(
    body: bytes, signature: str | None, timestamp: str | None
) -> None:
    key = telnyx_signature.load_public_key("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    with pytest.raises(telnyx_signature.SignatureError):
        telnyx_signature.verify(body, signature, timestamp, key, now=1.7e9)
