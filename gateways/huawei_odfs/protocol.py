"""What the Huawei CEC ODFS dialog interfaces are made of: codes, a parsed request, limits.

The IVR POSTs `{userid, inaction, seat, inparams, extparams}` to the ODFS after every step of a
call (8: the call starts, 9: an interaction ended, 11: a transfer ended, 12: a query answered)
and executes the one `outaction` of the answer `{ret, userid, outaction, outparams}` (9:
interact, 10: hang up, 11: transfer, 12: query). This gateway stands in for the ODFS.

Pure: shared by `inbound` (request → DecideNextActionRequest) and `outbound` (decision →
answer); no web framework, network, clock or mutable state. The mapping, field by field, is
documented in `docs/gateways/huawei-odfs.md`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from common.jsontext import json_text
from dialogue.v1 import dialogue_pb2 as pb
from gateways.payloads import CallbackError
from gateways.payloads import json_problem as _payload_problem

INACTION_START: Final = 8
INACTION_INTERACTED: Final = 9
INACTION_TRANSFERRED: Final = 11
INACTION_QUERIED: Final = 12
"""The document does not say which inaction follows an outaction=12; 12 is read as its answer."""
INACTIONS: Final = (INACTION_START, INACTION_INTERACTED, INACTION_TRANSFERRED, INACTION_QUERIED)
"""Every `inaction` this gateway serves (7 and 13 exist only with packet-capture recording)."""
OUTACTION_INTERACT: Final = 9
OUTACTION_HANG_UP: Final = 10
OUTACTION_TRANSFER: Final = 11
OUTACTION_QUERY: Final = 12
OUTACTIONS: Final = (OUTACTION_INTERACT, OUTACTION_HANG_UP, OUTACTION_TRANSFER, OUTACTION_QUERY)
"""Every `outaction` this gateway answers."""

QUERY_CURRENT_QUEUE: Final = "1"
QUERY_SKILL_QUEUE: Final = "2"
QUERY_AGENT: Final = "3"
"""outaction=12 `prompt_type`s: the queue the call waits in, a skill queue by id, an agent's."""

MODEL_TYPE_HEADS: Final = ("100", "101", "110", "120", "122", "111", "102")
"""The only `model_type` heads (play, recognition, keys) the document lists; all play."""

TIME_FIELDS: Final = ("begin_play", "end_play", "result_time", "begin_trans", "end_trans")
"""Times the IVR may report; with `inter_idx` they tell two real interactions apart."""

QUEUE_FIGURES: Final = ("queueIndex", "agentCount", "idleAgentCount", "estimateTime")
"""The queue figures of the document's inaction=9 example (extparams; read from inparams too)."""
RET_OK: Final = 0
RET_BAD_REQUEST: Final = -1
RET_NO_TOKEN: Final = 900001
"""No token information exists or the token has expired (Huawei's common error code)."""
RET_BAD_TOKEN: Final = 900002
"""The token check failed (Huawei's common error code)."""
FLOW_RESULT_TYPES: Final = ("1", "2", "3", "4", "5", "-1")
"""1 speech/text, 2 keys, 3 no input (play only), 4 recording ended, 5 virtual human, -1 others."""
INPUT_WORDS: Final = ("playover", "timeout", "nomatch", "sys_err", "hangup", "recordend")
"""The `input` values that are signals rather than caller input (matched case-insensitively)."""
PROMPT_PATH: Final = "0"
PROMPT_FILE: Final = "1"
PROMPT_TTS: Final = "2"
PROMPT_RECORD: Final = "4"
PLAY_ONLY: Final = "1000000"
"""`model_type` of an interaction that only plays: no recognition, no keys."""
TRANS_QUEUE_ACCESS_CODE: Final = "1"
TRANS_IVR: Final = "2"
TRANS_QUEUE_NAME: Final = "3"
TRANS_AGENT: Final = "4"
TRANS_NUMBER: Final = "5"
TIMEOUT_MIN_S: Final = 1
TIMEOUT_MAX_S: Final = 600
MAX_KEYS_MIN: Final = 1
MAX_KEYS_MAX: Final = 99

