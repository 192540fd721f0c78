"""DialogueService over a real gRPC channel: status codes, exactly-once, concurrency, restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from dialogue.v1 import dialogue_pb2 as pb
from dialogue.v1 import dialogue_pb2_grpc
from server.app import create_server
from server.config import DEMO_FLOWS
from server.engine.catalog import Catalog, load_catalog
from server.engine.loader import parse_flow
from server.engine.state import CallState, encode
from server.service import DialogueService, _CallLocks, _WrittenStates
from server.store import MemoryStore, Snapshot, StoreUnavailableError
from tests.support.grpc_server import Served, bad_request_fields, request, serve


async def _status_of(served: Served, message: pb.DecideNextActionRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.decide(message)
    return caught.value


async def test_a_call_walks_the_demo_menu_to_a_templated_answer() -> None:
    async with serve() as served:
        start = await served.decide(request("c1", "r1", call_started={}))
        assert start.WhichOneof("action") == "play_and_listen"
        assert "欢迎致电" in start.play_and_listen.prompts.items[0].tts.text
        assert start.diagnostics.node_id == "main_menu"
        bill = await served.decide(request("c1", "r2", digits_entered={"digits": "1"}))
        assert bill.diagnostics.node_id == "bill_phone"
        assert bill.diagnostics.matched_intent == "bill"
        answer = await served.decide(
            request("c1", "r3", speech_recognized={"text": "幺三八 零零一三 八零零零"})
        )
        texts = [item.tts.text for item in answer.play_and_listen.prompts.items]
        assert any("13800138000" in text for text in texts)
        assert answer.diagnostics.node_id == "anything_else"
        end = await served.decide(
            request("c1", "r4", call_ended={"hung_up_by": pb.HANG_UP_PARTY_CALLER})
        )
        assert end.WhichOneof("action") == "end_dialogue"
        assert end.dialogue_over


async def test_a_retried_request_gets_identical_bytes_and_the_call_advances_once() -> None:
    async with serve() as served:
        await served.decide(request("c1", "r1", call_started={}))
        press = request("c1", "r2", digits_entered={"digits": "1"})
        first = await served.decide_raw(press)
        second = await served.decide_raw(press)
        assert first == second
        snapshot = await served.stub.GetCall(pb.GetCallRequest(call_id="c1"), timeout=30)
        assert snapshot.call.turn_count == 2
        assert snapshot.call.node_id == "bill_phone"
        assert [turn.number for turn in snapshot.turns] == [1, 2]


async def test_concurrent_duplicates_of_one_event_are_applied_once() -> None:
    async with serve() as served:
        await served.decide(request("c1", "r1", call_started={}))
        press = request("c1", "r2", digits_entered={"digits": "2"})
        answers = await asyncio.gather(*(served.decide_raw(press) for _ in range(12)))
        assert len(set(answers)) == 1
        snapshot = await served.stub.GetCall(pb.GetCallRequest(call_id="c1"), timeout=30)
        assert snapshot.call.turn_count == 2


async def test_concurrent_distinct_events_of_one_call_are_serialised() -> None:
    async with serve() as served:
        await served.decide(request("c1", "r0", call_started={}))
        events = [request("c1", f"r{n}", no_input={}) for n in range(1, 9)]
        answers = await asyncio.gather(*(served.decide(event) for event in events))
        assert sorted(answer.diagnostics.turn for answer in answers) == list(range(2, 10))
        snapshot = await served.stub.GetCall(pb.GetCallRequest(call_id="c1"), timeout=30)
        assert snapshot.call.turn_count == 9
        assert [turn.number for turn in snapshot.turns] == list(range(1, 10))


async def test_a_malformed_request_is_invalid_argument_naming_each_field() -> None:
    async with serve() as served:
        error = await _status_of(served, pb.DecideNextActionRequest(call=pb.Call(call_id="c1")))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request_fields(error) == ["request_id", "event"]
        error = await _status_of(served, request("c1", "r1", digits_entered={"digits": "12x"}))
        assert bad_request_fields(error) == ["digits_entered.digits"]
        error = await _status_of(
            served, request("c1", "r1", speech_recognized={"text": "hi", "confidence": 1.5})
        )
        assert bad_request_fields(error) == ["speech_recognized.confidence"]
        error = await _status_of(served, request("", "r1", call_started={}))
        assert bad_request_fields(error) == ["call.call_id"]


async def test_bytes_that_are_not_a_request_are_invalid_argument_not_internal() -> None:
    async with serve() as served:
        call = served.channel.unary_unary(
            "/dialogue.v1.DialogueService/DecideNextAction",
            request_serializer=None,
            response_deserializer=None,
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(b"\xff\xff\xff\xff", timeout=30)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "Traceback" not in (caught.value.details() or "")


async def test_a_selector_nobody_serves_is_not_found() -> None:
    demo = load_catalog(DEMO_FLOWS)
    strict = Catalog(demo.flows, {"10086": "carrier-zh"}, default="")
    async with serve(catalog=strict) as served:
        error = await _status_of(served, request("c1", "r1", selector="95555", call_started={}))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert "95555" in (error.details() or "")


async def test_a_request_id_reused_for_another_event_is_failed_precondition() -> None:
    async with serve() as served:
        await served.decide(request("c1", "r1", call_started={}))
        await served.decide(request("c1", "r2", digits_entered={"digits": "1"}))
        error = await _status_of(served, request("c1", "r2", digits_entered={"digits": "2"}))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        snapshot = await served.stub.GetCall(pb.GetCallRequest(call_id="c1"), timeout=30)
        assert snapshot.call.node_id == "bill_phone"


async def test_events_after_the_call_ended_do_not_restart_it() -> None:
    async with serve() as served:
        await served.decide(request("c1", "r1", call_started={}))
        await served.decide(request("c1", "r2", call_ended={}))
        again = await served.decide(request("c1", "r3", call_started={}))
        assert again.WhichOneof("action") == "end_dialogue"
        assert again.dialogue_over
        late = await served.decide(request("c1", "r4", digits_entered={"digits": "1"}))
        assert late.WhichOneof("action") == "end_dialogue"


async def test_a_hang_up_of_an_unknown_call_ends_cleanly_and_stays_ended() -> None:
    async with serve() as served:
        end = await served.decide(request("ghost", "r1", selector="nobody", call_ended={}))
        assert end.WhichOneof("action") == "end_dialogue"
        later = await served.decide(request("ghost", "r2", call_started={}))
        assert later.WhichOneof("action") == "end_dialogue"


async def test_a_restarted_server_continues_the_call_where_it_was(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'calls.db'}"
    async with serve(url) as served:
        await served.decide(request("c1", "r1", call_started={}))
        await served.decide(request("c1", "r2", digits_entered={"digits": "1"}))
    async with serve(url) as served:
        answer = await served.decide(request("c1", "r3", digits_entered={"digits": "13800138000"}))
        assert answer.diagnostics.node_id == "anything_else"
        assert answer.diagnostics.turn == 3
        replay = await served.decide(request("c1", "r2", digits_entered={"digits": "1"}))
        assert replay.diagnostics.node_id == "bill_phone"


async def test_a_call_whose_flow_version_is_gone_is_failed_precondition(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'calls.db'}"
    async with serve(url) as served:
        await served.decide(request("c1", "r1", call_started={}))
    text = (
        (DEMO_FLOWS / "carrier-zh.yaml")
        .read_text(encoding="utf-8")
        .replace('version: "2026.11.1"', 'version: "2099.1"')
    )
    newer = parse_flow(text, "carrier-zh.yaml")
    async with serve(url, Catalog({newer.id: newer}, {}, newer.id)) as served:
        error = await _status_of(served, request("c1", "r2", digits_entered={"digits": "1"}))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "2026.11.1" in (error.details() or "")


async def test_an_unusable_store_is_unavailable_and_health_says_not_serving(tmp_path: Path) -> None:
    # A directory where the database file should be: SQLite cannot open it.
    (tmp_path / "calls.db").mkdir()
    async with serve(f"sqlite://{tmp_path / 'calls.db'}") as served:
        error = await _status_of(served, request("c1", "r1", call_started={}))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        health = health_pb2_grpc.HealthStub(served.channel)
        check = await health.Check(
            health_pb2.HealthCheckRequest(service="dialogue.v1.DialogueService"), timeout=30
        )
        assert check.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_get_call_of_an_unknown_call_is_not_found() -> None:
    async with serve() as served:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.GetCall(pb.GetCallRequest(call_id="nope"), timeout=30)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.GetCall(pb.GetCallRequest(), timeout=30)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_health_reports_serving() -> None:
    async with serve() as served:
        health = health_pb2_grpc.HealthStub(served.channel)
        for name in ("", "dialogue.v1.DialogueService"):
            check = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=30)
            assert check.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
async def test_reflection_lists_services_under_both_protocol_versions(version: str) -> None:
    async with serve() as served:
        # v1 and v1alpha messages are the same on the wire, so v1alpha classes speak both.
        stream = served.channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        call = stream(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=30)
        names = [
            service.name
            async for response in call
            for service in response.list_services_response.service
        ]
        assert "dialogue.v1.DialogueService" in names
        assert "grpc.health.v1.Health" in names


class _WaitingStore(MemoryStore):
    """A memory store (which starts inline) whose reads wait for `gate`, then fail if `broken`."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.broken = False

    async def read(self, call_id: str, request_id: str) -> Snapshot:
        await self.gate.wait()
        if self.broken:
            raise StoreUnavailableError("disk gone")
        return await super().read(call_id, request_id)


