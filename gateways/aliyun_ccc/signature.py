"""Aliyun RPC request signatures (signature version 1.0, HMAC-SHA1): compute and verify.

Pure: the HTTP layer passes the method, the merged query and form parameters and the configured
AccessKey pair, and, to check the request's age, the current time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from gateways.aliyun_ccc.inbound import DialogueError, missing_parameter

__all__ = ["canonical_query", "percent_encode", "sign", "string_to_sign", "verify"]

_SIGNATURE = "Signature"
_SIGNATURE_METHOD = "HMAC-SHA1"
_SIGNATURE_VERSION = "1.0"
# Aliyun accepts a request up to 15 minutes away from its clock.
_MAX_SKEW = timedelta(minutes=15)
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


def percent_encode(text: str) -> str:
    """RFC 3986 encoding of the UTF-8 bytes: only A-Z a-z 0-9 - _ . ~ stay as they are.

    So a space is %20 (never +), `*` is %2A and `~` is kept, as the signature rules require.
    """
    return quote(text, safe="-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    """Every parameter but `Signature`, sorted by name, each name and value percent-encoded."""
    return "&".join(
        f"{percent_encode(name)}={percent_encode(value)}"
        for name, value in sorted(params.items())
        if name != _SIGNATURE
    )


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """`METHOD&%2F&` + the percent-encoded canonical query (encoded a second time)."""
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def sign(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """The base64 HMAC-SHA1 signature of a request, keyed with the secret plus `&`."""
    digest = hmac.new(
        (access_key_secret + "&").encode("utf-8"),
        string_to_sign(method, params).encode("utf-8"),
        hashlib.sha1,
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(
    method: str,
    params: Mapping[str, str],
    access_key_id: str,
    access_key_secret: str,
    *,
    now: datetime | None = None,
) -> None:
    """Checks a request against the configured AccessKey pair, answering as Aliyun does.

    Args:
        method: The HTTP method the request came with (GET or POST); it is signed.
        params: The query merged with the form body, `Signature` included.
        access_key_id: The configured AccessKeyId.
        access_key_secret: The configured AccessKeySecret.
        now: The current time (timezone-aware) to check `Timestamp` against, within 15 minutes;
            None skips the check, keeping this function free of clock reads.

    Raises:
        DialogueError: `MissingParameter` (AccessKeyId, Signature, or Timestamp when `now` is
            given), `InvalidAccessKeyId.NotFound` (404) for another AccessKeyId,
            `InvalidParameter` for a SignatureMethod or SignatureVersion other than HMAC-SHA1 /
            1.0, `SignatureDoesNotMatch`, `InvalidTimeStamp.Format` or
            `InvalidTimeStamp.Expired` (400).
    """
    given_id = params.get("AccessKeyId", "")
    if not given_id:
        raise missing_parameter("AccessKeyId")
    if not hmac.compare_digest(given_id.encode("utf-8"), access_key_id.encode("utf-8")):
        raise DialogueError(
            "InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404
        )
    given_signature = params.get(_SIGNATURE, "")
    if not given_signature:
        raise missing_parameter(_SIGNATURE)
    for name, expected in (
        ("SignatureMethod", _SIGNATURE_METHOD),
        ("SignatureVersion", _SIGNATURE_VERSION),
    ):
        # Absent is accepted: there is only one algorithm, and it is what we check.
        value = params.get(name, expected)
        if value != expected:
            raise DialogueError(
                "InvalidParameter",
                f'The specified parameter "{name}" is not valid: only {expected} is supported.',
                400,
            )
    expected_signature = sign(method, params, access_key_secret)
    if not hmac.compare_digest(given_signature.encode("utf-8"), expected_signature.encode("ascii")):
        raise DialogueError(
            "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.", 400
        )
    if now is not None:
        _check_timestamp(params.get("Timestamp", ""), now)


def _check_timestamp(value: str, now: datetime) -> None:
    if not value:
        raise missing_parameter("Timestamp")
    try:
        # ISO 8601 in UTC, e.g. 2016-02-23T12:46:24Z (%z takes the Z).
        stamp = datetime.strptime(value, _TIMESTAMP_FORMAT)
    except ValueError:
        raise DialogueError(
            "InvalidTimeStamp.Format",
            f'Specified time stamp or date value is not well formatted: "Timestamp" is '
            f'"{value[:64]}", expected yyyy-MM-ddTHH:mm:ssZ.',
            400,
        ) from None
    if now.tzinfo is None:
        # A naive time is taken as UTC, the zone Aliyun timestamps are written in.
        now = now.replace(tzinfo=UTC)
    if abs(now - stamp) > _MAX_SKEW:
        raise DialogueError(
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired: Timestamp must be within 15 minutes "
            "of the server's time.",
            400,
        )
