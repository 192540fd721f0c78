"""The Aliyun CloudCallCenter `Dialogue` mapping: golden cases from `cases/`, then properties.

Four kinds of case file, told apart by their keys:
- parsing (`request`): params (+ optional `verify`) → parse_dialogue → to_request;
- errors (`error_code`): params (+ optional `verify`) → the DialogueError raised;
- rendering (`response`): a decision → render_answer (a JSON object, or the exact XML string);
- error rendering (`error`): a DialogueError → render_error.
"""

from __future__ import annotations

import ast
import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from dialogue.v1 import dialogue_pb2 as pb
from gateways.aliyun_ccc import inbound, signature
from gateways.aliyun_ccc.inbound import (
    DialogueCall,
    DialogueError,
    Settings,
    parse_dialogue,
    request_id,
    to_request,
)
from gateways.aliyun_ccc.outbound import (
    render_answer,
    render_error,
)
from server.validation import validate_decide

CASES_DIR = Path(__file__).parent / "cases"
PACKAGE_DIR = Path(inbound.__file__).parent


def _load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return case


def _kind(case: dict[str, Any]) -> str:
    kinds = [
        kind
        for kind, key in (
            ("parse", "request"),
            ("error", "error_code"),
            ("render", "response"),
            ("render_error", "error"),
        )
        if key in case
    ]
    assert len(kinds) == 1, f"a case must be of exactly one kind, got {kinds}"
    return kinds[0]


CASES = {path.stem: _load(path) for path in sorted(CASES_DIR.glob("*.json"))}


def _names(kind: str) -> list[str]:
    return [name for name, case in CASES.items() if _kind(case) == kind]


def _settings(raw: dict[str, Any]) -> Settings:
    known = {"allowed_instances", "transfer_text", "action_params_hints"}
    assert set(raw) <= known, f"unknown settings {set(raw) - known}"
    values = dict(raw)
    if "allowed_instances" in values:
        values["allowed_instances"] = frozenset(values["allowed_instances"])
    return Settings(**values)


def _call(**fields: str) -> DialogueCall:
    values = {
        "instance_id": "inst-1",
        "call_id": "call-1",
        "call_type": "Outbound",
        "calling_number": "10086",
        "called_number": "+8613800138000",
        "utterance": "",
        "scenario_id": "",
        "task_id": "",
        "script_id": "",
        "action_key": "",
        "response_format": "JSON",
    }
    values.update(fields)
    return DialogueCall(**values)


def _accept(params: dict[str, str], case: dict[str, Any]) -> DialogueCall:
    """What the route does: verify the signature when the case configures it, then parse."""
    if "verify" in case:
        raw = case["verify"]
        now = datetime.fromisoformat(raw["now"]) if "now" in raw else None
        signature.verify(
            raw["method"], params, raw["access_key_id"], raw["access_key_secret"], now=now
        )
    return parse_dialogue(params, _settings(case["settings"]))


def _as_dict(request: pb.DecideNextActionRequest) -> dict[str, Any]:
    return json_format.MessageToDict(request, preserving_proto_field_name=True)


# -- golden cases -------------------------------------------------------------------------------


def test_every_case_file_has_a_kind_and_a_description() -> None:
    assert len(CASES) >= 60
    for name, case in CASES.items():
        assert _kind(case), name
        assert case["description"].strip(), name


@pytest.mark.parametrize("name", _names("parse"))
def test_parse_case(name: str) -> None:
    case = CASES[name]
    params: dict[str, str] = case["params"]
    call = _accept(params, case)
    request = to_request(call, first_turn=case["first_turn"])
    # The golden request is written in canonical proto JSON, so compare in that form.
    expected = json_format.ParseDict(case["request"], pb.DecideNextActionRequest())
    assert _as_dict(request) == _as_dict(expected)
    # Together with its request id, the request is one the server accepts.
    request.request_id = request_id(call, params)
    assert validate_decide(request) == []


@pytest.mark.parametrize("name", _names("error"))
def test_error_case(name: str) -> None:
    case = CASES[name]
    params: dict[str, str] = case["params"]
    with pytest.raises(DialogueError) as caught:
        _accept(params, case)
    error = caught.value
    assert (error.code, error.http_status) == (case["error_code"], case["http_status"])
    assert error.message.strip()
    if error.code in ("MissingParameter", "InvalidParameter", "InvalidAction"):
        # The message names what is wrong, in quotes.
        assert re.search(r'"[^"]+"', error.message), error.message


@pytest.mark.parametrize("name", _names("render"))
def test_render_case(name: str) -> None:
    case = CASES[name]
    response = json_format.ParseDict(case["response"], pb.DecideNextActionResponse())
    status, content_type, body = render_answer(
        _call(**case["call"]), response, case["request_id"], _settings(case["settings"])
    )
    assert (status, content_type) == (case["status"], case["content_type"])
    _assert_body(body, case["body"])


@pytest.mark.parametrize("name", _names("render_error"))
def test_render_error_case(name: str) -> None:
    case = CASES[name]
    raw = case["error"]
    error = DialogueError(raw["code"], raw["message"], raw["http_status"])
    status, content_type, body = render_error(error, case["request_id"], case["format"])
    assert (status, content_type) == (case["status"], case["content_type"])
    _assert_body(body, case["body"])