def _first_event() -> bytes:
    return request("c1", "r1", call_started={}).SerializeToString()


async def test_an_inline_store_operation_that_waits_still_answers() -> None:
    store = _WaitingStore()
    service = DialogueService(load_catalog(DEMO_FLOWS), store)
    decision = asyncio.ensure_future(service._decide_next_action(_first_event()))
    await asyncio.sleep(0.01)
    assert not decision.done()  # waiting inside the store's read
    store.gate.set()
    answer = pb.DecideNextActionResponse.FromString(await decision)
    assert answer.diagnostics.node_id == "main_menu"


async def test_a_waiting_store_failure_reaches_health_after_the_caller_left() -> None:
    store = _WaitingStore()
    store.broken = True
    health: list[bool] = []

    async def on_store_health(healthy: bool) -> None:
        health.append(healthy)

    service = DialogueService(load_catalog(DEMO_FLOWS), store, on_store_health)
    decision = asyncio.ensure_future(service._decide_next_action(_first_event()))
    await asyncio.sleep(0.01)
    decision.cancel()  # the gateway's deadline passed first
    with pytest.raises(asyncio.CancelledError):
        await decision
    assert health == []
    store.gate.set()  # the store now fails, with nobody waiting for it
    for _ in range(10):
        await asyncio.sleep(0)
    assert health == [False]


