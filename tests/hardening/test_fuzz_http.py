"""Property-based fuzzing of every gateway's HTTP endpoint, over real HTTP, against a real server.

Whatever a client sends — the vendor's own shapes with odd values, bodies cut short, bytes that
are not UTF-8, JSON nested thousands deep, multipart forms in exotic charsets, forged Telnyx
signatures — the gateway answers with a valid answer or a clean error in the vendor's own
format: never a 5xx (but the documented "retry later" 503s), never a traceback; and a request
it refuses leaves the server's store exactly as it was.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st

from gateways.telnyx import signature
from tests.hardening import vendor_inputs as inputs
from tests.hardening.stack import Stack, running_stack
from tests.hardening.strategies import bounded, hostile_text, json_values, weighted

# Requests per endpoint: a few hundred round trips each keep the file within seconds.
HTTP_EXAMPLES = 150
# Documented 5xx answers: "not acknowledged, retry later" (a report batch or Telnyx commands
# that could not be carried out in time). Nothing else may be 5xx.
RETRY_LATER = 503
_MAX_QUERY = 60_000


@dataclass(frozen=True)
class Case:
    """One HTTP request: method, path (with any query string already encoded), headers, body."""

    method: str
    path: str
    headers: dict[str, Any] = field(default_factory=dict)
    content: bytes = b""


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack() as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        yield client


# -- building requests ------------------------------------------------------------------------


def _query(fields: dict[str, str]) -> str:
    # Lone surrogates go out as the bytes Python would give them: percent-escapes that are not
    # UTF-8, which is what a broken client sends.
    return urlencode(fields, errors="surrogatepass")


def _json_bytes(value: Any) -> bytes:
    return inputs.dumps(value).encode("utf-8")


def _multipart(fields: dict[str, str], charset: str) -> tuple[dict[str, str], bytes]:
    """A multipart form whose declared charset decodes the bytes: `unicode_escape` turns the
    text `\\ud800` into a lone surrogate on the server."""
    boundary = "hardening-boundary"
    parts = []
    for name, value in fields.items():
        key = name.encode("unicode_escape").decode("ascii").replace('"', "%22")
        escaped = value.encode("unicode_escape").decode("ascii")
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{escaped}\r\n'
        )
    body = ("".join(parts) + f"--{boundary}--\r\n").encode("ascii")
    content_type = f"multipart/form-data; boundary={boundary}; charset={charset}"
    return {"content-type": content_type}, body


_content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "text/plain",
        "",
    ]
)

_raw_bodies = weighted(
    (3, st.binary(max_size=200)),
    (1, st.sampled_from([b"{", b"[" * 5000, b"\xef\xbb\xbf{}", b"\xff\xfe{}", b"null", b"{}"])),
    (2, json_values.map(_json_bytes)),
)


@st.composite
def _raw(draw: st.DrawFn, path: str) -> Case:
    """Any bytes under any content type, POSTed to path."""
    content_type = draw(_content_types)
    headers = {"content-type": content_type} if content_type else {}
    return Case("POST", path, headers, draw(_raw_bodies))


@st.composite
def _text_fields(
    draw: st.DrawFn, path: str, fields: st.SearchStrategy[dict[str, str]], get: bool = True
) -> Case:
    """The vendor's text fields in a query, a form or a multipart form (perhaps misdecoded)."""
    values = draw(fields)
    how = draw(st.sampled_from(["query", "form", "multipart"] if get else ["form", "multipart"]))
    # httpx refuses URLs past 64 kB (so do most servers): oversized values go in a form.
    if how == "query" and len(_query(values)) < _MAX_QUERY:
        return Case("GET", f"{path}?{_query(values)}")
    if how in ("query", "form"):
        headers = {"content-type": "application/x-www-form-urlencoded"}
        return Case("POST", path, headers, _query(values).encode("ascii"))
    charset = draw(st.sampled_from(["utf-8", "unicode_escape", "utf-16", "no-such-charset"]))
    headers, body = _multipart(values, charset)
    return Case("POST", path, headers, body)


def ivr_callbacks() -> st.SearchStrategy[Case]:
    path = "/aliyun/ivr/callback"

    @st.composite
    def json_post(draw: st.DrawFn) -> Case:
        query = _query(draw(inputs.ivr_fields))[:_MAX_QUERY]
        body = draw(inputs.ivr_json_body)
        headers = {"content-type": "application/json"}
        return Case("POST", f"{path}?{query}", headers, _json_bytes(body))

    return weighted((4, _text_fields(path, inputs.ivr_fields)), (2, json_post()), (1, _raw(path)))


