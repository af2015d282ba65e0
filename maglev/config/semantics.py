"""Stage 2: rules across fields (references, families, ranges, VPP's constraints).

Each rule mirrors something VPP or the daemon would otherwise fail on at run
time; the VPP facts are in the project's vpp-lb notes (§2, §7).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable

from .errors import ErrorKind, ProblemList
from .model import (
    CheckType,
    Config,
    DnsParams,
    Encap,
    ExecParams,
    Frontend,
    GrpcParams,
    HttpParams,
    IcmpParams,
    NatService,
    Protocol,
    TcpParams,
)
from .structure import Lines
from .yamltree import join_path

NETNS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
MAX_TABLE_LENGTH = 1 << 22
MAX_STICKY_BUCKETS = 1 << 30

Err = Callable[[str, str], None]


def effective_encap(frontend: Frontend, backend_family: int | None) -> Encap | None:
    """The encap VPP gets: the override, else GRE towards the backends' family."""
    if frontend.encap is not None:
        return frontend.encap
    if backend_family is None:
        return None
    return Encap.GRE4 if backend_family == 4 else Encap.GRE6


def _pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _compiles(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except re.error as e:
        return str(e)
    return None


def check_semantics(cfg: Config, lines: Lines) -> None:
    """Raises ConfigError(SEMANTIC) listing every rule broken."""
    p = ProblemList()

    def err(path: str, message: str) -> None:
        p.add(path, message, lines.of(path))

    _check_checker(cfg, err)
    _check_healthchecks(cfg, err)
    _check_backends(cfg, err)
    _check_frontends(cfg, err)
    _check_lb(cfg, err)
    p.raise_if_any(ErrorKind.SEMANTIC)


def _check_checker(cfg: Config, err: Err) -> None:
    hc = cfg.healthchecker
    if not 1 <= hc.transition_history <= 1000:
        err("maglev.healthchecker.transition-history", f"must be 1..1000, got {hc.transition_history}")
    if not 1 <= hc.exec_concurrency <= 256:
        err("maglev.healthchecker.exec-concurrency", f"must be 1..256, got {hc.exec_concurrency}")
    if hc.netns is not None and not NETNS.match(hc.netns):
        err("maglev.healthchecker.netns", f"{hc.netns!r} is not a valid network namespace name")


def _check_healthchecks(cfg: Config, err: Err) -> None:
    for name, hc in cfg.healthchecks.items():
        path = f"maglev.healthchecks.{name}"
        if hc.type is CheckType.ICMP:
            if hc.port is not None:
                err(f"{path}.port", "icmp checks have no port")
        elif hc.port is None and hc.type in (CheckType.DNS, CheckType.EXEC):
            pass  # dns: 53; exec: the script is told no port
        elif hc.port is None:
            err(f"{path}.port", f"required for {hc.type.value} checks")
        elif not 1 <= hc.port <= 65535:
            err(f"{path}.port", f"must be 1..65535, got {hc.port}")
        for key, value in (
            ("interval", hc.interval),
            ("fast-interval", hc.fast_interval),
            ("down-interval", hc.down_interval),
            ("timeout", hc.timeout),
        ):
            if value < 0.01:
                err(f"{path}.{key}", "must be at least 10ms")
            elif value > 3600:
                err(f"{path}.{key}", "must be at most 1h")
        for key, value in (("rise", hc.rise), ("fall", hc.fall)):
            if not 1 <= value <= 100:
                err(f"{path}.{key}", f"must be 1..100, got {value}")
        params = hc.params
        if isinstance(params, HttpParams):
            _check_http(path + ".params", hc.type, params, err)
        elif isinstance(params, TcpParams):
            if params.expect is not None and (msg := _compiles(params.expect)):
                err(f"{path}.params.expect", f"invalid regular expression: {msg}")
        elif isinstance(params, IcmpParams):
            if not 0 <= params.payload_size <= 1400:
                err(f"{path}.params.payload-size", f"must be 0..1400 bytes, got {params.payload_size}")
        elif isinstance(params, DnsParams):
            _check_dns(path + ".params", params, err)
        elif isinstance(params, GrpcParams):
            if params.host is not None and (not params.host or any(c in params.host for c in " /\r\n\t")):
                err(f"{path}.params.host", f"{params.host!r} is not a host name")
        elif isinstance(params, ExecParams):
            _check_exec(path + ".params", params, err)


def _check_dns(path: str, params: DnsParams, err: Err) -> None:
    # dnspython knows the names of DNS: the config is checked by the library that will send it
    import dns.exception
    import dns.name
    import dns.rcode
    import dns.rdatatype

    if not params.query:
        err(f"{path}.query", "required for dns checks (the name to ask for)")
    else:
        try:
            dns.name.from_text(params.query)
        except dns.exception.DNSException as e:
            err(f"{path}.query", f"{params.query!r} is not a DNS name: {e}")
    try:
        dns.rdatatype.from_text(params.qtype)
    except dns.exception.DNSException:
        err(f"{path}.qtype", f"unknown record type {params.qtype!r} (A, AAAA, MX, TXT, SOA, ...)")
    try:
        dns.rcode.from_text(params.rcode)
    except dns.exception.DNSException:
        err(f"{path}.rcode", f"unknown rcode {params.rcode!r} (NOERROR, NXDOMAIN, SERVFAIL, ...)")
    if params.transport not in ("udp", "tcp"):
        err(f"{path}.transport", f"must be udp or tcp, got {params.transport!r}")
    if params.expect is not None and not params.expect.strip():
        err(f"{path}.expect", "must not be empty")


def _check_exec(path: str, params: ExecParams, err: Err) -> None:
    if not params.command or not params.command[0]:
        err(f"{path}.command", "required for exec checks (the program and its arguments)")
    elif params.shell and len(params.command) != 1:
        err(f"{path}.command", "with shell: true, one string (the shell command line)")
    elif not params.shell and not params.command[0].startswith("/"):
        err(f"{path}.command", f"the program must be an absolute path, got {params.command[0]!r} (no PATH search)")
    if not 0 <= params.output_limit <= 65536:
        err(f"{path}.output-limit", f"must be 0..65536 bytes, got {params.output_limit}")


def _check_http(path: str, ctype: CheckType, params: HttpParams, err: Err) -> None:
    if not params.path.startswith("/"):
        err(f"{path}.path", f"must start with '/', got {params.path!r}")
    elif any(c in params.path for c in " \r\n\t"):
        err(f"{path}.path", "must not contain spaces or control characters (percent-encode them)")
    if params.method not in ("GET", "HEAD"):
        err(f"{path}.method", f"must be GET or HEAD, got {params.method!r}")
    if params.host is not None and (not params.host or any(c in params.host for c in " /\r\n\t")):
        err(f"{path}.host", f"{params.host!r} is not a host name")
    for r in params.expect_status:
        if not (100 <= r.low <= 599 and 100 <= r.high <= 599):
            err(f"{path}.expect-status", f"status codes are 100..599, got {r}")
        elif r.low > r.high:
            err(f"{path}.expect-status", f"range {r.low}-{r.high} is backwards")
    if params.expect_body is not None:
        if params.method == "HEAD":
            err(f"{path}.expect-body", "a HEAD response has no body to match")
        elif msg := _compiles(params.expect_body):
            err(f"{path}.expect-body", f"invalid regular expression: {msg}")
    if ctype is CheckType.HTTP and not params.insecure:
        err(f"{path}.insecure", "only applies to https checks")
    for hname, hvalue in params.headers:
        if not HEADER.match(hname):
            err(join_path(f"{path}.headers", hname), "is not a valid HTTP header name")
        elif hname.lower() in ("host", "content-length", "transfer-encoding", "connection"):
            err(join_path(f"{path}.headers", hname), "is set by the checker itself (use params.host for Host)")
        if "\r" in hvalue or "\n" in hvalue:
            err(join_path(f"{path}.headers", hname), "header values must not contain line breaks")


def _check_backends(cfg: Config, err: Err) -> None:
    for name, b in cfg.backends.items():
        path = f"maglev.backends.{name}"
        hc = cfg.healthchecks.get(b.healthcheck)
        if hc is None:
            err(f"{path}.healthcheck", f"no such health check {b.healthcheck!r}")
            continue
        src = hc.probe_ipv4_src if b.address.version == 4 else hc.probe_ipv6_src
        if src is not None and src.version != b.address.version:
            err(f"{path}.address", "address family differs from the health check's probe source")
    for name, hc in cfg.healthchecks.items():
        for key, addr, fam in (
            ("probe-ipv4-src", hc.probe_ipv4_src, 4),
            ("probe-ipv6-src", hc.probe_ipv6_src, 6),
        ):
            if addr is not None and addr.version != fam:
                err(f"maglev.healthchecks.{name}.{key}", f"{addr} is not an IPv{fam} address")


def _check_frontends(cfg: Config, err: Err) -> None:
    # VIP prefix -> [(frontend, port, encap, backend family)] for the cross-frontend rules.
    by_address: dict[object, list[tuple[str, int, Protocol, Encap | None, int | None]]] = defaultdict(list)
    node_ports: dict[int, list[str]] = defaultdict(list)
    for name, fe in cfg.frontends.items():
        path = f"maglev.frontends.{name}"
        if fe.protocol is Protocol.ANY and fe.port != 0:
            err(f"{path}.port", "must be 0 (all ports) with protocol any")
        elif fe.protocol is not Protocol.ANY and not 1 <= fe.port <= 65535:
            err(f"{path}.port", f"must be 1..65535 with protocol {fe.protocol.value} (use protocol any for all ports)")
        n = fe.new_flows_table_length
        if not _pow2(n) or n > MAX_TABLE_LENGTH:
            err(f"{path}.new-flows-table-length", f"must be a power of two up to {MAX_TABLE_LENGTH}, got {n}")
        if not fe.pools:
            err(f"{path}.pools", "needs at least one pool")
        families: set[int] = set()
        seen_pool: set[str] = set()
        seen_backend: dict[str, str] = {}
        for i, pool in enumerate(fe.pools):
            ppath = f"{path}.pools[{i}]"
            if not pool.name:
                err(f"{ppath}.name", "must not be empty")
            elif pool.name in seen_pool:
                err(f"{ppath}.name", f"pool {pool.name!r} is listed twice")
            seen_pool.add(pool.name)
            if not pool.members:
                err(f"{ppath}.backends", "needs at least one backend")
            for m in pool.members:
                bpath = join_path(f"{ppath}.backends", m.backend)
                if not 0 <= m.weight <= 100:
                    err(f"{bpath}.weight", f"must be 0..100, got {m.weight}")
                backend = cfg.backends.get(m.backend)
                if backend is None:
                    err(bpath, "no such backend")
                    continue
                if m.backend in seen_backend:
                    err(bpath, f"already in pool {seen_backend[m.backend]!r} of this frontend")
                seen_backend.setdefault(m.backend, pool.name)
                families.add(backend.address.version)
        if len(families) > 1:
            err(f"{path}.pools", "mixes IPv4 and IPv6 backends; VPP needs one encap (one family) per VIP")
        if len(seen_backend) > n and _pow2(n):
            err(f"{path}.new-flows-table-length", f"{n} is smaller than the {len(seen_backend)} backends")
        family = next(iter(families)) if len(families) == 1 else None
        encap = effective_encap(fe, family)
        if fe.encap is not None:
            if fe.address.version not in fe.encap.vip_families:
                err(f"{path}.encap", f"{fe.encap.value} is not possible for an IPv{fe.address.version} VIP")
            if family is not None and family != fe.encap.as_family:
                err(f"{path}.encap", f"{fe.encap.value} needs IPv{fe.encap.as_family} backends, these are IPv{family}")
            if fe.encap.needs_port and fe.port == 0:
                # VPP aborts when an AS is added to an all-port NAT VIP (vpp-lb.md §7).
                err(f"{path}.encap", f"{fe.encap.value} needs a port; all-port NAT VIPs crash VPP")
        _check_encap_args(fe, path, err)
        if fe.nat_service is NatService.NODEPORT and fe.encap is not None and fe.encap.needs_port:
            node_ports[fe.port].append(name)
        by_address[fe.address].append((name, fe.port, fe.protocol, encap, family))

    for port, names in node_ports.items():
        for name in names[1:]:
            err(
                f"maglev.frontends.{name}.port",
                f"node port {port} is already frontend {names[0]!r}'s (VPP has one VIP per node port)",
            )

    for addr, users in by_address.items():
        if len(users) < 2:
            continue
        first = users[0]
        keys: dict[tuple[int, Protocol], str] = {}
        for name, port, proto, encap, family in users:
            path = f"maglev.frontends.{name}"
            if (port, proto) in keys:
                err(path, f"same VIP ({addr} {proto.value} port {port}) as frontend {keys[(port, proto)]!r}")
            keys.setdefault((port, proto), name)
            if name == first[0]:
                continue
            if (port == 0) != (first[1] == 0):
                err(f"{path}.port", f"all-port and per-port VIPs cannot share {addr} (see frontend {first[0]!r})")
            if family is not None and first[4] is not None and family != first[4]:
                err(
                    f"{path}.pools",
                    f"backends are IPv{family} but frontend {first[0]!r} on the same VIP {addr} has IPv{first[4]}; "
                    "VPP allows one encap per VIP prefix",
                )
            elif encap is not None and first[3] is not None and encap != first[3]:
                err(f"{path}.encap", f"{encap.value} differs from {first[3].value} of frontend {first[0]!r} on {addr}")


def _check_encap_args(fe: Frontend, path: str, err: Err) -> None:
    """dscp belongs to l3dsr and is required there; target-port and nat-service to nat4/nat6."""
    encap = fe.encap
    if encap is Encap.L3DSR:
        if fe.dscp is None:
            err(f"{path}.encap", "l3dsr needs dscp (0..63): the DSCP VPP writes into the packets it forwards")
        elif not 0 <= fe.dscp <= 63:
            err(f"{path}.dscp", f"must be 0..63, got {fe.dscp}")
    elif fe.dscp is not None:
        err(f"{path}.dscp", f"only for encap l3dsr (this frontend's is {encap.value if encap else 'gre'})")
    if encap is not None and encap.needs_port:
        if fe.target_port is None:
            err(f"{path}.encap", f"{encap.value} needs target-port (1..65535): VPP rewrites the destination port to it")
        elif not 1 <= fe.target_port <= 65535:
            err(f"{path}.target-port", f"must be 1..65535, got {fe.target_port}")
    else:
        what = encap.value if encap else "gre"
        if fe.target_port is not None:
            err(f"{path}.target-port", f"only for encap nat4 or nat6 (this frontend's is {what})")
        if fe.nat_service is not None:
            err(f"{path}.nat-service", f"only for encap nat4 or nat6 (this frontend's is {what})")


def _check_lb(cfg: Config, err: Err) -> None:
    lb = cfg.lb
    path = "maglev.vpp.lb"
    if lb.sync_interval < 1:
        err(f"{path}.sync-interval", "must be at least 1s")
    if not _pow2(lb.sticky_buckets_per_core) or lb.sticky_buckets_per_core > MAX_STICKY_BUCKETS:
        err(
            f"{path}.sticky-buckets-per-core",
            f"must be a power of two up to {MAX_STICKY_BUCKETS}, got {lb.sticky_buckets_per_core}",
        )
    if not 1 <= lb.flow_timeout <= 120:
        err(f"{path}.flow-timeout", "must be between 1s and 120s")
    elif lb.flow_timeout != int(lb.flow_timeout):
        err(f"{path}.flow-timeout", "must be whole seconds (VPP counts seconds)")
    if lb.startup_min_delay < 0 or lb.startup_max_delay < 0:
        err(f"{path}.startup-min-delay", "delays cannot be negative")
    elif lb.startup_max_delay and lb.startup_min_delay > lb.startup_max_delay:
        err(f"{path}.startup-max-delay", "must not be shorter than startup-min-delay")
    for key, addr, fam in (
        ("ipv4-src-address", lb.ipv4_src_address, 4),
        ("ipv6-src-address", lb.ipv6_src_address, 6),
    ):
        if addr is not None and addr.version != fam:
            err(f"{path}.{key}", f"{addr} is not an IPv{fam} address")
    # GRE/NAT encapsulation takes its outer source from lb_conf: required per encap family.
    needed: dict[int, str] = {}
    for name, fe in cfg.frontends.items():
        fams = {cfg.backends[b].address.version for b in fe.backend_names() if b in cfg.backends}
        encap = effective_encap(fe, next(iter(fams)) if len(fams) == 1 else None)
        if encap is not None and encap is not Encap.L3DSR:
            needed.setdefault(encap.as_family, name)
    if 4 in needed and lb.ipv4_src_address is None:
        err(f"{path}.ipv4-src-address", f"required: frontend {needed[4]!r} sends IPv4-encapsulated traffic")
    if 6 in needed and lb.ipv6_src_address is None:
        err(f"{path}.ipv6-src-address", f"required: frontend {needed[6]!r} sends IPv6-encapsulated traffic")
