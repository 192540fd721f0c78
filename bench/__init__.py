"""`python -m bench`: the performance figures of dialogue, each a ratio to a baseline of the same run.

Every figure starts its own processes on 127.0.0.1 (the server, an echo servicer with the same
message sizes, gateways, a bare FastAPI endpoint, redis-server), drives them from a separate
load-generator process with closed-loop clients bounded in time and in count, and takes the
median of repeated runs. The results go to `docs/benchmarks.md` and `docs/benchmarks.png`.
"""
