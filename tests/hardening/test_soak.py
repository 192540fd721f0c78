"""A bounded soak: 300 concurrent calls across the four gateways, twice, on one real server.

The server runs as its own process on SQLite (so its memory is its own to measure); the four
gateways and the fake Telnyx API run in this process. Each call is a short scripted
conversation on the demo line; a share of the callbacks is delivered twice (one after the
other, or both at once), and some Telnyx calls have two webhooks swapped, as Telnyx may deliver
them out of order.

Afterwards each call's history (GetCall) is checked exactly:
- its request ids are the distinct events delivered, each once, in delivery order, numbered
  1..n without gaps (nothing lost, nothing doubled);
- replaying its stored requests through the pure engine gives its stored responses, and
  running the events in delivery order through the pure mapping and engine — the reference run
  — ends on the node the server ended on;
- a duplicate delivery got the very answer the first one got.
The second wave repeats the first with new call ids; the server's RSS may not grow by more
than 20 MB from one wave to the next.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from dialogue.v1 import dialogue_pb2 as pb
from dialogue.v1 import dialogue_pb2_grpc
from gateways.aliyun_ccc import inbound as ccc
from gateways.aliyun_ivr import inbound as ivr
from gateways.huawei_odfs import inbound as huawei_inbound
from gateways.huawei_odfs.settings import settings_from_env as huawei_settings
from gateways.telnyx import client_state as telnyx_client_state
from gateways.telnyx import inbound as telnyx_inbound
from gateways.telnyx.routes import settings_from_env as telnyx_settings
from server.config import DEMO_FLOWS
from server.engine.catalog import load_catalog
from server.engine.interpreter import decide
from server.engine.state import CallState
from tests.gateways.telnyx.harness import gateway_env, signed_headers, webhook
from tests.hardening.probes import Gateways, gateways
from tests.hardening.stack import VENDORS
from tests.support.server_process import start_server

_log = logging.getLogger(__name__)

CALLS_PER_WAVE = 300
MAX_GROWTH_BYTES = 20 * 1024 * 1024
# Generous: under this load a slow machine may take seconds per decision; a fallback would
# make the conversation differ from the reference, so none may happen.
DEADLINE_S = 60.0


@dataclass(frozen=True)
class Delivery:
    """One HTTP delivery of one scripted event (`step`), perhaps a duplicate of an earlier one."""

    step: int
    duplicate: bool = False
    concurrent: bool = False


@dataclass
class CallRun:
    vendor: str
    call_id: str
    deliveries: list[Delivery]
    answers: dict[int, list[bytes]]


def plan(index: int, vendor: str) -> list[Delivery]:
    """Which events go out, in which order, and which are delivered twice."""
    steps = [0, 1, 2, 3]
    if vendor == "telnyx" and index % 5 == 0:
        # Telnyx may deliver webhooks out of order: the two middle ones arrive swapped.
        steps = [0, 2, 1, 3]
    deliveries: list[Delivery] = []
    for position, step in enumerate(steps):
        deliveries.append(Delivery(step))
        if index % 3 == 0 and position == index % 4:
            # A vendor retry: sometimes after the answer came, sometimes while it is pending.
            deliveries.append(Delivery(step, duplicate=True, concurrent=index % 2 == 0))
    return deliveries


# -- the scripted events, per vendor ----------------------------------------------------------

_LISTEN_STATE = telnyx_client_state.encode_state(
    telnyx_client_state.ClientState(telnyx_client_state.KIND_LISTEN, terminator="#")
)
_INBOUND_STATE = telnyx_client_state.encode_state(
    telnyx_client_state.ClientState(telnyx_client_state.KIND_INBOUND)
)


def ivr_fields(call_id: str, step: int) -> dict[str, str]:
    events = [
        ("callin", {"caller": "13800138000", "callee": "10086"}),
        ("mute", {}),
        ("dtmf", {"dtmf_digits": "1"}),
        ("dtmf", {"dtmf_digits": "13800138000#"}),
    ]
    kind, content = events[step]
    return {
        "call_id": call_id,
        "timestamp": str(1_700_000_000_000 + step * 1000),
        "content_type": kind,
        "content": json.dumps(content, ensure_ascii=False),
    }


def ccc_params(call_id: str, step: int) -> dict[str, str]:
    utterances = ["", "我想查话费", "13800138000", "没有了，再见"]
    return {
        "Action": "Dialogue",
        "CallId": call_id,
        "InstanceId": "inst-1",
        "CallingNumber": "10086",
        "CalledNumber": "13800138000",
        "Utterance": utterances[step],
        "Timestamp": f"2026-11-21T10:00:0{step}Z",
    }


def huawei_body(call_id: str, step: int) -> dict[str, Any]:
    if step == 0:
        inparams = {"call_id": call_id, "call_sor_id": "13500000001", "call_dst_id": "10086"}
        return {"userid": call_id, "inaction": 8, "inparams": inparams}
    keys = ["", "1", "13800138000#", "2"][step]
    inparams = {
        "call_id": call_id,
        "input": keys,
        "flow_result_type": "2",
        "inter_idx": str(step),
        "result_time": f"2026112110:00:0{step}",
    }
    return {"userid": call_id, "inaction": 9, "inparams": inparams}


def telnyx_body(call_id: str, step: int) -> dict[str, Any]:
    event_id = f"{call_id}-e{step}"
    if step == 0:
        return webhook(
            "call.answered",
            call_id,
            client_state=_INBOUND_STATE,
            event_id=event_id,
            from_="+13125550123",
            to="10086",
        )
    digits = ["", "1", "13800138000#", "2"][step]
    return webhook(
        "call.gather.ended",
        call_id,
        client_state=_LISTEN_STATE,
        event_id=event_id,
        status="valid",
        digits=digits,
    )


# -- delivering -------------------------------------------------------------------------------


async def send(front: Gateways, vendor: str, call_id: str, step: int) -> bytes:
    """Delivers one event; the answer's body (each must be a success in the vendor's format)."""
    client = front.clients[vendor]
    if vendor == "aliyun-ivr":
        reply = await client.get("/aliyun/ivr/callback", params=ivr_fields(call_id, step))
        assert reply.json()["result"] == "success", reply.text
    elif vendor == "aliyun-ccc":
        reply = await client.get("/", params=ccc_params(call_id, step))
        assert reply.json()["Success"] is True, reply.text
    elif vendor == "huawei-odfs":
        reply = await client.post("/oifde/rest/crs/process", json=huawei_body(call_id, step))
        assert int(reply.json()["ret"]) == 0, reply.text
    else:
        raw = json.dumps(telnyx_body(call_id, step)).encode()
        reply = await client.post(
            "/telnyx/webhooks", content=raw, headers=signed_headers(raw, front.key)
        )
        assert reply.json()["status"] == "ok", reply.text
    assert reply.status_code == 200, reply.text
    return reply.content


async def run_call(front: Gateways, run: CallRun) -> None:
    pending: list[asyncio.Task[bytes]] = []
    for delivery in run.deliveries:
        if delivery.concurrent:
            # Delivered again while the first delivery is still being answered.
            pending.append(asyncio.create_task(send(front, run.vendor, run.call_id, delivery.step)))
            continue
        answer = await send(front, run.vendor, run.call_id, delivery.step)
        run.answers.setdefault(delivery.step, []).append(answer)
        for task in pending:
            run.answers.setdefault(delivery.step - 1, []).append(await task)
        pending.clear()
    for task in pending:
        run.answers.setdefault(run.deliveries[-1].step, []).append(await task)


async def wave(front: Gateways, prefix: str) -> list[CallRun]:
    runs = [
        CallRun(vendor, f"{prefix}-{index}-{vendor}", plan(index, vendor), {})
        for index in range(CALLS_PER_WAVE // len(VENDORS))
        for vendor in VENDORS
    ]
    await asyncio.gather(*(run_call(front, run) for run in runs))
    return runs


# -- the reference: pure mapping and engine ---------------------------------------------------


def mapped(vendor: str, call_id: str, step: int, env: dict[str, str]) -> pb.DecideNextActionRequest:
    """The request the gateway sends for one event, from its pure mapping."""
    if vendor == "aliyun-ivr":
        return ivr.to_request(ivr.parse_callback(ivr_fields(call_id, step)))
    if vendor == "aliyun-ccc":
        params = ccc_params(call_id, step)
        call = ccc.parse_dialogue(params, ccc.Settings())
        return ccc.to_request(call, request_id=ccc.request_id(call, params))
    if vendor == "huawei-odfs":
        parsed = huawei_inbound.parse_request(huawei_body(call_id, step))
        return huawei_inbound.to_request(parsed, huawei_settings({}))
    reaction = telnyx_inbound.react(
        telnyx_inbound.parse_webhook(telnyx_body(call_id, step)), telnyx_settings(env).mapping
    )
    assert reaction.request is not None
    return reaction.request


def reference(requests: list[pb.DecideNextActionRequest]) -> CallState:
    """Where the events end, applied in this order by the pure engine."""
    catalog = load_catalog(DEMO_FLOWS)
    flow = catalog.resolve(requests[0].call.flow_selector)
    state = None
    for request in requests:
        state = decide(flow, state, request).state
    assert state is not None
    return state


def check_call(run: CallRun, history: pb.GetCallResponse, env: dict[str, str]) -> None:
    """The exact checks of one call's history against what was delivered."""
    order = list(dict.fromkeys(delivery.step for delivery in run.deliveries))
    expected = [mapped(run.vendor, run.call_id, step, env) for step in order]
    turns = list(history.turns)
    assert [turn.number for turn in turns] == list(range(1, len(expected) + 1)), run.call_id
    assert [turn.request.request_id for turn in turns] == [r.request_id for r in expected]
    assert history.call.turn_count == len(expected)
    # Replaying what the server stored gives what it answered: every turn saw the state the
    # previous one left (no lost update, no turn applied twice).
    catalog = load_catalog(DEMO_FLOWS)
    flow = catalog.resolve(turns[0].request.call.flow_selector)
    state = None
    for turn in turns:
        decision = decide(flow, state, turn.request)
        assert decision.response == turn.response, (run.call_id, turn.number)
        state = decision.state
    final = reference(expected)
    assert (history.call.node_id, history.call.dialogue_over) == (final.node, final.over)
    for step, answers in run.answers.items():
        # A duplicate is answered exactly as the first delivery was (Telnyx answers "ok").
        assert len(set(answers)) == 1, (run.call_id, step, answers)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_a_bounded_soak_of_concurrent_calls_with_retries_and_reordering(
    tmp_path: Path,
) -> None:
    store = f"sqlite://{tmp_path / 'soak.db'}"
    with start_server(
        "--listen", "127.0.0.1:0", "--store", store, "--log-level", "WARNING"
    ) as server:
        async with gateways(server.address, deadline_s=DEADLINE_S) as front:
            env = gateway_env(front.fake, front.key)
            started = rss_bytes(server.process.pid)
            first = await wave(front, "w1")
            after_first = rss_bytes(server.process.pid)
            second = await wave(front, "w2")
            after_second = rss_bytes(server.process.pid)
            channel = grpc.aio.insecure_channel(server.address)
            try:
                stub = dialogue_pb2_grpc.DialogueServiceStub(channel)
                for run in first + second:
                    history = await stub.GetCall(pb.GetCallRequest(call_id=run.call_id), timeout=30)
                    check_call(run, history, env)
            finally:
                await channel.close()
            fallbacks = {
                vendor: (await client.get("/readyz")).json()["fallbacks"]
                for vendor, client in front.clients.items()
            }
        assert front.fake.problems == []
    assert fallbacks == {vendor: {} for vendor in VENDORS}
    deliveries = sum(len(run.deliveries) for run in first + second)
    duplicates = sum(d.duplicate for run in first + second for d in run.deliveries)
    # The figures of the run, for the operations notes (visible with --log-cli-level=INFO).
    _log.info(
        "soak: %d calls, %d deliveries (%d duplicates); server RSS %.1f MB at start, %.1f MB "
        "after wave 1, %.1f MB after wave 2",
        len(first) + len(second),
        deliveries,
        duplicates,
        started / 2**20,
        after_first / 2**20,
        after_second / 2**20,
    )
    assert duplicates > 0
    assert after_second - after_first < MAX_GROWTH_BYTES, (started, after_first, after_second)
