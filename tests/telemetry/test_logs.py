"""The log formats: one line per record, phone numbers masked, fields unchanged otherwise."""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from telemetry.logs import JsonFormatter, TextFormatter, log_line


def record_with(fields: dict[str, Any], message: str = "turn") -> logging.LogRecord:
    record = logging.LogRecord("dialogue.test", logging.INFO, "", 0, message, (), None)
    record.fields = fields
    return record


def test_text_masks_message_and_fields_in_one_line() -> None:
    record = record_with(
        {"caller": "+8613800138000", "call_id": "100001616500^100001871490", "n": 2},
        message="from 13912345678",
    )
    line = TextFormatter().format(record)
    assert line.endswith(
        "INFO dialogue.test: from 139******78 caller=+861********00 "
        "call_id=100001616500^100001871490 n=2"
    )


def test_text_masks_a_value_before_quoting_it() -> None:
    # Quoted, \x01 becomes \u0001, whose digits would run into the number and hide it.
    record = record_with({"note": "\x0113800138000 x", "empty": ""})
    line = TextFormatter().format(record)
    assert "13800138000" not in line
    assert line.endswith('note="\\u0001138******00 x" empty=""')


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()], ids=["text", "json"])
def test_trace_ids_and_durations_are_never_masked(formatter: logging.Formatter) -> None:
    # A hex id can hold what looks like a mobile number between two letters.
    fields = {"trace_id": "a13800138000b", "duration_ms": 13800138000.5, "caller": "13800138000"}
    line = formatter.format(record_with(fields))
    assert "trace_id=a13800138000b" in line or '"trace_id": "a13800138000b"' in line
    assert "13800138000.5" in line
    assert "138******00" in line


def test_text_leaves_the_traceback_after_the_fields() -> None:
    try:
        raise ValueError("bad number 13800138000")
    except ValueError:
        record = record_with({"k": "v"})
        record.exc_info = sys.exc_info()
    first, _, rest = TextFormatter().format(record).partition("\n")
    assert first.endswith("turn k=v")
    assert rest.startswith("Traceback")
    assert "138******00" in rest


@pytest.mark.parametrize(
    "created", [1796290456.0, 1796290456.0004, 1796290456.9994999, 1796290456.9999996, 1.5]
)
def test_both_times_read_as_the_standard_library_writes_them(created: float) -> None:
    record = record_with({})
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    expected_text = logging.Formatter().formatTime(record)
    assert TextFormatter().format(record).startswith(f"{expected_text} INFO")
    document = json.loads(JsonFormatter().format(record))
    assert document["time"] == datetime.fromtimestamp(created, UTC).isoformat(
        timespec="milliseconds"
    )


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    # Outside logging's tree of loggers: pytest's log capture hooks into that tree, and a second
    # handler would take log_line off its direct path.
    logger = logging.Logger("dialogue.test.log_line")
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)
    logger.filters.clear()


def test_log_line_goes_through_the_loggers_filters_and_handlers(
    logger: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = logger
    log_line(log, logging.INFO, "%s %d", ("GET", 200), {"caller": "+8613800138000"})
    log.addFilter(lambda record: False)
    log_line(log, logging.INFO, "dropped by the filter", (), {})
    (line,) = stream.getvalue().splitlines()
    document = json.loads(line)
    assert (document["message"], document["level"]) == ("GET 200", "INFO")
    assert document["caller"] == "+861********00"


def test_log_line_uses_the_record_factory_of_the_users_config(
    logger: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = logger
    default = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = default(*args, **kwargs)
        record.msg = f"[tagged] {record.msg}"
        return record

    logging.setLogRecordFactory(factory)
    try:
        log_line(log, logging.WARNING, "turn", (), {})
    finally:
        logging.setLogRecordFactory(default)
    assert json.loads(stream.getvalue())["message"] == "[tagged] turn"


@pytest.mark.parametrize("note", ["plain", "two words"], ids=["unquoted", "quoted"])
def test_text_masks_a_number_field_that_reads_as_a_phone_number(note: str) -> None:
    line = TextFormatter().format(record_with({"callee": 13912345678, "note": note}))
    assert "callee=139******78" in line
    document = json.loads(JsonFormatter().format(record_with({"status": 200})))
    assert document["status"] == 200  # JSON numbers stay numbers


# -- log_line's direct path: no record when one plain handler of ours is all there is ---------

_LINE_FIELDS: list[dict[str, Any]] = [
    {},
    {"call_id": "c-1", "caller": "+8613800138000", "replay": False, "duration_ms": 0.58},
    {"note": "two words", "empty": "", "quote": 'say "hi"', "zh": "转人工 13912345678"},
    {"callee": 13912345678, "trace_id": "a13800138000b", "n": None},
]


@pytest.mark.parametrize("formatter", [TextFormatter, JsonFormatter], ids=["text", "json"])
@pytest.mark.parametrize("fields", _LINE_FIELDS)
def test_the_direct_line_is_the_line_a_record_makes(
    logger: tuple[logging.Logger, io.StringIO],
    formatter: type[logging.Formatter],
    fields: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log, stream = logger
    (handler,) = log.handlers
    handler.setFormatter(formatter())
    # logging stamps records with time.time() too, so both lines carry the same moment.
    monkeypatch.setattr(time, "time", lambda: 1796290456.9994999)
    log_line(log, logging.INFO, "%s %d from 13800138000", ("GET", 200), fields)
    log.addFilter(lambda record: True)  # a filter: logging's own path, with a record
    log_line(log, logging.INFO, "%s %d from 13800138000", ("GET", 200), fields)
    direct, through_logging = stream.getvalue().splitlines()
    assert direct == through_logging
    assert "from 138******00" in direct  # masked either way


def test_the_direct_line_keeps_the_handlers_level(
    logger: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = logger
    (handler,) = log.handlers
    handler.setLevel(logging.WARNING)
    log_line(log, logging.INFO, "below the handler's level", (), {})
    log_line(log, logging.WARNING, "at it", (), {})
    (line,) = stream.getvalue().splitlines()
    assert json.loads(line)["message"] == "at it"


def test_every_handler_gets_the_line_when_there_are_two(
    logger: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = logger
    second = io.StringIO()
    extra = logging.StreamHandler(second)
    extra.setFormatter(TextFormatter())
    log.addHandler(extra)
    try:
        log_line(log, logging.INFO, "turn", (), {"k": "v"})
    finally:
        log.removeHandler(extra)
    assert json.loads(stream.getvalue())["k"] == "v"
    assert second.getvalue().endswith("turn k=v\n")


class _FailingStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("disk full")


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


@pytest.mark.parametrize(
    ("stream", "fields"),
    [(_FailingStream(), {"caller": "13800138000"}), (io.StringIO(), {"odd": _Unprintable()})],
    ids=["the write fails", "a field cannot be formatted"],
)
def test_a_line_that_fails_is_reported_as_logging_reports_it_not_raised(
    logger: tuple[logging.Logger, io.StringIO],
    monkeypatch: pytest.MonkeyPatch,
    stream: io.StringIO,
    fields: dict[str, Any],
) -> None:
    log, _ = logger
    (handler,) = log.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setFormatter(TextFormatter())
    handler.setStream(stream)
    reported: list[logging.LogRecord] = []
    monkeypatch.setattr(handler, "handleError", reported.append)
    log_line(log, logging.INFO, "turn", (), fields)  # does not raise
    assert [record.getMessage() for record in reported] == ["turn"]
    if not isinstance(stream, _FailingStream):
        assert stream.getvalue() == ""  # no half line
