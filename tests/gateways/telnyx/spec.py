"""Telnyx's OpenAPI spec, as the tests use it: request schemas of commands, webhook schemas.

`openapi-subset.json` beside this file is cut from Telnyx's public spec (the call-control cut
`shared/vendor/telnyx/telnyx-call-control.openapi.json`, plus the `call.transcription` webhook,
which only the full `spec3.yml` has): the commands this gateway sends, all call webhooks, and
every schema they reference, unchanged. It is kept in the repository so the tests need nothing
outside it (they run on a fresh clone and in CI); regenerate it with

    .venv/bin/python -m tests.gateways.telnyx.spec ../shared/vendor/telnyx/telnyx-call-control.openapi.json ../shared/vendor/telnyx/spec3.yml

`test_spec.py` checks that the subset is complete on its own: cutting it again from itself gives
it back, so every command, webhook and referenced schema is in it.

Validation is JSON Schema Draft 2020-12 (what OpenAPI 3.1 schemas are), with `$ref`s resolved
inside the spec. On top of the schema, a body may only use the properties the request schema
declares: Telnyx's schemas allow unknown properties, and a misspelt field would otherwise be
silently ignored by Telnyx and pass here.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gateways.telnyx import outbound

SUBSET_PATH = Path(__file__).with_name("openapi-subset.json")
_SPEC_URI = "urn:telnyx:call-control"
_ACTIONS = "/calls/{call_control_id}/actions/"
# The commands the gateway can send: the subset keeps their request schemas.
COMMANDS = outbound.COMMANDS
# Webhooks only the full spec has (name in its `webhooks` → kept under that name).
EXTRA_WEBHOOKS = ("transcription",)


@functools.cache
def load_spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SUBSET_PATH.read_text(encoding="utf-8"))
    return spec


@functools.cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(load_spec(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(_SPEC_URI, resource)
    return registry


def _validator(pointer: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"{_SPEC_URI}#{pointer}"}, registry=_registry())


def request_schema_name(command: str) -> str:
    """The name of the request schema of a command, e.g. SpeakRequest for speak."""
    operation = load_spec()["paths"][_ACTIONS + command]["post"]
    ref: str = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


def command_problems(command: str, body: Any) -> list[str]:
    """Everything wrong with a command body per the spec; empty when Telnyx would take it."""
    if _ACTIONS + command not in load_spec()["paths"]:
        return [f"{command} is not a Call Control command of the spec"]
    name = request_schema_name(command)
    validator = _validator(f"/components/schemas/{name}")
    problems = [
        f"{name}: {'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
        for error in validator.iter_errors(body)
    ]
    declared = load_spec()["components"]["schemas"][name].get("properties", {})
    if isinstance(body, Mapping):
        problems += [f"{name}: {key!r} is not a property" for key in body if key not in declared]
    return problems


def webhook_problems(body: Any) -> list[str]:
    """Everything wrong with a webhook body per the spec's schema of its event type."""
    data = body.get("data") if isinstance(body, Mapping) else None
    event_type = data.get("event_type") if isinstance(data, Mapping) else None
    schema = webhook_schema_names().get(str(event_type))
    if schema is None:
        return [f"no webhook schema for event type {event_type!r}"]
    validator = _validator(f"/components/schemas/{schema}")
    return [
        f"{schema}: {'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
        for error in validator.iter_errors(body)
    ]


@functools.cache
def webhook_schema_names() -> dict[str, str]:
    """Event type → the schema of its webhook body, e.g. call.hangup → CallHangupEvent."""
    spec = load_spec()
    schemas = spec["components"]["schemas"]
    names: dict[str, str] = {}
    for webhook in spec["webhooks"].values():
        ref = webhook["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        event_name = ref.rsplit("/", 1)[-1]
        data = schemas[event_name]["properties"]["data"]
        data_schema = schemas[data["$ref"].rsplit("/", 1)[-1]] if "$ref" in data else data
        for event_type in data_schema["properties"]["event_type"].get("enum", []):
            names[event_type] = event_name
    return names


def webhook_example(event_type: str) -> dict[str, Any]:
    """The spec's own example `data` of an event type (a fresh copy)."""
    schemas = load_spec()["components"]["schemas"]
    event = schemas[webhook_schema_names()[event_type]]
    data = event["properties"]["data"]
    data_schema = schemas[data["$ref"].rsplit("/", 1)[-1]] if "$ref" in data else data
    example: dict[str, Any] = json.loads(json.dumps(data_schema["example"]))
    return example


def extract(spec: Mapping[str, Any], full: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The subset of a Call Control spec the tests need, with every schema it references.

    `full` is the whole spec (spec3.yml), for the webhooks the cut lacks (EXTRA_WEBHOOKS); the
    subset itself may stand for it, as it holds them already.
    """
    full = full or spec
    schemas = {**full["components"]["schemas"], **spec["components"]["schemas"]}
    webhooks = {
        **spec["webhooks"],
        **{name: full["webhooks"][name] for name in EXTRA_WEBHOOKS if name in full["webhooks"]},
    }
    needed: set[str] = set()

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    if value.startswith("#/components/schemas/"):
                        yield value.rsplit("/", 1)[-1]
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    def need(node: Any) -> None:
        for name in walk(node):
            if name not in needed:
                needed.add(name)
                need(schemas[name])

    # Of each command, what says what the body is (parameters and responses are not needed).
    paths = {
        _ACTIONS + command: {
            "post": {
                key: spec["paths"][_ACTIONS + command]["post"][key]
                for key in ("operationId", "summary", "description", "requestBody")
            }
        }
        for command in COMMANDS
    }
    need(paths)
    need(webhooks)
    return {
        "openapi": spec["openapi"],
        "info": {
            **spec["info"],
            "x-subset": "Call Control commands the dialogue gateway sends, every call webhook, "
            "and the schemas they reference; cut by tests/gateways/telnyx/spec.py",
        },
        "paths": paths,
        "webhooks": webhooks,
        "components": {"schemas": {name: schemas[name] for name in sorted(needed)}},
    }


def main(argv: list[str]) -> None:
    """Writes the subset of the cut at argv[0] and the full spec3.yml at argv[1] beside this file."""
    import yaml  # noqa: PLC0415 (only here: regenerating is a maintainer step)

    cut = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    full = yaml.load(Path(argv[1]).read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    subset = extract(cut, full)
    SUBSET_PATH.write_text(
        json.dumps(subset, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
