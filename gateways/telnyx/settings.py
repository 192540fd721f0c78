"""The gateway's settings, each declared once, and the language and voice tables they use.

Pure: `SETTINGS` declares every TELNYX_* variable (env, kind, default, help; docs/gateways/
telnyx.md lists them and a test keeps the table true); `routes.settings_from_env` reads them,
and `Settings` holds the ones that shape commands.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from common.settings import BOOLEAN, TEXT, Kind, Setting, choice, whole_number
from gateways.telnyx.values import is_destination

DEFAULT_VOICE: Final = "Telnyx.KokoroTTS.af"
"""The voice for English and any language neither TELNYX_VOICES nor `LANGUAGE_VOICES` names
(the spec's own example, an American English voice)."""
DEFAULT_LISTEN_TIMEOUT_MS: Final = 5000
DEFAULT_API_BASE: Final = "https://api.telnyx.com/v2"
PLACEHOLDER_ASSISTANT_ID: Final = "assistant-set-TELNYX_ASSISTANT_ID"
"""What HandToAssistant runs when neither the flow nor TELNYX_ASSISTANT_ID names an assistant:
Telnyx refuses it (no such assistant), the refusal is reported to the flow and it goes on."""

# A voice that speaks each language (bare language → voice), before TELNYX_VOICE (which is for
# English and the languages not listed here): an English
# voice reading Chinese text is unintelligible. AWS Polly neural voices through Telnyx
# (`AWS.Polly.<VoiceId>-Neural`, the spec's voice format); TELNYX_VOICES overrides any entry.
LANGUAGE_VOICES: Final = MappingProxyType(
    {
        "zh": "AWS.Polly.Zhiyu-Neural",
        "cmn": "AWS.Polly.Zhiyu-Neural",
        "es": "AWS.Polly.Lucia-Neural",
        "fr": "AWS.Polly.Lea-Neural",
        "de": "AWS.Polly.Vicki-Neural",
        "it": "AWS.Polly.Bianca-Neural",
        "ja": "AWS.Polly.Takumi-Neural",
        "ko": "AWS.Polly.Seoyeon-Neural",
        "pt": "AWS.Polly.Camila-Neural",
    }
)

# Speak and gather_using_speak `language` (the spec's enum), and the tag a bare language means.
_SPEAK_LANGUAGES: Final = frozenset(
    # The spec's enum, as it lists it.
    "arb cmn-CN cy-GB da-DK de-DE en-AU en-GB en-GB-WLS en-IN en-US es-ES es-MX es-US "  # noqa: SIM905
    "fr-CA fr-FR hi-IN is-IS it-IT ja-JP ko-KR nb-NO nl-NL pl-PL pt-BR pt-PT ro-RO ru-RU "
    "sv-SE tr-TR".split()
)
_SPEAK_DEFAULT_REGION: Final = MappingProxyType(
    {
        "ar": "arb",
        "zh": "cmn-CN",
        "cmn": "cmn-CN",
        "cy": "cy-GB",
        "da": "da-DK",
        "de": "de-DE",
        "en": "en-US",
        "es": "es-ES",
        "fr": "fr-FR",
        "hi": "hi-IN",
        "is": "is-IS",
        "it": "it-IT",
        "ja": "ja-JP",
        "ko": "ko-KR",
        "nb": "nb-NO",
        "no": "nb-NO",
        "nl": "nl-NL",
        "pl": "pl-PL",
        "pt": "pt-BR",
        "ro": "ro-RO",
        "ru": "ru-RU",
        "sv": "sv-SE",
        "tr": "tr-TR",
    }
)
# gather_using_ai `language` (GoogleTranscriptionLanguage in the spec): bare languages.
_AI_LANGUAGES: Final = frozenset(
    "af sq am ar hy az eu bn bs bg my ca yue zh hr cs da nl en et fil fi fr gl ka de el "  # noqa: SIM905
    "gu iw hi hu is id it ja jv kn kk km ko lo lv lt mk ms ml mr mn ne no fa pl pt pa ro "
    "ru rw sr si sk sl ss st es su sw sv ta te th tn tr ts uk ur uz ve vi xh zu".split()
)
_AI_ALIASES: Final = MappingProxyType({"he": "iw", "nb": "no", "cmn": "zh", "tl": "fil"})


@dataclass(frozen=True, slots=True)
class Settings:
    """Gateway configuration that shapes commands (the routes read it from TELNYX_* variables).

    Attributes:
        default_voice: The TTS voice when the prompt names none and `voices` has no entry.
        voices: BCP-47 language (or bare language) → voice, e.g. {"zh-CN": "AWS.Polly.Zhiyu"}.
        transfer_targets: Transfer targets → a Telnyx destination (E.164 number or SIP URI).
            Keys are `KIND:VALUE` (kind one of phone_number, skill_queue, skill_queue_name,
            agent_id, ivr_flow, sip_uri) or the bare VALUE.
        listen_timeout_ms: How long a gather waits for the first key when the decision does
            not say.
        record_format: `record_start` format: "mp3" or "wav".
        speech: Menus that invite speech also start transcription (billed by Telnyx).
        transcription_engine: `transcription_start` engine ("Google" or "Telnyx").
        assistant_id: The AI assistant HandToAssistant runs when the flow names none.
    """

    default_voice: str = DEFAULT_VOICE
    voices: Mapping[str, str] = field(default_factory=dict)
    transfer_targets: Mapping[str, str] = field(default_factory=dict)
    listen_timeout_ms: int = DEFAULT_LISTEN_TIMEOUT_MS
    record_format: str = "mp3"
    speech: bool = True
    transcription_engine: str = "Google"
    assistant_id: str = PLACEHOLDER_ASSISTANT_ID


def parse_transfer_targets(text: str) -> dict[str, str]:
    """TELNYX_TRANSFER_TARGETS: a JSON object, target → E.164 number or SIP URI.

    JSON because destinations may hold what a simple list would split on: SIP URI parameters
    (`;transport=tls`), DTMF after a comma (`+18005550101,200`), `=` in parameters.

    Raises:
        ValueError: not a JSON object of strings, or a destination Telnyx cannot dial.
    """
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"TELNYX_TRANSFER_TARGETS is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("TELNYX_TRANSFER_TARGETS must be a JSON object: target → destination")
    targets: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str) or not key.strip():
            raise ValueError(f"TELNYX_TRANSFER_TARGETS entry {key!r} must map to a string")
        if not is_destination(value.strip()):
            raise ValueError(
                f"TELNYX_TRANSFER_TARGETS entry {key!r}: {value!r} is neither an E.164 number "
                "nor a SIP URI"
            )
        targets[key.strip()] = value.strip()
    return targets


