"""maglevc's command grammar: keywords, name slots, prefix matching, completion, help.

Pure: live names come from a callback. A keyword matches exactly, or by a
unique prefix; where the candidates only differ by a suffix (backend,
backends) an abbreviation means the longest (``sh ba`` is ``show backends``)
and an exact match always wins (``show backend web0``). Errors name the token
that did not fit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..config.durations import DurationError, parse_duration

Names = Callable[[str], list[str]]  # slot kind -> live values (frontend, backend, healthcheck, pool)

SLOT_HELP = {
    "frontend": "<frontend name>",
    "backend": "<backend name>",
    "healthcheck": "<health check name>",
    "pool": "<pool name>",
    "weight": "<weight 0-100>",
    "num": "<count>",
    "level": "debug|info|warn|error",
    "duration": "<duration>",
}
SLOT_EXPLAINED = {
    "frontend": "a frontend of the configuration",
    "backend": "a backend of the configuration",
    "healthcheck": "a health check of the configuration",
    "pool": "a pool of the frontend",
    "weight": "the weight VPP is given while the backend is up (0: no new flows)",
    "num": "stop after this many events",
    "level": "the lowest log level shown",
    "duration": "30s, 10m, 2h: after that it returns by itself",
}
# What Enter does at the end of a complete command (the ``?`` key's last line).
ENTER = {
    "show_version": "print maglevc's and maglevd's versions, the config generation and the API's security",
    "show_frontends": "print every frontend: VIP, pools, weights, buckets, table digest and fidelity",
    "show_frontend": "print this frontend: VIP, pools, weights, buckets, table digest and fidelity",
    "show_backends": "print every backend's state, address, check and last result",
    "show_backend": "print this backend: state, last probe, transitions, overrides",
    "show_healthchecks": "print every health check and the backends using it",
    "show_healthcheck": "print this health check and the backends using it",
    "vpp_info": "print VPP's version, pid, uptime and API mode",
    "vpp_lb_state": "read VPP's lb state now and print its VIPs and ASes",
    "vpp_lb_counters": "print the lb plugin's per-VIP packet counters",
    "sync": "reconcile VPP with what maglevd wants, now",
    "backend_pause": "pause the backend: weight 0, established flows stay, probes stop",
    "backend_resume": "resume the backend: probes start again, it rejoins once they pass",
    "backend_enable": "enable the backend again: probes start, it rejoins once they pass",
    "backend_disable": "disable the backend: weight 0 and its established flows dropped",
    "set_weight": "set the pool member's weight in VPP (with flush: also drop its flows at 0)",
    "release_isolation": "let go of the backends the checker-isolation guard holds",
    "config_check": "check the configuration file on disk, change nothing",
    "config_reload": "reload the configuration file (as SIGHUP)",
    "watch": "follow events until a key is pressed",
    "quit": "leave the shell",
}


@dataclass
class Node:
    word: str  # a keyword, or a slot kind when ``slot``
    help: str = ""
    children: list[Node] = field(default_factory=list)
    action: str | None = None  # complete here
    slot: bool = False
    options: list[Node] = field(default_factory=list)  # repeatable options after this node (watch events)

    @property
    def label(self) -> str:
        return SLOT_HELP.get(self.word, f"<{self.word}>") if self.slot else self.word


def kw(word: str, help: str = "", children: list[Node] | None = None, action: str | None = None) -> Node:
    return Node(word, help, children or [], action)


def slot(kind: str, children: list[Node] | None = None, action: str | None = None) -> Node:
    return Node(kind, SLOT_HELP.get(kind, ""), children or [], action, slot=True)


def _for(action: str) -> Node:
    return kw("for", "end it by itself after a time (30s, 10m, 2h)", [slot("duration", action=action)])


def _backend_actions() -> list[Node]:
    timed = ("pause", "disable")
    return [
        kw(a, f"{a} the backend", [_for(f"backend_{a}")] if a in timed else [], action=f"backend_{a}")
        for a in ("pause", "resume", "enable", "disable")
    ]


TREE = kw(
    "",
    children=[
        kw(
            "show",
            "show state",
            [
                kw("version", "client and daemon version", action="show_version"),
                kw("frontends", "all frontends", action="show_frontends"),
                kw("frontend", "one frontend", [slot("frontend", action="show_frontend")]),
                kw(
                    "backends",
                    "all backends (or one)",
                    [slot("backend", action="show_backend")],
                    action="show_backends",
                ),
                kw("backend", "one backend", [slot("backend", action="show_backend")]),
                kw("healthchecks", "all health checks", action="show_healthchecks"),
                kw("healthcheck", "one health check", [slot("healthcheck", action="show_healthcheck")]),
                kw(
                    "vpp",
                    "the VPP dataplane",
                    [
                        kw("info", "VPP version, pid, uptime, API mode", action="vpp_info"),
                        kw(
                            "lb",
                            "the lb plugin",
                            [
                                kw("state", "VIPs and ASes as VPP has them", action="vpp_lb_state"),
                                kw("counters", "per-VIP packet counters", action="vpp_lb_counters"),
                            ],
                        ),
                    ],
                ),
            ],
        ),
        kw(
            "sync",
            "reconcile VPP now",
            [
                kw(
                    "vpp",
                    "",
                    [
                        kw(
                            "lb",
                            "",
                            [
                                kw(
                                    "state",
                                    "everything, or one frontend",
                                    [kw("frontend", "one frontend's VIP", [slot("frontend", action="sync")])],
                                    action="sync",
                                )
                            ],
                        )
                    ],
                )
            ],
        ),
        kw(
            "set",
            "change something",
            [
                kw("backend", "pause, resume, enable or disable a backend", [slot("backend", _backend_actions())]),
                kw(
                    "frontend",
                    "set a pool member's weight",
                    [
                        slot(
                            "frontend",
                            [
                                kw(
                                    "pool",
                                    "",
                                    [
                                        slot(
                                            "pool",
                                            [
                                                kw(
                                                    "backend",
                                                    "",
                                                    [
                                                        slot(
                                                            "backend",
                                                            [
                                                                kw(
                                                                    "weight",
                                                                    "",
                                                                    [
                                                                        slot(
                                                                            "weight",
                                                                            [
                                                                                kw(
                                                                                    "flush",
                                                                                    "also drop its flows",
                                                                                    [_for("set_weight")],
                                                                                    action="set_weight",
                                                                                ),
                                                                                _for("set_weight"),
                                                                            ],
                                                                            action="set_weight",
                                                                        )
                                                                    ],
                                                                )
                                                            ],
                                                        )
                                                    ],
                                                )
                                            ],
                                        )
                                    ],
                                )
                            ],
                        )
                    ],
                ),
            ],
        ),
        kw(
            "release",
            "let go of something maglevd holds",
            [
                kw(
                    "isolation",
                    "the checker-isolation guard: follow the health checker again",
                    action="release_isolation",
                )
            ],
        ),
        kw(
            "config",
            "the configuration file",
            [
                kw("check", "check it", action="config_check"),
                kw("reload", "reload it (as SIGHUP)", action="config_reload"),
            ],
        ),
        kw(
            "watch",
            "follow events",
            [Node("events", "stream events until a key is pressed", action="watch", options=[])],
        ),
        kw("quit", "leave the shell", action="quit"),
        kw("exit", "leave the shell", action="quit"),
    ],
)


def _previewed(node: Node) -> Node:
    """A ``set`` subtree as ``preview`` takes it: the same words, every action previewed,
    without ``for`` (a preview has no lifetime)."""
    children = [_previewed(c) for c in node.children if c.word != "for" or c.slot]
    action = f"preview_{node.action}" if node.action else None
    return Node(node.word, node.help, children, action, node.slot)


_SET = next(n for n in TREE.children if n.word == "set")
TREE.children.insert(
    TREE.children.index(_SET) + 1,
    kw(
        "preview",
        "what a change would do to VPP's tables, without making it",
        [
            *(_previewed(c) for c in _SET.children),
            kw("reload", "the configuration file on disk against the running one", action="preview_reload"),
        ],
    ),
)
WATCH_OPTIONS = [
    kw("num", "stop after this many events", [slot("num")]),
    kw("log", "log events", [kw("level", "the lowest level", [slot("level")])]),
    kw("backend", "backend events"),
    kw("frontend", "frontend events"),
    kw("vpp", "VPP connection events"),
]
next(n for n in TREE.children if n.word == "watch").children[0].options = WATCH_OPTIONS


class ParseError(Exception):
    pass


@dataclass
class Parsed:
    action: str
    args: dict[str, str]
    flags: set[str]


def _match(token: str, nodes: list[Node]) -> Node | None:
    """Exact keyword, else unique keyword prefix, else the slot; None when nothing fits."""
    words = [n for n in nodes if not n.slot]
    for n in words:
        if n.word == token:
            return n
    prefixed = sorted((n for n in words if n.word.startswith(token)), key=lambda n: len(n.word))
    if len(prefixed) == 1:
        return prefixed[0]
    if len(prefixed) > 1 and all(b.word.startswith(a.word) for a, b in zip(prefixed, prefixed[1:], strict=False)):
        return prefixed[-1]  # backend/backends: an abbreviation means the list; the singular is typed whole
    if len(prefixed) > 1:
        raise ParseError(f"ambiguous {token!r}: {', '.join(n.word for n in prefixed)}")
    slots = [n for n in nodes if n.slot]
    return slots[0] if slots else None


def _check_slot(node: Node, token: str) -> None:
    if node.word in ("weight", "num"):
        if not token.isdigit():
            raise ParseError(f"{token!r} is not a number")
        if node.word == "weight" and int(token) > 100:
            raise ParseError(f"weight {token} is out of 0..100")
    if node.word == "duration":
        try:
            seconds = parse_duration(token)
        except DurationError as e:
            raise ParseError(f"{token!r}: {e}") from None
        if seconds <= 0:
            raise ParseError(f"{token!r}: a duration must be more than 0")
    if node.word == "level" and token not in ("debug", "info", "warn", "error"):
        raise ParseError(f"{token!r} is not a log level (debug, info, warn, error)")


def parse(tokens: list[str]) -> Parsed:
    node = TREE
    args: dict[str, str] = {}
    flags: set[str] = set()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if node.options:
            opt = _match(token, node.options)
            if opt is None:
                raise ParseError(
                    f"unknown option {token!r}; expected one of: {', '.join(n.word for n in node.options)}"
                )
            flags.add(opt.word)
            i += 1
            cur = opt
            while cur.children and i < len(tokens):
                nxt = _match(tokens[i], cur.children)
                if nxt is None:
                    break
                if nxt.slot:
                    _check_slot(nxt, tokens[i])
                    args[f"{opt.word}.{nxt.word}"] = tokens[i]
                else:
                    flags.add(f"{opt.word}.{nxt.word}")
                cur = nxt
                i += 1
            if cur.slot is False and cur.children and cur.children[0].slot:
                raise ParseError(f"{opt.word!r} needs {cur.children[0].label}")
            continue
        nxt = _match(token, node.children)
        if nxt is None:
            expected = ", ".join(n.label for n in node.children) or "nothing more"
            where = " ".join(tokens[:i]) or "the start"
            raise ParseError(f"unknown {token!r} after {where}; expected {expected}")
        if nxt.slot:
            _check_slot(nxt, token)
            args[nxt.word] = token
        elif nxt.action and nxt.word == "flush":
            flags.add("flush")
        node = nxt
        i += 1
    if node.action is None:
        expected = ", ".join(n.label for n in node.children)
        raise ParseError(f"incomplete command; next: {expected}")
    return Parsed(node.action, args, flags)


def _position(tokens: list[str]) -> Node:
    """The node after the complete tokens (for completion and help); tolerant of errors."""
    node = TREE
    for token in tokens:
        if node.options:
            return node
        try:
            nxt = _match(token, node.children)
        except ParseError:
            return Node("")
        if nxt is None:
            return Node("")
        node = nxt
    return node


def candidates(line: str, names: Names) -> list[str]:
    """Completions for the last (partial) word of ``line``."""
    words = line.split()
    partial = "" if line.endswith(" ") or not line else words.pop()
    node = _position(words)
    options = node.options or node.children
    out: list[str] = []
    for n in options:
        if n.slot:
            if n.word in ("frontend", "backend", "healthcheck", "pool"):
                out += [v for v in names(n.word) if v.startswith(partial)]
        elif n.word.startswith(partial):
            out.append(n.word)
    return sorted(set(out))


def _enter(action: str) -> str:
    if action.startswith("preview_"):
        return "show what it would do to VPP's tables (buckets moved, drains, flushes), change nothing"
    return ENTER.get(action, "run it")


def help_lines(line: str, names: Names | None = None) -> list[str]:
    """What may come next, each with what it means, birdc style (the ``?`` key): after a
    partial word the words it may be, in a name's position the names there are, and after
    a complete command what Enter will do."""
    words = line.split()
    partial = "" if line.endswith(" ") or not line else words.pop()
    node = _position(words)
    lines = []
    for n in node.options or node.children:
        if n.slot:
            lines.append(f"  {n.label:<22} {SLOT_EXPLAINED.get(n.word, n.help)}")
            known = (
                names(n.word) if names is not None and n.word in ("frontend", "backend", "healthcheck", "pool") else []
            )
            known = [v for v in known if v.startswith(partial)]
            if known:
                lines.append(f"  {'':<22} {', '.join(known)}")
        elif n.word.startswith(partial):
            lines.append(f"  {n.label:<22} {n.help or _what(n)}".rstrip())
    if node.action is not None and not partial:
        lines.append(f"  {'<enter>':<22} {_enter(node.action)}")
    return lines


def _what(n: Node) -> str:
    """A keyword without help of its own: what follows it."""
    if n.children and n.children[0].slot:
        return f"then {n.children[0].label}"
    return ""
