"""Reloading flows without a restart: calls keep their version, new calls get the new one,
and a bad reload leaves the running flows live.

In-process tests drive `FlowReloader` directly against a served catalog; process tests run the
real server and reload it by SIGHUP and by editing its flows directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dialogue.v1 import dialogue_pb2 as pb
from dialogue.v1 import dialogue_pb2_grpc
from server.config import DEMO_FLOWS, parse_config
from server.engine.catalog import Catalog, load_catalog
from server.reloader import FlowReloader, Outcome, fingerprint
from tests.support.grpc_server import Served, request, serve
from tests.support.server_process import MEMORY_SERVER_ARGS, RunningServer, start_server

T = TypeVar("T")

# Bounds a wait for something the server does in the background; never a timing assertion.
_BOUND_S = 60.0
_STEP_S = 0.05


def _line_flow(version: str, *, menu: str = "menu", bye: str = "bye") -> str:
    """A one-menu flow whose node ids and prompts all name the version they belong to."""
    return (
        "flow: line\n"
        f'version: "{version}"\n'
        f"start: {menu}\n"
        "defaults:\n"
        f"  on_max_attempts: {bye}\n"
        "nodes:\n"
        f"  {menu}:\n"
        "    type: menu\n"
        f"    prompt: Welcome to version {version}. Press 1.\n"
        "    choices:\n"
        "      - intent: one\n"
        '        key: "1"\n'
        f"        next: {bye}\n"
        f"  {bye}:\n"
        "    type: hangup\n"
        f"    prompt: Goodbye from version {version}.\n"
    )


# Version 2 renames every node, so a call still on version 1 could not go on in version 2.
_V1 = _line_flow("1")
_V2 = _line_flow("2", menu="greeting", bye="farewell")
# Version 2's menu points at a node that does not exist (line 13: the choice's `next`).
_V2_BROKEN = _line_flow("2").replace("next: bye", "next: nowhere")


def _texts(response: pb.DecideNextActionResponse) -> list[str]:
    action = response.WhichOneof("action")
    assert action is not None
    return [item.tts.text for item in getattr(response, action).prompts.items]


def _flows(tmp_path: Path) -> tuple[Path, Path]:
    """A flows directory holding version 1, and the path of its one flow file."""
    directory = tmp_path / "flows"
    directory.mkdir()
    path = directory / "line.yaml"
    path.write_text(_V1, encoding="utf-8")
    return directory, path


def _reloader(directory: Path, served: Served, *, keep: int = 5) -> FlowReloader:
    return FlowReloader(directory, served.running.service, keep=keep, loaded=fingerprint(directory))


async def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _BOUND_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {_BOUND_S:.0f}s")
        await asyncio.sleep(_STEP_S)


async def _stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# -- in process ------------------------------------------------------------------------------


async def test_a_call_keeps_its_version_while_new_calls_get_the_new_one(tmp_path: Path) -> None:
    directory, path = _flows(tmp_path)
    async with serve(catalog=load_catalog(directory)) as served:
        reloader = _reloader(directory, served)
        old = await served.decide(request("old", "r1", call_started={}))
        assert (old.diagnostics.flow_version, old.diagnostics.node_id) == ("1", "menu")

        path.write_text(_V2, encoding="utf-8")
        assert await reloader.reload() is Outcome.RELOADED

        new = await served.decide(request("new", "r1", call_started={}))
        assert (new.diagnostics.flow_version, new.diagnostics.node_id) == ("2", "greeting")
        assert _texts(new) == ["Welcome to version 2. Press 1."]
        # The call that started on version 1 walks version 1's nodes and prompts to its end.
        end = await served.decide(request("old", "r2", digits_entered={"digits": "1"}))
        assert (end.diagnostics.flow_version, end.diagnostics.node_id) == ("1", "bye")
        assert _texts(end) == ["Goodbye from version 1."]
        end = await served.decide(request("new", "r2", digits_entered={"digits": "1"}))
        assert (end.diagnostics.flow_version, end.diagnostics.node_id) == ("2", "farewell")
        snapshot = await served.stub.GetCall(pb.GetCallRequest(call_id="old"), timeout=30)
        assert snapshot.call.flow_version == "1"


async def test_an_invalid_new_version_is_rejected_and_the_old_one_stays_live(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dialogue.reload")
    directory, path = _flows(tmp_path)
    async with serve(catalog=load_catalog(directory)) as served:
        reloader = _reloader(directory, served)
        await served.decide(request("old", "r1", call_started={}))
        path.write_text(_V2_BROKEN, encoding="utf-8")
        assert await reloader.reload() is Outcome.REJECTED

        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        problem = f"{path}:13: node 'menu'.choices[0].next: unknown node 'nowhere'"
        assert problem in "\n".join(errors)
        assert "still serving line@1" in errors[0]
        new = await served.decide(request("new", "r1", call_started={}))
        assert new.diagnostics.flow_version == "1"
        end = await served.decide(request("old", "r2", digits_entered={"digits": "1"}))
        assert _texts(end) == ["Goodbye from version 1."]
        health = health_pb2_grpc.HealthStub(served.channel)
        check = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=30)
        assert check.status == health_pb2.HealthCheckResponse.SERVING


async def test_changed_content_under_the_same_version_is_rejected(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dialogue.reload")
    directory, path = _flows(tmp_path)
    async with serve(catalog=load_catalog(directory)) as served:
        reloader = _reloader(directory, served)
        await served.decide(request("old", "r1", call_started={}))
        path.write_text(_V1.replace("Goodbye from", "Farewell from"), encoding="utf-8")
        assert await reloader.reload() is Outcome.REJECTED

        errors = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
        assert f"{path}:2: flow.version: flow 'line' content changed but version '1'" in errors
        assert "bump version" in errors
        end = await served.decide(request("old", "r2", digits_entered={"digits": "1"}))
        assert _texts(end) == ["Goodbye from version 1."]


async def test_a_call_on_an_evicted_version_fails_precondition(tmp_path: Path) -> None:
    directory, path = _flows(tmp_path)
    async with serve(catalog=load_catalog(directory)) as served:
        reloader = _reloader(directory, served, keep=2)
        await served.decide(request("v1-call", "r1", call_started={}))
        for version in ("2", "3"):
            path.write_text(_line_flow(version), encoding="utf-8")
            assert await reloader.reload() is Outcome.RELOADED
        assert served.running.service.catalog.kept() == {"line": ("3", "2")}
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.decide(request("v1-call", "r2", digits_entered={"digits": "1"}))
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "version 1, which is no longer loaded" in (caught.value.details() or "")


async def test_polling_waits_for_files_to_settle_and_reports_a_broken_file_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dialogue.reload")
    directory, path = _flows(tmp_path)
    async with serve(catalog=load_catalog(directory)) as served:
        reloader = _reloader(directory, served)
        assert await reloader.poll() is Outcome.UNCHANGED
        path.write_text(_V2_BROKEN, encoding="utf-8")
        assert await reloader.poll() is Outcome.SETTLING
        assert await reloader.poll() is Outcome.REJECTED
        caplog.clear()
        assert await reloader.poll() is Outcome.UNCHANGED
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        # An explicit reload (SIGHUP) tries again and reports again.
        assert await reloader.reload() is Outcome.REJECTED
        assert [r for r in caplog.records if r.levelno >= logging.ERROR]

        path.write_text(_V2, encoding="utf-8")
        assert await reloader.poll() is Outcome.SETTLING
        assert await reloader.poll() is Outcome.RELOADED
        assert await reloader.poll() is Outcome.UNCHANGED
        infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
        assert (
            "flows reloaded (line 1 → 2); live: line@2; kept for calls in progress: line@1" in infos
        )


async def test_reverting_then_saving_the_same_broken_file_reports_it_again(
    tmp_path: Path,
) -> None:
    directory, path = _flows(tmp_path)
    async with serve(catalog=load_catalog(directory)) as served:
        reloader = _reloader(directory, served)
        path.write_text(_V2_BROKEN, encoding="utf-8")
        assert await reloader.reload() is Outcome.REJECTED
        path.write_text(_V1, encoding="utf-8")
        assert await reloader.poll() is Outcome.UNCHANGED
        path.write_text(_V2_BROKEN, encoding="utf-8")
        assert await reloader.poll() is Outcome.SETTLING
        assert await reloader.poll() is Outcome.REJECTED


async def test_an_unreadable_file_is_rejected_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dialogue.reload")
    directory, path = _flows(tmp_path)
    async with serve(catalog=load_catalog(directory)) as served:
        reloader = _reloader(directory, served)
        path.write_bytes(b"\xff\xfe not UTF-8")
        assert await reloader.reload() is Outcome.REJECTED
        (record, detail) = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert record.exc_info is None
        assert detail.getMessage().startswith(f"flow reload rejected: {directory}: ")
        assert "utf-8" in detail.getMessage()
        assert served.running.service.catalog.flows["line"].version == "1"


async def test_watch_survives_an_unexpected_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="dialogue.reload")
    directory, path = _flows(tmp_path)
    async with serve(catalog=load_catalog(directory)) as served:
        reloader = _reloader(directory, served)
        real = reloader._succeed
        failures = iter([RuntimeError("a loader bug")])

        def flaky(before: Catalog) -> Catalog:
            failure = next(failures, None)
            if failure is not None:
                raise failure
            return real(before)

        monkeypatch.setattr(reloader, "_succeed", flaky)
        watcher = asyncio.create_task(reloader.watch(0))
        try:
            path.write_text(_V2, encoding="utf-8")
            reloader.request_reload()
            await _until(lambda: any(r.exc_info for r in caplog.records), "failure logged")
            assert served.running.service.catalog.flows["line"].version == "1"
            reloader.request_reload()
            service = served.running.service
            await _until(lambda: service.catalog.flows["line"].version == "2", "next reload")
        finally:
            await _stopped(watcher)


async def test_unchanged_files_are_not_reloaded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dialogue.reload")
    directory, path = _flows(tmp_path)
    async with serve(catalog=load_catalog(directory)) as served:
        reloader = _reloader(directory, served)
        before = served.running.service.catalog
        assert await reloader.reload() is Outcome.UNCHANGED
        assert served.running.service.catalog is before
        # A comment is a file change but not a flow change: the same flow object stays.
        path.write_text("# reviewed\n" + _V1, encoding="utf-8")
        assert await reloader.reload() is Outcome.UNCHANGED
        assert served.running.service.catalog.flows["line"] is before.flows["line"]
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_watch_reloads_on_request_and_on_change(tmp_path: Path) -> None:
    directory, path = _flows(tmp_path)
    async with serve(catalog=load_catalog(directory)) as served:
        service = served.running.service
        reloader = _reloader(directory, served)
        # Interval 0: nothing polls, so only the request can load version 2.
        watcher = asyncio.create_task(reloader.watch(0))
        try:
            path.write_text(_V2, encoding="utf-8")
            reloader.request_reload()
            await _until(lambda: service.catalog.flows["line"].version == "2", "on request")
        finally:
            await _stopped(watcher)
        reloader = _reloader(directory, served)
        watcher = asyncio.create_task(reloader.watch(_STEP_S))
        try:
            path.write_text(_line_flow("3"), encoding="utf-8")
            await _until(lambda: service.catalog.flows["line"].version == "3", "on change")
        finally:
            await _stopped(watcher)


def test_reload_settings_come_from_flags_then_environment() -> None:
    defaults = parse_config([], env={})
    assert (defaults.reload_interval, defaults.keep_versions) == (2.0, 5)
    from_env = parse_config(
        [], env={"DIALOGUE_RELOAD_INTERVAL": "0", "DIALOGUE_KEEP_VERSIONS": "2"}
    )
    assert (from_env.reload_interval, from_env.keep_versions) == (0.0, 2)
    flagged = parse_config(
        ["--reload-interval", "0.5", "--keep-versions", "9"],
        env={"DIALOGUE_RELOAD_INTERVAL": "0"},
    )
    assert (flagged.reload_interval, flagged.keep_versions) == (0.5, 9)


@pytest.mark.parametrize(
    "argv",
    [
        ["--reload-interval", "-1"],
        ["--reload-interval", "soon"],
        ["--reload-interval", "nan"],
        ["--keep-versions", "0"],
        ["--keep-versions", "2.5"],
    ],
)
def test_bad_reload_settings_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_config(argv, env={})
    assert exited.value.code == 2


# -- the real server ------------------------------------------------------------------------

_DEMO_VERSION = "2026.11.1"
_NEW_VERSION = "2026.11.2"
_NEW_WELCOME = "欢迎致电新版客服热线。"


def _demo_copy(tmp_path: Path) -> Path:
    directory = tmp_path / "flows"
    shutil.copytree(DEMO_FLOWS, directory)
    return directory


def _bump_carrier_zh(directory: Path) -> None:
    path = directory / "carrier-zh.yaml"
    text = path.read_text(encoding="utf-8")
    assert f'version: "{_DEMO_VERSION}"' in text
    assert "欢迎致电中国移动客服热线。" in text
    text = text.replace(f'version: "{_DEMO_VERSION}"', f'version: "{_NEW_VERSION}"', 1)
    path.write_text(text.replace("欢迎致电中国移动客服热线。", _NEW_WELCOME, 1), encoding="utf-8")


def _break_carrier_zh(directory: Path) -> str:
    """Points the welcome node at a missing node; returns the problem the server must log."""
    path = directory / "carrier-zh.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    welcome = lines.index("  welcome:\n")
    index = next(i for i in range(welcome, len(lines)) if lines[i].strip() == "next: main_menu")
    lines[index] = lines[index].replace("main_menu", "nowhere")
    path.write_text("".join(lines).replace(_NEW_VERSION, "2026.11.3", 1), encoding="utf-8")
    return f"{path}:{index + 1}: node 'welcome'.next: unknown node 'nowhere'"


def _eventually(check: Callable[[], T | None], what: str, server: RunningServer) -> T:
    deadline = time.monotonic() + _BOUND_S
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {_BOUND_S:.0f}s\n{server.describe_failure()}")
        time.sleep(_STEP_S)


class _Client:
    """Starts and continues calls on the real server over one channel."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.stub = dialogue_pb2_grpc.DialogueServiceStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)
        self.calls = 0

    def send(self, call_id: str, request_id: str, **event: object) -> pb.DecideNextActionResponse:
        message = pb.DecideNextActionRequest(
            request_id=request_id,
            call=pb.Call(call_id=call_id, flow_selector="10086"),
            **event,  # type: ignore[arg-type]
        )
        response: pb.DecideNextActionResponse = self.stub.DecideNextAction(
            message, timeout=_BOUND_S
        )
        return response

    def new_call(self) -> pb.DecideNextActionResponse:
        self.calls += 1
        return self.send(f"new-{self.calls}", "r1", call_started=pb.CallStarted())

    def new_call_on(self, version: str) -> pb.DecideNextActionResponse | None:
        response = self.new_call()
        return response if response.diagnostics.flow_version == version else None

    def serving(self) -> bool:
        check = self.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=_BOUND_S)
        return bool(check.status == health_pb2.HealthCheckResponse.SERVING)