def parse_voices(text: str) -> dict[str, str]:
    """TELNYX_VOICES: `LANGUAGE=VOICE,…` (e.g. `zh-CN=AWS.Polly.Zhiyu,en=Telnyx.KokoroTTS.af`).

    Raises:
        ValueError: an entry is not LANGUAGE=VOICE.
    """
    voices: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        language, separator, voice = entry.partition("=")
        if not separator or not language.strip() or not voice.strip():
            raise ValueError(f"TELNYX_VOICES entry {entry!r} is not LANGUAGE=VOICE")
        voices[language.strip().lower()] = voice.strip()
    return voices


def speak_language(tag: str) -> str:
    """The `language` of speak / gather_using_speak for a BCP-47 tag; "" when Telnyx has none."""
    tag = tag.strip().replace("_", "-")
    if not tag:
        return ""
    for candidate in _SPEAK_LANGUAGES:
        if candidate.lower() == tag.lower():
            return candidate
    return _SPEAK_DEFAULT_REGION.get(tag.split("-")[0].lower(), "")


def ai_language(tag: str) -> str:
    """The `language` of gather_using_ai (a bare language) for a BCP-47 tag; "" when unknown."""
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    primary = _AI_ALIASES.get(primary, primary)
    return primary if primary in _AI_LANGUAGES else ""


