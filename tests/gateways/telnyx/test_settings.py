"""The Telnyx settings: readers of their text, the language tables, the declarations."""

from __future__ import annotations

import json

import pytest

from gateways.telnyx import settings
from tests.gateways.telnyx import spec


def test_transfer_targets_parse_from_json() -> None:
    text = json.dumps(
        {"skill_queue:18005550101": "+18005550101", "agent-42": "sip:a@pbx.example.com;x=y"}
    )
    assert settings.parse_transfer_targets(text) == json.loads(text)
    assert settings.parse_transfer_targets("  ") == {}
    for bad in ("not json", "[]", '{"q": 5}', '{"q": "call me"}', '{" ": "+18005550101"}'):
        with pytest.raises(ValueError, match="TELNYX_TRANSFER_TARGETS"):
            settings.parse_transfer_targets(bad)


def test_voices_parse() -> None:
    assert settings.parse_voices(
        "zh-CN=AWS.Polly.Zhiyu, en = Azure.en-US-Ava:DragonHDLatestNeural"
    ) == {
        "zh-cn": "AWS.Polly.Zhiyu",
        "en": "Azure.en-US-Ava:DragonHDLatestNeural",
    }
    with pytest.raises(ValueError, match="LANGUAGE=VOICE"):
        settings.parse_voices("zh-CN")


def test_languages_are_always_ones_telnyx_lists() -> None:
    speak_enum = set(
        spec.load_spec()["components"]["schemas"]["SpeakRequest"]["properties"]["language"]["enum"]
    )
    ai_enum = set(spec.load_spec()["components"]["schemas"]["GoogleTranscriptionLanguage"]["enum"])
    tags = ["en", "en-US", "EN-gb", "zh", "zh-CN", "zh_TW", "cmn-Hans-CN", "ar-EG", "he-IL"]
    tags += ["pt", "nb-NO", "no", "sw-KE", "", "x", "es-419", "yue-HK", "fil-PH"]
    for tag in tags:
        assert settings.speak_language(tag) in speak_enum | {""}, tag
        assert settings.ai_language(tag) in ai_enum | {""}, tag
    assert settings.speak_language("zh-CN") == "cmn-CN"
    assert settings.speak_language("en-gb") == "en-GB"
    assert settings.ai_language("he-IL") == "iw"
    assert settings.ai_language("cmn-Hans-CN") == "zh"


def test_the_docs_list_every_setting_with_its_default() -> None:
    doc = (spec.SUBSET_PATH.parents[3] / "docs" / "gateways" / "telnyx.md").read_text("utf-8")
    for declared in settings.SETTINGS.values():
        default = declared.default if declared.default not in ("", None, {}) else "none"
        if isinstance(default, bool):
            default = "true" if default else "false"
        assert f"| `{declared.env}` | `{default}` |" in doc, declared.env


def test_a_bad_value_names_its_own_variable() -> None:
    for env, bad in (("TELNYX_SPEECH", "maybe"), ("TELNYX_LISTEN_TIMEOUT_MS", "ten")):
        with pytest.raises(ValueError, match=env):
            settings.SETTINGS[next(k for k, s in settings.SETTINGS.items() if s.env == env)].read(
                {env: bad}
            )


def test_a_voice_that_speaks_the_language_is_chosen() -> None:
    config = settings.Settings()
    assert settings.voice_for("zh-CN", config) == "AWS.Polly.Zhiyu-Neural"
    assert settings.voice_for("en-US", config) == settings.DEFAULT_VOICE
    assert settings.voice_for("sv-SE", config) == settings.DEFAULT_VOICE
    assert settings.voice_for("zh", settings.Settings(voices={"zh": "Azure.zh-CN-X"})) == (
        "Azure.zh-CN-X"
    )
    joanna = settings.Settings(default_voice="AWS.Polly.Joanna")
    assert settings.voice_for("en-GB", joanna) == "AWS.Polly.Joanna"
    assert settings.voice_for("zh-CN", joanna) == "AWS.Polly.Zhiyu-Neural"
