"""What each vendor sends, as Hypothesis strategies: plausible shapes with hostile values.

Each strategy starts from the fields the vendor documents and lets every one of them be
missing, well-formed, or any JSON value of any type; bodies may be truncated, re-encoded or not
objects at all. Shapes close to the real thing get past the first checks, so the fuzz reaches
the deeper mapping code rather than stopping at "call_id is required".
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from gateways.telnyx import client_state as telnyx_client_state
from gateways.telnyx import inbound as telnyx_inbound
from tests.hardening.strategies import (
    as_text,
    hostile_text,
    json_values,
    maybe_fields,
    shallow_json,
    truncated,
    unicode_json,
    weighted,
)


def dumps(value: Any, *, ensure_ascii: bool = True) -> str:
    """JSON text of a value; text nested thousands deep when the value is too deep to dump."""
    try:
        return json.dumps(value, ensure_ascii=ensure_ascii, default=str)
    except RecursionError:
        return "[" * 5000 + "]" * 5000


# -- Aliyun intelligent voice (callbacks and reports) -----------------------------------------

IVR_CONTENT_TYPES = ("callin", "normal", "mute", "dtmf", "timebreak", "parallel_transfer")

_numbers = st.sampled_from(["13800138000", "10086", "+8613800138000", " 8613800138000", ""])
_millis = st.one_of(
    st.integers(min_value=-1, max_value=253_402_300_799_999 + 1).map(str),
    st.sampled_from(["1700000000000", "0", "1.5", "-0", " 1 ", "9" * 30]),
)
_texts = st.sampled_from(["你好", "我要转人工", "一", "", "x" * 5000])

ivr_content: st.SearchStrategy[dict[str, Any]] = maybe_fields(
    {
        "caller": _numbers,
        "callee": _numbers,
        "orgcallee": _numbers,
        "words": _texts,
        "begin_offset": _millis,
        "end_offset": _millis,
        "dtmf_digits": st.sampled_from(["1", "12#", "noinputtimeout", "x", "", "1" * 80]),
        "is_playing": st.sampled_from(["true", "false", "1", True]),
        "current_media_code": st.sampled_from(["welcome.wav", ""]),
        "play_begin_time": _millis,
        "play_end_time": _millis,
        "asr_begin_time": _millis,
        "status": st.sampled_from(["success", "busy", "weird", True]),
        "reason": _texts,
        "dynamic_id": st.sampled_from(["main_menu-1", "a" * 65, "x:y"]),
    },
)


@st.composite
def _content_text(draw: st.DrawFn) -> str:
    """content as the query carries it: JSON text, perhaps curly-quoted, encoded or cut."""
    text = dumps(draw(ivr_content), ensure_ascii=draw(st.booleans()))
    how = draw(st.sampled_from(["as is", "as is", "curly", "percent", "truncated", "garbage"]))
    if how == "curly":
        return text.replace('"', draw(st.sampled_from(["“", "”", "‘"])))
    if how == "percent":
        return quote(text, errors="surrogatepass")
    if how == "truncated":
        return draw(truncated(text))
    if how == "garbage":
        return draw(hostile_text)
    return text


ivr_fields: st.SearchStrategy[dict[str, str]] = maybe_fields(
    {
        "call_id": st.sampled_from(["100001616500^100001871490", "c-1", "c" * 128]),
        "timestamp": _millis,
        "content_type": st.sampled_from([*IVR_CONTENT_TYPES, "CALLIN", " dtmf "]),
        "content": _content_text(),
        "dynamic_id": st.sampled_from(["main_menu-1", ""]),
    },
    odd=hostile_text,
).map(lambda fields: {key: as_text(value) for key, value in fields.items()})
"""Query or form fields (always text)."""

ivr_json_body: st.SearchStrategy[Any] = weighted(
    (2, st.none()),
    (
        4,
        maybe_fields(
            {
                "call_id": st.sampled_from(["c-1", "c^2"]),
                "timestamp": st.integers(0, 2**45),
                "content_type": st.sampled_from(IVR_CONTENT_TYPES),
                "content": st.one_of(ivr_content, _content_text()),
            }
        ),
    ),
    (1, json_values),
)
"""A JSON body: None (not JSON), an object like the query, or anything else."""

_report = maybe_fields(
    {
        "call_id": st.sampled_from(["c-1", "c^2"]),
        "hangup_direction": st.sampled_from(["用户", "机器", "x"]),
        "status_code": st.sampled_from(["200000", ""]),
        "status_msg": _texts,
        "duration": st.sampled_from(["61", ""]),
        "end_time": _millis,
        "caller": _numbers,
        "callee": _numbers,
        "dtmf": st.sampled_from(["1#", ""]),
    }
)
ivr_reports: st.SearchStrategy[Any] = weighted(
    (4, st.lists(weighted((6, _report), (1, json_values)), max_size=4)),
    (1, json_values),
)
"""A report push body: mostly arrays of records, sometimes anything."""

# -- Aliyun CloudCallCenter Dialogue ----------------------------------------------------------

ccc_params: st.SearchStrategy[dict[str, str]] = maybe_fields(
    {
        "Action": st.just("Dialogue"),
        "CallId": st.sampled_from(["ccc-1", "c" * 129]),
        "InstanceId": st.sampled_from(["inst-1", "inst-2"]),
        "CallType": st.sampled_from(["Outbound", "inbound", "OUTBOUND", ""]),
        "CallingNumber": _numbers,
        "CalledNumber": _numbers,
        "Utterance": _texts,
        "ScenarioId": st.just("10086"),
        "TaskId": st.just("task-1"),
        "ScriptId": st.just("script-1"),
        "ActionKey": st.sampled_from(["Hangup", "hangup", "broadcast"]),
        "ActionParams": st.just(""),
        "Format": st.sampled_from(["XML", "json", "xml "]),
        "AccessKeyId": st.just("LTAIkey"),
        "Signature": st.just("c2lnbmF0dXJl"),
        "SignatureMethod": st.just("HMAC-SHA1"),
        "SignatureVersion": st.just("1.0"),
        "SignatureNonce": st.uuids().map(str),
        "Timestamp": st.sampled_from(["2026-11-21T10:00:00Z", "2016-02-23T12:46:24Z"]),
    },
    odd=hostile_text,
)

# -- Huawei CEC ODFS --------------------------------------------------------------------------

huawei_inparams: st.SearchStrategy[dict[str, Any]] = maybe_fields(
    {
        "call_id": st.sampled_from(["1528780879-9581", ""]),
        "call_sor_id": _numbers,
        "call_dst_id": st.sampled_from(["10086", "10087", ""]),
        "real_callee": _numbers,
        "input": st.sampled_from(
            [
                *("playover", "timeout", "nomatch", "sys_err", "hangup", "recordend", "1"),
                *("12#", "key@1", "rec.wav[你好]", "我要查话费", "", "x" * 5000),
            ]
        ),
        "flow_result_type": st.sampled_from(["1", "2", "3", "4", "5", "-1", "–1"]),
        "inter_idx": st.sampled_from(["0", "1", "99999999999999999", "-3", "x"]),
        "trans_result": st.sampled_from(["0", "1", ""]),
        "result_time": st.sampled_from(["2018090407:16:24", ""]),
        "end_trans": st.sampled_from(["2018090407:16:24", ""]),
        "auth_token": st.sampled_from(["token-1", ""]),
        "mediaType": st.sampled_from(["audio", ""]),
    },
)

huawei_body: st.SearchStrategy[Any] = weighted(
    (
        5,
        maybe_fields(
            {
                "userid": st.sampled_from(["1528780879-9581", "u-2", "u" * 129]),
                "inaction": st.sampled_from([8, 9, 11, "9", 9.0, 7, "x"]),
                "seat": st.sampled_from(["vir", ""]),
                "inparams": weighted((3, huawei_inparams), (1, huawei_inparams.map(dumps))),
                "extparams": maybe_fields(
                    {
                        "transin_data": _texts,
                        "release_reason": st.sampled_from(["0", "1", "2"]),
                    }
                ),
                "authToken": st.sampled_from(["token-1", ""]),
            }
        ),
    ),
    (1, json_values),
)

# -- Telnyx Call Control webhooks -------------------------------------------------------------

_states: st.SearchStrategy[telnyx_client_state.ClientState] = st.builds(
    telnyx_client_state.ClientState,
    kind=st.sampled_from(sorted(telnyx_client_state.KINDS)),
    ref=st.text(max_size=8),
    outbound=st.booleans(),
    next_command=st.sampled_from(["", "hangup", "transfer", "record_start", "speak"]),
    next_body=st.one_of(
        st.just({}),
        st.fixed_dictionaries(
            {"to": st.sampled_from(["+18005550101", "sip:a@b.example", "nowhere", ""])}
        ),
        st.dictionaries(st.text(max_size=6), unicode_json, max_size=3),
    ),
    a_leg=st.sampled_from(["", "v3:a-leg"]),
    terminator=st.sampled_from(["", "#", "*"]),
    stop_key=st.sampled_from(["", "#"]),
    call_control_id=st.sampled_from(["", "v3:recorded"]),
    selector=st.sampled_from(["", "+18005550100"]),
)


def _state_text(value: Any) -> str:
    return base64.b64encode(dumps(value).encode("utf-8")).decode()


client_states: st.SearchStrategy[Any] = weighted(
    (6, _states.map(telnyx_client_state.encode_state)),
    (1, json_values.map(_state_text)),
    # Our envelope with forged members of any type.
    (
        2,
        st.dictionaries(st.sampled_from([*"vkrobatsc", "sk"]), json_values, max_size=5).map(
            lambda members: _state_text({"v": 1, "k": "listen", **members})
        ),
    ),
    (1, json_values),
)
"""client_state: ours (any kind and fields), foreign, forged JSON, or not even a string."""

_times = st.sampled_from(
    [
        "2026-11-21T10:00:00.000000Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2026-11-21T10:00:00",
        "yesterday",
        "",
    ]
)

telnyx_payload: st.SearchStrategy[dict[str, Any]] = maybe_fields(
    {
        "call_control_id": st.sampled_from(["v3:call-1", "v3:call-2", "", "v" * 200]),
        "client_state": client_states,
        "direction": st.sampled_from(["incoming", "outgoing", ""]),
        "from": st.sampled_from(["+13125550123", ""]),
        "to": st.sampled_from(["+18005550100", "10086", ""]),
        "status": st.sampled_from(
            ["valid", "invalid", "timeout", "completed", "call_hangup", "failed"]
        ),
        "digits": st.sampled_from(["1", "13800138000#", "#", "x", "", "1" * 80]),
        "digit": st.sampled_from(["1", "#", "A", "11", ""]),
        "media_name": _texts,
        "media_url": _texts,
        "failure_reason": _texts,
        "result": st.dictionaries(hostile_text, shallow_json, max_size=3),
        "message_history": st.lists(
            st.fixed_dictionaries({"role": shallow_json, "content": shallow_json}), max_size=3
        ),
        "public_recording_urls": st.fixed_dictionaries({"mp3": shallow_json, "wav": _texts}),
        "recording_started_at": _times,
        "recording_ended_at": _times,
        "reason": _texts,
        "hangup_cause": st.sampled_from(["normal_clearing", ""]),
        "sip_hangup_cause": st.sampled_from(["200", ""]),
        "hangup_source": st.sampled_from(["caller", "callee", "unknown"]),
    },
)

telnyx_body: st.SearchStrategy[Any] = weighted(
    (
        6,
        maybe_fields(
            {
                "data": maybe_fields(
                    {
                        "id": st.one_of(st.uuids().map(str), st.just("e" * 200)),
                        "event_type": st.sampled_from(
                            [*telnyx_inbound.EVENT_TYPES, "call.unknown"]
                        ),
                        "occurred_at": _times,
                        "payload": telnyx_payload,
                        "record_type": st.just("event"),
                    }
                ),
                "meta": st.fixed_dictionaries(
                    {"attempt": st.sampled_from([1, "2", 0]), "delivered_to": st.just("x")}
                ),
            }
        ),
    ),
    (1, json_values),
)
