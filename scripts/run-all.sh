#!/usr/bin/env bash
# `make run`: the server (demo flows, embedded SQLite store) and every gateway, in the
# foreground; Ctrl-C (or SIGTERM) stops them all, each shutting down gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin

pids=()
stop() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null || true
  wait || true
}
trap stop INT TERM EXIT

"$bin/dialogue-server" &
pids+=($!)
# Gateways answer their fallback until the server is up, so no need to wait for it; waiting
# only keeps the start-up log in a readable order.
"$bin/python" - <<'PY'
import grpc
grpc.channel_ready_future(grpc.insecure_channel("127.0.0.1:50051")).result(timeout=60)
PY
for vendor in aliyun-ivr aliyun-ccc; do
  "$bin/dialogue-gateway" "$vendor" &
  pids+=($!)
done
wait -n || true
