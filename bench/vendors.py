"""The vendor HTTP requests of the gateway figure: one scripted call per vendor dialect.

Each script is a list of requests `[method, target, body]` (target: path and query) with the
placeholder CALLID where the call id goes; the load generator substitutes a fresh call id per
call, so every request is a new event (never a retry answered from the turn log). Every script
walks the carrier line 10086 from the call's start to goodbye. Vendors the gateways package
offers but this module has no script for are reported as not measured.

Telnyx answers a webhook by calling its Call Control API, and its webhooks are signed: its
script is six webhooks (call.answered, then five call.gather.ended) whose client_state is the
one the gateway's own commands set at that step of the walk (`client_state` is how Telnyx
carries the call's state), the gateway runs with `telnyx_env` in front of bench/fake_telnyx.py,
and the load generator signs every webhook as it sends it (`signed_headers`: the signature
covers the fresh call id and the current time).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

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


TELNYX: Final = "telnyx"
TELNYX_API_KEY: Final = "KEYbench_0123456789abcdef"
# The bench's own webhook signing key (derived, so every process of a run knows it): only the
# bench's gateways trust its public half.
_TELNYX_KEY: Final = Ed25519PrivateKey.from_private_bytes(
    hashlib.sha256(b"dialogue bench: Telnyx webhook signing key").digest()
)
_TELNYX_CALLER: Final = "+8613800138000"


def telnyx_env(api_base: str) -> dict[str, str]:
    """TELNYX_* settings of a bench gateway whose Call Control API is at `api_base`.

    Everything else is the gateway's default (speech menus on, the 2 s acknowledgement budget):
    the gateway runs as deployed.
    """
    raw = _TELNYX_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "TELNYX_PUBLIC_KEY": base64.b64encode(raw).decode("ascii"),
        "TELNYX_API_KEY": TELNYX_API_KEY,
        "TELNYX_API_BASE": api_base,
    }


def signed_headers(vendor: str, body: bytes) -> list[tuple[str, str]]:
    """The headers that authenticate `body` now, as the vendor's platform would send them."""
    if vendor != TELNYX:
        return []
    from gateways.telnyx import signature  # noqa: PLC0415 (only the Telnyx runs need it)

    return list(signature.sign(body, int(time.time()), _TELNYX_KEY).items())


def _telnyx() -> list[Request]:
    """Telnyx Call Control: call.answered, then the carrier script's keys (call.gather.ended)."""
    return [webhook for webhook, _ in telnyx_walk()]


def telnyx_walk() -> list[tuple[Request, list[tuple[str, dict[str, Any]]]]]:
    """The Telnyx script's webhooks, each with the commands the gateway sends in answer.

    The client_state of each webhook is the one the gateway's commands set at that step of the
    walk (planned by the gateway's own pure code from the server's answers), so the gateway
    reads every webhook as the answer to the gather it started. Event ids carry the call id:
    each call's events are new ones, as Telnyx's are.
    """
    # Imported here: the other vendors' scripts (and the load generator) need none of this.
    from bench.workload import carrier_walk  # noqa: PLC0415
    from dialogue.v1 import dialogue_pb2 as pb  # noqa: PLC0415
    from gateways.telnyx import inbound, outbound, routes  # noqa: PLC0415

    mapping = routes.settings_from_env(telnyx_env("http://127.0.0.1:1/v2")).mapping
    keys = ["1", "13800138000#", "1", "2", "2"]
    events: list[tuple[str, dict[str, Any]]] = [("call.answered", {"state": "answered"})]
    events += [("call.gather.ended", {"status": "valid", "digits": digits}) for digits in keys]
    ccid = f"v3:{CALL_ID}"
    client_state: str | None = None
    walk = []
    for step, ((event_type, fields), (_, _, response)) in enumerate(
        zip(events, carrier_walk(), strict=True)
    ):
        payload: dict[str, Any] = {
            "call_control_id": ccid,
            "call_leg_id": f"leg-{CALL_ID}",
            "call_session_id": f"session-{CALL_ID}",
            "connection_id": "bench",
            "from": _TELNYX_CALLER,
            "to": "10086",
            **fields,
        }
        if client_state is not None:
            payload["client_state"] = client_state
        body = {
            "data": {
                "record_type": "event",
                "event_type": event_type,
                "id": f"{CALL_ID}-e{step}",
                "occurred_at": f"2026-11-21T10:00:{step:02d}.000000Z",
                "payload": payload,
            },
            "meta": {"attempt": 1, "delivered_to": "http://127.0.0.1/telnyx/webhooks"},
        }
        reaction = inbound.react(inbound.parse_webhook(body), mapping)
        assert reaction.context is not None, f"step {step}: {reaction.note}"
        decision = pb.DecideNextActionResponse.FromString(response)
        commands = outbound.plan_commands(decision, reaction.context)
        for _, command in commands:
            client_state = command.get("client_state", client_state)
        webhook = ["POST", "/telnyx/webhooks", json.dumps(body, separators=(",", ":"))]
        walk.append((webhook, [(name, dict(command)) for name, command in commands]))
    return walk


SCRIPTS: Final[Mapping[str, Callable[[], list[Request]]]] = {
    "aliyun-ivr": _aliyun_ivr,
    "aliyun-ccc": _aliyun_ccc,
    "huawei-odfs": _huawei_odfs,
    TELNYX: _telnyx,
}


def script(vendor: str) -> list[Request] | None:
    """The requests of one call in vendor's dialect, or None when there is no script."""
    build = SCRIPTS.get(vendor)
    return None if build is None else build()