def ivr_reports() -> st.SearchStrategy[Case]:
    path = "/aliyun/ivr/report"
    headers = {"content-type": "application/json"}
    return weighted(
        (4, inputs.ivr_reports.map(lambda body: Case("POST", path, headers, _json_bytes(body)))),
        (1, _raw(path)),
    )


def ccc_requests() -> st.SearchStrategy[Case]:
    return weighted((5, _text_fields("/", inputs.ccc_params)), (1, _raw("/")))


def huawei_requests() -> st.SearchStrategy[Case]:
    headers = {"content-type": "application/json"}

    @st.composite
    def process(draw: st.DrawFn) -> Case:
        vdn = draw(st.sampled_from(["", "vdn-1", "%20", "a" * 300]))
        path = f"/oifde/rest/v2/crs/process/{vdn}" if vdn else "/oifde/rest/crs/process"
        return Case("POST", path, headers, _json_bytes(draw(inputs.huawei_body)))

    token_body = weighted(
        (3, st.fixed_dictionaries({"appKey": json_values, "appSecret": json_values})),
        (1, json_values),
    )
    token = token_body.map(
        lambda body: Case("POST", "/oifde/rest/api/gettoken", headers, _json_bytes(body))
    )
    return weighted(
        (5, process()),
        (1, _raw("/oifde/rest/crs/process")),
        (1, token),
        (1, _raw("/oifde/rest/api/gettoken")),
    )


def telnyx_webhooks(stack: Stack) -> st.SearchStrategy[Case]:
    """Webhooks signed with the stack's key, so the fuzz reaches past the signature check."""
    path = "/telnyx/webhooks"

    def signed(body: bytes) -> Case:
        headers = signature.sign(body, _now(), stack.key)
        return Case("POST", path, {**headers, "content-type": "application/json"}, body)

    return weighted(
        (5, inputs.telnyx_body.map(_json_bytes).map(signed)),
        (1, _raw_bodies.map(signed)),
    )


def _now() -> int:
    return int(time.time())


def _header_bytes(value: str | None) -> bytes:
    """A header value as a client can send it: bytes, without controls or outer spaces."""
    if value is None:
        return b""
    raw = value.encode("utf-8", "surrogatepass")
    return bytes(byte for byte in raw if byte >= 0x20 and byte != 0x7F).strip()


# -- what every answer must be ----------------------------------------------------------------


def _json_of(reply: httpx.Response) -> Any:
    assert reply.headers["content-type"].startswith("application/json"), reply.headers
    return reply.json()


def check_ivr_callback(reply: httpx.Response) -> None:
    body = _json_of(reply)
    if reply.status_code == 200:
        assert (body["result"], body["code"]) == ("success", 200), body
        assert body["data"]["call_id"]
        assert isinstance(body["data"]["action"], str)
    else:
        assert 400 <= reply.status_code < 500, reply.status_code
        assert (body["result"], body["data"]) == ("fail", {}), body
        assert body["msg"]


def check_ivr_report(reply: httpx.Response) -> None:
    body = _json_of(reply)
    if reply.status_code == 200:
        assert body == {"code": 0, "msg": "接收成功"}
    elif reply.status_code == RETRY_LATER:
        assert body["code"] == 1
    else:
        assert 400 <= reply.status_code < 500, reply.status_code
        assert (body["result"], body["data"]) == ("fail", {}), body


def check_ccc(reply: httpx.Response) -> None:
    content_type = reply.headers["content-type"]
    if content_type.startswith("application/xml"):
        root = ET.fromstring(reply.content)
        success = root.findtext("Success")
        status = int(root.findtext("HttpStatusCode") or "0")
    else:
        document = _json_of(reply)
        success = "true" if document["Success"] is True else "false"
        status = document["HttpStatusCode"]
    assert status == reply.status_code
    if reply.status_code == 200:
        assert success == "true"
    else:
        assert 400 <= reply.status_code < 500, reply.status_code
        assert success == "false"


def check_huawei(reply: httpx.Response) -> None:
    body = _json_of(reply)
    if "errorCode" in body:  # the token route
        assert isinstance(body["errorMsg"], str)
        assert (reply.status_code == 200) == (body["errorCode"] == 0)
        if reply.status_code != 200:
            assert 400 <= reply.status_code < 500, reply.status_code
        return
    if reply.status_code == 200:
        assert int(body["ret"]) == 0, body
        assert int(body["outaction"]) in (9, 10, 11)
        assert isinstance(body["outparams"], dict)
    else:
        assert 400 <= reply.status_code < 500, reply.status_code
        assert int(body["ret"]) in (-1, 900001, 900002), body
        assert body["errorMsg"]