async def test_a_replica_continues_from_what_another_replica_stored_not_from_what_it_wrote() -> (
    None
):
    # Each replica keeps the state it wrote last (so as not to decode it again); a turn after
    # another replica's must start from the stored state, not from that stale one.
    store = MemoryStore()
    catalog = load_catalog(DEMO_FLOWS)
    replicas = [await create_server("127.0.0.1:0", catalog, store) for _ in range(2)]
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{r.port}") for r in replicas]
    first, second = (dialogue_pb2_grpc.DialogueServiceStub(channel) for channel in channels)
    try:
        start = await first.DecideNextAction(request("c1", "r1", call_started={}), timeout=30)
        assert start.diagnostics.node_id == "main_menu"
        bill = await second.DecideNextAction(
            request("c1", "r2", digits_entered={"digits": "1"}), timeout=30
        )
        assert bill.diagnostics.node_id == "bill_phone"
        answer = await first.DecideNextAction(
            request("c1", "r3", speech_recognized={"text": "幺三八 零零一三 八零零零"}),
            timeout=30,
        )
        assert answer.diagnostics.node_id == "anything_else"
        texts = [item.tts.text for item in answer.play_and_listen.prompts.items]
        assert any("13800138000" in text for text in texts)
        snapshot = await second.GetCall(pb.GetCallRequest(call_id="c1"), timeout=30)
        assert snapshot.call.turn_count == 3
    finally:
        for channel in channels:
            await channel.close()
        for replica in replicas:
            await replica.server.stop(None)
        await store.close()


async def test_a_calls_lock_serialises_its_turns_and_is_dropped_by_the_last_one_even_if_cancelled() -> (
    None
):
    locks = _CallLocks()
    order: list[str] = []
    release = asyncio.Event()

    async def turn(name: str) -> None:
        async with locks.hold("c1"):
            order.append(f"{name} in")
            await release.wait()
            order.append(f"{name} out")

    first = asyncio.create_task(turn("first"))
    waiting = asyncio.create_task(turn("cancelled"))
    second = asyncio.create_task(turn("second"))
    await asyncio.sleep(0.01)
    waiting.cancel()  # cancelled while it waits for the lock
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(first, second)
    assert waiting.cancelled()
    assert order == ["first in", "first out", "second in", "second out"]
    assert locks._locks == {}  # nobody holds or waits: nothing kept


def test_a_replica_keeps_the_states_of_its_most_recently_written_calls_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_WrittenStates, "CAPACITY", 2)
    written = _WrittenStates()
    states = {name: CallState(name, node="main_menu") for name in ("a", "b", "c")}
    for name in ("a", "b"):
        written.wrote(name, encode(states[name]), states[name])
    written.wrote("a", encode(states["a"]), states["a"])  # a is now the most recent
    written.wrote("c", encode(states["c"]), states["c"])  # so b is the one let go
    assert written.decoded("a", encode(states["a"])) is states["a"]
    assert written.decoded("c", encode(states["c"])) is states["c"]
    assert written.decoded("b", encode(states["b"])) is not states["b"]  # decoded afresh
    assert written.decoded("b", encode(states["b"])) == states["b"]
    other = encode(CallState("a", node="bill_phone"))  # another replica's write of a
    assert written.decoded("a", other).node == "bill_phone"
