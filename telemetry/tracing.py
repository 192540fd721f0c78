"""OpenTelemetry set-up shared by the server and the gateways; off unless DIALOGUE_OTEL is on."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

_TRUE = frozenset({"1", "true", "yes", "on"})


def tracer_provider_from_env(env: Mapping[str, str], service_name: str) -> TracerProvider | None:
    """An SDK TracerProvider when DIALOGUE_OTEL is on, else None (tracing off).

    The exporter is `OTEL_TRACES_EXPORTER`: `otlp` (default; `OTEL_EXPORTER_OTLP_PROTOCOL`
    `grpc` or `http/protobuf`, endpoint and headers from the standard OTEL_EXPORTER_OTLP_*
    variables) or `console` (spans as JSON on stderr, never stdout: stdout carries only the
    listening line). `OTEL_SERVICE_NAME` overrides the service name.

    Raises:
        ValueError: an exporter or protocol this does not know.
    """
    if env.get("DIALOGUE_OTEL", "").strip().lower() not in _TRUE:
        return None
    # Imported only when on: the SDK and exporters cost start-up time nobody else should pay.
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
        SpanExporter,
    )

    exporter_name = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    if exporter_name == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
        return provider
    if exporter_name != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER must be otlp or console, not {exporter_name!r}")
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as GrpcExporter,
        )

        exporter: SpanExporter = GrpcExporter()
    elif protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as HttpExporter,
        )

        exporter = HttpExporter()
    else:
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL must be grpc or http/protobuf, not {protocol!r}"
        )
    # Batched, off the request path: an unreachable collector costs dropped spans, not turns.
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
