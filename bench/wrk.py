"""HTTP load with wrk (optional): a Lua script that makes scripted calls, bounded in time and count.

wrk has no notion of connections in `request()`, so consecutive requests are spread over
`concurrency` calls: request n goes to call n mod C of round n div (C × steps), at step
(n div C) mod steps — the calls in flight at one moment are distinct, each advancing in order.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

from bench.loadgen import RunSpec
from bench.results import RunResult
from bench.vendors import CALL_ID

_LUA = """
local methods = %(methods)s
local targets = %(targets)s
local bodies = %(bodies)s
local headers = {["Content-Type"] = "application/json"}
local concurrency = %(concurrency)d
local max_requests = %(max_requests)d
local prefix = "x"
local n = 0
local completed = 0

function init(args)
  prefix = args[1]
end

function request()
  local k = math.floor(n / concurrency)
  local step = k %% #targets
  local round = math.floor(k / #targets)
  local id = prefix .. "-" .. (n %% concurrency) .. "-" .. round
  n = n + 1
  local target = string.gsub(targets[step + 1], "%(placeholder)s", id)
  local body = string.gsub(bodies[step + 1], "%(placeholder)s", id)
  if body == "" then
    return wrk.format(methods[step + 1], target)
  end
  return wrk.format(methods[step + 1], target, headers, body)
end

function response(status, headers, body)
  completed = completed + 1
  if completed >= max_requests then wrk.thread:stop() end
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "errors": %%d, "status": %%d, "p50_us": %%d, "p99_us": %%d, "mean_us": %%f}\\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua_list(items: list[str]) -> str:
    return "{" + ", ".join(json.dumps(item) for item in items) + "}"


def run(spec: RunSpec, scratch: Path) -> RunResult:
    """Runs one HTTP spec with wrk (one thread): a warm-up run, then the measured run."""
    scratch.mkdir(parents=True, exist_ok=True)
    script = scratch / "calls.lua"
    script.write_text(
        _LUA
        % {
            "methods": _lua_list([method for method, _, _ in spec.http_targets]),
            "targets": _lua_list([target for _, target, _ in spec.http_targets]),
            "bodies": _lua_list([body for _, _, body in spec.http_targets]),
            "concurrency": spec.concurrency,
            "max_requests": spec.max_requests,
            "placeholder": CALL_ID,
        }
    )
    url = f"http://{spec.target}"
    base = ["wrk", "-t1", f"-c{spec.concurrency}", f"--timeout={math.ceil(spec.timeout_s)}s"]
    bound = spec.warmup_s + spec.duration_s + spec.timeout_s + 60

    def wrk(seconds: float, prefix: str) -> dict[str, float]:
        done = subprocess.run(
            [*base, f"-d{math.ceil(seconds)}s", "-s", str(script), url, "--", prefix],
            capture_output=True,
            text=True,
            timeout=bound,
            check=True,
        )
        line = next(line for line in done.stdout.splitlines() if line.startswith('{"requests"'))
        summary: dict[str, float] = json.loads(line)
        return summary

    warmed = wrk(spec.warmup_s, f"{spec.prefix}w")["requests"] if spec.warmup_s > 0 else 0
    data = wrk(spec.duration_s, spec.prefix)
    window = data["duration_us"] / 1e6
    failed = (("socket", data["errors"]), ("HTTP status", data["status"]))
    errors = {kind: int(count) for kind, count in failed if count}
    # wrk reports its configured duration even when the count bound stopped it earlier, and its
    # Lua has no wall clock: a run that hit the bound has no known throughput.
    hit_bound = data["requests"] >= spec.max_requests
    return RunResult(
        completed=int(data["requests"]),
        total=int(data["requests"] + warmed),
        errors=errors,
        window_s=window,
        throughput=math.nan if hit_bound else data["requests"] / window,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        mean_ms=data["mean_us"] / 1000,
        client_cpu=float("nan"),
    )
