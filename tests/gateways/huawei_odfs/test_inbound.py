"""Huawei ODFS requests in: request ids, transcript references, times, odd and hostile bodies."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from dialogue.v1 import dialogue_pb2 as pb
from gateways.huawei_odfs.inbound import (
    has_sequence,
    parse_request,
    request_id,
    speech_reference,
    to_request,
)
from gateways.huawei_odfs.outbound import render_answer
from gateways.huawei_odfs.protocol import FLOW_RESULT_TYPES, OdfsRequest, RequestError, Transcript
from gateways.huawei_odfs.settings import Settings
from server.validation import validate_decide
from tests.gateways.huawei_odfs.test_outbound import TURN, _responses, check_answer


def _with(**inparams: Any) -> dict[str, Any]:
    return {**TURN, "inparams": {**TURN["inparams"], **inparams}}


def test_request_id_is_stable_for_a_resent_request() -> None:
    first = request_id(parse_request(json.loads(json.dumps(TURN))))
    assert request_id(parse_request(json.loads(json.dumps(TURN)))) == first
    assert first.startswith("huawei-odfs-")
    assert len(first) <= 128


def test_request_id_ignores_the_token_and_how_values_are_typed() -> None:
    first = request_id(parse_request(TURN))
    renewed = _with(auth_token="t2")
    typed = {**_with(flow_result_type=2, input=1, inter_idx=3), "inaction": "9"}
    assert request_id(parse_request(renewed)) == first
    assert request_id(parse_request(typed)) == first


@pytest.mark.parametrize(
    "change",
    [
        {"userid": "another-call"},
        {"inaction": 11},
        {"inparams": {**TURN["inparams"], "inter_idx": "4"}},
        {"inparams": {**TURN["inparams"], "input": "2"}},
        {"inparams": {**TURN["inparams"], "result_time": "2018090407:16:32"}},
    ],
)
def test_request_id_differs_for_a_different_event(change: dict[str, Any]) -> None:
    assert request_id(parse_request({**TURN, **change})) != request_id(parse_request(TURN))


def test_to_request_carries_the_request_id() -> None:
    parsed = parse_request(TURN)
    assert to_request(parsed, Settings()).request_id == request_id(parsed)
    # The HTTP layer hands the id it computed; the request is the same.
    given = to_request(parsed, Settings(), occurrence=2, event_id=request_id(parsed, 2))
    assert given == to_request(parsed, Settings(), occurrence=2)


_TOKENLESS = {**TURN, "inparams": {k: v for k, v in TURN["inparams"].items() if k != "auth_token"}}


def _tokenless(**inparams: Any) -> dict[str, Any]:
    return {**_TOKENLESS, "inparams": {**_TOKENLESS["inparams"], **inparams}}


@pytest.mark.parametrize(
    ("body", "token"),
    [
        (_tokenless(auth_token=" t1 "), "t1"),
        (_tokenless(authToken="t2"), "t2"),
        ({**_tokenless(auth_token=""), "auth_token": "t3"}, "t3"),
        ({**_tokenless(authToken="t4"), "auth_token": "t5"}, "t4"),
        ({**_TOKENLESS, "authToken": 12}, "12"),
        ({**_TOKENLESS, "auth_token": None, "authToken": " t6"}, "t6"),
        (_TOKENLESS, ""),
    ],
)
def test_the_token_is_read_from_inparams_first_then_the_top_level(
    body: dict[str, Any], token: str
) -> None:
    assert parse_request(body).auth_token == token


# -- references, times, records ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inparams", "expected"),
    [
        ({"flow_result_type": "1", "input": "asr_key@3"}, ("asr_key", "3")),
        ({"flow_result_type": "", "input": "a:b:c@12"}, ("a:b:c", "12")),
        ({"flow_result_type": "1", "input": "k@"}, None),
        ({"flow_result_type": "1", "input": "k@x"}, None),
        ({"flow_result_type": "1", "input": "话费@1"}, None),
        ({"flow_result_type": "2", "input": "12@3"}, None),
        ({"flow_result_type": "1", "input": "timeout"}, None),
        ({"flow_result_type": "4", "input": "k@1"}, None),
    ],
)
def test_speech_reference(inparams: dict[str, str], expected: tuple[str, str] | None) -> None:
    reference = speech_reference(parse_request(_with(**inparams)))
    found = None if reference is None else (reference.key, reference.inter_no)
    assert found == expected


def test_a_start_or_transfer_report_is_never_a_reference() -> None:
    for inaction in (8, 11):
        assert speech_reference(parse_request({**_with(input="k@1"), "inaction": inaction})) is None


def test_a_request_tells_itself_apart_by_inter_idx_or_a_time() -> None:
    assert has_sequence(parse_request(TURN))
    assert has_sequence(parse_request(_with(inter_idx="", result_time="", end_play="t")))
    assert not has_sequence(parse_request(_with(inter_idx=" ", result_time="")))


def test_an_occurrence_makes_a_repeated_interaction_a_new_request() -> None:
    bare = parse_request(_with(inter_idx="", result_time=""))
    ids = {request_id(bare, occurrence) for occurrence in (0, 1, 2)}
    assert len(ids) == 3
    assert request_id(bare, 0) == request_id(bare)


def test_a_recording_is_found_again_from_the_echoed_inter_idx() -> None:
    settings = Settings(record_dir="Y:/record/")
    record = pb.DecideNextActionResponse(record=pb.Record(max_duration_ms=60000, beep=True))
    answer = render_answer(parse_request(TURN), record, settings)
    params = answer["outparams"]
    ended = _with(flow_result_type="4", input="recordend", inter_idx=params["inter_idx"])
    finished = to_request(parse_request(ended), settings).recording_finished
    assert finished.recording_uri == params["prompt_wav"] == "Y:/record/1528780879-9581_4.wav"


# -- robustness ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"userid": "c", "inaction": 9, "inparams": {"input": {"nested": ["x"]}}},
        {"userid": "c", "inaction": 10**30, "inparams": {}},
        {"userid": "c", "inaction": float("inf"), "inparams": {}},
        {"userid": "c", "inaction": "9" * 5000, "inparams": {}},
        {"userid": "c", "inaction": 9, "inparams": "[" * 50_000 + "]" * 50_000},
        {"userid": "c", "inaction": 9, "inparams": "{" + '"a":' * 1000 + "1" + "}" * 1000},
        {"userid": ["c"], "inaction": 8, "inparams": {}},
        {"userid": 42, "inaction": 8, "inparams": {}},
        {"userid": "c", "inaction": None, "inparams": {}},
        {"userid": "c", "inaction": 9, "inparams": {}, "extparams": [1]},
        {"userid": "c", "inaction": 9, "inparams": {"inter_idx": "9" * 40}},
        {"userid": "c", "inaction": 9, "inparams": {"inter_idx": "-5", "input": "k" * 5000}},
    ],
)
def test_hostile_bodies_are_a_request_error_or_a_valid_request(body: Any) -> None:
    parsed: OdfsRequest | None = None
    with contextlib.suppress(RequestError):
        parsed = parse_request(body)
    if parsed is None:
        with pytest.raises(RequestError) as caught:
            parse_request(body)
        assert caught.value.reason
        return
    request = to_request(parsed, Settings())
    assert validate_decide(request) == []
    for response in _responses():
        check_answer(render_answer(parsed, response, Settings()), parsed, Settings())


ODD_INPARAMS: dict[str, Any] = {
    "call_id": "x",
    "call_sor_id": {"nested": True},
    "call_dst_id": "9" * 200,
    "real_callee": None,
    "input": "话" * 5000,
    "inter_idx": "1" * 30,
    "inter_no": "-1",
    "trans_result": ["0"],
    "cti_callid": "c" * 2000,
}


@pytest.mark.parametrize("inaction", [8, 9, 11])
@pytest.mark.parametrize("kind", [*FLOW_RESULT_TYPES, "", "99", None])
def test_odd_values_still_make_valid_requests(inaction: int, kind: str | None) -> None:
    inparams = {**ODD_INPARAMS, "flow_result_type": kind}
    body = {"userid": "c" * 128, "inaction": inaction, "inparams": inparams}
    parsed = parse_request(body)
    for transcript in (None, Transcript(text="好" * 5000), Transcript(problem="x" * 2000)):
        assert validate_decide(to_request(parsed, Settings(), transcript)) == []


def test_to_request_rejects_a_request_built_with_an_unknown_inaction() -> None:
    with pytest.raises(RequestError, match="inaction 13"):
        to_request(OdfsRequest("c", 13, {}), Settings())
