"""The spec subset the tests validate against, and the fake API's validation of it."""

from __future__ import annotations

import json

import pytest

from tests.gateways.telnyx import spec


def test_the_subset_matches_the_shared_spec_when_present() -> None:
    if not spec.SHARED_SPEC_PATH.is_file():
        pytest.skip(f"{spec.SHARED_SPEC_PATH} is not beside the repository")
    shared = json.loads(spec.SHARED_SPEC_PATH.read_text(encoding="utf-8"))
    assert spec.extract(shared) == spec.load_spec(), (
        "regenerate: .venv/bin/python -m tests.gateways.telnyx.spec"
    )


def test_every_command_has_a_request_schema() -> None:
    for command in spec.COMMANDS:
        assert spec.request_schema_name(command).endswith("Request")


def test_the_validator_catches_what_telnyx_would_refuse_or_ignore() -> None:
    assert spec.command_problems("speak", {"payload": "Hi", "voice": "Telnyx.KokoroTTS.af"}) == []
    problems = spec.command_problems(
        "speak", {"payload": "Hi", "language": "zh-CN", "maximum_tries": 1}
    )
    assert any("'voice' is a required property" in p for p in problems)
    assert any("'zh-CN' is not one of" in p for p in problems)
    assert any("'maximum_tries' is not a property" in p for p in problems)
    assert spec.command_problems("transfer", {"to": 5}) != []
    assert spec.command_problems("dial", {}) == ["dial is not a Call Control command of the spec"]


def test_the_specs_own_webhook_examples_conform() -> None:
    for event_type in spec.webhook_schema_names():
        body = {"data": spec.webhook_example(event_type)}
        assert spec.webhook_problems(body) == [], event_type
