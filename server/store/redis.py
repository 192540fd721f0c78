"""The scale-out session store: every replica shares one Redis (redis-py asyncio).

Key layout, two keys per call (a third for a call longer than `max_turns`), all carrying the
same hash tag so that a Redis Cluster keeps them on one slot (a Lua script may only touch keys
of one slot there):

    dialogue:{<tag>}:state   string  "<version>:<top>:" then the opaque state bytes; version and
                                     top (the highest turn number written) in decimal
    dialogue:{<tag>}:turns   hash    request id -> encoded TurnRecord (see `server.store.records`)
    dialogue:{<tag>}:order   zset    request id, scored by turn number: only once the call was
                                     first trimmed to `max_turns`

`<tag>` is the call id with `%`, `{` and `}` percent-escaped (`%25`, `%7B`, `%7D`), so a call id
containing braces (or Aliyun's `^`, or anything else) can neither end the tag early nor leave it
empty, which would make Redis hash each whole key to a different slot; the empty call id maps to
the tag `%`, which no escaped id can produce. Escaping rather than hashing keeps keys readable
for an operator with `redis-cli --scan --pattern 'dialogue:{call-42}:*'`.

The layout is the smallest that keeps every operation one lookup (`MEMORY USAGE`: a 3-turn call
takes about 2.0 KiB; figure 4 of `make bench`). A replay is one HGET by request id. The state is
a string, not a hash {v, s}, because a state over 64 bytes (`hash-max-listpack-value`) makes
that hash a hashtable, 160 bytes more per call. The order is not kept beside the turns: each
record holds its turn number, `turns` sorts by it, and `top` in the state makes the check that
a turn number is new free for turns that count up, as the service's do (a lower number reads
the records' numbers). Only trimming needs the order on every write, so it is built, once, at
a call's first trim.

Calls written by earlier versions (the state a hash {v, s}, the order always kept) are read and
written in that layout until they expire, so a rolling upgrade needs no migration: while old and
new replicas share a Redis, a call the new layout wrote fails on an old replica with WRONGTYPE
(StoreUnavailableError: nothing written, the gateway retries on another replica).

`write` is one Lua script, so it is atomic: it checks the version and that the request id and
turn number are new (reads that also fail on a key of the wrong type) before it writes anything
but the removal of a dead call's leftovers, so a failing write leaves the call as it was. Two
replicas deciding for the same call can never both win. Every successful write re-arms the
expiry of all the call's keys: `idle_ttl_s` normally, `ended_ttl_s` once the write says the
dialogue ended.

Topologies (see `server.store.redis_url`): one server (`redis://`), a Redis Cluster
(`redis+cluster://`, redis-py's RedisCluster: every script's keys are one call's, so one slot,
and MOVED/ASK redirections after a failover or resharding are followed), or a master watched by
Sentinel (`redis+sentinel://`: every new connection asks the sentinels where the master is, and
a connection that finds a demoted master is dropped). With `?wait_replicas=N` every write is
followed by `WAIT N timeout` on the same connection, and a write not acknowledged by N replicas
in time is reported as failed (it is on the master, but an answer only goes out once the turn
would survive the master's loss), and a replay is answered only after a WAIT of its own (see
`_SYNC_LUA`); see docs/operations.md for what each mode can lose.

Failures are fast and loud: connect and read time out after `timeout_s`, redis-py's own retries
are off (the caller's retry with the same request id is exactly-once anyway, and a retry here
would multiply the time an outage takes to surface), and every Redis error becomes
StoreUnavailableError. A dead pooled connection is replaced when next checked out, so the store
recovers by itself when Redis comes back.

On one server without WAIT, every script skips redis-py's client layers (about half of the
client's CPU per decision: see `_DirectScripts`). Everything else (PING, SCAN, the WAIT
pipeline, Cluster and Sentinel) goes through redis-py's client.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Final, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError, NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.store.base import Snapshot, StoreUnavailableError, TurnRecord
from server.store.expiry import Expiry
from server.store.records import decode_turn, encode_turn
from server.store.redis_url import CLUSTER, SENTINEL, RedisTarget, parse_redis_url

# Shared by the scripts: the layout of the state key (see the module docstring). Returns the
# version (0 when the call is unknown), the highest turn number written (nil when a hash written
# by an earlier version does not say) and the state. A key of another type fails in GET with
# Redis's own WRONGTYPE error.
_STATE_LUA: Final = """
local function number_of(record)
    -- The turn number of an encoded TurnRecord: bytes 2-9, big-endian (formats 1 and 2).
    local number = 0
    for i = 2, 9 do
        number = number * 256 + (string.byte(record, i) or 0)
    end
    return number
