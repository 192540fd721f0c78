"""The DialogueService servicer: a thin shim between gRPC, the session store and the engine.

Per call, events are serialised by an in-process lock and made safe across replicas by the
store's compare-and-set; a retried request id returns the stored response bytes verbatim, so
a retry is byte-identical and never advances the dialogue twice.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Generator
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from dialogue.v1 import dialogue_pb2 as pb
from server.engine.catalog import Catalog, UnknownFlowError
from server.engine.flow import Flow
from server.engine.interpreter import Decision, FlowRuntimeError
from server.engine.state import CallState, decode, encode
from server.hook_client import HookClient, run_turn
from server.observability import ServerMetrics, Turn, observe_turn
from server.store import SessionStore, StoreUnavailableError, TurnRecord
from server.turnlog import compact, restored
from server.validation import Violation, validate_decide, validate_get_call

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["DialogueService"].full_name
_WRITE_ATTEMPTS = 5
_log = logging.getLogger(__name__)

M = TypeVar("M")


class StatusError(Exception):
    """Ends an RPC with a status code, a message and optional rich details."""

    def __init__(
        self, code: grpc.StatusCode, message: str, details: list[Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []


def _bad_request(violations: list[Violation]) -> StatusError:
    detail = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
            for f, d in violations
        ]
    )
    summary = "; ".join(f"{f}: {d}" for f, d in violations)
    return StatusError(grpc.StatusCode.INVALID_ARGUMENT, f"invalid request: {summary}", [detail])


class _CallLocks:
    """One asyncio lock per call id, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        # call id → [its lock, how many hold it or wait for it]
        self._locks: dict[str, list[Any]] = {}

    def hold(self, call_id: str) -> _HeldLock:
        """`async with locks.hold(call_id):` runs its body with the call's lock held."""
        return _HeldLock(self._locks, call_id)


class _HeldLock:
    """The `async with` of `_CallLocks.hold`: a class, not an @asynccontextmanager, whose
    generator and wrapper cost about 6 µs per turn."""

    __slots__ = ("_call_id", "_locks")

    def __init__(self, locks: dict[str, list[Any]], call_id: str) -> None:
        self._locks = locks
        self._call_id = call_id

    async def __aenter__(self) -> None:
        entry = self._locks.get(self._call_id)
        if entry is None:
            entry = self._locks[self._call_id] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            await entry[0].acquire()
        except BaseException:  # cancelled while waiting: it no longer waits
            self._leave(entry)
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        entry = self._locks[self._call_id]
        entry[0].release()
        self._leave(entry)

    def _leave(self, entry: list[Any]) -> None:
        entry[1] -= 1
        if entry[1] == 0:
            del self._locks[self._call_id]


class _WrittenStates:
    """The state of each call's last write on this replica, with the bytes it was stored as.

    A turn reads its call's stored bytes; when they are the bytes this replica wrote last, the
    state they encode is the one kept here, and decoding them again (about a twentieth of a
    decision's CPU) is skipped. Bytes anyone else wrote (another replica, an older version)
    differ, and are decoded. `decode(encode(state)) == state` for every state the engine makes
    (tests/server/engine/test_state.py checks it over the demo flows' conversations), so the
    cached state is the decoded one. The most recent CAPACITY calls are kept.
    """

    CAPACITY = 4096

    def __init__(self) -> None:
        # Least recently written first (an OrderedDict: a plain dict's first key is found by
        # skipping every slot deleted since its last resize).
        self._states: OrderedDict[str, tuple[bytes, CallState]] = OrderedDict()

    def decoded(self, call_id: str, blob: bytes) -> CallState:
        """decode(blob), from the last write's state when blob is what it stored."""
        written = self._states.get(call_id)
        if written is not None and written[0] == blob:
            return written[1]
        return decode(blob)

    def wrote(self, call_id: str, blob: bytes, state: CallState) -> None:
        """Notes that blob, the encoding of state, is now the call's stored state."""
        states = self._states
        states[call_id] = (blob, state)
        states.move_to_end(call_id)
        if len(states) > self.CAPACITY:
            states.popitem(last=False)


