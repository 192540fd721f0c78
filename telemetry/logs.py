"""Log formats shared by the server and the gateways: text or JSON lines, phone numbers masked."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import IO, Any, Final

from opentelemetry import trace

from common.settings import Setting, choice
from telemetry.masking import has_phone, mask_phone, mask_phones

# What --log-format accepts, on the server and on every gateway.
LOG_FORMATS: Final = ("text", "json")
# The two log settings every process has, declared once (see common.settings).
LOG_LEVEL = Setting(
    "DIALOGUE_LOG_LEVEL",
    choice("DEBUG", "INFO", "WARNING", "ERROR"),
    "INFO",
    "log level",
    flag="--log-level",
)
LOG_FORMAT = Setting(
    "DIALOGUE_LOG_FORMAT",
    choice(*LOG_FORMATS),
    "text",
    "text for people, json for log collectors: one object per line",
    flag="--log-format",
)

# The key=value fields of a line (`extra={"fields": …}`), None or {} for none.
Fields = dict[str, Any] | None
# Hex ids would be corrupted by masking a digit run inside them.
_UNMASKED_FIELDS: Final = frozenset({"trace_id", "span_id", "duration_ms", "decision_ms"})


def _masked(
    texts: Sequence[str], record_fields: dict[str, Any] | None
) -> tuple[list[str], dict[str, Any]]:
    """texts and a record's fields, phone numbers masked in one pass (`mask_phones`); for
    JSON, where only strings are masked: a number stays a number."""
    fields: dict[str, Any] = dict(record_fields or {})
    keys = [
        key
        for key, value in fields.items()
        if isinstance(value, str) and key not in _UNMASKED_FIELDS
    ]
    masked = mask_phones([*texts, *(fields[key] for key in keys)])
    fields.update(zip(keys, masked[len(texts) :], strict=True))
    return masked[: len(texts)], fields


def _trace_ids() -> dict[str, str]:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


class _PerSecond:
    """A timestamp's text down to the second, made once per second (lines come many a second)."""

    def __init__(self, render: Callable[[int], str]) -> None:
        self._render = render
        self._last = (-1, "")  # one tuple, so that threads formatting at once never mix two

    def __call__(self, second: int) -> str:
        last = self._last
        if last[0] != second:
            last = self._last = (second, self._render(second))
        return last[1]


def _msecs(created: float) -> float:
    """A record's `msecs` as `logging.LogRecord` computes it from `created` (CPython 3.11)."""
    return int((created - int(created)) * 1000) + 0.0


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message key=value …`, phone numbers masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._seconds = _PerSecond(
            lambda second: time.strftime(self.default_time_format, self.converter(second))
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        """logging's default time (local, `2026-11-21 10:00:00,123`), its strftime once a second."""
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return self._time_text(record.created, record.msecs)

    def _time_text(self, created: float, msecs: float) -> str:
        return f"{self._seconds(int(created))},{int(msecs):03d}"

    def line(self, created: float, levelname: str, name: str, message: str, fields: Fields) -> str:
        """What `format` makes of a record with these attributes and no exception or stack,
        made without a record (see `log_line`)."""
        return self._line(
            self._time_text(created, _msecs(created)), levelname, name, message, fields
        )

    def format(self, record: logging.LogRecord) -> str:
        # What logging.Formatter.format makes of the format above, with the time, level and
        # logger apart: they hold no phone number, so the masking pass skips them.
        record.message = record.getMessage()
        record.asctime = self.formatTime(record)
        body = record.message
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            body = f"{body}\n{record.exc_text}"
        if record.stack_info:
            body = f"{body}\n{self.formatStack(record.stack_info)}"
        return self._line(
            record.asctime, record.levelname, record.name, body, getattr(record, "fields", None)
        )

    def _line(self, asctime: str, levelname: str, name: str, body: str, fields: Fields) -> str:
        head = f"{asctime} {levelname} {name}: "
        if not fields:
            return head + mask_phone(body)
        values = [str(value) for value in fields.values()]
        # Tracebacks come last, so the fields go onto the first line.
        first, newline, rest = body.partition("\n")
        if _plain(values) and not any(
            has_phone(str(fields[key])) for key in _UNMASKED_FIELDS.intersection(fields)
        ):
            # The common line: no value needs quotes, so message, fields and traceback are
            # masked together, in one pass (`=` and the spaces end a number as a value's end does).
            pairs = " ".join(map("=".join, zip(fields, values, strict=True)))
            return head + mask_phone(f"{first} {pairs}{newline}{rest}")
        # Quotes are added after masking: their escapes (\u0001) could join digits to a number.
        first, rest, *masked = mask_phones([first, rest, *values])
        unmasked = _UNMASKED_FIELDS.intersection(fields)
        pairs = " ".join(
            f"{key}={_text(value if key in unmasked else masked_value)}"
            for key, value, masked_value in zip(fields, values, masked, strict=True)
        )
        return f"{head}{first} {pairs}{newline}{rest}"


def _plain(values: list[str]) -> bool:
    """Whether no value needs quotes (see `_text`), for all values at once."""
    joined = "".join(values)
    # str.split() splits at exactly the characters `\s` matches (Unicode whitespace).
    return "" not in values and '"' not in joined and len(joined.split(None, 1)) == 1


# What makes a value need quotes: whitespace or a quote.
_NEEDS_QUOTES: Final = re.compile(r'[\s"]')


def _text(text: str) -> str:
    # Quoted when it would not read as one value: empty, or with spaces, quotes or newlines.
    plain = text and _NEEDS_QUOTES.search(text) is None
    return text if plain else json.dumps(text, ensure_ascii=False)


# One encoder for every line: `json.dumps` with options builds a new one per call.
_JSON: Final = json.JSONEncoder(ensure_ascii=False, default=str)


def _iso_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's fields, trace ids."""

    def __init__(self) -> None:
        super().__init__()
        self._seconds = _PerSecond(_iso_second)

    def format(self, record: logging.LogRecord) -> str:
        texts = [record.getMessage()]
        if record.exc_info:
            texts.append("".join(traceback.format_exception(*record.exc_info)))
        return self._document(
            record.created, record.levelname, record.name, texts, getattr(record, "fields", None)
        )

    def line(self, created: float, levelname: str, name: str, message: str, fields: Fields) -> str:
        """What `format` makes of a record with these attributes and no exception, made
        without a record (see `log_line`)."""
        return self._document(created, levelname, name, [message], fields)

    def _document(
        self, created: float, levelname: str, name: str, texts: list[str], fields: Fields
    ) -> str:
        """texts: the message, then the traceback if there is one."""
        masked, masked_fields = _masked(texts, fields)
        document: dict[str, Any] = {
            "time": self._time(created),
            "level": levelname,
            "logger": name,
            "message": masked[0],
        }
        document.update(masked_fields)
        document.update(_trace_ids())
        if len(masked) > 1:
            document["exception"] = masked[1]
        return _JSON.encode(document)

    def _time(self, created: float) -> str:
        """`datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")`, cheaper."""
        second = int(created)
        # Rounded to microseconds first, as datetime does.
        micro = round((created - second) * 1e6)
        if micro >= 1_000_000:
            second, micro = second + 1, micro - 1_000_000
        return f"{self._seconds(second)}.{micro // 1000:03d}+00:00"


