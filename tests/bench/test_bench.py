"""Smoke test of `python -m bench`: the tiny configuration runs every figure and writes the report.

Timings at this size mean nothing and nothing here looks at them: the tests check that every
figure ran, compared against its baseline, failed no request, and that the report was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from bench.__main__ import parse_args
from bench.config import FIGURES, BenchConfig
from bench.context import redis_unavailable
from bench.echo import create_echo_server, create_sync_echo_server
from bench.fake_telnyx import FakeCallControl
from bench.flowgen import MIN_NODES, write_ring_flow
from bench.gateway_app import build, cpu_per_request_us
from bench.loadgen import RunSpec, run
from bench.procs import REPO_ROOT
from bench.profiling import AREAS, CYTHON_CALLBACKS, frame_name, summarise
from bench.report import MARKDOWN, PLOT, write
from bench.results import Figure
from bench.runner import BenchResult, run_bench
from bench.vendors import CALL_ID, TELNYX, TELNYX_API_KEY, script, signed_headers, telnyx_env
from bench.workload import SCRIPTS, canned_responses, decide_request
from dialogue.v1 import dialogue_pb2 as pb
from gateways.vendors import VENDORS
from server.engine.interpreter import decide
from server.engine.loader import load_flow_file
from tests.support.gateway import serve_gateway
from tests.support.grpc_server import serve

TINY = BenchConfig().tiny()


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[BenchResult, Path]:
    """One tiny bench run for the whole module, its report written to a temporary directory."""
    out = tmp_path_factory.mktemp("bench-out")
    result = run_bench(replace(TINY, out_dir=out), quiet=True)
    write(result, out)
    return result, out


def _figure(result: BenchResult, key: str) -> Figure:
    return next(figure for figure in result.figures if figure.key == key)


def _labels(figure: Figure) -> set[str]:
    return {ratio.label for ratio in figure.ratios}


def test_every_figure_runs(bench: tuple[BenchResult, Path]) -> None:
    result, _ = bench
    assert not result.errors, "\n".join(result.errors.values())
    assert [figure.key for figure in result.figures] == list(FIGURES)
    assert set(result.machine) >= {"CPU", "kernel", "python", "grpcio", "protobuf"}


def test_every_ratio_compares_two_positive_measurements(bench: tuple[BenchResult, Path]) -> None:
    result, _ = bench
    for figure in result.figures:
        assert figure.ratios, f"figure {figure.key} has no ratio"
        for ratio in figure.ratios:
            assert ratio.value > 0, ratio
            assert ratio.baseline > 0, ratio
            assert math.isfinite(ratio.ratio), ratio
            assert ratio.met is None if ratio.target is None else ratio.met in (True, False)


def test_no_request_failed(bench: tuple[BenchResult, Path]) -> None:
    result, _ = bench
    for figure in result.figures:
        for table in figure.tables:
            if "errors" in table.columns:
                column = table.columns.index("errors")
                assert {row[column] for row in table.rows} == {"0"}, (figure.key, table.title)
        assert not [note for note in figure.notes if "fallback" in note], figure.notes


def test_figure_1_compares_every_concurrency_with_echo(bench: tuple[BenchResult, Path]) -> None:
    result, _ = bench
    stores = ["SQLite"] + ([] if redis_unavailable() else ["Redis"])
    expected = {
        f"{store}, {concurrency} concurrent: {what}"
        for store in stores
        for concurrency in TINY.concurrencies
        for what in ("throughput", "p99 latency", "server CPU per decision")
    }
    figure = _figure(result, "1")
    assert _labels(figure) == expected
    # Both echoes ran, and each ratio's baseline is one of them.
    measured = {row[0] for row in figure.tables[0].rows}
    assert {"echo (grpc.aio)", "echo (sync, 16 threads)"} <= measured
    assert {ratio.baseline_label for ratio in figure.ratios} <= measured


def test_figure_2_measures_the_chosen_vendors(bench: tuple[BenchResult, Path]) -> None:
    assert TINY.vendors is not None
    assert {f"{vendor} chain: throughput" for vendor in TINY.vendors} <= _labels(
        _figure(bench[0], "2")
    )


def test_figure_2_checks_that_telnyx_lost_no_command(bench: tuple[BenchResult, Path]) -> None:
    figure = _figure(bench[0], "2")
    telnyx = [ratio for ratio in figure.ratios if ratio.label.startswith("telnyx")]
    # Telnyx's baseline makes the same Call Control requests as its gateway.
    assert {ratio.baseline_label for ratio in telnyx} == {"bare → echo + API"}
    checks = [note for note in figure.notes if note.startswith("telnyx chain: the fake API")]
    assert len(checks) == 1
    assert checks[0].endswith("nothing lost.")


def test_figure_3_grows_calls_and_flows_against_the_smallest(
    bench: tuple[BenchResult, Path],
) -> None:
    labels = _labels(_figure(bench[0], "3"))
    biggest_calls, biggest_flow = TINY.active_calls[-1], TINY.flow_sizes[-1]
    assert f"SQLite, {biggest_calls:,} active calls: p50 per decision" in labels
    assert f"{biggest_flow:,}-node flow: p50 per decision" in labels
    assert {f"{nodes:,}-node flow: load + validate time" for nodes in TINY.flow_sizes} <= labels


def test_figure_4_measures_bytes_per_call_and_rss(bench: tuple[BenchResult, Path]) -> None:
    labels = _labels(_figure(bench[0], "4"))
    assert "encoded state per call (largest step)" in labels
    assert "SQLite file: bytes per active call" in labels
    assert "server, SQLite: peak RSS under load" in labels


def test_figure_5_compares_two_workers_with_one(bench: tuple[BenchResult, Path]) -> None:
    figure = _figure(bench[0], "5")
    assert {"2 workers: throughput", "2 workers: server CPU per decision"} <= _labels(figure)
    assert "decisions per server core (/s)" in figure.tables[0].columns


def test_the_report_is_written(bench: tuple[BenchResult, Path]) -> None:
    result, out = bench
    text = (out / MARKDOWN).read_text(encoding="utf-8")
    assert "## Targets" in text
    assert f"]({PLOT})" in text
    for figure in result.figures:
        assert f"## {figure.key}. {figure.title}" in text
    assert (out / PLOT).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


async def test_a_load_run_stops_at_its_count_bound() -> None:
    server, port = await create_echo_server("127.0.0.1:0")
    try:
        result = await run(
            RunSpec(
                "grpc",
                f"127.0.0.1:{port}",
                2,
                duration_s=60,
                warmup_s=0,
                max_requests=25,
                prefix="t",
            )
        )
    finally:
        await server.stop(None)
    assert result.completed == 25
    assert result.errors == {}


async def test_the_sync_echo_answers_what_the_aio_echo_answers() -> None:
    server, port = create_sync_echo_server("127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            method = channel.unary_unary("/dialogue.v1.DialogueService/DecideNextAction")
            answers = [await method(b"") for _ in range(len(SCRIPTS["carrier"]))]
    finally:
        server.stop(None).wait()
    assert answers == canned_responses()


@pytest.mark.parametrize("nodes", [MIN_NODES, 10, 11, 12, 41])
def test_generated_flows_have_exactly_the_nodes_asked_for_and_run_the_ring_script(
    tmp_path: Path, nodes: int
) -> None:
    flow = load_flow_file(write_ring_flow(tmp_path, nodes))
    assert len(flow.nodes) == nodes
    state = None
    for step in range(len(SCRIPTS["ring"])):
        decision = decide(flow, state, decide_request("ring", "c1", step, "ring"))
        state = decision.state
        assert decision.response.WhichOneof("action") is not None
    assert state is not None
    assert state.over


@contextlib.asynccontextmanager
async def fake_call_control() -> AsyncIterator[tuple[FakeCallControl, str]]:
    """bench/fake_telnyx.py's API on a free 127.0.0.1 port, and its base URL."""
    fake = FakeCallControl()
    server = await asyncio.start_server(fake.serve_connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield fake, f"http://127.0.0.1:{port}/v2"
        # The clients have closed: their connections end here, not with the event loop.
        async with asyncio.timeout(30):
            while fake.open_connections:
                await asyncio.sleep(0.01)


@pytest.mark.parametrize("vendor", sorted(vendor for vendor in VENDORS if script(vendor)))
async def test_each_vendor_script_walks_the_carrier_line_to_goodbye(vendor: str) -> None:
    requests = script(vendor) or []
    # Telnyx's call id is its call_control_id.
    call_id = "v3:call-1" if vendor == TELNYX else "call-1"
    async with (
        fake_call_control() as (fake, api_base),
        serve("memory://") as served,
        serve_gateway(
            vendor,
            f"127.0.0.1:{served.running.port}",
            telnyx_env(api_base) if vendor == TELNYX else None,
        ) as client,
    ):
        for method, target, body in requests:
            content = body.replace(CALL_ID, "call-1").encode()
            headers = {"content-type": "application/json"} if body else {}
            answer = await client.request(
                method,
                target.replace(CALL_ID, "call-1"),
                content=content,
                headers={**headers, **dict(signed_headers(vendor, content))},
            )
            assert answer.status_code == 200, answer.text
        history = await served.stub.GetCall(pb.GetCallRequest(call_id=call_id))
    assert [turn.response.diagnostics.node_id for turn in history.turns] == [
        "main_menu",
        "bill_phone",
        "anything_else",
        "main_menu",
        "anything_else",
        "goodbye",
    ]
    assert history.call.dialogue_over
    if vendor == TELNYX:
        # Every webhook's commands reached the API once: transcription, five menus, goodbye.
        assert fake.stats == {"received": 7, "executed": 7}
        assert fake.commands == {
            "transcription_start": 1,
            "gather_using_speak": 5,
            "speak": 1,
        }


@pytest.mark.parametrize("direct", [True, False])
async def test_the_in_process_gateway_app_answers_every_scripted_request(direct: bool) -> None:
    # cpu_per_request_us raises when any answer is not a 200.
    assert await cpu_per_request_us(build("aliyun-ivr", direct=direct), "aliyun-ivr", 2, "t") > 0


def test_the_fake_call_control_api_executes_a_command_once_and_checks_the_key() -> None:
    fake = FakeCallControl()
    ok = {"authorization": f"Bearer {TELNYX_API_KEY}"}
    body = b'{"command_id": "c1", "payload": "hello"}'
    path = "/v2/calls/v3:x/actions/speak"
    assert fake.answer("POST", path, ok, body).startswith(b"HTTP/1.1 200")
    assert fake.answer("POST", path, ok, body).startswith(b"HTTP/1.1 200")
    assert fake.answer("POST", path, {}, body).startswith(b"HTTP/1.1 401")
    assert fake.answer("POST", path, ok, b"{}").startswith(b"HTTP/1.1 422")
    assert fake.answer("GET", "/v2/nothing", ok, b"").startswith(b"HTTP/1.1 404")
    assert fake.stats == {"received": 4, "executed": 1, "duplicates": 1, "refused": 2}
    assert fake.commands == {"speak": 1}


def test_summarise_reads_py_spy_collapsed_stacks() -> None:
    repo = str(REPO_ROOT)
    collapsed = "\n".join(
        [
            f"thread (101);main ({repo}/server/__main__.py:1);decide ({repo}/server/engine/x.py:5);"
            "dumps (/usr/lib/python3.11/json/__init__.py:7) 30",
            f"thread (101);main ({repo}/server/__main__.py:1);_write ({repo}/server/store/s.py:9) 60",
            "thread (202);Handle._run (/usr/lib/python3.11/asyncio/events.py:80) 10",
        ]
    )
    profile = summarise(collapsed)
    assert profile.samples == 100
    assert profile.own[0] == ("_write (server/store/s.py)", 0.6)
    assert dict(profile.project) == {
        "_write (server/store/s.py)": 0.6,
        "decide (server/engine/x.py)": 0.3,
    }
    assert dict(profile.areas) == {"store": 0.6, AREAS[0][0]: 0.3, CYTHON_CALLBACKS: 0.1}
    assert dict(profile.threads) == {"thread (101)": 0.9, "thread (202)": 0.1}
    assert frame_name("f (/a/site-packages/grpc/aio/_call.py:3)") == "f (grpc/aio/_call.py)"


def test_summarise_charges_a_library_to_itself_not_to_the_middleware_above_it() -> None:
    repo = str(REPO_ROOT)
    collapsed = (
        f"thread (1);log_requests ({repo}/gateways/app.py:50);"
        "call_next (/v/lib/python3.11/site-packages/starlette/middleware/base.py:9);"
        "replace (/usr/lib/python3.11/dataclasses.py:1) 5"
    )
    profile = summarise(collapsed)
    assert [area for area, _ in profile.areas] == [
        "HTTP stack (uvicorn, h11, starlette, fastapi, anyio)"
    ]
    assert "log_requests (gateways/app.py)" not in dict(profile.project)


def test_the_command_line_picks_figures_and_sizes() -> None:
    config = parse_args(["--figures", "1,3", "--tiny", "--out-dir", "/tmp/x"])
    assert config.figures == ("1", "3")
    assert config.out_dir == Path("/tmp/x")
    assert config.repeats == TINY.repeats
    with pytest.raises(SystemExit):
        parse_args(["--figures", "9"])
    assert parse_args(["--figures", "2", "--vendors", "telnyx"]).vendors == ("telnyx",)
    with pytest.raises(SystemExit):
        parse_args(["--vendors", "nobody"])