class DialogueService:
    """Implements dialogue.v1.DialogueService over a flow catalog and a session store."""

    def __init__(
        self,
        catalog: Catalog,
        store: SessionStore,
        on_store_health: Callable[[bool], Awaitable[None]] | None = None,
        hooks: HookClient | None = None,
        *,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self._locks = _CallLocks()
        self._written = _WrittenStates()
        self._on_store_health = on_store_health
        self._store_healthy = True
        # Health updates for store operations whose callers left; kept so they are not lost.
        self._background: set[asyncio.Task[None]] = set()
        self.hooks = hooks or HookClient()
        self.metrics = metrics or ServerMetrics()

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler to register on a server.

        Requests arrive as bytes so that a malformed message is answered with INVALID_ARGUMENT
        (gRPC's own deserialisation would answer INTERNAL); DecideNextAction answers bytes so
        that a retry gets exactly the bytes the first attempt got.
        """
        return grpc.method_handlers_generic_handler(SERVICE_NAME, self.method_handlers())

    def method_handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        """Method name → handler, for `add_generic_rpc_handlers` and registered methods."""
        return {
            "DecideNextAction": grpc.unary_unary_rpc_method_handler(
                self._guarded(self._decide_next_action),
                request_deserializer=None,
                response_serializer=None,
            ),
            "GetCall": grpc.unary_unary_rpc_method_handler(
                self._guarded(self._get_call),
                request_deserializer=None,
                response_serializer=None,
            ),
        }

    def _guarded(
        self, method: Callable[[bytes], Awaitable[bytes]]
    ) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]:
        """Turns StatusError into its status, and any other exception into a clean INTERNAL."""

        async def call(raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
            try:
                return await method(raw)
            except StatusError as failure:
                failed = failure
            except Exception:
                reference = uuid.uuid4().hex[:12]
                # The traceback goes to our log only; the client gets a reference to quote.
                _log.exception("unexpected error (reference %s)", reference)
                failed = StatusError(
                    grpc.StatusCode.INTERNAL, f"internal error (reference {reference})"
                )
            status = status_pb2.Status(code=failed.code.value[0], message=failed.message)
            for detail in failed.details:
                status.details.add().Pack(detail)
            await context.abort_with_status(rpc_status.to_status(status))
            raise AssertionError("abort_with_status returned")  # pragma: no cover

        return call

    # -- DecideNextAction -----------------------------------------------------------------

    async def _decide_next_action(self, raw: bytes) -> bytes:
        # Every turn is counted and logged once, whatever its outcome.
        with observe_turn(self.metrics) as turn:
            return await self._decide_turn(raw, turn)

    async def _decide_turn(self, raw: bytes, turn: Turn) -> bytes:
        request = _valid(_parse(pb.DecideNextActionRequest, raw), validate_decide)
        turn.request(request)
        call_id = request.call.call_id
        async with self._locks.hold(call_id):
            for _ in range(_WRITE_ATTEMPTS):
                snapshot = await self._store(self.store.read(call_id, request.request_id))
                if snapshot.replay is not None:
                    # Computed only now: a digest kept with every turn would cost its bytes.
                    stored = restored(snapshot.replay, call_id)
                    if _fingerprint(stored) != _fingerprint(request):
                        raise StatusError(
                            grpc.StatusCode.FAILED_PRECONDITION,
                            f"request_id {request.request_id!r} was already used for a different event of call {call_id!r}",
                        )
                    turn.replayed()
                    return snapshot.replay.response
                state = (
                    None
                    if snapshot.state is None
                    else self._written.decoded(call_id, snapshot.state)
                )
                try:
                    decision = await self._decide(self._flow_for(state, request), state, request)
                except FlowRuntimeError as exc:
                    raise StatusError(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from exc
                response = decision.response.SerializeToString(deterministic=True)
                turn.decided(decision.state, decision.response)
                record = TurnRecord(
                    decision.state.turn, request.request_id, compact(request), response
                )
                blob = encode(decision.state)
                if await self._store(
                    self.store.write(
                        call_id, snapshot.version, blob, record, ended=decision.state.over
                    )
                ):
                    self._written.wrote(call_id, blob, decision.state)
                    return response
                # Another replica wrote this call meanwhile: read again and decide afresh.
                self.metrics.write_conflicts.inc()
        raise StatusError(
            grpc.StatusCode.ABORTED, f"call {call_id!r} is being changed concurrently; retry"
        )

    def _flow_for(
        self, state: CallState | None, request: pb.DecideNextActionRequest
    ) -> Flow | None:
        if state is None:
            if request.WhichOneof("event") == "call_ended":
                return None
            try:
                return self.catalog.resolve(request.call.flow_selector)
            except UnknownFlowError as exc:
                raise StatusError(grpc.StatusCode.NOT_FOUND, str(exc)) from exc
        if state.over:
            return None
        flow = self.catalog.pinned(state.flow_id, state.flow_version)
        if flow is None:
            raise StatusError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"call {state.call_id!r} runs flow {state.flow_id} version {state.flow_version}, which is no longer loaded",
            )
        return flow

    # -- hooks ----------------------------------------------------------------------------

    async def _decide(
        self, flow: Flow | None, state: CallState | None, request: pb.DecideNextActionRequest
    ) -> Decision:
        """The engine's decision, with the HTTP hooks it needs performed on the way."""
        # The server's clock stands in only when the platform did not say when it happened.
        return await run_turn(self.hooks, flow, state, request, datetime.now(UTC))

    async def aclose(self) -> None:
        """Releases the hooks' HTTP connections (after the server stopped taking calls)."""
        await self.hooks.aclose()

    # -- GetCall --------------------------------------------------------------------------

    async def _get_call(self, raw: bytes) -> bytes:
        request = _valid(_parse(pb.GetCallRequest, raw), validate_get_call)
        snapshot = await self._store(self.store.read(request.call_id, ""))
        if snapshot.state is None:
            raise StatusError(grpc.StatusCode.NOT_FOUND, f"no call {request.call_id!r}")
        state = decode(snapshot.state)
        response = pb.GetCallResponse(
            call=pb.CallSnapshot(
                call_id=state.call_id,
                flow_id=state.flow_id,
                flow_version=state.flow_version,
                node_id=state.node,
                slots=state.slots,
                counters=state.counters,
                turn_count=state.turn,
                dialogue_over=state.over,
            )
        )
        for turn in await self._store(self.store.turns(request.call_id)):
            response.turns.add(
                number=turn.number,
                request=restored(turn, request.call_id),
                response=pb.DecideNextActionResponse.FromString(turn.response),
            )
        return response.SerializeToString(deterministic=True)

    # -- store access ---------------------------------------------------------------------

    async def _store(self, operation: Coroutine[Any, Any, M]) -> M:
        """Awaits a store operation, mapping failure to UNAVAILABLE and tracking health.

        Whatever waits is shielded in a task of its own: a gateway whose deadline is shorter
        than the store's timeout cancels the RPC first, and the store's failure would otherwise
        never reach the health status. A store that `starts_inline` runs the operation's first
        step here: when it finishes there (as SQLite's reads and writes do), no task, shield or
        trip around the event loop is paid for (bench/levers.md measured them at about a tenth
        of the server's CPU per decision).
        """
        try:
            if self.store.starts_inline:
                try:
                    waiting_on = operation.send(None)
                except StopIteration as finished:
                    result: M = finished.value
                else:
                    result = await self._shielded(_Resumed(operation, waiting_on))
            else:
                result = await self._shielded(operation)
        except StoreUnavailableError as exc:
            self.metrics.store_failed(operation)
            await self._set_store_health(healthy=False)
            _log.warning("session store unavailable: %s", exc)
            raise StatusError(
                grpc.StatusCode.UNAVAILABLE, "session store unavailable; retry"
            ) from exc
        await self._set_store_health(healthy=True)
        return result

    async def _shielded(self, operation: Awaitable[M]) -> M:
        pending = asyncio.ensure_future(operation)
        try:
            return await asyncio.shield(pending)
        except asyncio.CancelledError:
            pending.add_done_callback(self._observe_abandoned)
            raise

    def _observe_abandoned(self, operation: asyncio.Future[Any]) -> None:
        """Health follows a store operation its caller gave up waiting for."""
        if operation.cancelled():
            return
        failed = isinstance(operation.exception(), StoreUnavailableError)
        task = asyncio.get_running_loop().create_task(self._set_store_health(healthy=not failed))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _set_store_health(self, *, healthy: bool) -> None:
        if healthy != self._store_healthy:
            self._store_healthy = healthy
            if self._on_store_health is not None:
                await self._on_store_health(healthy)


class _Resumed(Awaitable[M]):
    """The rest of a coroutine that was stepped once by hand and is waiting on `waiting_on`.

    Awaited (by a task), it hands `waiting_on` to the task as the coroutine would have, then
    passes every value or exception the task sends on to the coroutine, until it returns.
    """

    def __init__(self, coroutine: Coroutine[Any, Any, M], waiting_on: Any) -> None:
        self._coroutine = coroutine
        self._waiting_on = waiting_on

    def __await__(self) -> Generator[Any, Any, M]:
        coroutine, waiting_on = self._coroutine, self._waiting_on
        while True:
            try:
                sent = yield waiting_on
            except BaseException as exc:  # cancellation included: the coroutine decides
                step: Callable[[], Any] = functools.partial(coroutine.throw, exc)
            else:
                step = functools.partial(coroutine.send, sent)
            try:
                waiting_on = step()
            except StopIteration as finished:
                result: M = finished.value
                return result


def _parse(message: Callable[[], M], raw: bytes) -> M:
    parsed = message()
    try:
        parsed.ParseFromString(raw)  # type: ignore[attr-defined]
    except DecodeError as exc:
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"request is not a valid {parsed.DESCRIPTOR.full_name} message: {exc}",  # type: ignore[attr-defined]
            [
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field="", description=str(exc))
                    ]
                )
            ],
        ) from exc
    return parsed


def _valid(request: M, validate: Callable[[M], list[Violation]]) -> M:
    """The request itself, or INVALID_ARGUMENT listing every violation."""
    violations = validate(request)
    if violations:
        raise _bad_request(violations)
    return request


def _fingerprint(request: pb.DecideNextActionRequest) -> str:
    """Digest of what makes an event itself: its call and its event payload.

    Timestamps, playback state and call data may legitimately differ between a vendor's
    retries of one event, so they are left out.
    """
    event = request.WhichOneof("event") or ""
    payload = getattr(request, event).SerializeToString(deterministic=True) if event else b""
    digest = hashlib.sha256(
        request.call.call_id.encode() + b"\0" + event.encode() + b"\0" + payload
    )
    return digest.hexdigest()[:32]
