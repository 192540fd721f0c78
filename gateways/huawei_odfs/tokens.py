"""The `auth_token` of ODFS requests: tokens this gateway issued, or a configured static set.

Huawei's OIAP issues tokens through `POST /oifde/rest/api/gettoken` (`{"appKey", "appSecret"}` →
`authToken`, valid for `expireTime` seconds) and checks the token carried in every request's
inparams. The issuer here keeps its tokens in memory: a second replica does not know them, so
run replicas with the static set (`HUAWEI_ODFS_AUTH_TOKENS`) or send each IVR's token requests
and calls to the same replica.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gateways.huawei_odfs.protocol import RET_BAD_TOKEN, RET_NO_TOKEN

DEFAULT_TTL_S = 3600
# Bounds the memory an IVR (or a leaked appSecret) can make the issuer hold; the oldest tokens
# go first, and an IVR whose token was dropped gets 900002 and asks for a new one.
_MAX_TOKENS = 100_000


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """Why a token was refused: `code` is the `ret` to answer (900001 or 900002)."""

    code: int
    reason: str


class CredentialsError(ValueError):
    """A token request with a missing or wrong appKey/appSecret, or issuing not configured."""


class TokenIssuer:
    """Issues tokens for one appKey/appSecret pair and checks offered tokens.

    Args:
        app_key: The appKey (tenant id) the IVR authenticates with; "" disables issuing.
        app_secret: Its appSecret.
        static_tokens: Tokens always accepted (replicas, IVRs configured with a fixed token).
        ttl_s: How long an issued token is valid (`expireTime`), in seconds.
        clock: Seconds since the epoch; injectable so tests can move time.
    """

    def __init__(
        self,
        *,
        app_key: str = "",
        app_secret: str = "",
        static_tokens: Iterable[str] = (),
        ttl_s: int = DEFAULT_TTL_S,
        clock: Callable[[], float],
    ) -> None:
        if bool(app_key) != bool(app_secret):
            raise ValueError("set both HUAWEI_ODFS_APP_KEY and HUAWEI_ODFS_APP_SECRET, or neither")
        if ttl_s <= 0:
            raise ValueError(f"the token lifetime must be positive, not {ttl_s} s")
        self._app_key = app_key.encode()
        self._app_secret = app_secret.encode()
        self._static = tuple(token.encode() for token in static_tokens if token)
        self.ttl_s = ttl_s
        self._clock = clock
        # token → expiry (epoch seconds), in issue order, which is expiry order.
        self._issued: OrderedDict[str, float] = OrderedDict()

    @property
    def issuing(self) -> bool:
        """True when `gettoken` can issue tokens (appKey and appSecret configured)."""
        return bool(self._app_key)

    @property
    def checking(self) -> bool:
        """True when requests must carry a valid token (issuing or a static set configured)."""
        return self.issuing or bool(self._static)

    def issue(self, app_key: object, app_secret: object) -> str:
        """A new token for the configured credentials, valid for `ttl_s` seconds.

        Raises:
            CredentialsError: issuing is not configured, or the credentials are missing or wrong.
        """
        if not self.issuing:
            raise CredentialsError("token issuing is not configured on this gateway")
        if not isinstance(app_key, str) or not isinstance(app_secret, str):
            raise CredentialsError("appKey and appSecret are required")
        # Both compared, always, so the time taken does not tell which one was wrong.
        key_ok = hmac.compare_digest(app_key.encode(), self._app_key)
        secret_ok = hmac.compare_digest(app_secret.encode(), self._app_secret)
        if not (key_ok and secret_ok):
            raise CredentialsError("appKey or appSecret is wrong")
        now = self._clock()
        self._forget_old(now)
        token = secrets.token_urlsafe(32)
        self._issued[token] = now + self.ttl_s
        return token

    def check(self, token: str) -> AuthFailure | None:
        """None when the token is accepted, else why not (900001 missing/expired, 900002 invalid)."""
        if not token:
            return AuthFailure(RET_NO_TOKEN, "auth_token is missing")
        offered = token.encode()
        # Every static token is compared, so the time taken does not tell how many match.
        if sum(hmac.compare_digest(offered, known) for known in self._static):
            return None
        expiry = self._issued.get(token)
        if expiry is None:
            return AuthFailure(RET_BAD_TOKEN, "auth_token is not valid")
        if self._clock() >= expiry:
            return AuthFailure(RET_NO_TOKEN, "auth_token has expired")
        return None

    def _forget_old(self, now: float) -> None:
        """Drops tokens expired for longer than a lifetime (until then they read as expired)."""
        while self._issued:
            token, expiry = next(iter(self._issued.items()))
            if expiry + self.ttl_s > now and len(self._issued) < _MAX_TOKENS:
                break
            del self._issued[token]
