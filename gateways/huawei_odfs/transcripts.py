"""Speech transcripts the IVR left in Redis, reported as `input = key@inter_no`.

The ODFS reads the recognised text from Redis itself (the IVR writes it there); the value is
plain text, not JSON. Deployments differ in how they key it, so the lookup tries, in order:
`GET key`; when `key` holds a hash, `HGET key inter_no`; when `key` is missing, `GET key@inter_no`
(the whole reference). A missing value or an unreachable Redis is not an error: the caller's
turn becomes a no-match and the dialogue goes on.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as redis
from redis.exceptions import RedisError, ResponseError

from gateways.huawei_odfs.protocol import SpeechReference, Transcript

DEFAULT_TIMEOUT_S = 0.2
# Encodings of Chinese deployments besides UTF-8.
_ENCODINGS = ("utf-8", "gb18030")

_log = logging.getLogger("dialogue.gateway.huawei_odfs")


class TranscriptStore:
    """Reads transcripts from one Redis, each lookup bounded by `timeout_s` in all.

    Args:
        url: A redis-py URL (`redis://host:port/db`, `rediss://…`, `unix://…`).
        timeout_s: Longest a lookup may take, connecting included; the caller is waiting.
    """

    def __init__(self, url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    async def lookup(self, reference: SpeechReference) -> Transcript:
        """The transcript of a reference, or a Transcript without text saying why there is none."""
        try:
            async with asyncio.timeout(self.timeout_s):
                value = await self._fetch(reference)
        except (RedisError, OSError, TimeoutError) as exc:
            _log.warning("transcript %s: Redis unavailable: %r", reference.raw, exc)
            return Transcript(problem=f"Redis unavailable ({type(exc).__name__})")
        if value is None:
            return Transcript(problem="no transcript in Redis")
        return Transcript(text=_decode(value))

    async def close(self) -> None:
        await self._redis.aclose()

    async def _fetch(self, reference: SpeechReference) -> bytes | str | None:
        try:
            value = await self._redis.get(reference.key)
        except ResponseError:
            # WRONGTYPE: the key holds the call's recognitions as a hash, by number.
            return await self._redis.hget(reference.key, reference.inter_no)
        if value is None:
            value = await self._redis.get(reference.raw)
        return value


def _decode(value: bytes | str) -> str:
    if isinstance(value, str):
        return value
    for encoding in _ENCODINGS:
        try:
            return value.decode(encoding)
        except UnicodeDecodeError:
            continue
    return value.decode("utf-8", errors="replace")