end

local function load_state(key)
    local kind = redis.call('TYPE', key).ok
    if kind == 'none' then
        return 0, 0, nil
    end
    if kind == 'hash' then
        local found = redis.call('HMGET', key, 'v', 's')
        return tonumber(found[1] or '0'), nil, found[2]
    end
    local value = redis.call('GET', key)
    local first = string.find(value, ':', 1, true)
    local second = first and string.find(value, ':', first + 1, true)
    local version = second and tonumber(string.sub(value, 1, first - 1))
    local top = second and tonumber(string.sub(value, first + 1, second - 1))
    if not (version and top) then
        error('unreadable state in ' .. key)
    end
    return version, top, string.sub(value, second + 1)
end
"""

# KEYS: state, turns, order. ARGV: expected version, state, turn number, request id, encoded
# turn, max turns, ttl seconds. Returns 1 when written, 0 when another writer won (stale version
# or request id already applied), -1 when the turn number is already kept (a caller bug).
_WRITE_LUA: Final = (
    _STATE_LUA
    + """
local version, top = load_state(KEYS[1])
if version ~= tonumber(ARGV[1]) then
    return 0
end
if version == 0 then
    -- No state means an unknown call: forget any turns that outlived an expired state.
    redis.call('DEL', KEYS[2], KEYS[3])
end
if redis.call('HEXISTS', KEYS[2], ARGV[4]) == 1 then
    return 0
end
local number = tonumber(ARGV[3])
local ordered = redis.call('EXISTS', KEYS[3]) == 1
if ordered then
    if redis.call('ZCOUNT', KEYS[3], number, number) > 0 then
        return -1
    end
elseif top == nil or number <= top then
    -- Out of order (never from the service, whose turns count up): look at every record.
    for _, record in ipairs(redis.call('HVALS', KEYS[2])) do
        if number_of(record) == number then
            return -1
        end
    end
end
if top == nil then
    redis.call('HSET', KEYS[1], 'v', version + 1, 's', ARGV[2])
else
    redis.call('SET', KEYS[1], string.format('%d:%d:', version + 1, math.max(top, number)) .. ARGV[2])
end
redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
if ordered then
    redis.call('ZADD', KEYS[3], number, ARGV[4])
end
local excess = redis.call('HLEN', KEYS[2]) - tonumber(ARGV[6])
if excess > 0 then
    if not ordered then
        -- The call's first trim: from now on its order is kept in the sorted set, so that
        -- trimming a long call does not read all its records on every write.
        local all = redis.call('HGETALL', KEYS[2])
        for i = 1, #all, 2 do
            redis.call('ZADD', KEYS[3], number_of(all[i + 1]), all[i])
        end
    end
    local trimmed = redis.call('ZRANGE', KEYS[3], 0, excess - 1)
    redis.call('ZREMRANGEBYRANK', KEYS[3], 0, excess - 1)
    for _, request_id in ipairs(trimmed) do
        redis.call('HDEL', KEYS[2], request_id)
    end
end
for _, key in ipairs(KEYS) do
    redis.call('EXPIRE', key, ARGV[7])
end
return 1
"""
)

# KEYS: state, turns. ARGV: request id. Returns {} for an unknown call, else {version, state}
# plus the encoded turn when the request id was applied; one script so state and replay are
# consistent. A missing turn is left out rather than returned as Lua false, whose conversion
# the Redis docs give differently for RESP2 (nil) and RESP3 (a boolean) connections.
_READ_LUA: Final = (
    _STATE_LUA
    + """
