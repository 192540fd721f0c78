"""Aliyun RPC signatures: the published vector, an independent reference, and `verify`."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from gateways.aliyun_ccc.inbound import (
    DialogueError,
)
from gateways.aliyun_ccc.signature import (
    canonical_query,
    percent_encode,
    sign,
    string_to_sign,
    verify,
)

# The worked example of Aliyun's RPC signature documentation (ECS DescribeRegions).
PUBLISHED_PARAMS = {
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "Format": "XML",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "SignatureVersion": "1.0",
    "Timestamp": "2016-02-23T12:46:24Z",
    "Version": "2014-05-26",
}
PUBLISHED_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML"
    "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
    "%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
)
PUBLISHED_SIGNATURE = "OLeaidS1JvxuMvnyHOwuJ+uX5qY="

KEY_ID = "testid"
SECRET = "testsecret"


def reference_signature(method: str, params: dict[str, str], secret: str) -> str:
    """Written from the rule text alone, byte by byte, sharing no code with the module."""
    unreserved = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"

    def encode(text: str) -> str:
        return "".join(
            chr(byte) if byte in unreserved else f"%{byte:02X}" for byte in text.encode("utf-8")
        )

    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    query = "&".join(encode(k) + "=" + encode(v) for k, v in pairs)
    text = method + "&" + encode("/") + "&" + encode(query)
    digest = hmac.new((secret + "&").encode("utf-8"), text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def signed(params: dict[str, str], method: str = "GET", secret: str = SECRET) -> dict[str, str]:
    return {**params, "Signature": reference_signature(method, params, secret)}


DIALOGUE = {
    "Action": "Dialogue",
    "AccessKeyId": KEY_ID,
    "CallId": "1528189846043",
    "InstanceId": "af81a389-91f0-4157-8d82-720edd02b66a",
    "Utterance": "是的,我想 查一下*话费~ 100% +1 a/b=c&d",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "f1e2d3c4",
    "SignatureVersion": "1.0",
    "Timestamp": "2026-03-14T08:30:00Z",
    "Format": "JSON",
}


# -- sign ---------------------------------------------------------------------------------------


def test_published_vector() -> None:
    assert string_to_sign("GET", PUBLISHED_PARAMS) == PUBLISHED_STRING_TO_SIGN
    assert sign("GET", PUBLISHED_PARAMS, SECRET) == PUBLISHED_SIGNATURE
    assert reference_signature("GET", PUBLISHED_PARAMS, SECRET) == PUBLISHED_SIGNATURE


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "params",
    [
        DIALOGUE,
        {"A": "", "B": " ", "C": "*", "D": "~", "E": "+", "F": "😀", "G": "é\n"},
        {"Utterance": "你好", "utterance": "lower-case names sort after upper-case ones"},
    ],
    ids=["dialogue", "specials", "case-of-names"],
)
def test_sign_matches_the_independent_reference(params: dict[str, str], method: str) -> None:
    assert sign(method, params, "s3cr3t/+=") == reference_signature(method, params, "s3cr3t/+=")


def test_percent_encoding_follows_rfc_3986() -> None:
    assert percent_encode("a b") == "a%20b"
    assert percent_encode("*") == "%2A"
    assert percent_encode("~-_.") == "~-_."
    assert percent_encode("+/=&:") == "%2B%2F%3D%26%3A"
    assert percent_encode("是") == "%E6%98%AF"


def test_signature_is_not_signed() -> None:
    assert canonical_query({**PUBLISHED_PARAMS, "Signature": "x"}) == canonical_query(
        PUBLISHED_PARAMS
    )
    assert sign("GET", {**PUBLISHED_PARAMS, "Signature": "x"}, SECRET) == PUBLISHED_SIGNATURE


def test_method_is_signed_in_upper_case() -> None:
    assert sign("get", PUBLISHED_PARAMS, SECRET) == PUBLISHED_SIGNATURE
    assert sign("POST", PUBLISHED_PARAMS, SECRET) != PUBLISHED_SIGNATURE


# -- verify -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_verify_accepts_a_correct_signature(method: str) -> None:
    verify(method, signed(DIALOGUE, method), KEY_ID, SECRET)


def test_verify_accepts_the_published_request() -> None:
    verify("GET", {**PUBLISHED_PARAMS, "Signature": PUBLISHED_SIGNATURE}, KEY_ID, SECRET)


def test_verify_accepts_absent_method_and_version() -> None:
    bare = {k: v for k, v in DIALOGUE.items() if k not in ("SignatureMethod", "SignatureVersion")}
    verify("GET", signed(bare), KEY_ID, SECRET)


def _error(method: str, params: dict[str, str], **kwargs: datetime) -> DialogueError:
    with pytest.raises(DialogueError) as caught:
        verify(method, params, KEY_ID, SECRET, **kwargs)
    return caught.value


def test_verify_rejects_a_tampered_parameter() -> None:
    tampered = {**signed(DIALOGUE), "Utterance": "不是"}
    error = _error("GET", tampered)
    assert (error.code, error.http_status) == ("SignatureDoesNotMatch", 400)


def test_verify_rejects_an_added_parameter() -> None:
    error = _error("GET", {**signed(DIALOGUE), "ScenarioId": "other"})
    assert error.code == "SignatureDoesNotMatch"


def test_verify_rejects_another_secret_and_another_method() -> None:
    assert _error("GET", signed(DIALOGUE, secret="other")).code == "SignatureDoesNotMatch"
    assert _error("GET", signed(DIALOGUE, "POST")).code == "SignatureDoesNotMatch"


def test_verify_rejects_an_unknown_access_key() -> None:
    error = _error("GET", signed({**DIALOGUE, "AccessKeyId": "someone"}))
    assert (error.code, error.http_status) == ("InvalidAccessKeyId.NotFound", 404)


@pytest.mark.parametrize("name", ["AccessKeyId", "Signature"])
def test_verify_requires_the_key_id_and_the_signature(name: str) -> None:
    params = {k: v for k, v in signed(DIALOGUE).items() if k != name}
    error = _error("GET", params)
    assert (error.code, error.http_status) == ("MissingParameter", 400)
    assert f'"{name}"' in error.message


@pytest.mark.parametrize(
    ("name", "value"), [("SignatureMethod", "HMAC-SHA256"), ("SignatureVersion", "2.0")]
)
def test_verify_rejects_other_algorithms(name: str, value: str) -> None:
    error = _error("GET", signed({**DIALOGUE, name: value}))
    assert (error.code, error.http_status) == ("InvalidParameter", 400)
    assert f'"{name}"' in error.message


# -- verify with the time -----------------------------------------------------------------------

STAMP = datetime(2026, 3, 14, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize("offset_minutes", [-15, -1, 0, 1, 15])
def test_verify_accepts_a_timestamp_within_15_minutes(offset_minutes: int) -> None:
    verify("GET", signed(DIALOGUE), KEY_ID, SECRET, now=STAMP + timedelta(minutes=offset_minutes))


@pytest.mark.parametrize("offset_seconds", [-15 * 60 - 1, 15 * 60 + 1, 86400])
def test_verify_rejects_an_expired_timestamp(offset_seconds: int) -> None:
    error = _error("GET", signed(DIALOGUE), now=STAMP + timedelta(seconds=offset_seconds))
    assert (error.code, error.http_status) == ("InvalidTimeStamp.Expired", 400)


def test_verify_takes_a_naive_time_as_utc() -> None:
    verify("GET", signed(DIALOGUE), KEY_ID, SECRET, now=STAMP.replace(tzinfo=None))


@pytest.mark.parametrize("stamp", ["2026-03-14 08:30:00", "1710405000", "yesterday"])
def test_verify_rejects_a_malformed_timestamp(stamp: str) -> None:
    error = _error("GET", signed({**DIALOGUE, "Timestamp": stamp}), now=STAMP)
    assert (error.code, error.http_status) == ("InvalidTimeStamp.Format", 400)


def test_verify_requires_a_timestamp_only_when_given_the_time() -> None:
    stampless = {k: v for k, v in DIALOGUE.items() if k != "Timestamp"}
    verify("GET", signed(stampless), KEY_ID, SECRET)
    error = _error("GET", signed(stampless), now=STAMP)
    assert (error.code, error.message.count('"Timestamp"')) == ("MissingParameter", 1)


def test_signature_is_checked_before_the_time() -> None:
    # A forged request learns nothing about the clock window.
    forged = {**DIALOGUE, "Timestamp": "2000-01-01T00:00:00Z", "Signature": "forged"}
    assert _error("GET", forged, now=STAMP).code == "SignatureDoesNotMatch"
