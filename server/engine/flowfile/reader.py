"""Reading one flow or subflow document: top-level fields, shared pieces, whole-flow checks.

Each node kind's fields are read by its entry in `nodes.READERS`; the pieces they share
(prompts, references, escalation, keys) are the reader's public methods.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.engine.flow import (
    BargeIn,
    Command,
    Defaults,
    Escalation,
    Flow,
    KeywordsByLanguage,
    NluConfig,
    Node,
    PromptItem,
    PromptSpec,
    TextByLanguage,
)
from server.engine.flowfile.checker import Checker
from server.engine.flowfile.names import (
    ASSISTANT_FIELDS,
    CALL_FIELDS,
    DEFAULT_HOOK_TIMEOUT_MS,
    FLOW_ID,
    KEYS,
    MAX_HOOK_TIMEOUT_MS,
    NAME,
    NAMED_FAMILIES,
    PARAM_NAME,
    PLACEHOLDER,
    QUEUE_FIELDS,
    TRANSFER_FIELDS,
    URL,
)
from server.engine.flowfile.nodes import READERS
from server.engine.flowfile.subflows import Raw, Return, Subflow, inline
from server.engine.flowfile.yaml_lines import LineList, LineMap, describe
from server.engine.languages import DECLARABLE_TAG, LANGUAGE_TAG, PROMPT_FIELDS
from server.engine.matching import normalize

T = TypeVar("T")
# Values the call has beside its slots, readable in any template.
_RUNTIME_FIELDS = frozenset((*CALL_FIELDS, *QUEUE_FIELDS, *ASSISTANT_FIELDS, *TRANSFER_FIELDS))
# Each setting's default, from the flow model: a file that leaves one out gets exactly that.
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(Defaults)}


_TOP_KEYS = (
    "flow",
    "version",
    "description",
    "language",
    "languages",
    "voice",
    "timezone",
    "start",
    "defaults",
    "commands",
    "nodes",
    "slots",
    "synonyms",
    "nlu",
)
_SUBFLOW_TOP_KEYS = ("subflow", "description", "start", "nodes", "slots")


class FlowReader:
    """Builds a Flow (or a Subflow) from a parsed document, then checks references across it."""

    def __init__(
        self,
        checker: Checker,
        data: LineMap,
        subflows: Mapping[str, Subflow],
        resolve: Callable[[str], Subflow | str] | None = None,
    ) -> None:
        self.c = checker
        self.data = data
        self.references: list[tuple[int, str, str]] = []  # (line, where, node id)
        self.templates: list[tuple[int, str, str]] = []  # (line, where, text)
        self.slots: set[str] = set()
        self.node_lines: dict[str, int] = {}
        self.is_subflow = resolve is not None
        # Finds a subflow by id: the given ones for a flow; built on demand for a subflow.
        self.resolve = resolve or (
            lambda name: (
                subflows.get(name)
                or f"unknown subflow '{name}' (expected one of: {', '.join(sorted(subflows)) or 'none'})"
            )
        )
        self.outcomes: set[str] = set()
        # The languages prompts and keywords may be keyed by: the flow's `languages:`, else its
        # one `language:`. A subflow is read before any flow uses it: any well-formed tag.
        self.languages: tuple[str, ...] = ()
        # Only `languages:` makes every item's own `language:` one of them (items are chosen
        # by language at play time); a one-language flow may mix in any.
        self.declared_languages: tuple[str, ...] = ()
        # Reading the items under a language key: their own `language:` is only how they are
        # spoken ({zh-CN: [中文…, {tts: "For English, press 9", language: en-US}]}).
        self.under_language = False

    def read(self) -> Flow | None:
        c, data = self.c, self.data
        c.known_keys(data, _TOP_KEYS, "flow")
        flow_id = c.get(data, "flow", str, "flow", required=True) or ""
        if flow_id and not FLOW_ID.match(flow_id):
            c.problem(
                c.line_of(data, "flow"),
                "flow.flow",
                f"'{flow_id}' is not a valid flow id (expected lowercase letters, digits, '-', '_')",
            )
        version = c.get(data, "version", str, "flow", required=True) or ""
        language = c.get(data, "language", str, "flow", default="zh-CN") or "zh-CN"
        languages = self._languages(data, language)
        language = languages[0] if languages else language
        self.languages, self.declared_languages = languages or (language,), languages
        voice, voices = self.text_by_language(data, "voice", "flow")
        timezone = self.timezone(data, "flow") or "UTC"
        declared = c.get(data, "slots", LineList, "flow", default=LineList()) or LineList()
        self.slots.update(str(slot) for slot in declared)
        start = c.get(data, "start", str, "flow", required=True) or ""
        if start:
            self.references.append((c.line_of(data, "start"), "flow.start", start))
        defaults = self._defaults(c.get(data, "defaults", LineMap, "flow", required=True))
        raw = self._nodes(c.get(data, "nodes", LineMap, "flow", required=True))
        commands = self._commands(
            c.get(data, "commands", LineList, "flow", default=LineList()) or LineList()
        )
        synonyms = self._synonyms(data)
        nlu = self._nlu(data)
        self._check_references(raw)
        self._check_templates()
        nodes = {
            node_id: node
            for node_id, node in inline(raw, self.node_lines).items()
            if not isinstance(node, Return)
        }
        self._check_say_cycles(nodes)
        if defaults is None:
            return None
        return Flow(
            flow_id,
            version,
            language,
            voice,
            start,
            defaults,
            commands,
            nodes,
            c.file,
            c.line_of(data, "flow"),
            timezone=timezone,
            synonyms=synonyms,
            nlu=nlu,
            languages=languages,
            voices=voices,
        )

    def _languages(self, data: LineMap, language: str) -> tuple[str, ...]:
        """`languages: [zh-CN, en-US]`: the languages the flow speaks, the default first."""
        c = self.c
        raw = c.get(data, "languages", LineList, "flow")
        if raw is None:
            return ()
        where = "flow.languages"
        found: list[str] = []
        for entry, line in zip(raw, raw.item_lines, strict=True):
            tag = str(entry)
            if not isinstance(entry, str) or not DECLARABLE_TAG.match(tag) or tag in PROMPT_FIELDS:
                c.problem(
                    line,
                    where,
                    f"got {describe(entry)}, expected a BCP-47 language such as zh-CN or en-US",
                )
            elif tag in found:
                c.problem(line, where, f"'{tag}' is listed twice (expected each language once)")
            else:
                found.append(tag)
        if not raw:
            c.problem(raw.line, where, "no languages (expected at least one, the default first)")
        if found and "language" in data and language != found[0]:
            c.problem(
                c.line_of(data, "language"),
                "flow.language",
                f"'{language}' is not the first of languages ({', '.join(found)}); expected "
                f"language: {found[0]}, or leave 'language' out",
            )
        return tuple(found)

    def known_language(self, tag: str, line: int, where: str) -> bool:
        """Whether a key of a prompt or keyword mapping is a language this file may use."""
        if self.is_subflow:
            if LANGUAGE_TAG.match(tag):
                return True
            self.c.problem(
                line, where, f"'{tag}' is not a language (expected a BCP-47 tag such as en-US)"
            )
            return False
        if tag in self.languages:
            return True
        hint = (
            ""
            if self.declared_languages
            else f"; a flow speaking more languages declares them: languages: [{self.languages[0]}, …]"
        )
        self.c.problem(
            line,
            where,
            f"unknown language '{tag}' (expected one of: {', '.join(self.languages)}{hint})",
        )
        return False

    def text_by_language(
        self, data: LineMap, key: str, where: str, *, template: bool = False
    ) -> tuple[str, TextByLanguage]:
        """A text, or `{zh-CN: …, en-US: …}`: the default language's text (else the first
        given), and the text of each language when given per language (else empty)."""
        value, line = data.get(key), self.c.line_of(data, key)
        if not self.is_by_language(value):
            text = self.c.get(data, key, str, where, default="") or ""
            if template:
                self.templates.append((line, f"{where}.{key}", text))
            return text, ()
        assert isinstance(value, LineMap)
        texts: list[tuple[str, str]] = []
        for tag, entry in value.items():
            tag_line = value.key_lines.get(tag, line)
            if not self.known_language(str(tag), tag_line, f"{where}.{key}"):
                continue
            if not isinstance(entry, str | int | float) or isinstance(entry, bool):
                self.c.problem(
                    tag_line, f"{where}.{key}.{tag}", f"got {describe(entry)}, expected text"
                )
                continue
            if template:
                self.templates.append((tag_line, f"{where}.{key}.{tag}", str(entry)))
            texts.append((str(tag), str(entry)))
        by_language = dict(texts)
        default = self.languages[0] if self.languages else ""
        return by_language.get(default, texts[0][1] if texts else ""), tuple(texts)

    def is_by_language(self, value: Any) -> bool:
        """Whether a mapping is keyed by language (`{zh-CN: …, en-US: …}`), not a prompt item."""
        return isinstance(value, LineMap) and any(
            str(key) in self.languages or LANGUAGE_TAG.match(str(key)) for key in value
        )

    def keywords(
        self, data: LineMap, where: str, *, required: bool = False
    ) -> tuple[tuple[str, ...], KeywordsByLanguage]:
        """`keywords:` — a list (said in any language) or `{zh-CN: [...], en-US: [...]}`.

        Returns every keyword, and per language when given so (else empty)."""
        c = self.c
        if "keywords" not in data:
            if required:
                c.problem(data.line, where, "'keywords' is missing (expected a list)")
            return (), ()
        raw, line, kw = data["keywords"], c.line_of(data, "keywords"), f"{where}.keywords"
        if isinstance(raw, LineList):
            return tuple(str(keyword) for keyword in raw), ()
        if not isinstance(raw, LineMap):
            c.problem(
                line,
                kw,
                f"got {describe(raw)}, expected a list, or a mapping of language → list",
            )
            return (), ()
        by_language: list[tuple[str, tuple[str, ...]]] = []
        for tag, words in raw.items():
            tag_line = raw.key_lines.get(tag, line)
            if not self.known_language(str(tag), tag_line, kw):
                continue
            if not isinstance(words, LineList):
                c.problem(tag_line, f"{kw}.{tag}", f"got {describe(words)}, expected a list")
                continue
            by_language.append((str(tag), tuple(str(word) for word in words)))
        every = tuple(dict.fromkeys(word for _, words in by_language for word in words))
        return every, tuple(by_language)

    def read_subflow(self) -> Subflow | None:
        c, data = self.c, self.data
        c.known_keys(data, _SUBFLOW_TOP_KEYS, "subflow")
        name = c.get(data, "subflow", str, "subflow", required=True) or ""
        declared = c.get(data, "slots", LineList, "subflow", default=LineList()) or LineList()
        self.slots.update(str(slot) for slot in declared)
        start = c.get(data, "start", str, "subflow", required=True) or ""
        if start:
            self.references.append((c.line_of(data, "start"), "subflow.start", start))
        raw = self._nodes(c.get(data, "nodes", LineMap, "subflow", required=True))
        self._check_references(raw)
        self._check_templates()
        nodes = inline(raw, self.node_lines)
        self._check_say_cycles(nodes)
        if not self.outcomes:
            c.problem(
                c.line_of(data, "nodes"),
                "subflow",
                "no 'return' node (expected at least one, to go back)",
            )
        return Subflow(
            name,
            start,
            nodes,
            frozenset(self.slots),
            frozenset(self.outcomes),
            c.file,
            c.line_of(data, "subflow"),
        )

    # -- pieces ---------------------------------------------------------------------------

    def ref(self, data: LineMap, key: str, where: str, *, required: bool = True) -> str:
        target = self.c.get(data, key, str, where, default="", required=required) or ""
        if target:
            self.references.append((self.c.line_of(data, key), f"{where}.{key}", target))
        return target

    def _defaults(self, data: LineMap | None) -> Defaults | None:
        if data is None:
            return None
        c, w = self.c, "defaults"
        c.known_keys(
            data,
            ("on_max_attempts", "on_max_no_input", "on_max_no_match", "barge_in", "min_speech_ms", "no_input_timeout_ms", "inter_digit_timeout_ms",
             "max_no_input", "max_no_match", "max_failures", "on_failure_budget", "no_input", "no_match",
             "fuzzy_threshold"),
            w,
        )  # fmt: skip
        fuzzy = self.fuzzy(data, w)
        return Defaults(
            on_max_attempts=self.ref(data, "on_max_attempts", w),
            on_max_no_input=self.ref(data, "on_max_no_input", w, required=False),
            on_max_no_match=self.ref(data, "on_max_no_match", w, required=False),
            barge_in=self.barge_in(data, w) or _DEFAULTS["barge_in"],
            min_speech_ms=self.positive(
                data, "min_speech_ms", w, _DEFAULTS["min_speech_ms"], zero_ok=True
            ),
            no_input_timeout_ms=self.positive(
                data, "no_input_timeout_ms", w, _DEFAULTS["no_input_timeout_ms"]
            ),
            inter_digit_timeout_ms=self.positive(
                data, "inter_digit_timeout_ms", w, _DEFAULTS["inter_digit_timeout_ms"]
            ),
            max_no_input=self.positive(data, "max_no_input", w, _DEFAULTS["max_no_input"]),
            max_no_match=self.positive(data, "max_no_match", w, _DEFAULTS["max_no_match"]),
            max_failures=self.positive(
                data, "max_failures", w, _DEFAULTS["max_failures"], zero_ok=True
            ),
            on_failure_budget=self.ref(data, "on_failure_budget", w, required=False),
            no_input=self.prompt_list(data, "no_input", w),
            no_match=self.prompt_list(data, "no_match", w),
            fuzzy_threshold=_DEFAULTS["fuzzy_threshold"] if fuzzy is None else fuzzy,
        )

    def fuzzy(self, data: LineMap, where: str) -> float | None:
        value = self.c.get(data, "fuzzy_threshold", float, where)
        if value is not None and not 0 <= value <= 100:
            self.c.problem(
                self.c.line_of(data, "fuzzy_threshold"),
                f"{where}.fuzzy_threshold",
                f"got {value:g}, expected 0 (off) to 100",
            )
            return None
        return value

    def timezone(self, data: LineMap, where: str) -> str:
        zone = self.c.get(data, "timezone", str, where, default="") or ""
        if not zone:
            return ""
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            self.c.problem(
                self.c.line_of(data, "timezone"),
                f"{where}.timezone",
                f"unknown time zone '{zone}' (expected an IANA name such as Asia/Shanghai)",
            )
            return ""
        return zone

    def _synonyms(self, data: LineMap) -> dict[str, tuple[str, ...]]:
        """`synonyms: {话费: [电话费, 手机费]}` or `[[话费, 电话费], ...]`: groups of equal words."""
        raw = data.get("synonyms")
        if raw is None:
            return {}
        line = self.c.line_of(data, "synonyms")
        groups: list[tuple[int, list[str]]] = []
        if isinstance(raw, LineMap):
            for word, others in raw.items():
                word_line = raw.key_lines.get(word, line)
                if not isinstance(others, LineList):
                    self.c.problem(
                        word_line,
                        f"flow.synonyms.{word}",
                        f"got {describe(others)}, expected a list of words",
                    )
                    continue
                groups.append((word_line, [str(word), *(str(o) for o in others)]))
        elif isinstance(raw, LineList):
            for group, group_line in zip(raw, raw.item_lines, strict=True):
                if not isinstance(group, LineList) or len(group) < 2:
                    self.c.problem(
                        group_line, "flow.synonyms", "expected a list of at least two words"
                    )
                    continue
                groups.append((group_line, [str(word) for word in group]))
        else:
            self.c.problem(
                line, "flow.synonyms", f"got {describe(raw)}, expected a mapping or a list"
            )
        synonyms: dict[str, tuple[str, ...]] = {}
        for group_line, words in groups:
            group = tuple(dict.fromkeys(words))
            for word in group:
                if normalize(word) in synonyms:
                    self.c.problem(
                        group_line,
                        "flow.synonyms",
                        f"'{word}' is in two synonym groups (expected each word in one)",
                    )
                synonyms[normalize(word)] = group
        return synonyms

    def _nlu(self, data: LineMap) -> NluConfig | None:
        raw = self.c.get(data, "nlu", LineMap, "flow")
        if raw is None:
            return None
        where = "flow.nlu"
        self.c.known_keys(raw, ("url", "timeout_ms", "min_confidence"), where)
        url = self.url(raw, where)
        confidence = self.c.get(raw, "min_confidence", float, where, default=0.5)
        if confidence is not None and not 0 <= confidence <= 1:
            self.c.problem(
                self.c.line_of(raw, "min_confidence"),
                f"{where}.min_confidence",
                f"got {confidence:g}, expected 0 to 1",
            )
        return NluConfig(url, self.timeout(raw, where), confidence or 0.0)

    def url(self, data: LineMap, where: str) -> str:
        url = self.c.get(data, "url", str, where, required=True) or ""
        if url and not URL.match(url):
            self.c.problem(
                self.c.line_of(data, "url"),
                f"{where}.url",
                f"got '{url}', expected an http:// or https:// URL",
            )
        return url

    def timeout(self, data: LineMap, where: str) -> int:
        timeout = self.positive(data, "timeout_ms", where, DEFAULT_HOOK_TIMEOUT_MS)
        if timeout > MAX_HOOK_TIMEOUT_MS:
            self.c.problem(
                self.c.line_of(data, "timeout_ms"),
                f"{where}.timeout_ms",
                f"got {timeout}, expected at most {MAX_HOOK_TIMEOUT_MS}",
            )
        return timeout

    def patterns(self, data: LineMap, where: str) -> tuple[str, ...]:
        raw = self.c.get(data, "patterns", LineList, where, default=LineList()) or LineList()
        patterns: list[str] = []
        for pattern, line in zip(raw, raw.item_lines, strict=True):
            if self.regex(str(pattern), line, f"{where}.patterns"):
                patterns.append(str(pattern))
        return tuple(patterns)

    def regex(self, pattern: str, line: int, where: str) -> bool:
        try:
            re.compile(pattern)
        except re.error as exc:
            self.c.problem(line, where, f"invalid regular expression '{pattern}': {exc}")
            return False
        return True

    def key(self, data: LineMap, where: str) -> str:
        key = self.c.get(data, "key", str, where, default="") or ""
        if key and (len(key) != 1 or key not in KEYS):
            self.c.problem(
                self.c.line_of(data, "key"),
                f"{where}.key",
                f"got '{key}', expected one key of {KEYS}",
            )
        return key

    def positive(
        self, data: LineMap, key: str, where: str, default: int, *, zero_ok: bool = False
    ) -> int:
        value = self.c.get(data, key, int, where, default=default)
        if value is None:
            return default
        if value < 0 or (value == 0 and not zero_ok):
            self.c.problem(
                self.c.line_of(data, key),
                f"{where}.{key}",
                f"got {value}, expected a number above {-1 if zero_ok else 0}",
            )
            return default
        return value

    def barge_in(self, data: LineMap, where: str) -> BargeIn | None:
        return self.enum(data, "barge_in", BargeIn, where)

    def enum(self, data: LineMap, key: str, enum: Callable[[str], T], where: str) -> T | None:
        raw = self.c.get(data, key, str, where)
        if raw is None:
            return None
        try:
            return enum(raw)
        except ValueError:
            choices = [member.value for member in enum]  # type: ignore[attr-defined]
            self.c.problem(
                self.c.line_of(data, key),
                f"{where}.{key}",
                f"got '{raw}', expected one of: {', '.join(choices)}",
            )
            return None

    def prompt(self, data: LineMap, key: str, where: str, *, required: bool = False) -> PromptSpec:
        if key not in data:
            if required:
                self.c.problem(
                    data.line, where, f"'{key}' is missing (expected text, or a list of prompts)"
                )
            return PromptSpec()
        return self.prompt_value(data[key], self.c.line_of(data, key), f"{where}.{key}")

    def prompt_value(self, value: Any, line: int, where: str) -> PromptSpec:
        """A prompt is text, an item mapping, a list of those, or {items, barge_in, min_speech_ms}."""
        if isinstance(value, LineMap) and "items" in value:
            self.c.known_keys(value, ("items", "barge_in", "min_speech_ms"), where)
            inner = self.prompt_value(
                value["items"], self.c.line_of(value, "items"), f"{where}.items"
            )
            min_speech = self.c.get(value, "min_speech_ms", int, where)
            return PromptSpec(inner.items, self.barge_in(value, where), min_speech)
        if self.is_by_language(value):
            return self._prompt_by_language(value, where)
        values = value if isinstance(value, LineList) else [value]
        lines = value.item_lines if isinstance(value, LineList) else [line]
        items = tuple(
            item
            for index, (entry, entry_line) in enumerate(zip(values, lines, strict=True))
            if (
                item := self.prompt_item(
                    entry, entry_line, f"{where}[{index}]" if isinstance(value, LineList) else where
                )
            )
        )
        if not items:
            self.c.problem(line, where, "no prompt items (expected text, or {tts|audio|url: ...})")
        return PromptSpec(items)

    def _prompt_by_language(self, value: LineMap, where: str) -> PromptSpec:
        """`{zh-CN: 您好, en-US: Hello}`: each language's items (any prompt form), tagged."""
        items: list[PromptItem] = []
        for tag, entry in value.items():
            tag_line = value.key_lines.get(tag, value.line)
            lw = f"{where}.{tag}"
            if not self.known_language(str(tag), tag_line, where):
                continue
            if isinstance(entry, LineMap) and ("barge_in" in entry or "min_speech_ms" in entry):
                self.c.problem(
                    tag_line,
                    lw,
                    "barge_in and min_speech_ms apply to the whole prompt (expected them around "
                    "the languages: {items: {zh-CN: …, en-US: …}, barge_in: …})",
                )
            self.under_language = True
            spec = self.prompt_value(entry, tag_line, lw)
            self.under_language = False
            # Heard by this language's calls, even an item spoken in another language.
            items += [
                dataclasses.replace(item, language=item.language or str(tag), heard_in=str(tag))
                for item in spec.items
            ]
        return PromptSpec(tuple(items))

    def prompt_item(self, value: Any, line: int, where: str) -> PromptItem | None:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            self.templates.append((line, where, str(value)))
            return PromptItem(text=str(value))
        if not isinstance(value, LineMap):
            self.c.problem(line, where, f"got {describe(value)}, expected text or a mapping")
            return None
        self.c.known_keys(value, ("tts", "audio", "url", "voice", "language", "speed"), where)
        sources = [key for key in ("tts", "audio", "url") if key in value]
        if len(sources) != 1:
            self.c.problem(
                value.line, where, f"has {len(sources)} of tts/audio/url, expected exactly one"
            )
            return None
        text = self.c.get(value, sources[0], str, where, default="") or ""
        if sources[0] == "tts":
            self.templates.append((value.line, where, text))
        speed = self.c.get(value, "speed", float, where, default=0.0) or 0.0
        language = self.c.get(value, "language", str, where, default="") or ""
        if (
            language
            and self.declared_languages
            and not self.under_language
            and language not in self.declared_languages
        ):
            self.c.problem(
                self.c.line_of(value, "language"),
                f"{where}.language",
                f"unknown language '{language}' (expected one of: {', '.join(self.declared_languages)})",
            )
        return PromptItem(
            text=text if sources[0] == "tts" else "",
            media_name=text if sources[0] == "audio" else "",
            url=text if sources[0] == "url" else "",
            voice=self.c.get(value, "voice", str, where, default="") or "",
            language=language,
            speed=speed,
        )

    def prompt_list(self, data: LineMap, key: str, where: str) -> tuple[PromptSpec, ...]:
        """Escalating prompts: a list whose n-th entry is used the n-th time."""
        if key not in data:
            return ()
        value = data[key]
        if not isinstance(value, LineList):
            value = LineList([value])
            value.item_lines = [self.c.line_of(data, key)]
        return tuple(
            self.prompt_value(entry, line, f"{where}.{key}[{index}]")
            for index, (entry, line) in enumerate(zip(value, value.item_lines, strict=True))
        )

    def escalation(self, data: LineMap, where: str) -> Escalation:
        return Escalation(
            no_input=self.prompt_list(data, "no_input", where) if "no_input" in data else None,
            no_match=self.prompt_list(data, "no_match", where) if "no_match" in data else None,
            max_no_input=self.positive(data, "max_no_input", where, 1)
            if "max_no_input" in data
            else None,
            max_no_match=self.positive(data, "max_no_match", where, 1)
            if "max_no_match" in data
            else None,
            on_max=self.ref(data, "on_max", where, required=False) or None,
            on_max_no_input=self.ref(data, "on_max_no_input", where, required=False) or None,
            on_max_no_match=self.ref(data, "on_max_no_match", where, required=False) or None,
        )

    def _nodes(self, data: LineMap | None) -> dict[str, Raw]:
        nodes: dict[str, Raw] = {}
        if data is None:
            return nodes
        self.node_lines = dict(data.key_lines)
        for node_id, body in data.items():
            where = f"node '{node_id}'"
            line = data.key_lines[node_id]
            if not NAME.match(node_id):
                self.c.problem(
                    line,
                    where,
                    "invalid node id (expected lowercase letters, digits and '_', starting with a letter)",
                )
            if not isinstance(body, LineMap):
                self.c.problem(line, where, f"got {describe(body)}, expected a mapping with 'type'")
                continue
            node = self._node(node_id, body, where)
            if node is not None:
                nodes[node_id] = node
        if not nodes:
            self.c.problem(data.line, "nodes", "no nodes (expected at least one)")
        return nodes

    def _node(self, node_id: str, data: LineMap, where: str) -> Raw | None:
        kind = self.c.get(data, "type", str, where, required=True)
        if kind is None:
            return None
        if kind == "return" and not self.is_subflow:
            self.c.problem(
                self.c.line_of(data, "type"),
                f"{where}.type",
                "'return' is only for subflows (expected a node that goes on, or hangup)",
            )
            return None
        reader = READERS.get(kind)
        if reader is None:
            self.c.problem(
                self.c.line_of(data, "type"),
                f"{where}.type",
                f"unknown node type '{kind}' (expected one of: {', '.join(READERS)})",
            )
            return None
        self.c.known_keys(data, ("type", *reader.keys), where)
        return reader.read(self, node_id, data, where)

    def assignable(self, name: str, line: int, where: str) -> bool:
        """A slot name (declared by being set) or params.NAME."""
        if PARAM_NAME.match(name):
            return True
        if not NAME.match(name):
            self.c.problem(
                line,
                where,
                f"'{name}' is not a slot name or params.NAME (expected lowercase letters, digits, '_')",
            )
            return False
        self.slots.add(name)
        return True

    def declare_slot(self, data: LineMap, slot: str, where: str) -> None:
        if slot and not NAME.match(slot):
            self.c.problem(
                self.c.line_of(data, "slot"),
                f"{where}.slot",
                f"'{slot}' is not a valid slot name (expected lowercase letters, digits, '_')",
            )
        self.slots.add(slot)

    def _commands(self, raw: LineList) -> tuple[Command, ...]:
        commands: list[Command] = []
        for index, (entry, line) in enumerate(zip(raw, raw.item_lines, strict=True)):
            where = f"commands[{index}]"
            if not isinstance(entry, LineMap):
                self.c.problem(line, where, f"got {describe(entry)}, expected a mapping")
                continue
            self.c.known_keys(
                entry, ("intent", "keywords", "patterns", "goto", "repeat", "key"), where
            )
            keywords, by_language = self.keywords(entry, where, required=True)
            patterns = self.patterns(entry, where)
            repeat = self.c.get(entry, "repeat", bool, where, default=False) is True
            goto = self.ref(entry, "goto", where, required=not repeat)
            if repeat == bool(goto):
                self.c.problem(
                    entry.line, where, "expected exactly one of 'goto: NODE' or 'repeat: true'"
                )
            key = self.key(entry, where)
            commands.append(
                Command(
                    self.c.get(entry, "intent", str, where, required=True) or "",
                    keywords,
                    goto,
                    repeat,
                    key,
                    patterns,
                    by_language,
                )
            )
        return tuple(commands)

    # -- whole-flow checks ----------------------------------------------------------------

    # -- whole-flow checks ------------------------------------------------------------------

    def _check_references(self, nodes: Mapping[str, object]) -> None:
        known = ", ".join(sorted(nodes)) or "none"
        for line, where, target in self.references:
            if target not in nodes:
                self.c.problem(line, where, f"unknown node '{target}' (expected one of: {known})")

    def _check_templates(self) -> None:
        for line, where, text in self.templates:
            for name in PLACEHOLDER.findall(text):
                if name in self.slots or name in _RUNTIME_FIELDS or name.startswith("params."):
                    continue
                known = ", ".join(sorted(self.slots | set(CALL_FIELDS))) + ", " + NAMED_FAMILIES
                self.c.problem(
                    line, where, f"unknown placeholder '{{{name}}}' (expected one of: {known})"
                )

    def _check_say_cycles(self, nodes: Mapping[str, Node | Return]) -> None:
        """A loop of straight-through nodes would never reach the platform: reject it, once per
        loop. (Fulfillment nodes in such a loop would call their service without end.)"""

        def successors(node: Node | Return) -> tuple[str, ...]:
            # A node that waits for the platform has none: no loop continues through it.
            return () if isinstance(node, Return) else node.through()

        done: set[str] = set()
        reported: set[frozenset[str]] = set()

        def visit(node_id: str, path: list[str]) -> None:
            if node_id in path:
                loop = path[path.index(node_id) :]
                if frozenset(loop) not in reported:
                    reported.add(frozenset(loop))
                    route = " → ".join([*loop, node_id])
                    kinds = (
                        "say/branch"
                        if all(getattr(nodes[n], "kind", "") in ("say", "branch") for n in loop)
                        else "straight-through (say, branch, set, hours, fulfillment)"
                    )
                    self.c.problem(
                        self.node_lines.get(node_id, 1),
                        f"node '{node_id}'",
                        f"{kinds} nodes loop back to '{node_id}' without waiting for the caller ({route}); expected a node that listens, transfers or ends on the way",
                    )
                return
            node = nodes.get(node_id)
            if node_id in done or node is None:
                return
            for target in successors(node):
                visit(target, [*path, node_id])
            done.add(node_id)

        for node_id in nodes:
            visit(node_id, [])
