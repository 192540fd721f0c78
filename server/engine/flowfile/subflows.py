"""Subflows: reusable pieces inlined into every flow that uses them.

A `subflow` node becomes a jump to a copy of the subflow's nodes (ids prefixed with the calling
node's id and a dot: `get_phone.ask`), and each `return` node a jump back to the caller's target
for that outcome. So at run time there are no subflows — no call stack in the call's state —
and a flow's version pins the subflows it was loaded with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from server.engine.flow import Branch, Node
from server.engine.flowfile.names import DONE, SUBFLOW_SEPARATOR


@dataclass(frozen=True, slots=True)
class Return:
    """A subflow's `return` node, until the subflow is inlined into a caller."""

    id: str
    outcome: str


@dataclass(frozen=True, slots=True)
class SubflowCall:
    """A `subflow` node, until it is inlined: the subflow and a target per outcome."""

    id: str
    subflow: Subflow
    targets: dict[str, str]


Raw = Node | Return | SubflowCall


@dataclass(frozen=True, slots=True)
class Subflow:
    """A validated subflow, ready to be inlined wherever a `subflow` node names it.

    Attributes:
        id: Its id (`subflow:` in its file).
        start: Its first node.
        nodes: Its nodes, subflows it uses already inlined; `return` nodes still open.
        slots: Every slot it fills or declares, so callers' templates may read them.
        outcomes: The outcomes its `return` nodes give (the default one is "done").
        source: Its file.
        line: The line of its `subflow:` key.
    """

    id: str
    start: str
    nodes: dict[str, Node | Return]
    slots: frozenset[str]
    outcomes: frozenset[str]
    source: str = ""
    line: int = 1


def inline(raw: dict[str, Raw], node_lines: dict[str, int]) -> dict[str, Node | Return]:
    """Replaces each subflow node by a jump into a renamed copy of the subflow's nodes.

    node_lines gets a line for every inlined node: its subflow node's.
    """
    nodes: dict[str, Node | Return] = {}
    for node_id, node in raw.items():
        if not isinstance(node, SubflowCall):
            nodes[node_id] = node
            continue
        prefix = node_id + SUBFLOW_SEPARATOR
        nodes[node_id] = Branch(node_id, (), prefix + node.subflow.start)
        for inner_id, inner in node.subflow.nodes.items():
            new_id = prefix + inner_id
            node_lines[new_id] = node_lines.get(node_id, 1)
            if isinstance(inner, Return):
                # A missing target was reported; any node id keeps the graph well-formed.
                target = node.targets.get(inner.outcome) or node.targets[DONE]
                nodes[new_id] = Branch(new_id, (), target)
            else:
                nodes[new_id] = inner.retarget(_prefixer(prefix))
    return nodes


def _prefixer(prefix: str) -> Callable[[str], str]:
    return lambda ref: prefix + ref