# Formatters whose `line` is exactly what their `format` makes of a plain record (subclasses
# may format differently, so they are not in it).
_LINE_FORMATTERS: Final = (TextFormatter, JsonFormatter)


def log_line(
    logger: logging.Logger,
    level: int,
    message: str,
    args: tuple[object, ...],
    fields: dict[str, Any],
) -> None:
    """`logger.log(level, message, *args, extra={"fields": fields})`, for the lines logged per
    turn and per request, at a fraction of its cost.

    The caller checks `logger.isEnabledFor(level)` first. When logging would do nothing with
    the record but hand it to one plain stream handler of ours (`_sole_handler`: the setup
    `configure_logging` makes), the line is formatted and written straight to that handler's
    stream, under its lock, with no record: the record, `Logger.handle`, `callHandlers` and
    `Handler.handle` were about half of a turn line's cost, and the line is the same as
    `format` makes of a record (tests/telemetry/test_logs.py compares the two). Any other setup
    (a filter, a second handler, a record factory, pytest's log capture) gets a record through
    the logger's filters and handlers as usual, made without the stack walk `Logger.log` does
    for the caller's file and line, which no format here shows.
    """
    handler = _sole_handler(logger, level)
    if handler is not None:
        formatter: TextFormatter | JsonFormatter = handler.formatter  # type: ignore[assignment]
        with handler.lock:  # type: ignore[union-attr]  # StreamHandler always makes one
            try:
                text = formatter.line(
                    time.time(),
                    logging.getLevelName(level),
                    logger.name,
                    message % args if args else message,
                    fields,
                )
                handler.stream.write(text + handler.terminator)
                handler.flush()
            except Exception:  # what StreamHandler.emit does when formatting or writing fails
                handler.handleError(_record(logger, level, message, args, fields))
        return
    logger.handle(_record(logger, level, message, args, fields))


def _record(
    logger: logging.Logger,
    level: int,
    message: str,
    args: tuple[object, ...],
    fields: dict[str, Any],
) -> logging.LogRecord:
    return logger.makeRecord(
        logger.name, level, "", 0, message, args, None, extra={"fields": fields}
    )


def _sole_handler(logger: logging.Logger, level: int) -> logging.StreamHandler[IO[str]] | None:
    """The one handler a record of `level` from `logger` reaches, when logging would do nothing
    else with it: no filter on the way, no other handler, the standard record factory, and a
    plain StreamHandler (not a subclass: those may emit differently) with a formatter of ours
    and no filter of its own. None otherwise."""
    if logging.getLogRecordFactory() is not logging.LogRecord:
        return None
    found: logging.Handler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if found is not None:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    if (
        type(found) is not logging.StreamHandler
        or found.filters
        or level < found.level
        or type(found.formatter) not in _LINE_FORMATTERS
    ):
        return None
    return found


def configure_logging(level: str, log_format: str, stream: IO[str] | None = None) -> None:
    """Sends every log record to stderr (or stream) as text or JSON lines, at level."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