def _assert_body(body: str, expected: str | dict[str, Any]) -> None:
    if isinstance(expected, str):
        assert body == expected
        ET.fromstring(body.encode("utf-8"))  # well-formed
    else:
        assert json.loads(body) == expected
        # Compact, and non-ASCII text written as is (ensure_ascii=False).
        assert json.dumps(json.loads(body), ensure_ascii=False, separators=(",", ":")) == body


# -- coverage of the cases ----------------------------------------------------------------------


@pytest.mark.parametrize("response_format", ["JSON", "XML"])
def test_every_action_is_rendered_by_a_case(response_format: str) -> None:
    actions = {
        field.name
        for field in pb.DecideNextActionResponse.DESCRIPTOR.oneofs_by_name["action"].fields
    }
    covered = {
        json_format.ParseDict(case["response"], pb.DecideNextActionResponse()).WhichOneof("action")
        for case in CASES.values()
        if _kind(case) == "render" and case["call"]["response_format"].upper() == response_format
    }
    assert actions <= covered


def test_every_error_code_has_cases() -> None:
    raised = {case["error_code"] for case in CASES.values() if _kind(case) == "error"}
    rendered = {case["error"]["code"] for case in CASES.values() if _kind(case) == "render_error"}
    source = "".join(path.read_text(encoding="utf-8") for path in PACKAGE_DIR.glob("*.py"))
    codes = set(re.findall(r'DialogueError\(\s*"([A-Za-z.]+)"', source))
    codes |= {"MissingParameter", "InvalidParameter"}
    assert codes - {"InternalError"} <= raised
    assert {"InternalError", "NotExist.Instance", "MissingParameter"} <= rendered


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"Action": "Dialogue", "Utterance": "话费\ud800"}, "Utterance"),
        ({"Action": "Dialogue", "X\udfff": "1"}, "X\\udfff"),
    ],
)
def test_text_that_is_not_unicode_is_an_invalid_parameter_naming_it(
    params: dict[str, str], named: str
) -> None:
    with pytest.raises(inbound.DialogueError) as raised:
        inbound.check_text(params)
    assert raised.value.code == "InvalidParameter"
    assert f'"{named}"' in raised.value.message


def test_ascii_and_chinese_text_is_read_as_it_came() -> None:
    params = {"Action": "Dialogue", "CallId": "c-1", "InstanceId": "i", "Utterance": "我想查话费"}
    assert parse_dialogue(params, inbound.Settings()).utterance == "我想查话费"


# -- to_request ---------------------------------------------------------------------------------


def test_to_request_defaults_to_not_first_turn_and_sets_the_request_id() -> None:
    request = to_request(_call(), request_id="rid-1")
    assert request.WhichOneof("event") == "no_input"
    assert request.request_id == "rid-1"
    assert not request.HasField("call_data")


def test_call_type_is_canonical_after_parsing() -> None:
    params = {"Action": "Dialogue", "CallId": "c", "InstanceId": "i", "CallType": "OUTBOUND"}
    assert parse_dialogue(params, Settings()).call_type == "Outbound"


def test_utterance_longer_than_the_server_accepts_is_invalid() -> None:
    params = {"Action": "Dialogue", "CallId": "c", "InstanceId": "i", "Utterance": "话" * 4097}
    with pytest.raises(DialogueError) as caught:
        parse_dialogue(params, Settings())
    assert caught.value.code == "InvalidParameter"
    assert '"Utterance"' in caught.value.message
    params["Utterance"] = "话" * 4096
    assert len(parse_dialogue(params, Settings()).utterance) == 4096


def test_missing_parameters_are_reported_first_missing_first() -> None:
    with pytest.raises(DialogueError) as caught:
        parse_dialogue({"Action": "Dialogue"}, Settings())
    assert '"CallId"' in caught.value.message


def test_long_values_are_shortened_in_error_messages() -> None:
    with pytest.raises(DialogueError) as caught:
        parse_dialogue({"Action": "X" * 1000, "CallId": "c", "InstanceId": "i"}, Settings())
    assert len(caught.value.message) < 200


# -- request_id ---------------------------------------------------------------------------------

SIGNED = {
    "Action": "Dialogue",
    "CallId": "call-1",
    "InstanceId": "inst-1",
    "Utterance": "是的",
    "ActionKey": "broadcast",
    "SignatureNonce": "nonce-1",
    "Timestamp": "2026-03-14T08:30:00Z",
    "Signature": "sig-1",
}


def _id(params: dict[str, str]) -> str:
    return request_id(parse_dialogue(params, Settings()), params)


def test_request_id_is_stable_for_a_resent_request() -> None:
    assert _id(dict(SIGNED)) == _id(dict(SIGNED))
    # Whatever does not identify the turn may change on the way (format, region, signature).
    assert _id(SIGNED) == _id(
        {**SIGNED, "Format": "XML", "RegionId": "cn-beijing", "Signature": "x"}
    )
    assert _id(SIGNED) == _id({**SIGNED, "ActionKey": "Broadcast"})


