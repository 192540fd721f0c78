"""Telnyx webhook signatures (Ed25519): verify, and sign for tests and tools.

Telnyx signs the bytes `"{telnyx-timestamp}|{raw body}"` with its account key and sends the
base64 signature in `telnyx-signature-ed25519` and the Unix time in `telnyx-timestamp`. The
account's public key is shown in the portal as base64 of the raw 32 bytes.

Pure: the caller passes the current time, so nothing here reads a clock. The official SDK has a
verifier too (`telnyx.lib.webhook_verification`), but it needs PyNaCl and reads the clock
itself; `cryptography` is already a dependency and keeps this testable.
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "TOLERANCE_S",
    "SignatureError",
    "load_public_key",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"
TOLERANCE_S = 300
"""Telnyx's (and its SDKs') replay window: a webhook older or newer than this is refused."""

# Unix seconds; bounded so int() never meets a hostile length.
_TIMESTAMP = re.compile(r"\d{1,12}")
_SIGNATURE_BYTES = 64
_KEY_BYTES = 32


class SignatureError(ValueError):
    """A webhook whose signature does not check out; `reason` says why (safe to log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def load_public_key(text: str) -> Ed25519PublicKey:
    """The public key from its base64 form (raw 32 bytes, as the Telnyx portal shows it).

    Raises:
        ValueError: not base64, or not 32 bytes.
    """
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the public key is not base64: {exc}") from exc
    if len(raw) != _KEY_BYTES:
        raise ValueError(f"the public key is {len(raw)} bytes; Ed25519 keys are {_KEY_BYTES}")
    return Ed25519PublicKey.from_public_bytes(raw)


def signed_bytes(timestamp: str, body: bytes) -> bytes:
    """What Telnyx signs: the timestamp header, a `|`, and the raw body."""
    return timestamp.encode("ascii") + b"|" + body


def sign(body: bytes, timestamp: int, private_key: Ed25519PrivateKey) -> dict[str, str]:
    """The two headers Telnyx would send with `body` at `timestamp` (for tests and tools)."""
    stamp = str(timestamp)
    signature = private_key.sign(signed_bytes(stamp, body))
    return {
        SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"),
        TIMESTAMP_HEADER: stamp,
    }


def verify(
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    public_key: Ed25519PublicKey,
    *,
    now: float,
    tolerance_s: int = TOLERANCE_S,
) -> None:
    """Checks one webhook: the signature over timestamp and body, then the timestamp's age.

    Args:
        body: The raw request body, exactly as received.
        signature: The `telnyx-signature-ed25519` header (base64), None when absent.
        timestamp: The `telnyx-timestamp` header (Unix seconds), None when absent.
        public_key: The account's public key.
        now: The current Unix time in seconds.
        tolerance_s: How far the timestamp may be from `now`, either way.

    Raises:
        SignatureError: a header is missing or malformed, the signature does not match, or the
            timestamp is outside the tolerance.
    """
    if not signature or not signature.strip():
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    if not timestamp or not timestamp.strip():
        raise SignatureError(f"missing {TIMESTAMP_HEADER} header")
    stamp = timestamp.strip()
    if not _TIMESTAMP.fullmatch(stamp):
        raise SignatureError(f"{TIMESTAMP_HEADER} is not Unix seconds")
    try:
        raw_signature = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{SIGNATURE_HEADER} is not base64") from None
    if len(raw_signature) != _SIGNATURE_BYTES:
        raise SignatureError(f"{SIGNATURE_HEADER} is not an Ed25519 signature")
    try:
        public_key.verify(raw_signature, signed_bytes(stamp, body))
    except InvalidSignature:
        raise SignatureError("signature does not match") from None
    # Checked after the signature, so the age of a forged request is never reported back.
    age = now - int(stamp)
    if abs(age) > tolerance_s:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} is {abs(age):.0f} s {'old' if age > 0 else 'ahead'}; "
            f"at most {tolerance_s} s allowed"
        )
