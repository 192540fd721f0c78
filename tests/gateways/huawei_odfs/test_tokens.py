"""The token issuer/checker, on an injected clock (no waiting, no timed assertions)."""

from __future__ import annotations

import pytest

from gateways.huawei_odfs import tokens
from gateways.huawei_odfs.protocol import RET_BAD_TOKEN, RET_NO_TOKEN
from gateways.huawei_odfs.tokens import AuthFailure, CredentialsError, TokenIssuer


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _issuer(clock: Clock, **kwargs: object) -> TokenIssuer:
    settings: dict[str, object] = {"app_key": "tenant-1", "app_secret": "s3cret", **kwargs}
    return TokenIssuer(clock=clock, **settings)  # type: ignore[arg-type]


def test_an_issued_token_is_valid_for_its_lifetime_then_expired() -> None:
    clock = Clock()
    issuer = _issuer(clock, ttl_s=60)
    token = issuer.issue("tenant-1", "s3cret")
    assert issuer.check(token) is None
    clock.now += 59.999
    assert issuer.check(token) is None
    clock.now += 0.001
    assert issuer.check(token) == AuthFailure(RET_NO_TOKEN, "auth_token has expired")


def test_tokens_are_unique_and_independent() -> None:
    clock = Clock()
    issuer = _issuer(clock, ttl_s=60)
    first = issuer.issue("tenant-1", "s3cret")
    clock.now += 30
    second = issuer.issue("tenant-1", "s3cret")
    assert first != second
    clock.now += 30
    assert issuer.check(first) is not None
    assert issuer.check(second) is None


def test_missing_and_unknown_tokens() -> None:
    issuer = _issuer(Clock())
    assert issuer.check("") == AuthFailure(RET_NO_TOKEN, "auth_token is missing")
    assert issuer.check("forged") == AuthFailure(RET_BAD_TOKEN, "auth_token is not valid")


@pytest.mark.parametrize(
    ("key", "secret"),
    [("tenant-1", "wrong"), ("tenant-2", "s3cret"), ("", ""), (None, "s3cret"), ("tenant-1", 5)],
)
def test_wrong_credentials_issue_nothing(key: object, secret: object) -> None:
    with pytest.raises(CredentialsError):
        _issuer(Clock()).issue(key, secret)


def test_issuing_needs_both_credentials() -> None:
    with pytest.raises(ValueError, match="HUAWEI_ODFS_APP_SECRET"):
        TokenIssuer(app_key="tenant-1", clock=Clock())
    with pytest.raises(ValueError, match="positive"):
        _issuer(Clock(), ttl_s=0)
    static_only = TokenIssuer(static_tokens=["a"], clock=Clock())
    assert (static_only.issuing, static_only.checking) == (False, True)
    with pytest.raises(CredentialsError, match="not configured"):
        static_only.issue("tenant-1", "s3cret")
    nothing = TokenIssuer(static_tokens=["", ""], clock=Clock())
    assert (nothing.issuing, nothing.checking) == (False, False)


def test_static_tokens_never_expire_and_live_beside_issued_ones() -> None:
    clock = Clock()
    issuer = _issuer(clock, static_tokens=["ivr-a", "ivr-b"], ttl_s=60)
    token = issuer.issue("tenant-1", "s3cret")
    clock.now += 10**9
    assert issuer.check("ivr-a") is None
    assert issuer.check("ivr-b") is None
    assert issuer.check("ivr-c") == AuthFailure(RET_BAD_TOKEN, "auth_token is not valid")
    assert issuer.check(token) is not None


def test_expired_tokens_are_forgotten_after_another_lifetime() -> None:
    clock = Clock()
    issuer = _issuer(clock, ttl_s=60)
    old = issuer.issue("tenant-1", "s3cret")
    clock.now += 119
    issuer.issue("tenant-1", "s3cret")
    assert issuer.check(old) == AuthFailure(RET_NO_TOKEN, "auth_token has expired")
    clock.now += 1
    issuer.issue("tenant-1", "s3cret")
    assert issuer.check(old) == AuthFailure(RET_BAD_TOKEN, "auth_token is not valid")


def test_the_issuer_holds_a_bounded_number_of_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "_MAX_TOKENS", 3)
    issuer = _issuer(Clock())
    issued = [issuer.issue("tenant-1", "s3cret") for _ in range(5)]
    # The oldest go first; the IVR holding one gets 900002 and asks for a new token.
    assert [issuer.check(token) is None for token in issued] == [False, False, True, True, True]
