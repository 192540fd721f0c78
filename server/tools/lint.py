"""Static checks of a loaded flow, beyond what the loader enforces.

The loader rejects what cannot run (unknown targets, bad fields, say/branch loops). These checks
find what runs but traps or confuses a caller: nodes nothing leads to, places from which the
call can never end, slots read where no path has set them, prompts missing a declared language,
and settings the engine silently ignores.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass

from server.engine.flow import (
    AiGatherNode,
    AssistantNode,
    Branch,
    Choice,
    Collect,
    Command,
    Escalation,
    Flow,
    Fulfillment,
    Menu,
    Node,
    Option,
    SetNode,
)
from server.engine.flowfile import LineList
from server.engine.languages import heard_in
from server.tools.common import (
    ANY_SLOT,
    PLACEHOLDER,
    SourceMap,
    all_edges,
    command_edges,
    is_listening,
    may_end,
    placeholders,
    prompt_specs,
    source_map,
)

ERROR = "error"
WARNING = "warning"
_CALL_FIELDS = ("call.caller", "call.callee")
_MAX_LISTED = 8


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem a check found, pointing at a line of the flow file."""

    file: str
    line: int
    severity: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.where}: {self.message}"


def lint_flow(flow: Flow, text: str) -> list[Finding]:
    """Runs every static check on a flow the loader accepted; `text` is its YAML, for lines."""
    checker = _Lint(flow, source_map(text, flow.source))
    checker.reachability()
    checker.dead_ends()
    checker.slots_before_set()
    checker.languages()
    checker.ignored_settings()
    return sorted(checker.findings, key=lambda f: (f.line, f.where, f.message))


def _filled_for(node: Node, where: str) -> set[str]:
    """Slots a node itself has filled by the time it speaks the prompt at `where`: a collect's
    `confirm:` reads back the value just collected. Its question, `invalid` and reprompts
    come before (or instead of) a value, so they do not count it."""
    if (
        isinstance(node, Collect)
        and node.confirm is not None
        and where == f"node '{node.id}'.confirm"
    ):
        return {node.slot}
    return set()


def _listed(names: Iterable[str]) -> str:
    ordered = sorted(names)
    shown = ", ".join(ordered[:_MAX_LISTED])
    return shown + (f" and {len(ordered) - _MAX_LISTED} more" if len(ordered) > _MAX_LISTED else "")


