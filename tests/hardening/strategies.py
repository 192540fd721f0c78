"""Hypothesis strategies for the hardening tests: hostile JSON and text, and dialogue.v1 messages.

Every fuzz test runs under `bounded(n)`: a fixed number of examples, derandomised (the seed
follows from the test's name) and without the example database, so a run is the same on every
machine and never depends on what an earlier run found.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from dialogue.v1 import dialogue_pb2 as pb

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


def bounded(max_examples: int) -> settings:
    """Settings of every fuzz test: bounded, deterministic, no database, no deadline."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        # Inputs are big on purpose (oversized texts, deep nesting) and HTTP round trips are
        # slow on a busy 2-core machine: neither is a problem with the strategy.
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,
        ],
    )


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each chosen in proportion to its weight."""
    indices = [index for index, (weight, _) in enumerate(choices) for _ in range(weight)]
    return st.sampled_from(indices).flatmap(lambda index: choices[index][1])


# -- text and JSON ----------------------------------------------------------------------------

# Strings that have broken parsers before: empty and blank, BOMs, control characters, lone
# surrogates (only JSON `\ud800` escapes can carry them), percent-encoding debris, numbers in
# every spelling, quotes of every kind, and far too long values.
NASTY_STRINGS: tuple[str, ...] = (
    "",
    " ",
    "\t\n",
    "\x00",
    "\ufeff",
    "\ufeff{}",
    "\ud800",
    "a\udfffb",
    "%",
    "%ZZ",
    "%7B%22a%22%3A1%7D",
    "+8613800138000",
    " 8613800138000",
    "-1",
    "0",
    "1e309",
    "-0",
    "NaN",
    "Infinity",
    "9" * 25,
    "1.5",
    "true",
    "null",
    "{",
    "}",
    "[]",
    "{}",
    '{"a":',
    "“”‘’",
    "{“words”：“好”}",
    "$tts1$",
    '@=:"${}^*¥',
    "<script>",
    "]]>&amp;<",
    "\r\n",
    "话" * 5000,
    "x" * 70_000,
    "1" * 5000,
)

hostile_text: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(NASTY_STRINGS),
    # Every code point, surrogates included.
    st.text(st.characters(codec=None, exclude_categories=()), max_size=40),
    st.text(max_size=12),
)
"""Any text, biased towards what breaks parsers."""


def is_unicode(text: str) -> bool:
    """False for text holding a lone surrogate (no UTF-8 encoder accepts it)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


unicode_text: st.SearchStrategy[str] = hostile_text.filter(is_unicode)
"""Hostile text that is still valid Unicode: what the parse functions pass on."""


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


deep_json: st.SearchStrategy[Any] = st.integers(min_value=20, max_value=5000).map(_nested)
"""Objects and arrays nested far deeper than any vendor sends (recursion limits)."""

json_scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 8, 9, 11, 2**31, 2**63, 10**19, 1.0, 1e300, -0.0]),
    hostile_text,
)

shallow_json: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(hostile_text, children, max_size=4),
    ),
    max_leaves=12,
)
"""Any JSON value of ordinary depth."""

unicode_json: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), unicode_text),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(unicode_text, children, max_size=3)
    ),
    max_leaves=8,
)
"""JSON of ordinary depth holding only valid Unicode (what our own encoders may be given)."""

# Mostly ordinary depth: one value in five is nested thousands deep.
json_values: st.SearchStrategy[Any] = weighted((4, shallow_json), (1, deep_json))
"""Any JSON value json.loads could return (and a few it could not: NaN, huge integers)."""


def maybe_fields(
    fields: dict[str, st.SearchStrategy[Any]],
    odd: st.SearchStrategy[Any] = json_values,
    odd_keys: st.SearchStrategy[str] = hostile_text,
) -> st.SearchStrategy[dict[str, Any]]:
    """An object of the given fields, plausible or odd in a controlled measure.

    Half the objects are plausible (each field present nine times in ten, with a plausible
    value), a quarter have one field with an `odd` value, a quarter have any number of odd
    values and an extra key. One odd field per object in most cases: an object where every
    field is broken is refused at the first one and tests nothing past it.
    """

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        mode = draw(st.sampled_from(["plausible", "plausible", "one odd", "odd"]))
        names = list(fields)
        odd_one = draw(st.sampled_from(names)) if mode == "one odd" else None
        result: dict[str, Any] = {}
        for name in names:
            if draw(st.sampled_from([True] * 9 + [False])):
                broken = name == odd_one or (mode == "odd" and draw(st.booleans()))
                result[name] = draw(odd if broken else fields[name])
        if mode == "odd" and draw(st.booleans()):
            result[draw(odd_keys)] = draw(odd)
        return result

    return build()


