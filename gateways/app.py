"""The HTTP side every gateway shares: app factory, health and metrics endpoints, request
logging, body size limit, and the direct dispatch of the vendors' callback routes."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

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

    # Added last runs first: requests are observed even when the limits refuse them, and the
    # direct dispatch runs inside both.
    app.add_middleware(DirectRoutes, routes=direct_routes(router))
    app.add_middleware(
        SizeLimits, refusal=refusal, limit=max_body_bytes, header_limit=max_header_bytes
    )
    app.add_middleware(
        ObservedRequests, vendor=vendor, metrics=decider.metrics, tracer=decider.tracer
    )
    app.include_router(router)
    return app


def direct_routes(router: APIRouter) -> dict[tuple[str, str], APIRoute]:
    """(path, method) → route, for the routes DirectRoutes may call without FastAPI's handler.

    Those are the routes FastAPI's per-request machinery does nothing for: a fixed path, a
    coroutine taking one parameter (the Request) and returning a Response as it is (no
    response model). That is
    every vendor's callback route; the others (path parameters, answers FastAPI serialises)
    keep FastAPI's handling.
    """
    direct: dict[tuple[str, str], APIRoute] = {}
    for route in router.routes:
        if not isinstance(route, APIRoute) or "{" in route.path_format:
            continue
        dependant = route.dependant
        takes_only_the_request = dependant.request_param_name is not None and not (
            dependant.path_params
            or dependant.query_params
            or dependant.header_params
            or dependant.cookie_params
            or dependant.body_params
            or dependant.dependencies
            or dependant.response_param_name
            or dependant.background_tasks_param_name
        )
        coroutine = inspect.iscoroutinefunction(route.endpoint)
        if coroutine and takes_only_the_request and route.response_model is None:
            for method in route.methods or ():
                direct.setdefault((route.path_format, method), route)
    return direct


class DirectRoutes:
    """ASGI middleware: calls the endpoint of a `direct_routes` route itself.

    FastAPI's request handler (resolving the endpoint's parameters, exit stacks, exception
    wrapping) and its router's matching cost more per request than some vendors' mapping,
    and do nothing for an endpoint that takes the Request and returns a Response. What
    FastAPI's route would leave in the scope (the route, for the metrics' route label; the
    endpoint; no path parameters) is set the same; every other request goes on to FastAPI
    unchanged, and so do 404s, 405s and redirects. An exception from the endpoint reaches the
    same outer middleware (a 500 from Starlette's ServerErrorMiddleware) either way: the
    vendor routes raise no HTTPException (gateways.app.request_fields turns Starlette's into
    a ValueError).
    """

    def __init__(self, app: ASGIApp, *, routes: dict[tuple[str, str], APIRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http":
            # The path as the router matches it: without the root path a proxy may have set.
            path, root = scope["path"], scope.get("root_path", "")
            route = self.routes.get((path.removeprefix(root) if root else path, scope["method"]))
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {}
        response = await route.endpoint(Request(scope, receive, send))
        if not isinstance(response, Response):  # direct_routes admits only such endpoints
            raise TypeError(f"{route.path} answered {type(response).__name__}, not a Response")
        await response(scope, receive, send)


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


def query_fields(query_string: bytes) -> dict[str, str]:
    """The query's parameters, the last value of a repeated name: `dict(request.query_params)`.

    The same pairs as Starlette's parser (urllib's `parse_qsl` with blank values kept, the
    bytes read as Latin-1, `%` escapes as UTF-8 with errors replaced), without its per-pair
    calls for parts that have no `+` or `%` to decode: a vendor's query is most of what a GET
    callback costs to read.
    """
    fields: dict[str, str] = {}
    if not query_string:
        return fields
    for part in query_string.decode("latin-1").split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "+" in name:
            name = name.replace("+", " ")
        if "%" in name:
            name = unquote(name, errors="replace")
        if "+" in value:
            value = value.replace("+", " ")
        if "%" in value:
            value = unquote(value, errors="replace")
        fields[name] = value
    return fields


async def request_fields(request: Request) -> tuple[dict[str, str], object | None]:
    """Query parameters merged with form fields, and the parsed JSON body if the body is JSON.

    Raises:
        ValueError: the body cannot be read — not JSON, JSON nested too deep, a malformed form —
            with a reason for the vendor's failure answer. Routes need catch nothing else.
    """
    fields = query_fields(request.scope.get("query_string", b""))
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
