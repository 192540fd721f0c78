"""The vendor HTTP requests of the gateway figure: one scripted call per vendor dialect.

Each script is a list of requests `[method, target, body]` (target: path and query) with the
placeholder CALLID where the call id goes; the load generator substitutes a fresh call id per
call, so every request is a new event (never a retry answered from the turn log). Every script
walks the carrier line 10086 from the call's start to goodbye. Vendors the gateways package
offers but this module has no script for are reported as not measured (Telnyx, for one, answers
a webhook by calling Telnyx's Call Control API: measuring it needs a fake of that API).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import urlencode

CALL_ID: Final = "CALLID"
_TIMESTAMP_MS: Final = 1_763_719_200_000


Request = list[str]  # [method, target, body]; JSON-friendly for the load generator


def _aliyun_ivr() -> list[Request]:
    """Aliyun intelligent voice: callin to 10086, then the carrier script's keys (dtmf)."""
    events: list[tuple[str, dict[str, str]]] = [
        ("callin", {"caller": "13800138000", "callee": "10086", "orgcallee": "10086"}),
        ("dtmf", {"dtmf_digits": "1"}),
        ("dtmf", {"dtmf_digits": "13800138000"}),
        ("dtmf", {"dtmf_digits": "1"}),
        ("dtmf", {"dtmf_digits": "2"}),
        ("dtmf", {"dtmf_digits": "2"}),
    ]
    targets = []
    for step, (content_type, content) in enumerate(events):
        query = urlencode(
            {
                "call_id": CALL_ID,
                "timestamp": str(_TIMESTAMP_MS + 1000 * step),
                "content_type": content_type,
                "content": json.dumps(content, separators=(",", ":")),
            }
        )
        targets.append(["GET", f"/aliyun/ivr/callback?{query}", ""])
    return targets


def _aliyun_ccc() -> list[Request]:
    """Aliyun CloudCallCenter outbound bot: the carrier line by voice (Utterance)."""
    utterances = ["", "我想查一下话费", "13800138000", "返回", "流量", "再见"]
    targets = []
    for step, utterance in enumerate(utterances):
        params = {
            "Action": "Dialogue",
            "CallId": CALL_ID,
            "InstanceId": "bench",
            "CallType": "Outbound",
            "CallingNumber": "10086",
            "CalledNumber": "13800138000",
            "ScenarioId": "10086",
            "Timestamp": f"2026-11-21T10:00:{step:02d}Z",
        }
        if utterance:
            params["Utterance"] = utterance
        targets.append(["GET", f"/?{urlencode(params)}", ""])
    return targets


def _huawei_odfs() -> list[Request]:
    """Huawei CEC ODFS: the IVR's start (inaction 8), then key results (inaction 9, type 2)."""
    caller = {"call_sor_id": "13800138000", "call_dst_id": "10086"}
    bodies: list[dict[str, object]] = [{"userid": CALL_ID, "inaction": 8, "inparams": caller}]
    for step, keys in enumerate(["1", "13800138000#", "1", "2", "2"], start=1):
        inparams = {**caller, "flow_result_type": "2", "input": keys, "inter_idx": str(step)}
        bodies.append({"userid": CALL_ID, "inaction": 9, "inparams": inparams})
    return [
        ["POST", "/oifde/rest/crs/process", json.dumps(body, separators=(",", ":"))]
        for body in bodies
    ]


SCRIPTS: Final[Mapping[str, Callable[[], list[Request]]]] = {
    "aliyun-ivr": _aliyun_ivr,
    "aliyun-ccc": _aliyun_ccc,
    "huawei-odfs": _huawei_odfs,
}


def script(vendor: str) -> list[Request] | None:
    """The requests of one call in vendor's dialect, or None when there is no script."""
    build = SCRIPTS.get(vendor)
    return None if build is None else build()
