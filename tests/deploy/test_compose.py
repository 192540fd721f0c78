"""deploy/compose.yaml starts or says what is missing: no placeholder secret a gateway refuses."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"
# `${NAME:?message}`: compose refuses to start and prints the message while NAME is unset.
_REQUIRED = re.compile(r"^\$\{(?P<name>[A-Z][A-Z0-9_]*):\?(?P<message>[^}]+)\}$")
_SECRET_WORDS = ("TOKEN", "KEY", "SECRET", "PASSWORD")


def _environments() -> dict[str, dict[str, str]]:
    services = yaml.safe_load(COMPOSE.read_text("utf-8"))["services"]
    return {name: dict(service.get("environment") or {}) for name, service in services.items()}


def test_every_secret_is_a_required_variable_with_a_message_naming_it() -> None:
    secrets = 0
    for service, environment in _environments().items():
        for name, value in environment.items():
            if not any(word in name for word in _SECRET_WORDS):
                continue
            required = _REQUIRED.match(str(value))
            assert required, f"{service}: {name}: {value!r} is not ${{{name}:?message}}"
            assert required.group("name") == name
            assert name in required.group("message")
            secrets += 1
    assert secrets >= 5  # the Aliyun token, the two Huawei credentials, the two Telnyx keys


def test_no_value_is_a_placeholder() -> None:
    for service, environment in _environments().items():
        for name, value in environment.items():
            assert "change-me" not in str(value), f"{service}: {name}"