class _Lint:
    def __init__(self, flow: Flow, lines: SourceMap) -> None:
        self.flow = flow
        self.lines = lines
        self.findings: list[Finding] = []
        self.edges = all_edges(flow)
        self.successors: dict[str, set[str]] = defaultdict(set)
        self.predecessors: dict[str, set[str]] = defaultdict(set)
        for edge in self.edges:
            self.successors[edge.source].add(edge.target)
            self.predecessors[edge.target].add(edge.source)
        self.roots = [flow.start, *(edge.target for edge in command_edges(flow))]
        self.reachable = self._closure(self.roots, self.successors)

    def add(self, line: int, severity: str, where: str, message: str) -> None:
        self.findings.append(Finding(self.flow.source, line, severity, where, message))

    @staticmethod
    def _closure(starts: Iterable[str], step: dict[str, set[str]]) -> set[str]:
        seen = set(starts)
        queue = deque(seen)
        while queue:
            for other in step.get(queue.popleft(), ()):
                if other not in seen:
                    seen.add(other)
                    queue.append(other)
        return seen

    # -- checks -----------------------------------------------------------------------------

    def reachability(self) -> None:
        commands = sorted({edge.target for edge in command_edges(self.flow)})
        via = f"start '{self.flow.start}'" + (
            f" or a global command's goto ({', '.join(commands)})" if commands else ""
        )
        for node_id in self.flow.nodes:
            if node_id not in self.reachable:
                self.add(
                    self.lines.node_line(node_id),
                    WARNING,
                    f"node '{node_id}'",
                    f"unreachable: no path from {via} leads here",
                )

    def dead_ends(self) -> None:
        """Reachable nodes from which no path ends the dialogue, reported where the call enters."""
        can_end = self._closure(
            (n for n, node in self.flow.nodes.items() if may_end(node)), self.predecessors
        )
        stuck = {n for n in self.flow.nodes if n in self.reachable and n not in can_end}
        roots = set(self.roots)
        for node_id in self.flow.nodes:
            if node_id not in stuck:
                continue
            entered = node_id in roots or any(p not in stuck for p in self.predecessors[node_id])
            if not entered:
                continue
            onward = self._closure([node_id], self.successors) - {node_id}
            self.add(
                self.lines.node_line(node_id),
                ERROR,
                f"node '{node_id}'",
                "dead end: no path from here reaches a hangup or a transfer, so the call can never end"
                + (f" (from here it can only reach: {_listed(onward)})" if onward else ""),
            )

    def slots_before_set(self) -> None:
        """A slot read where no path from the start has set it is always empty there."""
        set_somewhere = {slot for edge in self.edges for slot in edge.sets}
        declared = self.lines.data.get("slots")
        externally_set = {str(s) for s in declared} if isinstance(declared, list) else set()
        checked = set_somewhere - externally_set
        may_be_set = self._may_be_set()
        for node_id, node in self.flow.nodes.items():
            if node_id not in may_be_set:
                continue  # unreachable: already reported
            if ANY_SLOT in may_be_set[node_id]:
                continue  # a hook's answer on the way may have set anything
            for line, where, slot in self._reads(node):
                if slot in checked and slot not in may_be_set[node_id] | _filled_for(node, where):
                    self.add(
                        line,
                        WARNING,
                        where,
                        f"reads slot '{slot}' at node '{node_id}', but no path to it sets "
                        f"'{slot}' first (it is always empty here)",
                    )

    def _may_be_set(self) -> dict[str, set[str]]:
        """Per reachable node: the slots some path from the start has set on arrival."""
        arriving: dict[str, set[str]] = {self.flow.start: set()}
        by_source: dict[str, list[tuple[str, frozenset[str]]]] = defaultdict(list)
        for edge in self.edges:
            by_source[edge.source].append((edge.target, edge.sets))
        queue = deque([self.flow.start])
        while queue:
            node_id = queue.popleft()
            for target, sets in by_source[node_id]:
                leaving = arriving[node_id] | sets
                known = arriving.get(target)
                if known is None:
                    arriving[target] = set(leaving)
                    queue.append(target)
                elif not leaving <= known:
                    # Sets only grow, so this fixpoint loop ends.
                    known |= leaving
                    queue.append(target)
        return arriving

    def _reads(self, node: Node) -> list[tuple[int, str, str]]:
        """(line, where, slot) for every slot a node reads: templates and branch conditions."""
        reads: list[tuple[int, str, str]] = []
        where = f"node '{node.id}'"
        for path, spec in prompt_specs(node):
            reads += [
                (self.lines.node_line(node.id, path), f"{where}.{path}", name)
                for name in placeholders(spec)
            ]
        if is_listening(node):
            escalation = getattr(node, "escalation", None)
            defaults = self.flow.defaults
            for kind in ("no_input", "no_match"):
                if getattr(escalation, kind, None) is None:
                    for index, spec in enumerate(getattr(defaults, kind)):
                        reads += [
                            (self.lines.defaults.get(kind, 1), f"defaults.{kind}[{index}]", name)
                            for name in placeholders(spec)
                        ]
        if isinstance(node, AiGatherNode):
            reads += [
                (self.lines.node_line(node.id, "greeting"), f"{where}.greeting", name)
                for name in PLACEHOLDER.findall(node.greeting)
            ]
        if isinstance(node, Branch):
            for index, case in enumerate(node.cases):
                line = self.lines.node_line(node.id, f"cases[{index}]")
                for c in case.conditions:
                    # Testing whether a slot is set is exactly what present/absent are for.
                    if c.op not in ("present", "absent"):
                        reads.append((line, f"{where}.cases[{index}]", c.slot))
                    reads += [
                        (line, f"{where}.cases[{index}]", name)
                        for value in c.values
                        for name in PLACEHOLDER.findall(value)
                    ]
        templates: tuple[tuple[str, str], ...] = ()
        if isinstance(node, SetNode):
            templates = node.values
        elif isinstance(node, Fulfillment):
            templates = node.args
        reads += [
            (self.lines.node_line(node.id), where, name)
            for _, template in templates
            for name in PLACEHOLDER.findall(template)
        ]
        return [
            read
            for read in reads
            if not read[2].startswith("params.") and read[2] not in _CALL_FIELDS
        ]

    def languages(self) -> None:
        """With `languages:` declared, every prompt needs items, and every keyword mapping
        keywords, in each of them (a plain keyword list counts in every language)."""
        wanted = list(self.flow.languages)
        if not wanted:
            return
        located = [
            (self.lines.node_line(node_id, path), f"node '{node_id}'.{path}", spec)
            for node_id, node in self.flow.nodes.items()
            for path, spec in prompt_specs(node)
        ] + [
            (self.lines.defaults.get(path.split("[")[0], 1), f"defaults.{path}", spec)
            for path, spec in prompt_specs(self.flow.defaults)
        ]
        for line, where, spec in located:
            if not spec.items:
                continue  # nothing is said, in any language
            covered = {heard_in(self.flow, item) for item in spec.items}
            unheard = sorted(covered - set(wanted))
            if unheard:
                # Only a subflow's keys can name an undeclared language (the loader refuses
                # them in the flow itself); no call of this flow ever hears those items.
                self.add(
                    line,
                    WARNING,
                    where,
                    f"items in {', '.join(unheard)}, which the flow does not declare "
                    f"(languages: {', '.join(wanted)}): no call hears them",
                )
            missing = [language for language in wanted if language not in covered]
            if missing:
                self.add(
                    line,
                    ERROR,
                    where,
                    f"no prompt for language {', '.join(missing)} (the flow declares languages: "
                    f"{', '.join(wanted)}; this prompt has {', '.join(sorted(covered))}); "
                    f"calls in it hear the {self.flow.language} items",
                )
        texts = [
            (self.lines.node_line(node_id, "greeting"), f"node '{node_id}'.greeting", "greeting",
             node.greetings)
            for node_id, node in self.flow.nodes.items()
            if isinstance(node, AiGatherNode | AssistantNode) and node.greetings
        ]  # fmt: skip
        if self.flow.voices:
            texts.append((self.lines.top.get("voice", 1), "flow.voice", "voice", self.flow.voices))
        for line, where, what, by_language in texts:
            given = [language for language, _ in by_language]
            missing = [language for language in wanted if language not in given]
            if missing:
                self.add(
                    line,
                    ERROR,
                    where,
                    f"no {what} for language {', '.join(missing)} (the flow declares languages: "
                    f"{', '.join(wanted)}; it has {', '.join(given)}); calls in it get the "
                    f"{self.flow.language} one",
                )
        for line, where, said in self._keyword_mappings():
            given = [language for language, _ in said.keywords_by_language]
            missing = [language for language in wanted if language not in given]
            if missing:
                self.add(
                    line,
                    ERROR,
                    where,
                    f"no keywords for language {', '.join(missing)} (the flow declares "
                    f"languages: {', '.join(wanted)}; these keywords have {', '.join(given)})",
                )

    def _keyword_mappings(self) -> list[tuple[int, str, Command | Choice | Option]]:
        """(line, where, what) for every choice, option and command keyed by language."""
        found: list[tuple[int, str, Command | Choice | Option]] = []
        for node_id, node in self.flow.nodes.items():
            entries: tuple[tuple[str, Choice | Option], ...] = ()
            if isinstance(node, Menu):
                entries = tuple((f"choices[{i}]", c) for i, c in enumerate(node.choices))
            elif isinstance(node, Collect):
                entries = tuple((f"options[{i}]", o) for i, o in enumerate(node.options))
            found += [
                (self.lines.node_line(node_id, path), f"node '{node_id}'.{path}.keywords", entry)
                for path, entry in entries
                if entry.keywords_by_language
            ]
        raw = self.lines.data.get("commands")
        command_lines = raw.item_lines if isinstance(raw, LineList) else []
        for index, command in enumerate(self.flow.commands):
            if command.keywords_by_language:
                line = command_lines[index] if index < len(command_lines) else 1
                found.append((line, f"commands[{index}].keywords", command))
        return found

    def ignored_settings(self) -> None:
        """Settings the engine accepts but silently ignores (docs/flows.md, sections 7 and 9)."""
        defaults, lines = self.flow.defaults, self.lines
        if defaults.max_failures and not defaults.on_failure_budget:
            self.add(
                lines.defaults.get("max_failures", 1),
                WARNING,
                "defaults.max_failures",
                "has no effect without defaults.on_failure_budget (where the call goes when the budget is spent)",
            )
        if defaults.on_failure_budget and not defaults.max_failures:
            self.add(
                lines.defaults.get("on_failure_budget", 1),
                WARNING,
                "defaults.on_failure_budget",
                "is never used: defaults.max_failures is 0 (off)",
            )
        for node_id, node in self.flow.nodes.items():
            escalation = getattr(node, "escalation", None)
            if (
                isinstance(escalation, Escalation)
                and escalation.on_max
                and escalation.on_max_no_input
                and escalation.on_max_no_match
            ):
                self.add(
                    lines.node_line(node_id, "on_max"),
                    WARNING,
                    f"node '{node_id}'.on_max",
                    "is never used: on_max_no_input and on_max_no_match are both set, and "
                    "come first",
                )
        command_keys = {c.key: c.intent for c in self.flow.commands if c.key}
        for node_id, node in self.flow.nodes.items():
            if not isinstance(node, Menu):
                continue
            for index, choice in enumerate(node.choices):
                if choice.key in command_keys:
                    self.add(
                        lines.node_line(node_id, f"choices[{index}]"),
                        WARNING,
                        f"node '{node_id}'.choices[{index}]",
                        f"key '{choice.key}' is also the key of global command "
                        f"'{command_keys[choice.key]}', which wins: pressing it never picks "
                        f"'{choice.intent}'",
                    )
