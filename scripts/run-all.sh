#!/usr/bin/env bash
# `make run`: the server (demo flows, embedded SQLite store) and every gateway, in the
# foreground; Ctrl-C (or SIGTERM) stops them all, each shutting down gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin

# Demo settings for the gateways; set any of these yourself to override them.
export ALIYUN_TRANSFER_NUMBERS="${ALIYUN_TRANSFER_NUMBERS:-skill_queue:10086001=+8610086001,skill_queue:18005550101=+18005550101}"
# The fallback policy: when no server answers within the deadline, the caller is transferred to
# this skill queue (or to DIALOGUE_FALLBACK_PHONE_NUMBER when no queue is set) instead of hung up.
# DIALOGUE_FALLBACK=hangup, or neither target, hangs up politely instead.
export DIALOGUE_FALLBACK="${DIALOGUE_FALLBACK:-transfer}"
export DIALOGUE_FALLBACK_SKILL_QUEUE="${DIALOGUE_FALLBACK_SKILL_QUEUE-10086001}"
# Telnyx: no real account here, so commands go nowhere useful; without a public key the
# signature check is switched off for the demo (the gateway says so loudly).
export TELNYX_API_KEY="${TELNYX_API_KEY:-dev-not-a-real-key}"
[ -n "${TELNYX_PUBLIC_KEY:-}" ] || export TELNYX_SKIP_SIGNATURE="${TELNYX_SKIP_SIGNATURE:-true}"
telnyx_targets='{"skill_queue:10086001": "+8610086001", "skill_queue:18005550101": "+18005550101"}'
export TELNYX_TRANSFER_TARGETS="${TELNYX_TRANSFER_TARGETS:-$telnyx_targets}"
export TELNYX_VOICES="${TELNYX_VOICES:-zh-CN=AWS.Polly.Zhiyu}"
listen="${DIALOGUE_LISTEN:-127.0.0.1:50051}"
export DIALOGUE_SERVER="${DIALOGUE_SERVER:-$listen}"

if [ "$DIALOGUE_FALLBACK" = transfer ] && [ -n "$DIALOGUE_FALLBACK_SKILL_QUEUE" ]; then
  fallback="transfer to skill queue $DIALOGUE_FALLBACK_SKILL_QUEUE"
elif [ "$DIALOGUE_FALLBACK" = transfer ] && [ -n "${DIALOGUE_FALLBACK_PHONE_NUMBER:-}" ]; then
  fallback="transfer to $DIALOGUE_FALLBACK_PHONE_NUMBER"
else
  fallback="hang up politely"
fi
echo "run-all: when the server does not answer in time, gateways $fallback" \
  "(counted in dialogue_gateway_fallbacks_total by reason)" >&2

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
import os, grpc
grpc.channel_ready_future(grpc.insecure_channel(os.environ["DIALOGUE_SERVER"])).result(timeout=60)
PY
for vendor in aliyun-ivr aliyun-ccc huawei-odfs telnyx; do
  "$bin/dialogue-gateway" "$vendor" &
  pids+=($!)
done
wait -n || true
