"""Generates valid flows of any size (≥ 7 nodes) for the growth figure: a ring of menu blocks.

Every block is four nodes — a menu (1: information, 2: a question, 9: goodbye), a say that
carries a template on to the next menu, a digits collect, and a branch on the collected slot —
and the last block leads back to the first. Three more nodes (welcome, agent, goodbye) and a
chain of padding says after the welcome make the node count exact. The `ring` script of
bench/workload.py walks it: start, 1, 1, 2, digits, hang-up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

FIXED_NODES: Final = 3
BLOCK_NODES: Final = 4
MIN_NODES: Final = FIXED_NODES + BLOCK_NODES


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def ring_flow(nodes: int, flow_id: str = "ring") -> str:
    """The YAML text of a ring flow of exactly `nodes` nodes.

    Raises:
        ValueError: nodes is below MIN_NODES.
    """
    if nodes < MIN_NODES:
        raise ValueError(f"a ring flow needs at least {MIN_NODES} nodes, got {nodes}")
    blocks, padding = divmod(nodes - FIXED_NODES, BLOCK_NODES)
    lines = [
        f"flow: {flow_id}",
        'version: "1"',
        f"description: A generated ring of {blocks} menu blocks ({nodes} nodes).",
        "language: zh-CN",
        "start: welcome",
        "defaults:",
        "  on_max_attempts: agent",
        "  max_failures: 5",
        "  on_failure_budget: agent",
        "  no_input: [抱歉，我没有听到您的声音。]",
        "  no_match: [抱歉，我没有听懂。]",
        "commands:",
        "  - intent: agent",
        "    keywords: [人工, 客服, agent]",
        '    key: "0"',
        "    goto: agent",
        "  - intent: repeat",
        "    keywords: [重复, repeat]",
        '    key: "*"',
        "    repeat: true",
        "nodes:",
        "  welcome:",
        "    type: say",
        f"    prompt: {_q('欢迎致电，本次通话可能会被录音。')}",
        f"    next: {'pad_0' if padding else 'menu_0'}",
    ]
    for index in range(padding):
        after = f"pad_{index + 1}" if index + 1 < padding else "menu_0"
        lines += [
            f"  pad_{index}:",
            "    type: say",
            f"    prompt: {_q(f'提示{index}：来电号码{{call.caller}}。')}",
            f"    next: {after}",
        ]
    for block in range(blocks):
        after = f"menu_{(block + 1) % blocks}"
        lines += [
            f"  menu_{block}:",
            "    type: menu",
            f"    prompt: {_q(f'第{block}号菜单：信息请按1，提问请按2，结束请按9。')}",
            "    choices:",
            "      - intent: info",
            '        key: "1"',
            f"        keywords: [信息{block}, 查询]",
            f"        next: info_{block}",
            "      - intent: ask",
            '        key: "2"',
            f"        keywords: [提问{block}]",
            f"        next: ask_{block}",
            "      - intent: goodbye",
            '        key: "9"',
            "        keywords: [再见]",
            "        next: goodbye",
            f"  info_{block}:",
            "    type: say",
            f"    prompt: {_q(f'第{block}号信息，来电号码{{call.caller}}。')}",
            f"    next: {after}",
            f"  ask_{block}:",
            "    type: collect",
            f"    slot: answer_{block}",
            "    slot_type: digits",
            "    min_length: 1",
            "    max_length: 4",
            f"    prompt: {_q(f'请输入第{block}号问题的答案，以井号键结束。')}",
            f"    next: check_{block}",
            f"  check_{block}:",
            "    type: branch",
            "    cases:",
            f'      - when: {{answer_{block}: "0"}}',
            "        next: agent",
            f"    default: {after}",
        ]
    lines += [
        "  agent:",
        "    type: transfer",
        f"    prompt: {_q('正在为您转接人工客服，请稍候。')}",
        "    target:",
        '      skill_queue: "10086001"',
        "    on_failure: goodbye",
        "  goodbye:",
        "    type: hangup",
        f"    prompt: {_q('感谢您的来电，再见。')}",
    ]
    return "\n".join(lines) + "\n"


def write_ring_flow(directory: Path, nodes: int) -> Path:
    """Writes a one-flow directory (no routing table: the flow serves every call); returns the file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "ring.yaml"
    path.write_text(ring_flow(nodes), encoding="utf-8")
    return path