def voice_for(language: str, settings: Settings) -> str:
    """The voice for a prompt's language: TELNYX_VOICES (tag, then bare language), a voice that
    speaks the language (`LANGUAGE_VOICES`), then TELNYX_VOICE."""
    tag = language.strip().replace("_", "-").lower()
    primary = tag.split("-")[0]
    return (
        settings.voices.get(tag)
        or settings.voices.get(primary)
        or LANGUAGE_VOICES.get(primary, "")
        or settings.default_voice
        or DEFAULT_VOICE
    )


def _voices_kind(text: str) -> dict[str, str]:
    return parse_voices(text)


def _targets_kind(text: str) -> dict[str, str]:
    return parse_transfer_targets(text)


VOICES: Kind[dict[str, str]] = Kind(_voices_kind, "LANGUAGE=VOICE,…")
TARGETS: Kind[dict[str, str]] = Kind(_targets_kind, "a JSON object: target → E.164 or SIP URI")

SETTINGS: Final[Mapping[str, Setting[Any]]] = MappingProxyType(
    {
        "public_key": Setting(
            "TELNYX_PUBLIC_KEY", TEXT, "", "The account's webhook signing key (base64, Ed25519)"
        ),
        "skip_signature": Setting(
            "TELNYX_SKIP_SIGNATURE",
            BOOLEAN,
            False,
            "Take unsigned webhooks (local development only; said loudly at start-up)",
        ),
        "api_key": Setting("TELNYX_API_KEY", TEXT, "", "The Call Control API key (required)"),
        "api_base": Setting("TELNYX_API_BASE", TEXT, DEFAULT_API_BASE, "The API's base URL"),
        "default_voice": Setting(
            "TELNYX_VOICE",
            TEXT,
            DEFAULT_VOICE,
            "The voice for English and for languages neither TELNYX_VOICES nor the built-in "
            "table names",
        ),
        "voices": Setting(
            "TELNYX_VOICES", VOICES, {}, "Voices per language, e.g. zh-CN=AWS.Polly.Zhiyu"
        ),
        "transfer_targets": Setting(
            "TELNYX_TRANSFER_TARGETS", TARGETS, {}, "Transfer targets → Telnyx destinations"
        ),
        "listen_timeout_ms": Setting(
            "TELNYX_LISTEN_TIMEOUT_MS",
            whole_number(1, "milliseconds"),
            DEFAULT_LISTEN_TIMEOUT_MS,
            "How long a gather waits for the first key when the decision does not say",
        ),
        "record_format": Setting(
            "TELNYX_RECORD_FORMAT", choice("mp3", "wav"), "mp3", "record_start format"
        ),
        "speech": Setting(
            "TELNYX_SPEECH",
            BOOLEAN,
            True,
            "Menus that invite speech start transcription (billed per minute by Telnyx)",
        ),
        "transcription_engine": Setting(
            "TELNYX_TRANSCRIPTION_ENGINE",
            choice("Google", "Telnyx"),
            "Google",
            "transcription_start engine for spoken menus",
        ),
        "assistant_id": Setting(
            "TELNYX_ASSISTANT_ID",
            TEXT,
            PLACEHOLDER_ASSISTANT_ID,
            "The AI assistant HandToAssistant runs when the flow names none",
        ),
        "command_attempts": Setting(
            "TELNYX_COMMAND_ATTEMPTS", whole_number(1), 4, "Most attempts per command"
        ),
        "command_timeout_ms": Setting(
            "TELNYX_COMMAND_TIMEOUT_MS",
            whole_number(1, "milliseconds"),
            2000,
            "How long one command attempt may take",
        ),
        "command_budget_ms": Setting(
            "TELNYX_COMMAND_BUDGET_MS",
            whole_number(1, "milliseconds"),
            10000,
            "The longest time for all attempts of one command",
        ),
        "ack_budget_ms": Setting(
            "TELNYX_ACK_BUDGET_MS",
            whole_number(1, "milliseconds"),
            2000,
            "How long a webhook waits for its commands before it is answered; set it a little "
            "below the app's webhook_timeout_secs (at most 30 s)",
        ),
    }
)
