"""The spec subset the tests validate against, and the fake API's validation of it."""

from __future__ import annotations

import json

from tests.gateways.telnyx import spec


def test_the_subset_in_the_repository_is_complete_on_its_own() -> None:
    # Cut again from itself, the subset comes back unchanged: every command, webhook and schema
    # they reference is in the file, so no test needs anything outside the repository.
    subset = spec.load_spec()
    assert spec.extract(json.loads(json.dumps(subset))) == subset, (
        "regenerate: see tests/gateways/telnyx/spec.py"
    )
    assert "call.transcription" in spec.webhook_schema_names()


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
