"""Stage 1: the YAML tree to typed objects (unknown keys, types, required keys).

Every problem is collected; nothing here knows about cross references, which
are stage 2's business (``semantics.py``). ``Lines`` remembers where each path
was written so stage 2 can name lines too.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any, TypeVar

from .durations import DurationError, parse_duration
from .errors import ErrorKind, ProblemList
from .model import (
    Agent,
    AllDown,
    Backend,
    CheckType,
    Config,
    Dampening,
    DnsParams,
    Encap,
    ExecParams,
    Frontend,
    GrpcParams,
    HealthCheck,
    HealthCheckerSettings,
    HttpParams,
    IcmpParams,
    IPAddress,
    LbSettings,
    NatService,
    Params,
    Pool,
    PoolMember,
    Protocol,
    StatusRange,
    TcpParams,
    frozen_map,
)
from .yamltree import Node, join_path, parse_yaml

T = TypeVar("T")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
E = TypeVar("E")

MISSING: Any = object()


class Lines(dict[str, int]):
    """YAML path -> line number, filled while reading."""

    def of(self, path: str) -> int | None:
        while path:
            if path in self:
                return self[path]
            cut = max(path.rfind("."), path.rfind("["))
            if cut <= 0:
                return None
            path = path[:cut]
        return None


class Reader:
    def __init__(self, problems: ProblemList, lines: Lines) -> None:
        self.problems = problems
        self.lines = lines

    def err(self, path: str, message: str, node: Node | None) -> None:
        line = node.line if node is not None else self.lines.of(path)
        self.problems.add(path, message, line)

    # -- containers -------------------------------------------------------------
    def mapping(self, node: Node | None, path: str) -> dict[str, Node] | None:
        if node is None:
            return None
        self.lines[path] = node.line
        if node.value is None:
            return {}
        if not isinstance(node.value, dict):
            self.err(path, f"expected a mapping, got {_kind(node.value)}", node)
            return None
        return node.value

    def fields(
        self,
        node: Node | None,
        path: str,
        known: set[str],
        required: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> dict[str, Node] | None:
        m = self.mapping(node, path)
        if m is None:
            return None
        for key, child in m.items():
            if key not in known:
                hint = _suggest(key, known)
                self.err(join_path(path, key), "unknown key" + hint, child)
            else:
                self.lines[join_path(path, key)] = child.line
        for key in sorted(required - set(m)):
            self.err(join_path(path, key), "required key is missing", node)
        return m

    # -- scalars ----------------------------------------------------------------
    def string(self, node: Node | None, path: str, default: Any = MISSING) -> Any:
        if node is None or (node.value is None and default is not MISSING):
            return None if default is MISSING else default
        if isinstance(node.value, str):
            return node.value
        self.err(path, f"expected a string, got {_kind(node.value)}", node)
        return default if default is not MISSING else None

    def integer(self, node: Node | None, path: str, default: Any = MISSING) -> Any:
        if node is None:
            return None if default is MISSING else default
        if isinstance(node.value, int) and not isinstance(node.value, bool):
            return node.value
        self.err(path, f"expected an integer, got {_kind(node.value)}", node)
        return default if default is not MISSING else None

    def boolean(self, node: Node | None, path: str, default: bool) -> bool:
        if node is None:
            return default
        if isinstance(node.value, bool):
            return node.value
        self.err(path, f"expected true or false, got {_kind(node.value)}", node)
        return default

    def duration(self, node: Node | None, path: str, default: float) -> float:
        if node is None:
            return default
        v = node.value
        if isinstance(v, int) and not isinstance(v, bool) and v == 0:
            return 0.0
        if not isinstance(v, str):
            self.err(path, f"expected a duration such as 2s or 500ms, got {_kind(v)}", node)
            return default
        try:
            return parse_duration(v)
        except DurationError as e:
            self.err(path, str(e), node)
            return default

    def choice(self, node: Node | None, path: str, enum: type[E], default: Any = MISSING) -> Any:
        if node is None:
            return default
        options = [m.value for m in enum]  # type: ignore[attr-defined]
        if isinstance(node.value, str) and node.value in options:
            return enum(node.value)  # type: ignore[call-arg]
        self.err(path, f"must be one of {', '.join(options)}, got {_show(node.value)}", node)
        return default if default is not MISSING else None

    def address(self, node: Node | None, path: str, family: int | None = None) -> IPAddress | None:
        if node is None:
            return None
        v = node.value
        if not isinstance(v, str):
            self.err(path, f"expected an IP address, got {_kind(v)}", node)
            return None
        try:
            addr = ipaddress.ip_address(v.strip())
        except ValueError:
            self.err(path, f"{_show(v)} is not an IP address", node)
            return None
        if family is not None and addr.version != family:
            self.err(path, f"{v} is not an IPv{family} address", node)
            return None
        return addr

    def named_map(self, node: Node | None, path: str, build: Callable[[str, Node, str], T | None]) -> dict[str, T]:
        out: dict[str, T] = {}
        m = self.mapping(node, path)
        for name, child in (m or {}).items():
            p = join_path(path, name)
            self.lines[p] = child.line
            if not NAME.fullmatch(name):
                self.err(
                    p,
                    "names must start with a letter or digit and use only letters, digits, '.', '_', '-' "
                    "(at most 63 characters)",
                    child,
                )
                continue
            item = build(name, child, p)
            if item is not None:
                out[name] = item
        return out


def _kind(v: object) -> str:
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return f"a boolean ({str(v).lower()})"
    if isinstance(v, int):
        return f"an integer ({v})"
    if isinstance(v, float):
        return f"a number ({v})"
    if isinstance(v, str):
        return f"a string ({_show(v)})"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    return f"a {type(v).__name__}"


def _show(v: object) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _suggest(key: str, known: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, sorted(known), n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (expected one of: {', '.join(sorted(known))})"


# --- the schema --------------------------------------------------------------------

_HC_COMMON = {
    "type",
    "port",
    "interval",
    "fast-interval",
    "down-interval",
    "timeout",
    "rise",
    "fall",
    "probe-ipv4-src",
    "probe-ipv6-src",
    "params",
}
_HTTP_PARAMS = {"path", "host", "method", "expect-status", "expect-body", "insecure", "headers"}
_TCP_PARAMS = {"send", "expect"}
_ICMP_PARAMS = {"payload-size"}
_DNS_PARAMS = {"query", "qtype", "rcode", "expect", "transport"}
_GRPC_PARAMS = {"service", "tls", "host", "insecure"}
_EXEC_PARAMS = {"command", "shell", "dynamic-weight", "output-limit"}
_CHECKER_KEYS = {"transition-history", "netns", "isolation-threshold", "isolation-window", "exec-concurrency"}
_LB_KEYS = {
    "sync-interval",
    "ipv4-src-address",
    "ipv6-src-address",
    "sticky-buckets-per-core",
    "flow-timeout",
    "startup-min-delay",
    "startup-max-delay",
}
_BACKEND_KEYS = {"address", "healthcheck", "enabled", "slow-start", "dampening", "agent"}
_AGENT_KEYS = {"port", "interval", "timeout"}
_DAMPENING_KEYS = {"penalty", "half-life", "suppress", "reuse"}
_POOL_KEYS = {"name", "backends", "slow-start"}
_STATUS = re.compile(r"^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$")


def read_structure(text: str) -> tuple[Config, Lines]:
    """Stage 1. Raises ConfigError(STRUCTURAL) listing every problem found."""
    problems = ProblemList()
    lines = Lines()
    root = parse_yaml(text, problems)
    problems.raise_if_any(ErrorKind.STRUCTURAL)
    r = Reader(problems, lines)
    top = r.fields(root, "<yaml>", {"maglev"}, {"maglev"})
    cfg = Config()
    if top is not None and "maglev" in top:
        cfg = _read_maglev(r, top["maglev"])
    problems.raise_if_any(ErrorKind.STRUCTURAL)
    return cfg, lines


def _read_maglev(r: Reader, node: Node) -> Config:
    path = "maglev"
    m = r.fields(node, path, {"healthchecker", "vpp", "healthchecks", "backends", "frontends"})
    if m is None:
        return Config()
    hcs = r.named_map(m.get("healthchecks"), f"{path}.healthchecks", lambda n, c, p: _read_hc(r, n, c, p))
    backends = r.named_map(m.get("backends"), f"{path}.backends", lambda n, c, p: _read_backend(r, n, c, p))
    frontends = r.named_map(m.get("frontends"), f"{path}.frontends", lambda n, c, p: _read_frontend(r, n, c, p))
    return Config(
        healthchecker=_read_checker(r, m.get("healthchecker")),
        lb=_read_vpp(r, m.get("vpp")),
        healthchecks=frozen_map(hcs),
        backends=frozen_map(backends),
        frontends=frozen_map(frontends),
    )


def _read_checker(r: Reader, node: Node | None) -> HealthCheckerSettings:
    path = "maglev.healthchecker"
    m = r.fields(node, path, _CHECKER_KEYS)
    if not m:
        return HealthCheckerSettings()
    netns = r.string(m.get("netns"), f"{path}.netns", None)
    threshold = r.integer(m.get("isolation-threshold"), f"{path}.isolation-threshold", 0)
    if threshold is not None and not 0 <= threshold < 100:
        r.err(
            f"{path}.isolation-threshold",
            f"must be a percentage 0..99 (0: off), got {threshold}",
            m.get("isolation-threshold"),
        )
        threshold = 0
    window = r.duration(m.get("isolation-window"), f"{path}.isolation-window", 10.0)
    if window <= 0:
        r.err(f"{path}.isolation-window", "must be more than 0", m.get("isolation-window"))
    return HealthCheckerSettings(
        transition_history=r.integer(m.get("transition-history"), f"{path}.transition-history", 5),
        netns=netns or None,
        isolation_threshold=(threshold or 0) / 100.0,
        isolation_window=window if window > 0 else 10.0,
        exec_concurrency=r.integer(m.get("exec-concurrency"), f"{path}.exec-concurrency", 8),
    )


def _read_vpp(r: Reader, node: Node | None) -> LbSettings:
    vpp = r.fields(node, "maglev.vpp", {"lb"})
    if not vpp:
        return LbSettings()
    path = "maglev.vpp.lb"
    m = r.fields(vpp.get("lb"), path, _LB_KEYS)
    if not m:
        return LbSettings()
    d = LbSettings()
    return LbSettings(
        sync_interval=r.duration(m.get("sync-interval"), f"{path}.sync-interval", d.sync_interval),
        ipv4_src_address=r.address(m.get("ipv4-src-address"), f"{path}.ipv4-src-address"),  # type: ignore[arg-type]
        ipv6_src_address=r.address(m.get("ipv6-src-address"), f"{path}.ipv6-src-address"),  # type: ignore[arg-type]
        sticky_buckets_per_core=r.integer(
            m.get("sticky-buckets-per-core"), f"{path}.sticky-buckets-per-core", d.sticky_buckets_per_core
        ),
        flow_timeout=r.duration(m.get("flow-timeout"), f"{path}.flow-timeout", d.flow_timeout),
        startup_min_delay=r.duration(m.get("startup-min-delay"), f"{path}.startup-min-delay", d.startup_min_delay),
        startup_max_delay=r.duration(m.get("startup-max-delay"), f"{path}.startup-max-delay", d.startup_max_delay),
    )


def _read_hc(r: Reader, name: str, node: Node, path: str) -> HealthCheck | None:
    m = r.fields(node, path, _HC_COMMON, {"type"})
    if m is None:
        return None
    ctype: CheckType | None = r.choice(m.get("type"), f"{path}.type", CheckType, None)
    d = HealthCheck(name=name, type=CheckType.TCP)
    port = r.integer(m.get("port"), f"{path}.port", None)
    params: Params
    pnode = m.get("params")
    ppath = f"{path}.params"
    if ctype in (CheckType.HTTP, CheckType.HTTPS):
        params = _read_http(r, pnode, ppath, ctype)
    elif ctype is CheckType.ICMP:
        pm = r.fields(pnode, ppath, _ICMP_PARAMS) or {}
        params = IcmpParams(payload_size=r.integer(pm.get("payload-size"), f"{ppath}.payload-size", 56))
    elif ctype is CheckType.DNS:
        params = _read_dns(r, pnode, ppath)
    elif ctype is CheckType.GRPC:
        pm = r.fields(pnode, ppath, _GRPC_PARAMS) or {}
        g = GrpcParams()
        params = GrpcParams(
            service=r.string(pm.get("service"), f"{ppath}.service", g.service),
            tls=r.boolean(pm.get("tls"), f"{ppath}.tls", g.tls),
            host=r.string(pm.get("host"), f"{ppath}.host", None),
            insecure=r.boolean(pm.get("insecure"), f"{ppath}.insecure", g.insecure),
        )
    elif ctype is CheckType.EXEC:
        params = _read_exec(r, pnode, ppath)
    else:
        pm = r.fields(pnode, ppath, _TCP_PARAMS) or {}
        params = TcpParams(
            send=r.string(pm.get("send"), f"{ppath}.send", None),
            expect=r.string(pm.get("expect"), f"{ppath}.expect", None),
        )
    hc = HealthCheck(
        name=name,
        type=ctype or CheckType.TCP,
        port=port,
        interval=r.duration(m.get("interval"), f"{path}.interval", d.interval),
        fast_interval=r.duration(m.get("fast-interval"), f"{path}.fast-interval", d.fast_interval),
        down_interval=r.duration(m.get("down-interval"), f"{path}.down-interval", d.down_interval),
        timeout=r.duration(m.get("timeout"), f"{path}.timeout", d.timeout),
        rise=r.integer(m.get("rise"), f"{path}.rise", d.rise),
        fall=r.integer(m.get("fall"), f"{path}.fall", d.fall),
        probe_ipv4_src=r.address(m.get("probe-ipv4-src"), f"{path}.probe-ipv4-src"),  # type: ignore[arg-type]
        probe_ipv6_src=r.address(m.get("probe-ipv6-src"), f"{path}.probe-ipv6-src"),  # type: ignore[arg-type]
        params=params,
    )
    return hc if ctype is not None else None


def _read_dns(r: Reader, node: Node | None, path: str) -> DnsParams:
    m = r.fields(node, path, _DNS_PARAMS) or {}  # query is required: semantics says so
    d = DnsParams()
    qtype, rcode = (
        r.string(m.get("qtype"), f"{path}.qtype", d.qtype),
        r.string(m.get("rcode"), f"{path}.rcode", d.rcode),
    )
    return DnsParams(
        query=r.string(m.get("query"), f"{path}.query", d.query),
        qtype=qtype.upper() if isinstance(qtype, str) else d.qtype,
        rcode=rcode.upper() if isinstance(rcode, str) else d.rcode,
        expect=r.string(m.get("expect"), f"{path}.expect", None),
        transport=r.string(m.get("transport"), f"{path}.transport", d.transport),
    )


def _read_exec(r: Reader, node: Node | None, path: str) -> ExecParams:
    m = r.fields(node, path, _EXEC_PARAMS) or {}
    d = ExecParams()
    command: list[str] = []
    cnode = m.get("command")
    if cnode is not None:
        items = cnode.value if isinstance(cnode.value, list) else [cnode]
        for i, item in enumerate(items):
            v = item.value
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                v = str(v)  # an argument like 80 is the text "80"
            if not isinstance(v, str):
                r.err(f"{path}.command[{i}]", f"expected a string, got {_kind(v)}", item)
                continue
            command.append(v)
    return ExecParams(
        command=tuple(command),
        shell=r.boolean(m.get("shell"), f"{path}.shell", d.shell),
        dynamic_weight=r.boolean(m.get("dynamic-weight"), f"{path}.dynamic-weight", d.dynamic_weight),
        output_limit=r.integer(m.get("output-limit"), f"{path}.output-limit", d.output_limit),
    )


def _read_http(r: Reader, node: Node | None, path: str, ctype: CheckType) -> HttpParams:
    m = r.fields(node, path, _HTTP_PARAMS) or {}
    d = HttpParams()
    headers: list[tuple[str, str]] = []
    hm = r.mapping(m.get("headers"), f"{path}.headers") or {}
    for hname, hval in hm.items():
        v = hval.value
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)
        if not isinstance(v, str):
            r.err(join_path(f"{path}.headers", hname), f"expected a string, got {_kind(v)}", hval)
            continue
        r.lines[join_path(f"{path}.headers", hname)] = hval.line
        headers.append((hname, v))
    method = r.string(m.get("method"), f"{path}.method", d.method)
    return HttpParams(
        path=r.string(m.get("path"), f"{path}.path", d.path),
        host=r.string(m.get("host"), f"{path}.host", None),
        method=method.upper() if isinstance(method, str) else d.method,
        expect_status=_read_status(r, m.get("expect-status"), f"{path}.expect-status"),
        expect_body=r.string(m.get("expect-body"), f"{path}.expect-body", None),
        insecure=r.boolean(m.get("insecure"), f"{path}.insecure", d.insecure),
        headers=tuple(headers),
    )


def _read_status(r: Reader, node: Node | None, path: str) -> tuple[StatusRange, ...]:
    """``200``, ``"200-299"``, ``"200,204,300-399"`` or a list of those."""
    if node is None:
        return HttpParams().expect_status
    items: list[tuple[object, Node]] = []
    if isinstance(node.value, list):
        items = [(n.value, n) for n in node.value]
    else:
        items = [(node.value, node)]
    ranges: list[StatusRange] = []
    for value, n in items:
        parts = value.split(",") if isinstance(value, str) else [value]
        for part in parts:
            if isinstance(part, int) and not isinstance(part, bool):
                ranges.append(StatusRange(part, part))
                continue
            mt = _STATUS.match(part) if isinstance(part, str) else None
            if mt is None:
                r.err(path, f'expected status codes like 200, 200-399 or "200,204", got {_show(part)}', n)
                continue
            low = int(mt.group(1))
            ranges.append(StatusRange(low, int(mt.group(2) or low)))
    return tuple(ranges) if ranges else HttpParams().expect_status


def _read_backend(r: Reader, name: str, node: Node, path: str) -> Backend | None:
    m = r.fields(node, path, _BACKEND_KEYS, {"address", "healthcheck"})
    if m is None:
        return None
    addr = r.address(m.get("address"), f"{path}.address")
    hc = r.string(m.get("healthcheck"), f"{path}.healthcheck", None)
    enabled = r.boolean(m.get("enabled"), f"{path}.enabled", True)
    slow = _slow_start(r, m, path)
    damp = _dampening(r, m.get("dampening"), f"{path}.dampening")
    agent = _agent(r, m.get("agent"), f"{path}.agent")
    if addr is None or hc is None:
        return None
    return Backend(
        name=name, address=addr, healthcheck=hc, enabled=enabled, slow_start=slow, dampening=damp, agent=agent
    )


def _agent(r: Reader, node: Node | None, path: str) -> Agent | None:
    m = r.fields(node, path, _AGENT_KEYS, {"port"})
    if m is None:
        return None
    port = r.integer(m.get("port"), f"{path}.port", None)
    if port is None:
        return None
    if not 1 <= port <= 65535:
        r.err(f"{path}.port", f"must be 1..65535, got {port}", m.get("port"))
    d = Agent(port)
    interval = r.duration(m.get("interval"), f"{path}.interval", d.interval)
    timeout = r.duration(m.get("timeout"), f"{path}.timeout", d.timeout)
    for key, value in (("interval", interval), ("timeout", timeout)):
        if not 0.01 <= value <= 3600:
            r.err(f"{path}.{key}", "must be between 10ms and 1h", m.get(key))
    return Agent(port, interval, timeout)


def _dampening(r: Reader, node: Node | None, path: str) -> Dampening | None:
    """``dampening: true`` (RFC 2439's usual figures), ``false``, or a mapping of them."""
    if node is None or node.value is False:
        return None
    if node.value is True:
        return Dampening()
    m = r.fields(node, path, _DAMPENING_KEYS)
    if m is None:
        return None
    d = Dampening()
    values = {}
    for key in ("penalty", "suppress", "reuse"):
        v = r.integer(m.get(key), f"{path}.{key}", int(getattr(d, key)))
        if v is not None and v <= 0:
            r.err(f"{path}.{key}", f"must be more than 0, got {v}", m.get(key))
        values[key] = float(v) if v is not None else getattr(d, key)
    half_life = r.duration(m.get("half-life"), f"{path}.half-life", d.half_life)
    if half_life <= 0:
        r.err(f"{path}.half-life", "must be more than 0", m.get("half-life"))
        half_life = d.half_life
    if values["reuse"] >= values["suppress"]:
        r.err(f"{path}.reuse", f"must be below suppress ({values['suppress']:g})", m.get("reuse") or node)
    return Dampening(values["penalty"], half_life, values["suppress"], values["reuse"])


def _slow_start(r: Reader, m: dict[str, Node], path: str) -> float | None:
    return r.duration(m["slow-start"], f"{path}.slow-start", 0.0) if "slow-start" in m else None


_FRONTEND_KEYS = {
    "on-all-down",
    "fit-weights",
    "drain-timeout",
    "slow-start",
    "address",
    "protocol",
    "port",
    "encap",
    "pools",
    "src-ip-sticky",
    "flush-on-down",
    "new-flows-table-length",
    "description",
    "dscp",
    "target-port",
    "nat-service",
}


def _read_frontend(r: Reader, name: str, node: Node, path: str) -> Frontend | None:
    m = r.fields(node, path, _FRONTEND_KEYS, {"address", "pools"})
    if m is None:
        return None
    d_len = 1024
    addr = r.address(m.get("address"), f"{path}.address")
    protocol = r.choice(m.get("protocol"), f"{path}.protocol", Protocol, Protocol.TCP)
    port = r.integer(m.get("port"), f"{path}.port", 0 if protocol is Protocol.ANY else None)
    if port is None and "port" not in m and protocol is not Protocol.ANY:
        r.err(f"{path}.port", f"required key is missing (protocol {protocol.value if protocol else '?'})", node)
    encap = r.choice(m.get("encap"), f"{path}.encap", Encap, None)
    pools = _read_pools(r, m.get("pools"), f"{path}.pools")
    frontend = Frontend(
        name=name,
        address=addr,  # type: ignore[arg-type]
        protocol=protocol or Protocol.TCP,
        port=port if isinstance(port, int) else 0,
        pools=tuple(pools),
        encap=encap,
        src_ip_sticky=r.boolean(m.get("src-ip-sticky"), f"{path}.src-ip-sticky", False),
        flush_on_down=r.boolean(m.get("flush-on-down"), f"{path}.flush-on-down", True),
        new_flows_table_length=r.integer(m.get("new-flows-table-length"), f"{path}.new-flows-table-length", d_len),
        description=r.string(m.get("description"), f"{path}.description", ""),
        dscp=r.integer(m.get("dscp"), f"{path}.dscp", None),
        target_port=r.integer(m.get("target-port"), f"{path}.target-port", None),
        nat_service=r.choice(m.get("nat-service"), f"{path}.nat-service", NatService, None),
        drain_timeout=r.duration(m["drain-timeout"], f"{path}.drain-timeout", 0.0) if "drain-timeout" in m else None,
        slow_start=_slow_start(r, m, path),
        on_all_down=r.choice(m.get("on-all-down"), f"{path}.on-all-down", AllDown, AllDown.DROP),
        fit_weights=r.boolean(m.get("fit-weights"), f"{path}.fit-weights", True),
    )
    return frontend if addr is not None else None


def _read_pools(r: Reader, node: Node | None, path: str) -> list[Pool]:
    if node is None:
        return []
    r.lines[path] = node.line
    if not isinstance(node.value, list):
        r.err(path, f"expected a list of pools, got {_kind(node.value)}", node)
        return []
    pools: list[Pool] = []
    for i, pnode in enumerate(node.value):
        ppath = f"{path}[{i}]"
        pm = r.fields(pnode, ppath, _POOL_KEYS, {"name", "backends"})
        if pm is None:
            continue
        pname = r.string(pm.get("name"), f"{ppath}.name", None)
        members: list[PoolMember] = []
        bm = r.mapping(pm.get("backends"), f"{ppath}.backends") or {}
        for bname, bnode in bm.items():
            bpath = join_path(f"{ppath}.backends", bname)
            fm = r.fields(bnode, bpath, {"weight"})
            if fm is None:
                continue
            weight = r.integer(fm.get("weight"), f"{bpath}.weight", 100)
            if weight is not None:
                members.append(PoolMember(bname, weight))
        if pname is not None:
            pools.append(Pool(pname, tuple(members), _slow_start(r, pm, ppath)))
    return pools


# Every key the schema knows, by section: the docs test checks each is documented.
SCHEMA_KEYS: dict[str, set[str]] = {
    "healthchecker": _CHECKER_KEYS,
    "vpp.lb": _LB_KEYS,
    "healthchecks": _HC_COMMON,
    "healthchecks.params (http, https)": _HTTP_PARAMS,
    "healthchecks.params (tcp)": _TCP_PARAMS,
    "healthchecks.params (icmp)": _ICMP_PARAMS,
    "healthchecks.params (dns)": _DNS_PARAMS,
    "healthchecks.params (grpc)": _GRPC_PARAMS,
    "healthchecks.params (exec)": _EXEC_PARAMS,
    "backends": _BACKEND_KEYS,
    "backends.dampening": _DAMPENING_KEYS,
    "backends.agent": _AGENT_KEYS,
    "frontends": _FRONTEND_KEYS,
    "frontends.pools": _POOL_KEYS,
}
