"""YAML text to a tree of values that remember their line.

PyYAML's composer gives nodes with marks; we walk them ourselves so every value
keeps its line number, duplicate keys are caught (PyYAML keeps the last one
silently), and anything odd (complex keys, alias loops) becomes a Problem.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Union

import yaml

from .errors import ProblemList

MAX_DEPTH = 64
MAX_NODES = 200_000  # bounds alias expansion ("billion laughs")


@dataclass
class Node:
    value: Union[str, int, float, bool, None, dict[str, "Node"], list["Node"], object]
    line: int

    @property
    def is_map(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_seq(self) -> bool:
        return isinstance(self.value, list)


# LibYAML scans and parses in C, and PyYAML's own composer, bounded below, builds the nodes
# from its events: 10,000 backends parse in 1.8 s instead of PyYAML's 5.8 s in Python.
# LibYAML's composer would be faster still, but it recurses in C, where no depth bound can
# stop a hostile file.
_Parser: Any = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader


class _BoundedLoader(yaml.composer.Composer, _Parser):  # type: ignore[misc]
    """A safe loader whose composer refuses nesting deeper than MAX_DEPTH: PyYAML composes
    recursively, and 20,000 ``[`` would otherwise end in a RecursionError."""

    def __init__(self, text: str) -> None:
        _Parser.__init__(self, text)
        yaml.composer.Composer.__init__(self)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse_yaml(text: str, problems: ProblemList) -> Node | None:
    """Parse one YAML document; YAML errors go to ``problems`` and give None."""
    try:
        loader = _BoundedLoader(text)
    except yaml.YAMLError as e:  # e.g. a control character: the reader refuses the text
        problems.add("<yaml>", f"YAML error: {e}", None)
        return None
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line = mark.line + 1 if mark is not None else None
            problem = e.problem or e.context
            if problem and "maximum nesting depth" in problem:  # LibYAML's own bound, deeper than ours
                problem = f"nested more than {MAX_DEPTH} levels deep"
            problems.add("<yaml>", f"YAML syntax error: {problem}", line)
            return None
        except yaml.YAMLError as e:
            problems.add("<yaml>", f"YAML error: {e}", None)
            return None
        except RecursionError:  # a last guard; the composer's bound comes first
            problems.add("<yaml>", "nested too deeply", None)
            return None
        if root is None:
            problems.add("<yaml>", "the file is empty", None)
            return None
        return _convert(loader, root, "<yaml>", problems, 0, [0])
    finally:
        loader.dispose()


def _convert(
    loader: _BoundedLoader,
    node: yaml.Node,
    path: str,
    problems: ProblemList,
    depth: int,
    count: list[int],
) -> Node | None:
    line = node.start_mark.line + 1
    count[0] += 1
    if count[0] > MAX_NODES:
        if count[0] == MAX_NODES + 1:
            problems.add(path, f"more than {MAX_NODES} values (alias expansion?)", line)
        return None
    if depth > MAX_DEPTH:
        problems.add(path, "nested too deeply (alias loop?)", line)
        return None
    if isinstance(node, yaml.MappingNode):
        try:
            loader.flatten_mapping(node)  # resolves "<<" merge keys
        except yaml.YAMLError as e:
            problems.add(path, f"bad merge key: {getattr(e, 'problem', e)}", line)
            return None
        out: dict[str, Node] = {}
        for knode, vnode in node.value:
            kline = knode.start_mark.line + 1
            if not isinstance(knode, yaml.ScalarNode):
                problems.add(path, "keys must be plain strings", kline)
                continue
            key = _scalar(loader, knode, path, problems)
            if not isinstance(key, str):
                # YAML turns `80:` or `true:` into non-strings; names are strings here.
                key = str(key) if isinstance(key, (int, float, bool)) and knode.style is None else None
                if key is None:
                    problems.add(path, "keys must be plain strings", kline)
                    continue
            if key in out:
                problems.add(join_path(path, key), f"duplicate key (first at line {out[key].line})", kline)
                continue
            child = _convert(loader, vnode, join_path(path, key), problems, depth + 1, count)
            if child is not None:
                out[key] = child
        return Node(out, line)
    if isinstance(node, yaml.SequenceNode):
        items: list[Node] = []
        for i, item in enumerate(node.value):
            child = _convert(loader, item, f"{path}[{i}]", problems, depth + 1, count)
            if child is not None:
                items.append(child)
        return Node(items, line)
    return Node(_scalar(loader, node, path, problems), line)


def _scalar(loader: yaml.SafeLoader, node: yaml.Node, path: str, problems: ProblemList) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError) as e:
        problems.add(path, f"cannot read value: {e}", node.start_mark.line + 1)
        return None


_PLAIN_KEY = re.compile(r"[^.\[\]\s\"']+")


def join_path(path: str, key: str) -> str:
    """``a.b``; keys that would make the path ambiguous are quoted: ``a."b c"``."""
    if not _PLAIN_KEY.fullmatch(key):
        key = json.dumps(key)
    return key if path == "<yaml>" else f"{path}.{key}"
