"""The HTTP side every gateway shares: app factory, health endpoints, request logging."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from gateways.decider import Decider
from gateways.masking import mask_phone

_log = logging.getLogger("dialogue.gateway.http")


def create_app(vendor: str, decider: Decider, router: APIRouter) -> FastAPI:
    """A FastAPI app serving a vendor's routes plus `/healthz` and `/readyz`.

    The decider's channel is closed when the app shuts down.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await decider.close()

    app = FastAPI(title=f"dialogue gateway: {vendor}", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok", "vendor": vendor}

    @app.get("/readyz")
    async def readyz() -> Response:
        """The server is reachable and serving, by the gRPC health service."""
        ready = await decider.ready()
        body = {
            "status": "ready" if ready else "server unreachable",
            "server": decider.target,
            "fallbacks": dict(decider.fallbacks),
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.middleware("http")
    async def log_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        call_id = getattr(request.state, "call_id", "-")
        _log.info(
            "%s %s %d %.1fms call=%s",
            request.method,
            request.url.path,
            response.status_code,
            elapsed_ms,
            mask_phone(str(call_id)),
        )
        return response

    app.include_router(router)
    return app


async def request_fields(request: Request) -> tuple[dict[str, str], object | None]:
    """Query parameters merged with form fields, and the parsed JSON body if the body is JSON.

    Raises:
        ValueError: the body claims to be JSON but is not.
    """
    fields = dict(request.query_params)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method != "POST":
        return fields, None
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        fields.update({key: value for key, value in form.items() if isinstance(value, str)})
        return fields, None
    body = await request.body()
    if not body.strip():
        return fields, None
    if content_type.endswith("json") or body.lstrip()[:1] in (b"{", b"["):
        try:
            return fields, json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"body is not valid JSON: {exc}") from exc
    return fields, None
