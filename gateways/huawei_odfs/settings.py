"""The Huawei ODFS gateway's settings: each declared once (env, kind, default, help).

Pure: `settings_from_env` reads a mapping handed in. `SETTINGS` (the answer settings) and
`ACCESS_SETTINGS` (tokens, Redis) are every HUAWEI_* variable; the docs' settings table is
checked against them (tests/gateways/huawei_odfs/test_settings.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from common.settings import BOOLEAN, ITEMS, TEXT, Setting, choice, whole_number
from gateways.huawei_odfs.protocol import INACTION_TRANSFERRED, OdfsRequest

TRANS_DATA_MODES: Final = ("auto", "passthrough", "json")
ASR_TIMEOUT_UNITS: Final = ("none", "s", "ms")
"""`none` (the default) leaves the asr*Timeout fields out; see Settings.asr_timeout_unit."""
ESTIMATE_TIME_UNITS: Final = ("s", "min", "ms")
_MS_PER_UNIT: Final = {"s": 1000, "min": 60_000, "ms": 1}


@dataclass(frozen=True, slots=True)
class Settings:
    """Gateway configuration that shapes requests and answers (declared in `SETTINGS`).

    Attributes:
        string_codes: Emit `ret` and `outaction` as strings ("0", "9") instead of numbers.
        transfer_success: The `trans_result` values that mean success (Huawei: "0").
        default_timeout_s: `timeout` when the decision gives none (listens without a wait).
        record_dir: Where the IVR writes recordings (prompt_type 4 `prompt_wav`, a UAP path).
        record_transfers: Ask for a conference recording (`record_path`) of number transfers.
        trans_data: "auto" (the flow's associated data as JSON, the IVR's transin_data inside;
            the passthrough alone when the flow has none), "passthrough" or "json".
        asr_timeout_unit: Unit of asrNoInputTimeout etc.: "none" (not sent: the UAP's own
            defaults apply and `timeout`, in seconds, bounds the wait), "s" or "ms".
        grammar: `grammar` of every recognition (an ASR grammar file on the UAP); may be "".
        tts_group_id: `ttsGroupId` of TTS prompts; omitted when "".
        tts_mrcp_vendor: `ttsMRCPVendor` of TTS prompts; omitted when "".
        asr_mrcp_id: `asrMRCPId` of recognitions; omitted when "".
        filler_prompt: The voice file played where a decision plays nothing (a short silence
            or hold tone on the UAP): prompt_type 1, or 0 when it is a full path.
        retry_window_ms: Without `inter_idx` or times in a request, a request identical to the
            call's previous one counts as its network retry only within this window.
        query_skill_field: The outaction=12 field carrying the skill queue id (prompt_type 2).
        query_agent_field: The outaction=12 field carrying the agent id (prompt_type 3).
        query_module_name: outaction=12 `moduleName`.
        estimate_time_unit: Unit of the IVR's `estimateTime`: "s", "min" or "ms".
    """

    string_codes: bool = False
    transfer_success: frozenset[str] = frozenset({"0"})
    default_timeout_s: int = 5
    record_dir: str = "Y:/record"
    record_transfers: bool = False
    trans_data: str = "auto"
    asr_timeout_unit: str = "none"
    grammar: str = ""
    tts_group_id: str = ""
    tts_mrcp_vendor: str = ""
    asr_mrcp_id: str = ""
    filler_prompt: str = "silence.wav"
    retry_window_ms: int = 2000
    query_skill_field: str = "skillId"
    query_agent_field: str = "agentId"
    query_module_name: str = "QueryQueue"
    estimate_time_unit: str = "s"

    def estimate_ms(self, value: int) -> int:
        """`estimateTime` in milliseconds."""
        return value * _MS_PER_UNIT[self.estimate_time_unit]


SETTINGS: Final[Mapping[str, Setting[Any]]] = {
    "string_codes": Setting(
        "HUAWEI_ODFS_STRING_CODES", BOOLEAN, False,
        "emit ret and outaction as strings (\"0\", \"9\"), like Huawei's own examples",
    ),
    "transfer_success": Setting(
        "HUAWEI_ODFS_TRANS_RESULT_SUCCESS", ITEMS, ("0",),
        "comma-separated trans_result values meaning success (Huawei: 0; some deployments 1)",
    ),
    "default_timeout_s": Setting(
        "HUAWEI_ODFS_DEFAULT_TIMEOUT_S", whole_number(1, "seconds"), 5,
        "timeout of a listen when the decision gives none",
    ),
    "record_dir": Setting(
        "HUAWEI_ODFS_RECORD_DIR", TEXT, "Y:/record",
        "where the IVR writes recordings (a path the UAP can write)",
    ),
    "record_transfers": Setting(
        "HUAWEI_ODFS_RECORD_TRANSFERS", BOOLEAN, False,
        "ask for a conference recording (record_path) of transfers to numbers",
    ),
    "trans_data": Setting(
        "HUAWEI_ODFS_TRANS_DATA", choice(*TRANS_DATA_MODES), "auto",
        "trans_data: auto, passthrough or json (see Transfer)",
    ),
    "asr_timeout_unit": Setting(
        "HUAWEI_ODFS_ASR_TIMEOUT_UNIT", choice(*ASR_TIMEOUT_UNITS), "none",
        "unit of asrNoInputTimeout etc.: none (not sent), s or ms (see Degradations)",
    ),
    "grammar": Setting(
        "HUAWEI_ODFS_GRAMMAR", TEXT, "", "grammar of every recognition (ASR grammar on the UAP)"
    ),
    "tts_group_id": Setting("HUAWEI_ODFS_TTS_GROUP_ID", TEXT, "", "ttsGroupId of TTS prompts"),
    "tts_mrcp_vendor": Setting(
        "HUAWEI_ODFS_TTS_MRCP_VENDOR", TEXT, "", "ttsMRCPVendor of TTS prompts (≤ 40 characters)"
    ),
    "asr_mrcp_id": Setting("HUAWEI_ODFS_ASR_MRCP_ID", TEXT, "", "asrMRCPId of recognitions"),
    "filler_prompt": Setting(
        "HUAWEI_ODFS_FILLER_PROMPT", TEXT, "silence.wav",
        "voice file played where a decision plays nothing (a short silence or hold tone)",
    ),
    "retry_window_ms": Setting(
        "HUAWEI_ODFS_RETRY_WINDOW_MS", whole_number(0, "milliseconds"), 2000,
        "without inter_idx or times, how long a repeated request still counts as a retry",
    ),
    "query_skill_field": Setting(
        "HUAWEI_ODFS_QUERY_SKILL_FIELD", TEXT, "skillId",
        "outaction=12 field carrying the skill queue id",
    ),
    "query_agent_field": Setting(
        "HUAWEI_ODFS_QUERY_AGENT_FIELD", TEXT, "agentId",
        "outaction=12 field carrying the agent id",
    ),
    "query_module_name": Setting(
        "HUAWEI_ODFS_QUERY_MODULE_NAME", TEXT, "QueryQueue", "outaction=12 moduleName"
    ),
    "estimate_time_unit": Setting(
        "HUAWEI_ODFS_ESTIMATE_TIME_UNIT", choice(*ESTIMATE_TIME_UNITS), "s",
        "unit of the IVR's estimateTime: s, min or ms",
    ),
}  # fmt: skip
"""Every answer setting, by Settings field."""

ACCESS_SETTINGS: Final[Mapping[str, Setting[Any]]] = {
    "app_key": Setting(
        "HUAWEI_ODFS_APP_KEY", TEXT, "", "gettoken appKey (with the secret: checking on)"
    ),
    "app_secret": Setting("HUAWEI_ODFS_APP_SECRET", TEXT, "", "gettoken appSecret"),
    "auth_tokens": Setting(
        "HUAWEI_ODFS_AUTH_TOKENS", ITEMS, (), "static tokens, always accepted (checking on)"
    ),
    "token_ttl_s": Setting(
        "HUAWEI_ODFS_TOKEN_TTL_S", whole_number(1, "seconds"), 3600,
        "lifetime of an issued token (expireTime)",
    ),
    "redis_url": Setting(
        "HUAWEI_ASR_REDIS_URL", TEXT, "", "Redis holding speech transcripts (redis://host:port/db)"
    ),
    "redis_timeout_ms": Setting(
        "HUAWEI_ASR_REDIS_TIMEOUT_MS", whole_number(1, "milliseconds"), 200,
        "longest a transcript lookup may take, connecting included",
    ),
}  # fmt: skip
"""Token and transcript-store settings, read by routes.py."""


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Answer settings from HUAWEI_ODFS_* variables.

    Raises:
        ValueError: a variable does not parse (the message names it).
    """
    values = {name: setting.read(env) for name, setting in SETTINGS.items()}
    success = frozenset(values["transfer_success"])
    if not success:
        raise ValueError("HUAWEI_ODFS_TRANS_RESULT_SUCCESS must name at least one value")
    values["transfer_success"] = success
    return Settings(**values)


def transfer_succeeded(request: OdfsRequest, settings: Settings) -> bool:
    """True for a transfer report whose trans_result means success."""
    if request.inaction != INACTION_TRANSFERRED:
        return False
    return request.inparams.get("trans_result", "").strip() in settings.transfer_success - {""}