def _reload_and_check(server: RunningServer, directory: Path, reload: Callable[[], None]) -> None:
    """Runs the scenario: a call on the old version, a new version, then a broken one."""
    with grpc.insecure_channel(server.address) as channel:
        client = _Client(channel)
        old = client.send("old", "r1", call_started=pb.CallStarted())
        assert (old.diagnostics.flow_version, old.diagnostics.node_id) == (
            _DEMO_VERSION,
            "main_menu",
        )

        _bump_carrier_zh(directory)
        reload()
        new = _eventually(lambda: client.new_call_on(_NEW_VERSION), "new version live", server)
        assert _texts(new)[0].startswith(_NEW_WELCOME)
        assert "flows reloaded (carrier-zh 2026.11.1 → 2026.11.2)" in server.stderr_text()
        # The call from before the reload goes on with the version it started with.
        bill = client.send("old", "r2", digits_entered=pb.DigitsEntered(digits="1"))
        assert (bill.diagnostics.flow_version, bill.diagnostics.node_id) == (
            _DEMO_VERSION,
            "bill_phone",
        )

        problem = _break_carrier_zh(directory)
        reload()
        _eventually(lambda: problem in server.stderr_text() or None, "problem logged", server)
        assert "ERROR dialogue.reload: flow reload rejected" in server.stderr_text()
        assert client.new_call().diagnostics.flow_version == _NEW_VERSION
        assert client.serving()


def test_sighup_reloads_flows_and_rejects_a_broken_file(tmp_path: Path) -> None:
    directory = _demo_copy(tmp_path)
    # Interval 0: no polling, so only SIGHUP can reload.
    args = (*MEMORY_SERVER_ARGS, "--flows", str(directory), "--reload-interval", "0")
    with start_server(*args) as server:
        _reload_and_check(server, directory, lambda: server.process.send_signal(signal.SIGHUP))


def test_a_changed_flow_file_is_reloaded_without_a_signal(tmp_path: Path) -> None:
    directory = _demo_copy(tmp_path)
    args = (*MEMORY_SERVER_ARGS, "--flows", str(directory), "--reload-interval", "0.1")
    with start_server(*args) as server:
        _reload_and_check(server, directory, lambda: None)
