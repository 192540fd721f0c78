"""The flow loader's public names, for the callers outside the engine (server start-up, the
reloader, the bench): the loader itself is the `flowfile` package."""

from server.engine.flowfile import (
    DONE,
    MAX_FLOW_FILE_BYTES,
    SUBFLOW_SEPARATOR,
    SUBFLOWS_DIR,
    FlowError,
    Problem,
    Subflow,
    load_flow_file,
    load_flows,
    load_subflows,
    parse_flow,
    parse_subflows,
)

__all__ = [
    "DONE",
    "MAX_FLOW_FILE_BYTES",
    "SUBFLOWS_DIR",
    "SUBFLOW_SEPARATOR",
    "FlowError",
    "Problem",
    "Subflow",
    "load_flow_file",
    "load_flows",
    "load_subflows",
    "parse_flow",
    "parse_subflows",
]