def as_text(value: Any) -> str:
    """What a form or query field would carry for a JSON value (they are always text)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return repr(value)


def truncated(text: str) -> st.SearchStrategy[str]:
    """A prefix of text, as a body cut off in transit."""
    return st.integers(min_value=0, max_value=max(len(text) - 1, 0)).map(lambda n: text[:n])


# -- dialogue.v1 messages ---------------------------------------------------------------------

proto_text: st.SearchStrategy[str] = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "",
            " ",
            "+8613800138000",
            "sip:agent@pbx.example.com",
            "https://x.example/a,b.wav",
            '时间10:30 ¥5 $x$ {a} ^ * @ = " , ，',
            "\x00\x01",
            "#",
            "*",
            "123*#",
            "zh-CN",
            "en-US",
            "Telnyx.KokoroTTS.af",
            "]]><&",
            "话" * 3000,
            "a" * 5000,
        ]
    ),
)
"""Text a proto string field can hold (valid Unicode only: protobuf refuses surrogates)."""

_INT_EDGES = [0, 1, -1, 2, 999, 1000, 1001, 60_000, 600_000]


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return proto_text
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        # Floats are stored as 32 bits: values beyond that range become infinities anyway.
        return st.one_of(
            st.floats(width=32, allow_nan=True, allow_infinity=True),
            st.sampled_from([0.0, 0.5, 1.0, 1.2, -1.0, math.nan, math.inf]),
        )
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        known = [value.number for value in field.enum_type.values]
        # proto3 enums are open: an unknown number is a value a newer peer may send.
        return st.one_of(st.sampled_from(known), st.integers(*INT32))
    if kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64):
        return st.one_of(st.sampled_from(_INT_EDGES), st.integers(*INT64))
    if kind in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32):
        return st.one_of(st.sampled_from(_INT_EDGES), st.integers(*INT32))
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=20)
    raise NotImplementedError(f"no strategy for {field.full_name} (type {kind})")


_struct_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(-(2**53), 2**53),
        st.text(max_size=10),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def _struct(draw: st.DrawFn) -> Struct:
    struct = Struct()
    struct.update(draw(st.dictionaries(st.text(max_size=8), _struct_values, max_size=4)))
    return struct


def messages(
    descriptor: Descriptor,
    *,
    depth: int = 4,
    overrides: dict[str, st.SearchStrategy[Any]] | None = None,
) -> st.SearchStrategy[Message]:
    """Any message of `descriptor`'s type: each field set or not, one member of each oneof.

    `overrides` maps a field's full name (e.g. "dialogue.v1.Call.call_id") to the strategy of
    its value, to steer fields the server looks up (call ids, flow selectors).
    """
    chosen = overrides or {}
    cls: Callable[[], Message] = _message_class(descriptor)

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        message = cls()
        oneof_members = {f.name for oneof in descriptor.oneofs for f in oneof.fields}
        for field in descriptor.fields:
            if field.name in oneof_members:
                continue
            if field.full_name in chosen or draw(st.booleans()):
                _fill(draw, message, field, depth, chosen)
        for oneof in descriptor.oneofs:
            # Mostly one member set, sometimes none (a newer peer's member looks like that).
            picked = draw(st.sampled_from([*oneof.fields, None]))
            if picked is not None:
                _fill(draw, message, picked, depth, chosen)
        return message

    return build()


def _fill(
    draw: st.DrawFn,
    message: Message,
    field: FieldDescriptor,
    depth: int,
    chosen: dict[str, st.SearchStrategy[Any]],
) -> None:
    if field.full_name in chosen:
        setattr(message, field.name, draw(chosen[field.full_name]))
        return
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        key = _scalar(entry.fields_by_name["key"])
        value_field = entry.fields_by_name["value"]
        target = getattr(message, field.name)
        for k, v in draw(st.dictionaries(key, _scalar(value_field), max_size=3)).items():
            target[k] = v
        return
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        count = draw(st.integers(0, 3)) if field.is_repeated else 1
        values = [_sub_message(draw, field, depth, chosen) for _ in range(count)]
        if field.is_repeated:
            for value in values:
                getattr(message, field.name).add().CopyFrom(value)
        else:
            getattr(message, field.name).CopyFrom(values[0])
        return
    if field.is_repeated:
        getattr(message, field.name).extend(draw(st.lists(_scalar(field), max_size=4)))
        return
    setattr(message, field.name, draw(_scalar(field)))


def _sub_message(
    draw: st.DrawFn, field: FieldDescriptor, depth: int, chosen: dict[str, st.SearchStrategy[Any]]
) -> Message:
    kind = field.message_type
    assert kind is not None
    if kind.full_name == "google.protobuf.Struct":
        return draw(_struct())
    if kind.full_name == "google.protobuf.Timestamp":
        stamp = _message_class(kind)()
        # The whole range a Timestamp may hold (0001-01-01 to 9999-12-31).
        stamp.seconds = draw(st.integers(-62135596800, 253402300799))  # type: ignore[attr-defined]
        stamp.nanos = draw(st.integers(0, 999_999_999))  # type: ignore[attr-defined]
        return stamp
    if depth <= 0:
        return _message_class(kind)()
    built: Message = draw(messages(kind, depth=depth - 1, overrides=chosen))
    return built


def _message_class(descriptor: Descriptor) -> Callable[[], Message]:
    # The generated class of a descriptor (protobuf's own attribute, not in its stubs).
    cls: Callable[[], Message] = getattr(descriptor, "_concrete_class")  # noqa: B009
    return cls


responses: st.SearchStrategy[pb.DecideNextActionResponse] = messages(
    pb.DecideNextActionResponse.DESCRIPTOR
).map(lambda message: message if isinstance(message, pb.DecideNextActionResponse) else _never())
"""Any DecideNextActionResponse the contract allows, odd values included."""


def _never() -> pb.DecideNextActionResponse:
    raise AssertionError("messages() built a message of another type")