local version, _, state = load_state(KEYS[1])
if version == 0 then
    return {}
end
local replay = redis.call('HGET', KEYS[2], ARGV[1])
if not replay then
    return {version, state}
end
return {version, state, replay}
"""
)

# KEYS: state, turns. Returns the encoded turns in no particular order (each holds its number).
_TURNS_LUA: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return {}
end
return redis.call('HVALS', KEYS[2])
"""

# KEYS: state. Re-arms the state's expiry unchanged: a write that changes nothing but goes into
# the replication stream after everything before it, so a WAIT behind it covers an earlier turn
# another connection wrote (WAIT counts only the writes of its own connection).
_SYNC_LUA: Final = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
    redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
"""

_POOL_SIZE: Final = 256


class RedisStore:
    """Session store in a Redis server shared by every replica; calls expire when idle."""

    # See SessionStore: every operation waits for the network, under redis-py's timeouts.
    starts_inline = False

    def __init__(
        self,
        url: str,
        *,
        max_turns: int = 500,
        idle_ttl_s: int = 86400,
        ended_ttl_s: int = 3600,
        timeout_s: float = 0.5,
    ) -> None:
        """Prepares the store; nothing connects until first use.

        Args:
            url: `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS. Query
                options of redis-py (e.g. `?socket_timeout=2`) override the keywords below.
                `redis+cluster://` and `redis+sentinel://` name the other topologies (see
                `server.store.redis_url.parse_redis_url`).
            max_turns: How many of the newest turns to keep per call.
            idle_ttl_s: Seconds a call's keys live after its last write.
            ended_ttl_s: Seconds they live after a write that says the dialogue ended.
            timeout_s: Socket connect and read timeout, so an outage fails fast.

        Raises:
            ValueError: A limit is not positive, or redis-py cannot parse the URL.
        """
        if max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, got {max_turns}")
        expiry = Expiry(idle_ttl_s, ended_ttl_s)  # checks them
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        target = parse_redis_url(url)
        self._where = target.where
        self._max_turns = max_turns
        self._idle_ttl_s = expiry.idle_ttl_s
        self._ended_ttl_s = expiry.ended_ttl_s
        self._wait = target.wait_replicas, target.wait_timeout_ms
        # A WAIT holds its reply up to wait_timeout_ms: the read timeout must outlast it.
        read_timeout_s = (
            timeout_s + target.wait_timeout_ms / 1000 if target.wait_replicas else timeout_s
        )
        self._client, self._release, self._direct = _connect(target, read_timeout_s)
        # What a failing Redis raises. redis-py's cluster client (8.1) also raises
        # AttributeError ('NoneType' object has no attribute 'writelines') when a topology
        # refresh disconnects a connection another request is still setting up: a dropped
        # connection like any other, seen in the cluster drill.
        self._failures: tuple[type[BaseException], ...] = (RedisError, OSError)
        if target.topology == CLUSTER:
            self._failures += (AttributeError,)
        # Scripts run by EVALSHA, loaded again when the server lacks them (a restart or a
        # failover empties the script cache): by `_DirectScripts` on one server without WAIT,
        # by redis-py otherwise.
        self._write_script = self._client.register_script(_WRITE_LUA)
        self._read_script = self._client.register_script(_READ_LUA)
        self._turns_script = self._client.register_script(_TURNS_LUA)
        self._sync_script = self._client.register_script(_SYNC_LUA)
        self._closed = False

    async def read(self, call_id: str, request_id: str) -> Snapshot:
        """See `SessionStore.read`."""
        state_key, turns_key, _ = _keys(call_id)
        reply = await self._run(self._read_script, [state_key, turns_key], [request_id])
        if not isinstance(reply, list) or len(reply) not in (0, 2, 3):
            raise self._corrupt(call_id, "read reply")
        if not reply:
            return Snapshot(state=None, version=0, replay=None)
        version, state, *replay = reply
        if not isinstance(version, int) or not isinstance(state, bytes):
            raise self._corrupt(call_id, "state")
        replicas, timeout_ms = self._wait
        if replay and replicas:
            # A retry is about to be answered with this turn: only once it would survive the
            # master's loss, as its first answer would have been (the first write's WAIT may
            # have timed out, leaving the turn on the master alone).
            await self._run_and_wait(self._sync_script, [state_key], [], replicas, timeout_ms)
        return Snapshot(
            state=state,
            version=version,
            replay=self._decode(call_id, replay[0]) if replay else None,
        )

    async def write(
        self,
        call_id: str,
        expected_version: int,
        state: bytes,
        turn: TurnRecord,
        *,
        ended: bool = False,
    ) -> bool:
        """See `SessionStore.write`; `ended` shortens the call's expiry to `ended_ttl_s`.

        Raises:
            StoreUnavailableError: Redis failed; nothing was written.
            ValueError: A turn with the same number is already kept for the call (a caller bug).
        """
        keys = _keys(call_id)
        args: list[str | bytes | int] = [
            expected_version,
            state,
            turn.number,
            turn.request_id,
            encode_turn(turn),
            self._max_turns,
            self._ended_ttl_s if ended else self._idle_ttl_s,
        ]
        replicas, timeout_ms = self._wait
        if replicas:
            result = await self._run_and_wait(self._write_script, keys, args, replicas, timeout_ms)
        else:
            result = await self._run(self._write_script, keys, args)
        if result == -1:
            raise ValueError(f"turn {turn.number} is already recorded for call {call_id!r}")
        return result == 1

    async def _run_and_wait(
        self,
        script: AsyncScript,
        keys: Sequence[str],
        args: Sequence[str | bytes | int],
        replicas: int,
        timeout_ms: int,
    ) -> object:
        """A writing script, then WAIT on the same connection (one pipeline), so the count is
        of replicas holding this write (and everything the master had before it).

        Raises:
            StoreUnavailableError: Redis failed, or the script wrote and fewer than `replicas`
                replicas acknowledged it within `timeout_ms`.
        """
        self._check_open()
        assert isinstance(self._client, Redis)  # parse_redis_url refuses WAIT with a Cluster
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                await script(keys=keys, args=args, client=pipe)
                pipe.wait(replicas, timeout_ms)
                result, acknowledged = await pipe.execute()
        except self._failures as exc:
            raise self._unavailable(exc) from exc
        if result == 1 and acknowledged < replicas:
            raise StoreUnavailableError(
                f"redis store {self._where}: the write reached {acknowledged} of {replicas} "
                f"replicas within {timeout_ms} ms"
            )
        return result

    async def turns(self, call_id: str) -> list[TurnRecord]:
        """See `SessionStore.turns`."""
        reply = await self._run(self._turns_script, _keys(call_id)[:2], [])
        if not isinstance(reply, list):
            raise self._corrupt(call_id, "turns reply")
        # Each record holds its turn number: the order is the client's to restore.
        return sorted((self._decode(call_id, record) for record in reply), key=_number)

    async def call_ids(self) -> AsyncIterator[str]:
        """See `SessionStore.call_ids`: SCANs the state keys (never KEYS, which blocks Redis)."""
        self._check_open()
        try:
            async for key in self._client.scan_iter(match="dialogue:{*}:state", count=500):
                name = key.decode() if isinstance(key, bytes) else str(key)
                yield _call_id_of(name)
        except self._failures as exc:
            raise StoreUnavailableError(f"cannot list calls: {exc}") from exc

    async def ping(self) -> None:
        """See `SessionStore.ping`."""
        self._check_open()
        try:
            await self._client.ping()
        except self._failures as exc:
            raise self._unavailable(exc) from exc

    async def close(self) -> None:
        """See `SessionStore.close`; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        await self._release()

    async def _run(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[str | bytes | int]
    ) -> object:
        self._check_open()
        try:
            if self._direct is not None:
                return await self._direct.evalsha(script, keys, args)
            result: object = await script(keys=keys, args=args)
        except self._failures as exc:
            raise self._unavailable(exc) from exc
        return result

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailableError(f"the redis store {self._where} is closed")

    def _unavailable(self, exc: BaseException) -> StoreUnavailableError:
        return StoreUnavailableError(f"redis store {self._where}: {type(exc).__name__}: {exc}")

    def _corrupt(self, call_id: str, what: str) -> StoreUnavailableError:
        # Only a foreign writer or a newer server version can leave data we cannot read; the
        # call is unusable either way, which is what StoreUnavailableError tells the caller.
        return StoreUnavailableError(
            f"redis store {self._where}: unreadable {what} for call {call_id!r}"
        )

    def _decode(self, call_id: str, record: object) -> TurnRecord:
        if isinstance(record, bytes):
            turn = decode_turn(record)
            if turn is not None:
                return turn
        raise self._corrupt(call_id, "turn record")


