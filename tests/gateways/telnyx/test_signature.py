"""Telnyx webhook signatures: Ed25519 over "{timestamp}|{body}", 300 s either way."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateways.telnyx import signature
from gateways.telnyx.signature import SignatureError, load_public_key, sign, verify

# RFC 8032, test 1: a fixed key, so the signature below is a known answer.
RFC_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC_B64 = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
BODY = b'{"data":{}}'
STAMP = 1_700_000_000
KNOWN_SIGNATURE = (
    "NwqQ2k4IDqRtOi7bH1h+sj/JKnnjN0DyJk1BO02d/ubvBak3nIcpcAHpYdoZK1b0ES1ZKfH4N+wRAYDz31NyCA=="
)


def test_the_signed_bytes_are_timestamp_bar_body() -> None:
    key = Ed25519PrivateKey.from_private_bytes(RFC_SECRET)
    by_hand = base64.b64encode(key.sign(b"1700000000|" + BODY)).decode()
    assert by_hand == KNOWN_SIGNATURE
    assert sign(BODY, STAMP, key) == {
        "telnyx-signature-ed25519": KNOWN_SIGNATURE,
        "telnyx-timestamp": "1700000000",
    }
    verify(BODY, KNOWN_SIGNATURE, "1700000000", load_public_key(RFC_PUBLIC_B64), now=STAMP)


@pytest.mark.parametrize("skew", [-300, -1, 0, 1, 300])
def test_within_tolerance_is_accepted(skew: int) -> None:
    key = Ed25519PrivateKey.generate()
    headers = sign(BODY, STAMP, key)
    verify(
        BODY,
        headers[signature.SIGNATURE_HEADER],
        headers[signature.TIMESTAMP_HEADER],
        key.public_key(),
        now=STAMP + skew,
    )


@pytest.mark.parametrize(("skew", "word"), [(301, "old"), (-301, "ahead"), (10**6, "old")])
def test_stale_or_future_timestamps_are_refused(skew: int, word: str) -> None:
    key = Ed25519PrivateKey.generate()
    headers = sign(BODY, STAMP, key)
    with pytest.raises(SignatureError, match=word):
        verify(
            BODY,
            headers[signature.SIGNATURE_HEADER],
            headers[signature.TIMESTAMP_HEADER],
            key.public_key(),
            now=STAMP + skew,
        )


@pytest.mark.parametrize(
    ("body", "signature_of", "timestamp", "reason"),
    [
        (BODY, lambda good: None, "1700000000", "missing telnyx-signature-ed25519"),
        (BODY, lambda good: "  ", "1700000000", "missing telnyx-signature-ed25519"),
        (BODY, lambda good: good, None, "missing telnyx-timestamp"),
        (BODY, lambda good: good, "2023-11-14T22:13:20Z", "not Unix seconds"),
        (BODY, lambda good: good, "9" * 40, "not Unix seconds"),
        (BODY, lambda good: "not base64!", "1700000000", "not base64"),
        (BODY, lambda good: base64.b64encode(b"short").decode(), "1700000000", "not an Ed25519"),
        (BODY + b" ", lambda good: good, "1700000000", "does not match"),
        (BODY, lambda good: good, "1700000001", "does not match"),
        (BODY, lambda good: "A" * 86 + "==", "1700000000", "does not match"),
    ],
)
def test_missing_malformed_or_forged_signatures_are_refused(
    body: bytes, signature_of: object, timestamp: str | None, reason: str
) -> None:
    key = Ed25519PrivateKey.generate()
    good = sign(BODY, STAMP, key)[signature.SIGNATURE_HEADER]
    with pytest.raises(SignatureError, match=reason):
        verify(body, signature_of(good), timestamp, key.public_key(), now=STAMP)  # type: ignore[operator]


def test_a_signature_by_another_key_is_refused() -> None:
    ours, theirs = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    headers = sign(BODY, STAMP, theirs)
    with pytest.raises(SignatureError, match="does not match"):
        verify(
            BODY, headers[signature.SIGNATURE_HEADER], "1700000000", ours.public_key(), now=STAMP
        )


def test_a_forged_request_learns_nothing_about_the_clock() -> None:
    # The signature is checked before the age: a stale forgery reads "does not match".
    key = Ed25519PrivateKey.generate()
    with pytest.raises(SignatureError, match="does not match"):
        verify(BODY, "A" * 86 + "==", "1", key.public_key(), now=STAMP)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not base64!", "not base64"),
        (base64.b64encode(b"x" * 31).decode(), "31 bytes"),
        ("", "0 bytes"),
    ],
)
def test_bad_public_keys_are_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        load_public_key(text)