# inparams that describe the call rather than the event: handed to the flow as call parameters
# ({params.NAME}) whenever the IVR sends them; call_sor_id comes back from the server this way
# when a later request (which lacks it) needs it for an outaction=11.
CALL_PARAMETERS: Final = (
    "call_sor_id",
    "call_dst_id",
    "real_callee",
    "cti_callid",
    "suilu_region_id",
    "entrance_id",
    "mediaType",
    "call_media_type",
    "channelType",
)

# outparams of outaction=10 (Table 6, "special fields in the voice navigation scenario") that
# carry call data: sent from the final response's call_data.parameters of the same name.
HANG_UP_CALL_DATA: Final = (
    "region_id",
    "entrance_id",
    "exit_id",
    "user_type_id",
    "suilu_region_id",
)

# Limits of the dialogue.v1 contract (server/validation.py): longer values are clipped so that
# a well-formed request never becomes an INVALID_ARGUMENT one.
MAX_ID = 128
MAX_NUMBER = 64
MAX_TEXT = 4096
MAX_PARAMETER_VALUE = 1024
MAX_DIGITS = 64
MAX_REASON = 1024

# Deeper than any request is; shallow enough that the recursive code after the check
# (json.dumps of nested values) stays far from Python's recursion limit.
MAX_DEPTH = 32

# Bounded so that int() never meets Python's digit limit on hostile input.
INTEGER_TEXT = re.compile(r"[+-]?\d{1,18}")
UNSAFE_FILE_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]")

# The doc writes "–1" (an en dash) for "others"; read typographic minuses as '-'.
DASHES: Final = str.maketrans({"–": "-", "—": "-", "−": "-"})


class RequestError(CallbackError):
    """A request the gateway cannot serve; answer it with `render_error(reason, userid)` (400).

    The gateways' CallbackError, carrying the userid Huawei's error envelope echoes.

    Attributes:
        reason: Human-readable, names the offending field.
        userid: The request's userid when it could be read, else "".
    """

    def __init__(self, reason: str, userid: str = "") -> None:
        super().__init__(reason)
        self.userid = userid


@dataclass(frozen=True, slots=True)
class OdfsRequest:
    """One parsed request of the IVR.

    Attributes:
        userid: The call id (= inparams.call_id).
        inaction: 8, 9 or 11 (another number only with `input=hangup`).
        inparams: Every inparam as text, keys stripped of spaces.
        extparams: Every extparam as text (`transin_data`, `release_reason`, …).
        seat: The agent type, as sent (`vir` by default); informational.
        vdn_id: The VDN of a V2 request path (`/oifde/rest/v2/crs/process/{vdnId}`), else "".
        auth_token: The token offered (inparams `auth_token`, or `authToken`), else "".
    """

    userid: str
    inaction: int
    inparams: Mapping[str, str]
    extparams: Mapping[str, str] = field(default_factory=dict)
    seat: str = ""
    vdn_id: str = ""
    auth_token: str = ""

    @property
    def input(self) -> str:
        """`inparams.input`, stripped."""
        return self.inparams.get("input", "").strip()

    @property
    def input_word(self) -> str:
        """The signal `input` carries (one of INPUT_WORDS, lower case), or "" for caller input."""
        word = self.input.lower()
        return word if word in INPUT_WORDS else ""

    @property
    def flow_result_type(self) -> str:
        """`inparams.flow_result_type`, stripped, with the doc's typographic minus read as '-'."""
        return self.inparams.get("flow_result_type", "").strip().translate(DASHES)

    @property
    def is_hangup(self) -> bool:
        """True for the end-of-call request (9 or 11 with `input=hangup`), always answered 10."""
        return self.inaction != INACTION_START and self.input_word == "hangup"


@dataclass(frozen=True, slots=True)
class SpeechReference:
    """A recognition result stored in Redis, as reported in `input` (`key@inter_no`).

    Attributes:
        key: The Redis key (the part before '@').
        inter_no: The recognition number (the part after '@').
        raw: `input` as sent.
    """

    key: str
    inter_no: str
    raw: str


