"""Reading a document's values with their expected types, recording problems as it goes."""

from __future__ import annotations

from typing import Any, TypeVar

from server.engine.flowfile.yaml_lines import LineList, LineMap, Problem, describe

T = TypeVar("T")


class Checker:
    """Reads one flow document, recording problems instead of stopping at the first."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def problem(self, line: int, where: str, message: str) -> None:
        """Records one problem at a line."""
        self.problems.append(Problem(self.file, line, where, message))

    def get(
        self,
        data: LineMap,
        key: str,
        kind: type[T],
        where: str,
        *,
        default: T | None = None,
        required: bool = False,
    ) -> T | None:
        """Returns data[key] if it has the expected type, else records a problem."""
        if key not in data:
            if required:
                self.problem(data.line, where, f"'{key}' is missing (expected {kind_name(kind)})")
            return default
        value = data[key]
        line = data.key_lines.get(key, data.line)
        # bool is an int in Python; a flow author writing `max_no_input: yes` meant no number.
        if kind in (int, float) and isinstance(value, bool):
            self.problem(
                line, f"{where}.{key}", f"got {describe(value)}, expected {kind_name(kind)}"
            )
            return default
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is str and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)  # keys like `key: 1` are meant as text
        if not isinstance(value, kind):
            self.problem(
                line, f"{where}.{key}", f"got {describe(value)}, expected {kind_name(kind)}"
            )
            return default
        return value

    def known_keys(self, data: LineMap, allowed: tuple[str, ...], where: str) -> None:
        """Records every key of data that is not allowed."""
        for key in data:
            if key not in allowed:
                self.problem(
                    data.key_lines.get(key, data.line),
                    where,
                    f"unknown field '{key}' (expected one of: {', '.join(allowed)})",
                )

    def line_of(self, data: LineMap, key: str) -> int:
        """The line of data's key, or of data itself when the key is absent."""
        return data.key_lines.get(key, data.line)


def kind_name(kind: type[Any]) -> str:
    """A Python type as a flow author reads it ("a whole number")."""
    return {str: "text", int: "a whole number", float: "a number", bool: "true or false"}.get(
        kind, "a mapping" if kind is LineMap else "a list" if kind is LineList else kind.__name__
    )
