"""Regression tests for the bugs the hardening fuzz found, one case each, smallest input first.

Each was a 5xx (an unhandled exception in a gateway) or a wrong status from the server before
its fix; see docs/operations.md, "Bad input and fault drills".
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from dialogue.v1 import dialogue_pb2 as pb
from gateways.aliyun_ccc import inbound as ccc
from gateways.aliyun_ivr import inbound as ivr
from gateways.huawei_odfs import inbound as huawei_inbound
from gateways.huawei_odfs import protocol as huawei_protocol
from gateways.payloads import CallbackError
from gateways.telnyx import client_state as telnyx_client_state
from gateways.telnyx import inbound as telnyx_inbound
from gateways.telnyx import signature
from server.validation import MAX_REPORTED_ENTRIES, validate_decide
from tests.hardening.stack import Stack, running_stack
from tests.support.gateway import serve_gateway
from tests.support.grpc_server import bad_request_fields, request, serve

LONE_SURROGATE = json.loads('"\\ud800"')
DEEP = "[" * 5000 + "]" * 5000


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack() as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        yield client


# -- lone surrogates (JSON `\ud800` escapes) crashed hashing and protobuf ----------------------


def test_ivr_a_lone_surrogate_is_a_callback_error() -> None:
    body = {"call_id": f"c{LONE_SURROGATE}", "timestamp": 1, "content_type": "mute"}
    with pytest.raises(ivr.CallbackError, match="not valid Unicode"):
        ivr.parse_callback({}, body)


def test_huawei_a_lone_surrogate_is_a_request_error() -> None:
    body = {"userid": LONE_SURROGATE, "inaction": 8, "inparams": {}}
    with pytest.raises(huawei_protocol.RequestError, match="not valid Unicode"):
        huawei_inbound.parse_request(body)


def test_telnyx_a_lone_surrogate_is_a_webhook_error() -> None:
    body = {"data": {"event_type": "call.answered", "payload": {"call_control_id": LONE_SURROGATE}}}
    with pytest.raises(CallbackError, match="not valid Unicode"):
        telnyx_inbound.parse_webhook(body)


def test_ccc_a_lone_surrogate_is_an_invalid_parameter() -> None:
    params = {"Action": "Dialogue", "CallId": LONE_SURROGATE, "InstanceId": "i"}
    with pytest.raises(ccc.DialogueError) as refused:
        ccc.parse_dialogue(params, ccc.Settings())
    assert (refused.value.code, refused.value.http_status) == ("InvalidParameter", 400)


# -- nesting deep enough to exhaust recursion --------------------------------------------------


def test_ivr_deep_content_is_a_callback_error() -> None:
    fields = {"call_id": "c", "timestamp": "1", "content_type": "normal"}
    with pytest.raises(ivr.CallbackError, match="nested"):
        ivr.parse_callback(fields, {"content": json.loads("[" * 400 + "]" * 400)})
    with pytest.raises(ivr.CallbackError, match="nested"):
        ivr.parse_reports(json.loads("[" * 400 + "]" * 400))


def test_huawei_deep_inparams_sent_as_text_are_a_request_error() -> None:
    body = {"userid": "u", "inaction": 8, "inparams": '{"a":' + "[" * 400 + "]" * 400 + "}"}
    with pytest.raises(huawei_protocol.RequestError, match="nested"):
        huawei_inbound.parse_request(body)


def test_telnyx_deep_client_state_is_ignored() -> None:
    # 3,000 nested arrays fit in the 4,096 characters a client_state may have.
    state = base64.b64encode(b"[" * 3000 + b"]" * 3000).decode()
    assert len(state) <= 8000
    assert telnyx_client_state.decode_state(state[:4096]) is None


# -- Telnyx: forged client_state members and out-of-range times -------------------------------


def test_telnyx_a_client_state_kind_of_another_type_is_ignored() -> None:
    forged = base64.b64encode(json.dumps({"v": 1, "k": []}).encode()).decode()
    assert telnyx_client_state.decode_state(forged) is None


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_telnyx_a_time_outside_what_a_timestamp_holds_is_left_out(when: str) -> None:
    body = {
        "data": {
            "id": "e1",
            "event_type": "call.answered",
            "occurred_at": when,
            "payload": {"call_control_id": "v3:c"},
        }
    }
    reaction = telnyx_inbound.react(telnyx_inbound.parse_webhook(body))
    assert reaction.request is not None
    assert not reaction.request.HasField("occurred_at")


# -- the server: an error list too long for gRPC's trailers ------------------------------------


def test_parameter_problems_are_bounded_and_keys_shortened() -> None:
    message = pb.DecideNextActionRequest(request_id="r", call_started=pb.CallStarted())
    message.call.call_id = "c"
    for index in range(100):
        message.call_data.parameters[f"{index:03d}" + "k" * 5000] = "v"
    problems = validate_decide(message)
    assert len(problems) == 2 + MAX_REPORTED_ENTRIES  # the count, the entries, "N more"
    assert all(len(field) < 100 for field, _ in problems)


async def test_a_request_with_a_huge_parameter_key_is_invalid_argument_not_exhausted() -> None:
    async with serve() as served:
        message = request("c", "r", call_started={})
        message.call_data.parameters["k" * 20_000] = "v"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await served.decide(message)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(refused.value) == [f"call_data.parameters[{'k' * 64 + '…'!r}]"]


# -- over HTTP: JSON too deep, malformed multipart, misdecoded forms, refused reports ----------


def _post(
    stack: Stack, http: httpx.Client, vendor: str, path: str, **kwargs: Any
) -> httpx.Response:
    reply = http.post(stack.urls[vendor] + path, **kwargs)
    assert reply.status_code < 500, reply.text
    return reply


@pytest.mark.parametrize(
    ("vendor", "path"),
    [
        ("aliyun-ivr", "/aliyun/ivr/callback"),
        ("aliyun-ivr", "/aliyun/ivr/report"),
        ("huawei-odfs", "/oifde/rest/crs/process"),
        ("huawei-odfs", "/oifde/rest/api/gettoken"),
    ],
)
def test_json_nested_too_deep_is_a_400_in_the_vendors_format(
    stack: Stack, http: httpx.Client, vendor: str, path: str
) -> None:
    headers = {"content-type": "application/json"}
    reply = _post(stack, http, vendor, path, content=DEEP.encode(), headers=headers)
    assert reply.status_code == 400
    body = reply.json()
    assert body.get("result") == "fail" or "errorMsg" in body, body


def test_telnyx_json_nested_too_deep_is_a_400(stack: Stack, http: httpx.Client) -> None:
    raw = DEEP.encode()
    headers = {**signature.sign(raw, _now(), stack.key), "content-type": "application/json"}
    reply = _post(stack, http, "telnyx", "/telnyx/webhooks", content=raw, headers=headers)
    assert (reply.status_code, reply.json()) == (400, {"error": "the body is not JSON"})


@pytest.mark.parametrize(
    ("vendor", "path"),
    [
        ("aliyun-ivr", "/aliyun/ivr/callback"),
        ("aliyun-ccc", "/"),
        ("huawei-odfs", "/oifde/rest/crs/process"),
    ],
)
def test_a_malformed_multipart_form_is_a_400_in_the_vendors_format(
    stack: Stack, http: httpx.Client, vendor: str, path: str
) -> None:
    headers = {"content-type": "multipart/form-data"}  # no boundary
    reply = _post(stack, http, vendor, path, content=b"", headers=headers)
    assert reply.status_code == 400
    assert "detail" not in reply.json(), "the framework's format, not the vendor's"


def _unicode_escape_form(fields: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    boundary = "b"
    parts = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    )
    content_type = f"multipart/form-data; boundary={boundary}; charset=unicode_escape"
    return (parts + f"--{boundary}--\r\n").encode(), {"content-type": content_type}


def test_ccc_a_form_decoded_into_lone_surrogates_is_invalid_parameter(
    stack: Stack, http: httpx.Client
) -> None:
    body, headers = _unicode_escape_form(
        {"Action": "Dialogue", "CallId": "\\ud800", "InstanceId": "inst-1"}
    )
    reply = _post(stack, http, "aliyun-ccc", "/", content=body, headers=headers)
    assert (reply.status_code, reply.json()["Code"]) == (400, "InvalidParameter")


def test_huawei_token_credentials_that_are_not_text_are_a_400(
    stack: Stack, http: httpx.Client
) -> None:
    raw = b'{"appKey": "\\ud800", "appSecret": "x"}'
    headers = {"content-type": "application/json"}
    reply = _post(
        stack, http, "huawei-odfs", "/oifde/rest/api/gettoken", content=raw, headers=headers
    )
    assert reply.status_code == 400
    assert reply.json()["errorCode"] == huawei_protocol.RET_BAD_REQUEST


def test_ivr_a_report_the_server_refuses_for_good_is_acknowledged(
    stack: Stack, http: httpx.Client
) -> None:
    first = [{"call_id": "reg-report", "hangup_direction": "用户"}]
    other = [{"call_id": "reg-report", "hangup_direction": "机器"}]  # a different end
    assert _post(stack, http, "aliyun-ivr", "/aliyun/ivr/report", json=first).status_code == 200
    # The server refuses it (FAILED_PRECONDITION) on every push: a 503 would only make the
    # platform push it again three times.
    assert _post(stack, http, "aliyun-ivr", "/aliyun/ivr/report", json=other).json() == {
        "code": 0,
        "msg": "接收成功",
    }


async def test_ivr_a_callback_token_decoded_into_lone_surrogates_is_refused() -> None:
    async with (
        serve() as served,
        serve_gateway(
            "aliyun-ivr",
            f"127.0.0.1:{served.running.port}",
            {"ALIYUN_CALLBACK_TOKEN": "s3cret"},
        ) as client,
    ):
        body, headers = _unicode_escape_form({"token": "\\ud800", "call_id": "c"})
        reply = await client.post("/aliyun/ivr/callback", content=body, headers=headers)
    assert reply.status_code == 401
    assert reply.json()["result"] == "fail"


def _now() -> int:
    return int(time.time())
