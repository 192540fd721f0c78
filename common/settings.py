"""Declare a setting once: its environment variable, optional flag, type, default and help.

Every setting of the server and the gateways is a `Setting`. Reading one follows a single rule
set, so no two settings disagree:

- an unset or empty (blank) variable means the default;
- a bad value is a `ValueError` that names the variable and says what was expected;
- booleans accept 1/true/yes/on and 0/false/no/off (any case), nothing else;
- a flag, when declared, wins over the variable; its help ends in "(env X, default Y)".
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class Kind(Generic[T]):
    """How a setting's text becomes a value, and how the error says what was expected."""

    parse: Callable[[str], T]
    expected: str


@dataclass(frozen=True, slots=True)
class Setting(Generic[T]):
    """One setting, declared once.

    Attributes:
        env: The environment variable (always available).
        kind: How its text is parsed.
        default: The value when neither flag nor variable says otherwise.
        help: One line for `--help` and the docs, without the "(env …, default …)" tail.
        flag: The command-line flag, or "" when the setting is environment-only (secrets).
    """

    env: str
    kind: Kind[T]
    default: T
    help: str
    flag: str = ""

    def read(self, env: Mapping[str, str]) -> T:
        """The setting's value from the environment alone.

        Raises:
            ValueError: the variable is set to something its kind does not accept.
        """
        raw = env.get(self.env, "")
        if not raw.strip():
            return self.default
        return self.parse(raw, self.env)

    def parse(self, raw: str, source: str) -> T:
        """Parses raw text; errors name the source (a variable or a flag)."""
        try:
            return self.kind.parse(raw.strip())
        except (ValueError, TypeError) as exc:
            detail = f" ({exc})" if str(exc) else ""
            raise ValueError(
                f"{source}={raw!r} is not valid: expected {self.kind.expected}{detail}"
            ) from None

    def full_help(self) -> str:
        """The help line with where the value comes from."""
        default = self.default if self.default not in ("", None) else "none"
        return f"{self.help} (env {self.env}, default {default})"

    def add_to(self, parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
        """Adds the flag to parser, its default read from the environment now.

        Raises:
            ValueError: the environment variable is bad (named in the message).
        """
        if not self.flag:
            raise ValueError(f"{self.env} has no flag")
        from_env = self.read(env)

        def parse_flag(text: str) -> T:
            # argparse also runs this over a string default; blank means the default, as in env.
            if not text.strip():
                return self.default
            try:
                return self.parse(text, self.flag)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None

        dest = self.flag.lstrip("-").replace("-", "_")
        parser.add_argument(
            self.flag, dest=dest, type=parse_flag, default=from_env, help=self.full_help()
        )


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("")


def _whole(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise ValueError(f"at least {minimum}")
        return value

    return parse


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError("")
        return text

    return parse


def _host_port(text: str) -> str:
    _, separator, port = text.rpartition(":")
    if not separator or not port.isdigit() or int(port) > 65535:
        raise ValueError("")
    return text


def _items(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _pairs(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in _items(text):
        key, separator, value = item.partition("=")
        if not separator or not key.strip() or not value.strip():
            raise ValueError(f"{item!r} is not KEY=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


BOOLEAN: Kind[bool] = Kind(_boolean, "one of 1/true/yes/on or 0/false/no/off")
TEXT: Kind[str] = Kind(str, "text")
PATH: Kind[Path | None] = Kind(Path, "a file path")
HOST_PORT: Kind[str] = Kind(_host_port, "HOST:PORT")
ITEMS: Kind[tuple[str, ...]] = Kind(_items, "a comma-separated list")
PAIRS: Kind[dict[str, str]] = Kind(_pairs, "comma-separated KEY=VALUE pairs")


def whole_number(minimum: int = 0, unit: str = "") -> Kind[int]:
    """Integers of at least minimum (e.g. milliseconds, bytes, a count)."""
    what = f"a whole number{' of ' + unit if unit else ''} ≥ {minimum}"
    return Kind(_whole(minimum), what)


def choice(*options: str) -> Kind[str]:
    """One of a fixed set of words."""
    return Kind(_choice(options), "one of " + ", ".join(options))


def read_all(settings: Mapping[str, Setting[Any]], env: Mapping[str, str]) -> dict[str, Any]:
    """Reads several settings at once: field name → value (errors name the variable)."""
    return {name: setting.read(env) for name, setting in settings.items()}
