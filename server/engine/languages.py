"""The languages of a call: which one it speaks, and which prompt items and keywords are its.

A flow that declares `languages: [zh-CN, en-US]` speaks all of them; the first is the default,
the one every call starts in. The call's language (`CallState.language`, "" for the default)
decides which items of each prompt are played and which keywords are tried first. A flow of
one language (`language:` alone, `Flow.languages` empty) plays every item as written, as it
always did.

Pure functions over the flow model; the interpreter decides when the call switches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Protocol

from server.engine import matching
from server.engine.flow import Flow, KeywordsByLanguage, PromptItem, PromptSpec, TextByLanguage

# A BCP-47 tag with a region or script ("zh-CN", "en-US", "yue-Hant-HK"): what a key of a
# prompt or keyword mapping must look like to be read as a language.
LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})+$")
# What `languages:` accepts: a tag with or without its region ("en" too, since it is declared,
# a key that names it is known), except the field names a prompt mapping has.
DECLARABLE_TAG = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
PROMPT_FIELDS = frozenset(
    {"tts", "audio", "url", "voice", "language", "speed", "items", "barge_in", "min_speech_ms"}
)


class Said(Protocol):
    """Anything the caller can say: a menu choice, a global command, an option of a slot."""

    @property
    def keywords(self) -> tuple[str, ...]: ...

    @property
    def keywords_by_language(self) -> KeywordsByLanguage: ...

    @property
    def patterns(self) -> tuple[str, ...]: ...


def spoken(flow: Flow, language: str) -> str:
    """The call's language: its own (`CallState.language`), else the flow's default."""
    return language if language and flow.languages else flow.language


def order(flow: Flow, language: str) -> tuple[str, ...]:
    """The languages to try an utterance in: the call's first, then the other declared ones."""
    current = spoken(flow, language)
    return (current, *(other for other in flow.languages if other != current))


def declared(flow: Flow, tag: str) -> str:
    """The declared language a platform's tag names: the same tag in any case ("en-us"), else
    the one declared language of its primary language ("en" or "en-GB" for a flow declaring
    en-US), else ""."""
    folded = tag.strip().lower()
    if not folded or not flow.languages:
        return ""
    for language in flow.languages:
        if language.lower() == folded:
            return language
    primary = folded.split("-")[0]
    same = [lang for lang in flow.languages if lang.lower().split("-")[0] == primary]
    return same[0] if len(same) == 1 else ""


def items(flow: Flow, spec: PromptSpec, language: str) -> tuple[PromptItem, ...]:
    """The items of a prompt that are played in a call speaking `language`.

    In a flow of several languages: the items heard in the call's language (`heard_in`); if the prompt has none, the default language's items
    (`dialogue lint` reports the gap); if it has none of those either, all of them, so the
    caller never hears nothing. A flow of one language plays every item, except those written
    under another language's key (a subflow shared by flows of different languages).
    """
    if not flow.languages:
        own = tuple(i for i in spec.items if not i.heard_in or i.heard_in == flow.language)
        return own or spec.items
    current = spoken(flow, language)
    for wanted in (current, flow.language):
        chosen = tuple(item for item in spec.items if heard_in(flow, item) == wanted)
        if chosen:
            return chosen
    return spec.items


def heard_in(flow: Flow, item: PromptItem) -> str:
    """The call language that hears an item: the key it is under, else its own language, else
    the flow's default."""
    return item.heard_in or item.language or flow.language


def text_in(default: str, by_language: TextByLanguage, flow: Flow, language: str) -> str:
    """A text given per language (a voice, a greeting): the call's language's, else the
    default language's (`default`); one text for all when not given per language."""
    if not by_language:
        return default
    return dict(by_language).get(spoken(flow, language), default)


def voice(flow: Flow, language: str) -> str:
    """The flow's TTS voice for a language (`voice:` may be given per language)."""
    return text_in(flow.voice, flow.voices, flow, language)


def keywords_in(said: Said, language: str, *, first: bool) -> tuple[str, ...]:
    """The keywords of `said` to try in `language`: its keywords of that language; a plain
    list counts in every language, so it is tried in the first language only."""
    if not said.keywords_by_language:
        return said.keywords if first else ()
    return dict(said.keywords_by_language).get(language, ())


# The candidates to match in one language: (language, whether it is the first tried).
Candidates = Callable[[str, bool], Sequence[matching.Candidate]]


def understand(
    text: str, languages: Sequence[str], candidates: Candidates, *, fuzzy_threshold: float
) -> tuple[matching.Understood, str]:
    """Picks what the caller meant, trying each language in turn: exactly in every language
    first, then fuzzily. Returns the result and the language that matched when it is not the
    first one tried ("" otherwise: the call keeps its language)."""
    stages = [0.0, fuzzy_threshold] if fuzzy_threshold > 0 else [0.0]
    for threshold in stages:
        for index, language in enumerate(languages):
            found = matching.understand(
                text, candidates(language, index == 0), fuzzy_threshold=threshold
            )
            if found.hit is not None:
                return found, language if index else ""
    return matching.Understood(None), ""
