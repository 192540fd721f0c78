# One image for the server and every gateway (the command picks which). Not built in CI: this
# workplace has no Docker engine. Build: docker build -t dialogue:latest .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY protos protos
COPY gen gen
COPY server server
COPY gateways gateways
COPY telemetry telemetry
COPY common common
RUN pip install --no-cache-dir --upgrade pip build \
 && python -m build --wheel --outdir /wheels . \
 && pip wheel --no-cache-dir --wheel-dir /wheels /wheels/dialogue-*.whl

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 dialogue
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels dialogue \
 && rm -rf /wheels
COPY --chown=dialogue flows /srv/flows
USER dialogue
WORKDIR /home/dialogue
ENV DIALOGUE_FLOWS=/srv/flows \
    DIALOGUE_LISTEN=0.0.0.0:50051 \
    DIALOGUE_STORE=sqlite:///home/dialogue/var/dialogue.db \
    PYTHONUNBUFFERED=1
EXPOSE 50051 8081 8082 8083 8084
# The server's own health service; gateways override this with their /healthz.
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import grpc,sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; \
s=g.HealthStub(grpc.insecure_channel('127.0.0.1:50051')); \
sys.exit(0 if s.Check(h.HealthCheckRequest(), timeout=2).status == 1 else 1)"
CMD ["dialogue-server"]