def _connect(
    target: RedisTarget, timeout_s: float
) -> tuple[Redis | RedisCluster, Callable[[], Awaitable[None]], _DirectScripts | None]:
    """The client for a topology, how to release everything it holds, and the direct path for
    the scripts when the topology has one (see `_DirectScripts`)."""
    timeouts = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    if target.topology == CLUSTER:
        # One retry of a connection error, after redis-py re-reads the slot map: a failover
        # moves a slot to another node, which the second attempt then reaches.
        cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            username=target.username,
            password=target.password,
            max_connections=_POOL_SIZE,
            retry=Retry(NoBackoff(), 1),
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        return cluster, cluster.aclose, None
    if target.topology == SENTINEL:
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(target.nodes),
            sentinel_kwargs=timeouts,
            username=target.username,
            password=target.password,
            db=target.db,
            retry=Retry(NoBackoff(), 0),
            **timeouts,
        )
        master: Redis = sentinel.master_for(target.master, max_connections=_POOL_SIZE)

        async def release_sentinel() -> None:
            await master.aclose()
            await master.connection_pool.disconnect()
            for client in sentinel.sentinels:
                await client.aclose()

        return master, release_sentinel, None
    # A blocking pool: past its size a call waits (up to timeout_s) for a free connection
    # instead of failing at once, so a short Redis stall under load does not become a burst
    # of UNAVAILABLE answers.
    pool = BlockingConnectionPool.from_url(
        target.url,
        max_connections=_POOL_SIZE,
        timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        **timeouts,
    )
    client = Redis(connection_pool=pool)
    # WAIT needs the script and WAIT on one connection: that stays a redis-py pipeline.
    direct = None if target.wait_replicas else _DirectScripts(pool, _POOL_SIZE, timeout_s)

    async def release() -> None:
        if direct is not None:
            await direct.close()
        await client.aclose()
        await pool.disconnect()  # a pool handed to Redis() is the caller's to close

    return client, release, direct


