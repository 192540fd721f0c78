"""`python -m bench.fake_telnyx`: a minimal Telnyx Call Control API for the gateway figure.

The Telnyx gateway answers a webhook by sending commands to
`POST {base}/calls/{call_control_id}/actions/{command}`; in the bench they come here, on
127.0.0.1. Like Telnyx (and tests/gateways/telnyx/fake_api.py, whose OpenAPI validation would
cost more CPU than the gateway itself on a machine the two share) it checks the bearer key,
answers `{"data": {"result": "ok"}}` and executes each `command_id` at most once per call.
It counts what it got, so the figure can check that nothing was lost: `GET /stats` answers
`{"received", "executed", "duplicates", "refused", "commands": {name: count}}`.

A bare asyncio HTTP/1.1 server (keep-alive, Content-Length bodies), so that its own cost per
command is small and the same for the gateway and for the bare baseline that calls it too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

from bench.vendors import TELNYX_API_KEY

_ACTION: Final = re.compile(r"^/v2/calls/(?P<call>[^/]+)/actions/(?P<command>[a-z_]+)$")
_HEAD_LIMIT: Final = 64 * 1024
_REMEMBERED: Final = 1_000_000  # command ids kept for deduplication (a bench run makes fewer)
_OK: Final = b'{"data":{"result":"ok"}}'


class FakeCallControl:
    """What the fake knows: the keys it accepts and the commands it executed."""

    def __init__(self, api_key: str = TELNYX_API_KEY) -> None:
        self._authorization = f"Bearer {api_key}"
        self.stats: Counter[str] = Counter()
        self.commands: Counter[str] = Counter()
        self._executed: set[tuple[str, str]] = set()
        self.open_connections = 0

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        """The whole HTTP answer to one request."""
        if method == "GET" and path == "/stats":
            document = {**self.stats, "commands": dict(self.commands)}
            return _response(200, json.dumps(document).encode())
        match = _ACTION.match(path)
        if method != "POST" or match is None:
            return _response(404, _errors("10005", "Resource not found"))
        self.stats["received"] += 1
        if headers.get("authorization") != self._authorization:
            self.stats["refused"] += 1
            return _response(401, _errors("10009", "Authentication failed"))
        try:
            command: Any = json.loads(body)
        except ValueError:
            command = None
        if not isinstance(command, dict) or not command.get("command_id"):
            self.stats["refused"] += 1
            return _response(422, _errors("10015", "Invalid parameter", "no command_id"))
        key = (match.group("call"), str(command["command_id"]))
        if key in self._executed:
            # Telnyx ignores a command_id it has seen on the call: success, nothing happens.
            self.stats["duplicates"] += 1
        else:
            if len(self._executed) < _REMEMBERED:
                self._executed.add(key)
            self.stats["executed"] += 1
            self.commands[match.group("command")] += 1
        return _response(200, _OK)

    async def serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Answers the requests of one keep-alive connection until the client closes it."""
        self.open_connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                if len(head) > _HEAD_LIMIT:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines[1:] if line)
                }
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                writer.write(self.answer(method, path.partition("?")[0], headers, body))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            self.open_connections -= 1


def _response(status: int, body: bytes) -> bytes:
    reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 422: "Unprocessable Entity"}
    head = (
        f"HTTP/1.1 {status} {reason[status]}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def _errors(code: str, title: str, detail: str = "") -> bytes:
    error = {"code": code, "title": title, **({"detail": detail} if detail else {})}
    return json.dumps({"errors": [error]}).encode()


async def _serve(listen: str) -> None:
    host, _, port = listen.rpartition(":")
    fake = FakeCallControl()
    server = await asyncio.start_server(fake.serve_connection, host, int(port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bound = server.sockets[0].getsockname()[1]
    print(f"bench-fake-telnyx listening on {host}:{bound}", flush=True)
    async with server:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fake_telnyx", description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:0")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.listen))


if __name__ == "__main__":
    main()
