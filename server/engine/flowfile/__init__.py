"""Loading flow files (YAML) into validated `Flow` objects, with errors that point at lines.

Every problem is reported as `file:line: where: what is wrong (expected ...)`, all of them at
once, so an author fixes a flow in one pass. The server refuses to start on any of them.

The package's parts: `yaml_lines` (the one line-aware YAML reader, also used by the tools),
`checker` (typed field access recording problems), `reader` (a document's top level, the
pieces node kinds share, whole-flow checks), `nodes` (`READERS`: one reader per node kind),
`subflows` (inlining) and `files` (files and directories).
"""

from server.engine.flowfile.files import (
    load_flow_file,
    load_flows,
    load_subflows,
    parse_flow,
    parse_subflows,
)
from server.engine.flowfile.names import (
    DONE,
    MAX_FLOW_FILE_BYTES,
    SUBFLOW_SEPARATOR,
    SUBFLOWS_DIR,
)
from server.engine.flowfile.subflows import Subflow
from server.engine.flowfile.yaml_lines import FlowError, LineList, LineMap, Problem

__all__ = [
    "DONE",
    "MAX_FLOW_FILE_BYTES",
    "SUBFLOWS_DIR",
    "SUBFLOW_SEPARATOR",
    "FlowError",
    "LineList",
    "LineMap",
    "Problem",
    "Subflow",
    "load_flow_file",
    "load_flows",
    "load_subflows",
    "parse_flow",
    "parse_subflows",
]