# Whether a connection has bytes to read or is at EOF: `can_read` since redis-py 8, which
# deprecates the older name (the dependency allows redis-py 5).
_readable: Final[Callable[[AbstractConnection], Awaitable[bool]]] = getattr(
    AbstractConnection, "can_read", AbstractConnection.can_read_destructive
)


class _DirectScripts:
    """EVALSHA on connections of the store's own, past redis-py's client layers (one server).

    Through redis-py a script costs, per call, `Script.__call__`, `execute_command`, a `Retry`,
    the blocking pool's condition, lock, timeout and observability hooks, the command packer's
    per-argument encoding, and a task for the send's timeout (`asyncio.wait_for` on Python
    3.11): about half the client's CPU per decision (bench/levers-redis.md). Here a command is
    packed in one join, written on an idle connection and its reply read by the connection's
    own parser (RESP3 too), under one deadline per command: the socket timeout, plus the
    connect timeout when the connection must connect first (the URL's options included).

    Connections are made as redis-py's pool makes them (so they authenticate and select the
    database alike), with its semantics: at most `size` at once, a call past them waits up to
    `wait_s` for one; a connection whose command failed, timed out or was cancelled is closed,
    never reused; an idle one the server closed (a restart) is reconnected before it is used.
    """

    def __init__(self, pool: BlockingConnectionPool, size: int, wait_s: float) -> None:
        options = dict(pool.connection_kwargs)
        self._read_s: float | None = options.get("socket_timeout")
        self._connect_s: float | None = options.get("socket_connect_timeout")
        # The deadline below covers the whole command: without a socket timeout of its own the
        # connection writes without a task per send.
        options["socket_timeout"] = None
        self._make = functools.partial(pool.connection_class, **options)
        self._slots = asyncio.Semaphore(size)
        self._wait_s = wait_s
        self._idle: list[AbstractConnection] = []
        self._open: set[AbstractConnection] = set()

    async def evalsha(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[str | bytes | int]
    ) -> object:
        """The script's reply; loads the script once when the server lacks it (a restart or a
        failover empties the script cache).

        Raises:
            RedisError: As redis-py's client would (ResponseError for an error reply).
        """
        command = _pack(b"EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self._execute(command)
        except NoScriptError:
            await self._execute(_pack(b"SCRIPT", b"LOAD", cast(str, script.script)))
            return await self._execute(command)

    async def _execute(self, command: bytes) -> object:
        if self._slots.locked():
            try:
                async with asyncio.timeout(self._wait_s):
                    await self._slots.acquire()
            except TimeoutError:
                raise ConnectionError(f"no free connection within {self._wait_s} s") from None
        else:
            await self._slots.acquire()  # free: returns at once
        try:
            connection = self._idle.pop() if self._idle else self._new()
            try:
                reply = await self._exchange(connection, command)
            except ResponseError:
                self._idle.append(connection)  # the whole error reply was read
                raise
            except BaseException:
                self._open.discard(connection)
                await connection.disconnect(nowait=True)
                raise
            self._idle.append(connection)
            return reply
        finally:
            self._slots.release()

    async def _exchange(self, connection: AbstractConnection, command: bytes) -> object:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(None) as deadline:
                # Readable while idle: the server closed it (or it holds a stray reply).
                if not connection.is_connected or await _readable(connection):
                    if self._connect_s is not None:
                        deadline.reschedule(loop.time() + self._connect_s)
                    await connection.disconnect()
                    await connection.connect()  # type: ignore[no-untyped-call]
                if self._read_s is not None:
                    deadline.reschedule(loop.time() + self._read_s)
                await connection.send_packed_command(command, check_health=False)
                reply: object = await connection.read_response()
        except TimeoutError:
            raise RedisTimeoutError("redis did not answer in time") from None
        return reply

    def _new(self) -> AbstractConnection:
        connection: AbstractConnection = self._make()
        self._open.add(connection)
        return connection

    async def close(self) -> None:
        """Closes every connection, idle or in use."""
        self._idle.clear()
        for connection in list(self._open):
            await connection.disconnect(nowait=True)
        self._open.clear()


def _pack(*args: str | bytes | int) -> bytes:
    """A command in RESP, as redis-py packs it (str as UTF-8, int in decimal)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            raw = arg.encode()
        elif isinstance(arg, int):
            raw = b"%d" % arg
        else:
            raw = arg
        parts += (b"$%d\r\n" % len(raw), raw, b"\r\n")
    return b"".join(parts)


def _number(turn: TurnRecord) -> int:
    return turn.number


def _keys(call_id: str) -> tuple[str, str, str]:
    """The state, turns and order keys of a call (see the module docstring)."""
    tag = call_id.replace("%", "%25").replace("{", "%7B").replace("}", "%7D") or "%"
    prefix = f"dialogue:{{{tag}}}:"
    return prefix + "state", prefix + "turns", prefix + "order"


def _call_id_of(state_key: str) -> str:
    """The call id of a state key: `_keys` backwards."""
    tag = state_key[len("dialogue:{") : -len("}:state")]
    if tag == "%":
        return ""
    return tag.replace("%7D", "}").replace("%7B", "{").replace("%25", "%")