@dataclass(frozen=True, slots=True)
class Transcript:
    """What the HTTP layer found for a SpeechReference.

    Attributes:
        text: The transcript; None when there is none (missing key, Redis unavailable).
        problem: Why there is none; goes into NoMatch.reason.
    """

    text: str | None = None
    problem: str = ""


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the HTTP layer knows beyond this request, for the answer (the mapping reads no clock).

    Attributes:
        start_time: When the dialogue started (outaction=10 `start_time`).
        end_time: When it ended (outaction=10 `end_time`).
        call_sor_id: The caller as reported on the call's first request, when a later request
            lacks it.
        call_dst_id: The access code as first reported, when a later request lacks it.
        pending: What an earlier answer promised and this request gets (see Pending).
    """

    start_time: str = ""
    end_time: str = ""
    call_sor_id: str = ""
    call_dst_id: str = ""
    pending: Pending | None = None


@dataclass(frozen=True, slots=True)
class Pending:
    """What an earlier answer of this call promised the IVR, kept by the HTTP layer.

    An announcement before a transfer or hang-up, a recording's instruction, a queue query and
    the stand-in for a voice assistant each leave the next step decided: the request after
    them (whatever it reports: playover, sys_err, nomatch, speech) gets what was promised.

    Attributes:
        kind: PENDING_FINAL (the transfer or hang-up after its announcement), PENDING_RECORD
            (the recording after its instruction), PENDING_QUERY (the next request answers an
            outaction=12), PENDING_ASSISTANT (the next request ends the assistant stand-in).
        origin: The request id whose answer made the promise (its retries get that answer).
        response: The decision to render when the promise is kept (final, record).
        failed: The hang-up that follows is a failure (release_reason 1).
    """

    kind: str
    origin: str
    response: pb.DecideNextActionResponse = field(default_factory=pb.DecideNextActionResponse)
    failed: bool = False

    def applies_to(self, request_id: str) -> bool:
        """True when the request with this id gets the promise kept (not a retry of the origin)."""
        return request_id != self.origin


PENDING_FINAL: Final = "final"
PENDING_RECORD: Final = "record"
PENDING_QUERY: Final = "query"
PENDING_ASSISTANT: Final = "assistant"


def integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 1e18 else None
    text = json_text(value).strip()
    return int(text) if INTEGER_TEXT.fullmatch(text) else None


def echoed_index(request: OdfsRequest) -> str:
    """The inter_idx the IVR echoed (the one of the answer that asked for this interaction)."""
    echoed = integer(request.inparams.get("inter_idx", ""))
    return str(echoed) if echoed is not None and echoed >= 0 else "1"


def next_index(request: OdfsRequest) -> str:
    """inter_idx of the answer: the echoed one plus one, or 1 when none was echoed."""
    echoed = integer(request.inparams.get("inter_idx", ""))
    return str(echoed + 1) if echoed is not None and 0 <= echoed < 10**17 else "1"


def record_path(userid: str, inter_idx: str, record_dir: str) -> str:
    """Where the IVR records for an answer with this `inter_idx`: `{record_dir}/{userid}_{idx}.wav`.

    The recordend request echoes the same inter_idx, so the path is found again without state.
    """
    directory = record_dir.rstrip("/\\")
    name = f"{UNSAFE_FILE_CHARACTERS.sub('_', userid)}_{inter_idx}.wav"
    # A Windows-style directory (`D:\rec`, backslashes only) keeps its own separator.
    separator = "\\" if "\\" in directory and "/" not in directory else "/"
    return f"{directory}{separator}{name}" if directory else name


def seconds(milliseconds: int) -> int:
    """Whole seconds, rounded up (a 2500 ms wait must not become 2 s)."""
    return max(0, math.ceil(milliseconds / 1000))


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def json_problem(value: Any) -> str:
    """Why a parsed value cannot be mapped, or "" (see `gateways.payloads.json_problem`)."""
    return _payload_problem(value, MAX_DEPTH)
