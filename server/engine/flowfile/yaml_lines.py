"""Line-aware YAML reading: mappings and sequences that remember the lines they came from.

libyaml parses (5-8x faster on big flows); the pure-Python parser only words a syntax error,
since its messages quote the offending line. Duplicate keys are an error: YAML keeps the last
of two, and a flow author never means that.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from server.engine.flowfile.names import MAX_FLOW_FILE_BYTES


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a flow file."""

    file: str
    line: int
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.where}: {self.message}"


class FlowError(Exception):
    """A flow file (or a set of them) is invalid; `problems` lists every issue found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("invalid flow:\n" + "\n".join(f"  {p}" for p in problems))


class LineMap(dict[str, Any]):
    """A YAML mapping that remembers the line of each key (1-based)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.line = 0
        self.key_lines: dict[str, int] = {}


class LineList(list[Any]):
    """A YAML sequence that remembers its line and its items' lines."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.line = 0
        self.item_lines: list[int] = [0] * len(self)


# libyaml's parser when PyYAML was built with it (5-8x faster on big flows, same nodes and
# line marks); the pure-Python one otherwise.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader whose mappings and sequences carry line numbers."""


class _ExplainingLoader(yaml.SafeLoader):
    """The pure-Python parser, used only to word a syntax error: unlike libyaml's, its
    messages quote the offending line and say what was expected there."""


class _DuplicateKeyError(yaml.YAMLError):
    """YAML keeps the last of two equal keys; a flow author never means that."""

    def __init__(self, key: str, line: int, first_line: int) -> None:
        super().__init__(f"duplicate key '{key}'")
        self.key, self.line, self.first_line = key, line, first_line


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> LineMap:
    result = LineMap()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = str(loader.construct_object(key_node, deep=True))
        line = key_node.start_mark.line + 1
        if key in result:
            raise _DuplicateKeyError(key, line, result.key_lines[key])
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_list(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(item, deep=True) for item in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [item.start_mark.line + 1 for item in node.value]
    return result


for _loader in (_LineLoader, _ExplainingLoader):
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_list)


def describe(value: Any) -> str:
    """A YAML value as an error message names it ("a mapping", "int 3")."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"


def read_text(path: Path) -> str:
    """A flow file's text, refused when it is larger than any flow should be."""
    size = path.stat().st_size
    if size > MAX_FLOW_FILE_BYTES:
        raise FlowError(
            [Problem(str(path), 1, "file", f"{size} bytes, expected at most {MAX_FLOW_FILE_BYTES}")]
        )
    return path.read_text(encoding="utf-8")


def parse_yaml(text: str, file: str) -> LineMap:
    """Parses a flow document (a mapping) as the server reads it.

    Raises:
        FlowError: a syntax error, a duplicate key, or a document that is not a mapping.
    """
    data = parse_yaml_value(text, file)
    if not isinstance(data, LineMap):
        raise FlowError([Problem(file, 1, "file", f"got {describe(data)}, expected a mapping")])
    return data


def parse_yaml_value(text: str, file: str) -> Any:
    """Parses any YAML document into LineMap/LineList/scalars: the one YAML reader of the
    server and the tools (flows, subflows, conversation tests), so both accept the same files.

    Raises:
        FlowError: a syntax error or a duplicate key, at its line.
    """
    try:
        try:
            data = yaml.load(text, Loader=_LineLoader)
        except _DuplicateKeyError:
            raise
        except yaml.YAMLError:
            # Errors are rare: parse again, slowly, for the better message. The pure-Python
            # parser accepts a little more than libyaml; what it accepts is still refused.
            yaml.load(text, Loader=_ExplainingLoader)
            raise
    except _DuplicateKeyError as exc:
        message = f"defined twice (first at line {exc.first_line}); expected each key once"
        raise FlowError([Problem(file, exc.line, f"key '{exc.key}'", message)]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise FlowError([Problem(file, line, "yaml", str(exc).replace("\n", " "))]) from exc
    return data
