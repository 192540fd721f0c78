"""The flow language's shared vocabulary: name rules, keys, limits, reserved words."""

from __future__ import annotations

import re

NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
FLOW_ID = re.compile(r"^[a-z][a-z0-9_-]{0,47}$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
KEYS = "0123456789*#"
# call.date and call.time: the call's local date (YYYY-MM-DD) and time (HH:MM) in the flow's zone.
CALL_FIELDS = ("call.caller", "call.callee", "call.date", "call.time")
# What a queue_status node got (wait_minutes: the expected wait, rounded up) and how an
# assistant node's conversation ended: without a value until then.
QUEUE_FIELDS = ("queue.position", "queue.wait_minutes", "queue.agents_online", "queue.agents_idle")
ASSISTANT_FIELDS = ("assistant.reason", "assistant.duration_ms", "assistant.transcript")
# Why the last transfer failed (busy, no_answer, rejected, unreachable or unknown): without a
# value until one failed.
TRANSFER_FIELDS = ("transfer.failure",)
# How an unknown-placeholder message names the families above.
NAMED_FAMILIES = (
    "params.NAME, queue.position/wait_minutes/agents_online/agents_idle, "
    "assistant.reason/duration_ms/transcript, transfer.failure"
)
PARAM_NAME = re.compile(r"^params\.[A-Za-z0-9_.-]{1,64}$")
URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
MAX_FLOW_FILE_BYTES = 4 * 1024 * 1024
SUBFLOWS_DIR = "subflows"
# Separates a subflow node's id from the ids of the nodes inlined for it: never in an authored id.
SUBFLOW_SEPARATOR = "."
DEFAULT_HOOK_TIMEOUT_MS = 300
MAX_HOOK_TIMEOUT_MS = 10_000
# The outcome of a subflow's `return` node that names none, reached by the caller's `next`.
DONE = "done"