def test_request_id_tells_turns_apart() -> None:
    ids = {
        _id(SIGNED),
        _id({**SIGNED, "SignatureNonce": "nonce-2"}),
        _id({**SIGNED, "Utterance": "不是"}),
        _id({**SIGNED, "ActionKey": "Hangup"}),
        _id({**SIGNED, "CallId": "call-2"}),
        _id({**SIGNED, "InstanceId": "inst-2"}),
        _id({**SIGNED, "ActionParams": "x"}),
    }
    assert len(ids) == 7


def test_request_id_uses_the_timestamp_without_a_nonce() -> None:
    unsigned = {k: v for k, v in SIGNED.items() if k not in ("SignatureNonce", "Signature")}
    later = {**unsigned, "Timestamp": "2026-03-14T08:30:07Z"}
    assert _id(unsigned) != _id(later)
    # With a nonce, the timestamp is not needed to tell requests apart.
    assert _id(SIGNED) == _id({**SIGNED, "Timestamp": "2026-03-14T08:30:07Z"})


def test_request_id_of_identical_unstamped_requests_is_equal() -> None:
    bare = {"Action": "Dialogue", "CallId": "call-1", "InstanceId": "inst-1"}
    assert _id(bare) == _id(dict(bare))


def test_request_id_derivation_is_pinned() -> None:
    # Pinned: a changed derivation would turn a retry across a gateway upgrade into a new event.
    assert _id(SIGNED) == (
        "aliyun-ccc-b1808bf68a05c0f0c69e393eabf07414dae1985289c36e486663aca635ca05ab"
    )
    assert len(_id(SIGNED)) <= 128


# -- rendering details --------------------------------------------------------------------------


def test_render_defaults_settings() -> None:
    response = pb.DecideNextActionResponse(wait=pb.Wait(duration_ms=1000))
    _, _, body = render_answer(_call(), response, "rid")
    assert json.loads(json.loads(body)["Feedback"]["ActionParams"]) == {
        "wait": {"duration_ms": 1000}
    }


def test_xml_error_envelope_is_well_formed_for_every_code() -> None:
    for error in (
        inbound.internal_error(),
        inbound.missing_parameter("CallId"),
        DialogueError("InvalidParameter", "a < b & c > d", 400),
    ):
        status, _, body = render_error(error, "rid", "XML")
        root = ET.fromstring(body.encode("utf-8"))
        assert status == error.http_status
        assert root.findtext("Message") == error.message
        assert root.findtext("Success") == "false"
        assert root.find("Feedback") is None


def test_internal_error_is_the_vendor_documented_500() -> None:
    error = inbound.internal_error()
    assert (error.code, error.http_status) == ("InternalError", 500)
    assert error.message.startswith("An error occurred while processing your request.")
    assert isinstance(error, ValueError)
    assert str(error).startswith("InternalError: ")


def test_response_format_of() -> None:
    assert inbound.response_format_of({}) == "JSON"
    assert inbound.response_format_of({"Format": " xml "}) == "XML"
    assert inbound.response_format_of({"Format": "JSON"}) == "JSON"
    # Anything else falls back to the default rather than failing the call.
    assert inbound.response_format_of({"Format": "YAML"}) == "JSON"


# -- purity -------------------------------------------------------------------------------------

_ALLOWED_IMPORTS = {
    "__future__",
    "base64",
    "collections.abc",
    "dataclasses",
    "datetime",
    "hashlib",
    "hmac",
    "json",
    "re",
    "urllib.parse",
    "google.protobuf",
    "google.protobuf.message",
    "dialogue.v1",
    "gateways.aliyun_ccc.inbound",
    "gateways.aliyun_ccc.outbound",
    "gateways.payloads",  # the shared error role
}


@pytest.mark.parametrize("module", ["inbound.py", "outbound.py", "signature.py"])
def test_module_imports_no_framework_network_clock_or_randomness(module: str) -> None:
    tree = ast.parse((PACKAGE_DIR / module).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= _ALLOWED_IMPORTS
    clock_reads = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("now", "today", "utcnow")
    }
    assert not clock_reads


def test_an_english_call_gets_its_texts_and_no_language_field() -> None:
    """No language field in this API (docs/gateways/aliyun-ccc.md): the texts in the call's
    language go out, spoken and recognised as the IVR is configured."""
    listen = pb.PlayAndListen(
        prompts=pb.Prompts(
            items=[
                pb.Prompt(tts=pb.TextToSpeech(text="For your bill, press 1.", language="en-US")),
                pb.Prompt(tts=pb.TextToSpeech(text="中文服务请按8。", language="zh-CN")),
            ]
        ),
        speech=pb.SpeechRecognition(language="en-US", no_input_timeout_ms=5000),
    )
    _, _, body = render_answer(_call(), pb.DecideNextActionResponse(play_and_listen=listen), "rid")
    assert json.loads(body)["Feedback"]["Content"] == "For your bill, press 1.中文服务请按8。"
    assert "en-US" not in body
    assert "language" not in body
