"""The HTTP side every gateway shares: app factory, health and metrics endpoints, request
logging, body size limit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException

from gateways import vendors
from gateways.decider import Decider
from gateways.limits import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_HEADER_BYTES,
    Refusal,
    SizeLimits,
    plain_refusal,
)
from gateways.observability import ObservedRequests


def create_app(
    vendor: str,
    decider: Decider,
    router: APIRouter,
    *,
    refusal: Refusal = plain_refusal,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    metrics_route: bool = True,
) -> FastAPI:
    """A FastAPI app serving a vendor's routes plus `/healthz`, `/readyz` and `/metrics`.

    Args:
        vendor: The vendor's name, for labels and logs.
        decider: Asks the server; its metrics and tracer serve the whole app.
        router: The vendor's routes.
        refusal: Words a 413/431 in the vendor's error format (its `render_refusal`).
        max_body_bytes: Bodies larger than this are answered 413.
        max_header_bytes: A request line and headers larger than this are answered 431.
        metrics_route: Serve `GET /metrics` here (off when metrics have a port of their own).

    The decider's channel is closed when the app shuts down.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await decider.close()

    app = FastAPI(title=f"dialogue gateway: {vendor}", lifespan=lifespan)
    # For helpers that only have the request (gateways.security.auth_failed).
    app.state.vendor = vendor
    app.state.metrics = decider.metrics

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

    if metrics_route:

        @app.get("/metrics")
        async def metrics() -> Response:
            """Prometheus metrics of this gateway."""
            return Response(
                generate_latest(decider.metrics.registry), media_type=CONTENT_TYPE_LATEST
            )

    # Added last runs first: requests are observed even when the limits refuse them.
    app.add_middleware(
        SizeLimits, refusal=refusal, limit=max_body_bytes, header_limit=max_header_bytes
    )
    app.add_middleware(
        ObservedRequests, vendor=vendor, metrics=decider.metrics, tracer=decider.tracer
    )
    app.include_router(router)
    return app


def create_vendor_app(
    vendor: str, decider: Decider, env: Mapping[str, str], **options: Any
) -> FastAPI:
    """`create_app` with a vendor's own routes and refusal renderer (options: create_app's).

    Raises:
        ValueError: the vendor's configuration in env is invalid.
    """
    routes = vendors.load(vendor)
    router = routes.build_router(decider, env)
    return create_app(vendor, decider, router, refusal=routes.render_refusal, **options)


async def request_fields(request: Request) -> tuple[dict[str, str], object | None]:
    """Query parameters merged with form fields, and the parsed JSON body if the body is JSON.

    Raises:
        ValueError: the body cannot be read — not JSON, JSON nested too deep, a malformed form —
            with a reason for the vendor's failure answer. Routes need catch nothing else.
    """
    fields = dict(request.query_params)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method != "POST":
        return fields, None
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.form()
        except HTTPException as exc:  # a malformed multipart body: the vendor's 400, not ours
            raise ValueError(f"body is not a valid form: {exc.detail}") from exc
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
        except RecursionError as exc:
            raise ValueError("body is not valid JSON: nested too deep") from exc
    return fields, None
