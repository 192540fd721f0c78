"""The gateway's own note in `dynamic_id`: what the last answer left the call waiting for.

The platform echoes `dynamic_id` in the next callback ("在下次回调地址中带回"), so it is the one
place a stateless gateway (any replica) can remember, per call, what it already decided. The
flow's continuation token travels in front, the gateway's note after a `.` (outside the token
alphabet, allowed by the platform): `main_menu-3.h`, `.t13711111111`. Pure; no I/O.

Notes (`Pending.kind`):

| note        | the last answer …                                   | the next callback is answered …        |
|-------------|-----------------------------------------------------|----------------------------------------|
| `h`         | hung up (a goodbye may still be playing)            | `hangup`, whatever it says             |
| `tNUMBER`   | transferred to NUMBER (national or bare digits)     | `transfer` to NUMBER again             |
| `eNUMBER`   | transferred to +NUMBER (E.164)                      | `transfer` to +NUMBER again            |
| `p0` / `p1` | started a parallel transfer (unmonitored/monitored) | `parallel_transfer` again, or `parallel_bridge` on a success status |
| `m`         | answered callin, which cannot collect keys, before a key menu | a `mute` is the dialogue's real start (the menu is asked then) |
| `q`         | asked for queue figures the platform cannot give    | `queue_status_reported`, no figures    |
| `a`         | handed to a voice assistant the platform lacks      | `assistant_finished`                   |
| `lSECONDS`  | listens for the caller for SECONDS                  | `continue`/`break` keep that window    |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

NOTHING: Final = ""
HANG_UP: Final = "h"
TRANSFER: Final = "t"
TRANSFER_E164: Final = "e"
PARALLEL: Final = "p"
MENU_DEFERRED: Final = "m"
QUEUE_QUERY: Final = "q"
ASSISTANT: Final = "a"
LISTENING: Final = "l"

_SEPARATOR = "."
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NOTE = re.compile(
    r"(?P<kind>[hmqa])|(?P<dial>[te])(?P<number>\d{3,32})|p(?P<monitored>[01])|l(?P<seconds>\d{1,2})"
)


@dataclass(frozen=True, slots=True)
class Pending:
    """What the last answer of a call left pending.

    Attributes:
        kind: One of the note letters above; NOTHING when the answer settled nothing.
        number: The transfer target, digits with a leading `+` for E.164 (kinds t/e).
        monitored: Whether the parallel transfer is monitored (kind p).
        listen_s: How long the answer listens for the caller, in seconds (kind l).
    """

    kind: str = NOTHING
    number: str = ""
    monitored: bool = False
    listen_s: int = 0

    @property
    def decided(self) -> bool:
        """True for a hang-up or a transfer: later callbacks re-issue it."""
        return self.kind in (HANG_UP, TRANSFER, TRANSFER_E164, PARALLEL)

    def note(self) -> str:
        """The note's text (without the separator); "" for NOTHING."""
        if self.kind in (TRANSFER, TRANSFER_E164):
            return ("e" if self.number.startswith("+") else "t") + self.number.lstrip("+")
        if self.kind == PARALLEL:
            return "p1" if self.monitored else "p0"
        if self.kind == LISTENING:
            return f"l{max(0, min(self.listen_s, 99))}"
        return self.kind


def join_dynamic_id(token: str, pending: Pending) -> str:
    """The `dynamic_id` of an answer: the flow's token, then the gateway's note (if any)."""
    note = pending.note()
    return f"{token}{_SEPARATOR}{note}" if note else token


def split_dynamic_id(value: str) -> tuple[str, Pending]:
    """The flow's token ("" when absent or malformed) and the note of a callback's dynamic_id.

    Never raises: the value comes back from the network, so anything not well formed is
    dropped (a malformed note is NOTHING; a malformed token is "").
    """
    text = value.strip()
    token, separator, note = text.rpartition(_SEPARATOR)
    found = _NOTE.fullmatch(note) if separator else None
    if found is None:
        # No note of ours: the whole value is the token, or nothing (`42.5` is neither).
        return (text if _TOKEN.fullmatch(text) else ""), Pending()
    token = token if _TOKEN.fullmatch(token) else ""
    if found["kind"]:
        return token, Pending(found["kind"])
    if found["dial"]:
        prefix = "+" if found["dial"] == TRANSFER_E164 else ""
        return token, Pending(found["dial"], number=prefix + found["number"])
    if found["monitored"]:
        return token, Pending(PARALLEL, monitored=found["monitored"] == "1")
    return token, Pending(LISTENING, listen_s=int(found["seconds"]))