def check_telnyx(reply: httpx.Response) -> None:
    body = _json_of(reply)
    if reply.status_code == 200:
        assert body["status"] in ("acknowledged", "ok", "accepted"), body
    elif reply.status_code == RETRY_LATER:
        assert body == {"error": "commands could not be sent"}
    else:
        assert 400 <= reply.status_code < 500, reply.status_code
        assert isinstance(body["error"], str)


def exchange(
    stack: Stack,
    http: httpx.Client,
    vendor: str,
    case: Case,
    check: Callable[[httpx.Response], None],
) -> httpx.Response:
    """Sends one request; checks the answer's format and that a refusal changed nothing."""
    before = stack.digest()
    reply = http.request(
        case.method, stack.urls[vendor] + case.path, headers=case.headers, content=case.content
    )
    event(f"HTTP {reply.status_code}")
    note(
        f"{case.method} {case.path[:300]} {case.headers} {case.content[:300]!r}"
        f" -> {reply.status_code} {reply.text[:300]}"
    )
    assert "Traceback" not in reply.text
    assert reply.status_code < 500 or reply.status_code == RETRY_LATER, (
        reply.status_code,
        reply.text[:300],
    )
    check(reply)
    if 400 <= reply.status_code < 500:
        assert stack.digest() == before, "a refused request changed the store"
    elif reply.status_code >= 500:
        # Decisions cut off by the answer's budget may still land: wait for them to, so the
        # next example starts from a store nobody is writing to.
        stack.settled_digest()
    return reply


# -- the properties ---------------------------------------------------------------------------


@bounded(HTTP_EXAMPLES)
@given(case=ivr_callbacks())
def test_aliyun_ivr_callbacks(stack: Stack, http: httpx.Client, case: Case) -> None:
    exchange(stack, http, "aliyun-ivr", case, check_ivr_callback)


@bounded(HTTP_EXAMPLES)
@given(case=ivr_reports())
def test_aliyun_ivr_reports(stack: Stack, http: httpx.Client, case: Case) -> None:
    exchange(stack, http, "aliyun-ivr", case, check_ivr_report)


@bounded(HTTP_EXAMPLES)
@given(case=ccc_requests())
def test_aliyun_ccc_dialogue(stack: Stack, http: httpx.Client, case: Case) -> None:
    exchange(stack, http, "aliyun-ccc", case, check_ccc)


@bounded(HTTP_EXAMPLES)
@given(case=huawei_requests())
def test_huawei_odfs_process_and_token(stack: Stack, http: httpx.Client, case: Case) -> None:
    exchange(stack, http, "huawei-odfs", case, check_huawei)


@bounded(HTTP_EXAMPLES)
@given(data=st.data())
def test_telnyx_signed_webhooks(stack: Stack, http: httpx.Client, data: st.DataObject) -> None:
    case = data.draw(telnyx_webhooks(stack))
    exchange(stack, http, "telnyx", case, check_telnyx)


@dataclass(frozen=True)
class Forgery:
    """Signature headers of a webhook: forged, malformed, missing, or genuine but stale."""

    signature: str | None
    timestamp: str | None
    stale_by: int | None


forgeries = st.builds(
    Forgery,
    signature=st.one_of(st.none(), hostile_text, st.binary(max_size=64).map(repr)),
    timestamp=st.one_of(st.none(), hostile_text, st.integers(0, 10**13).map(str)),
    stale_by=st.sampled_from([None, -10_000, 400, 10**9]),
)


@bounded(HTTP_EXAMPLES)
@given(body=_raw_bodies, forgery=forgeries)
def test_telnyx_signature_headers_are_always_refused(
    stack: Stack, http: httpx.Client, body: bytes, forgery: Forgery
) -> None:
    signature_header, timestamp, stale_by = forgery.signature, forgery.timestamp, forgery.stale_by
    headers: dict[str, Any] = {"content-type": "application/json"}
    if stale_by is not None:
        # A genuine signature, but made too long ago (or in the future).
        headers.update(signature.sign(body, _now() - stale_by, stack.key))
    else:
        for name, value in (
            (signature.SIGNATURE_HEADER, signature_header),
            (signature.TIMESTAMP_HEADER, timestamp),
        ):
            raw = _header_bytes(value)
            if raw:
                headers[name] = raw
    reply = exchange(
        stack, http, "telnyx", Case("POST", "/telnyx/webhooks", headers, body), check_telnyx
    )
    assert 400 <= reply.status_code < 500
