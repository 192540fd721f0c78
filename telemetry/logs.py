"""Log formats shared by the server and the gateways: text or JSON lines, phone numbers masked."""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import IO, Any, Final

from opentelemetry import trace

from common.settings import Setting, choice
from telemetry.masking import mask_phone

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

# Hex ids would be corrupted by masking a digit run inside them.
_UNMASKED_FIELDS: Final = frozenset({"trace_id", "span_id", "duration_ms", "decision_ms"})


def _fields_of(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = dict(getattr(record, "fields", None) or {})
    for key, value in fields.items():
        if isinstance(value, str) and key not in _UNMASKED_FIELDS:
            fields[key] = mask_phone(value)
    return fields


def _trace_ids() -> dict[str, str]:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message key=value …`, phone numbers masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = mask_phone(super().format(record))
        fields = _fields_of(record)
        if not fields:
            return line
        # Tracebacks come last, so the fields go onto the first line.
        first, newline, rest = line.partition("\n")
        pairs = " ".join(f"{key}={_text(value)}" for key, value in fields.items())
        return f"{first} {pairs}{newline}{rest}"


# What makes a value need quotes: whitespace or a quote (one regex search: every turn logs a line).
_NEEDS_QUOTES: Final = re.compile(r'[\s"]')


def _text(value: object) -> str:
    text = str(value)
    # Quoted when it would not read as one value: empty, or with spaces, quotes or newlines.
    plain = text and _NEEDS_QUOTES.search(text) is None
    return text if plain else json.dumps(text, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's fields, trace ids."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_phone(record.getMessage()),
        }
        document.update(_fields_of(record))
        document.update(_trace_ids())
        if record.exc_info:
            document["exception"] = mask_phone(
                "".join(traceback.format_exception(*record.exc_info))
            )
        return json.dumps(document, ensure_ascii=False, default=str)


def configure_logging(level: str, log_format: str, stream: IO[str] | None = None) -> None:
    """Sends every log record to stderr (or stream) as text or JSON lines, at level."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
