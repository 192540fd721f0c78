"""Request validation: every problem of a request as (field path, what is wrong).

Field paths follow google.rpc.BadRequest convention (proto field names, dots and [index]), so
a client sees exactly which field to fix.
"""

from __future__ import annotations

import math
import re

from google.protobuf.descriptor import EnumDescriptor

from dialogue.v1 import dialogue_pb2 as pb

MAX_ID = 128
MAX_NUMBER = 64
MAX_TEXT = 4096
MAX_PARAMETERS = 64
MAX_PARAMETER_KEY = 64
MAX_PARAMETER_VALUE = 1024
MAX_DIGITS = 64
# Problems of map entries listed one by one; more are summed up in one more line.
MAX_REPORTED_ENTRIES = 8
_DIGITS = re.compile(r"^[0-9*#A-Da-d]*$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{0,64}$")

Violation = tuple[str, str]


def _length(field: str, value: str, limit: int) -> list[Violation]:
    return (
        [(field, f"is {len(value)} characters long; at most {limit} allowed")]
        if len(value) > limit
        else []
    )


def _shown(key: str) -> str:
    """A map key as a field path shows it: quoted, and cut after MAX_PARAMETER_KEY characters."""
    return repr(key if len(key) <= MAX_PARAMETER_KEY else key[:MAX_PARAMETER_KEY] + "…")


def _required_id(field: str, value: str) -> list[Violation]:
    if not value.strip():
        return [(field, "is required")]
    return _length(field, value, MAX_ID)


def _enum(field: str, value: int, enum: EnumDescriptor) -> list[Violation]:
    if value in enum.values_by_number:
        return []
    return [(field, f"{value} is not a known {enum.name} value")]


def validate_decide(request: pb.DecideNextActionRequest) -> list[Violation]:
    """Returns every violation in a DecideNextActionRequest; empty when it is acceptable."""
    problems = _required_id("request_id", request.request_id)
    if not request.HasField("call"):
        problems.append(("call", "is required"))
    call = request.call
    problems += _required_id("call.call_id", call.call_id)
    problems += _enum("call.platform", call.platform, pb.Platform.DESCRIPTOR)
    problems += _enum("call.direction", call.direction, pb.CallDirection.DESCRIPTOR)
    for name in ("caller", "callee"):
        problems += _length(f"call.{name}", getattr(call, name), MAX_NUMBER)
    for name in ("flow_selector", "tenant"):
        problems += _length(f"call.{name}", getattr(call, name), MAX_ID)
    problems += _call_data(request.call_data)
    event = request.WhichOneof("event")
    if event is None:
        problems.append(("event", "is required: set exactly one event, e.g. call_started {}"))
    else:
        problems += _event(request, event)
    return problems


def _call_data(data: pb.CallData) -> list[Violation]:
    problems: list[Violation] = []
    if len(data.parameters) > MAX_PARAMETERS:
        problems.append(
            (
                "call_data.parameters",
                f"has {len(data.parameters)} entries; at most {MAX_PARAMETERS} allowed",
            )
        )
    entries: list[Violation] = []
    for key, value in sorted(data.parameters.items()):
        # The key is echoed shortened: the whole error travels in 16 KB of gRPC trailers, and
        # a longer one reaches the client as RESOURCE_EXHAUSTED instead of this list.
        field = f"call_data.parameters[{_shown(key)}]"
        if not key or len(key) > MAX_PARAMETER_KEY:
            entries.append((field, f"key must be 1-{MAX_PARAMETER_KEY} characters"))
        entries += _length(field, value, MAX_PARAMETER_VALUE)
    problems += entries[:MAX_REPORTED_ENTRIES]
    if len(entries) > MAX_REPORTED_ENTRIES:
        problems.append(
            ("call_data.parameters", f"{len(entries) - MAX_REPORTED_ENTRIES} more entry problems")
        )
    problems += _length("call_data.passthrough", data.passthrough, MAX_TEXT)
    if not _TOKEN.match(data.continuation_token):
        problems.append(
            ("call_data.continuation_token", "must be at most 64 ASCII letters, digits, '_' or '-'")
        )
    return problems


def _event(request: pb.DecideNextActionRequest, event: str) -> list[Violation]:
    problems: list[Violation] = []
    if event == "speech_recognized":
        speech = request.speech_recognized
        problems += _length("speech_recognized.text", speech.text, MAX_TEXT)
        if math.isnan(speech.confidence) or not 0.0 <= speech.confidence <= 1.0:
            problems.append(
                ("speech_recognized.confidence", f"{speech.confidence} is outside 0.0-1.0")
            )
        if speech.start_offset_ms < 0 or speech.end_offset_ms < 0:
            problems.append(("speech_recognized.start_offset_ms", "offsets must not be negative"))
    elif event == "digits_entered":
        digits = request.digits_entered
        if not _DIGITS.match(digits.digits) or len(digits.digits) > MAX_DIGITS:
            problems.append(
                (
                    "digits_entered.digits",
                    f"{digits.digits[:80]!r} is not up to {MAX_DIGITS} of 0-9, *, #, A-D",
                )
            )
        if len(digits.terminator) > 1 or not _DIGITS.match(digits.terminator):
            problems.append(
                ("digits_entered.terminator", f"{digits.terminator[:80]!r} is not one key")
            )
    elif event == "barged_in" and request.barged_in.speech_duration_ms < 0:
        problems.append(("barged_in.speech_duration_ms", "must not be negative"))
    elif event == "transfer_finished":
        problems += _enum(
            "transfer_finished.outcome",
            request.transfer_finished.outcome,
            pb.TransferOutcome.DESCRIPTOR,
        )
    elif event == "call_ended":
        problems += _enum(
            "call_ended.hung_up_by", request.call_ended.hung_up_by, pb.HangUpParty.DESCRIPTOR
        )
    elif event == "recording_finished":
        problems += _length(
            "recording_finished.recording_uri", request.recording_finished.recording_uri, MAX_TEXT
        )
    return problems


def validate_get_call(request: pb.GetCallRequest) -> list[Violation]:
    """Returns every violation in a GetCallRequest."""
    return _required_id("call_id", request.call_id)
