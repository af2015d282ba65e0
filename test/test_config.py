"""The config loader: defaults, every rule, paths and lines, all errors at once."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

import pytest
import yaml

from maglev.config import (
    CheckType,
    ConfigError,
    Encap,
    ErrorKind,
    HttpParams,
    NatService,
    Protocol,
    StatusRange,
    TcpParams,
    diff_names,
    effective_encap,
    load_config,
    load_config_file,
)

from .helpers import EXAMPLE, MINIMAL

BASE: dict[str, Any] = yaml.safe_load(MINIMAL)


def with_changes(*changes: tuple[str, Any]) -> str:
    """MINIMAL with dotted paths set (value DELETE removes the key)."""
    doc = copy.deepcopy(BASE)
    for path, value in changes:
        node: Any = doc
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node.setdefault(k, {})
        last: Any = int(keys[-1]) if isinstance(node, list) else keys[-1]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return yaml.safe_dump(doc, sort_keys=False)


DELETE = object()


def problems_of(text: str) -> tuple[ErrorKind, list[str]]:
    with pytest.raises(ConfigError) as info:
        load_config(text)
    return info.value.kind, [str(p) for p in info.value.problems]


def test_example_config_loads_with_every_section() -> None:
    cfg = load_config_file(str(EXAMPLE))
    assert list(cfg.frontends) == ["web", "web6", "ssh"]
    assert cfg.lb.ipv4_src_address == ipaddress.IPv4Address("192.0.2.254")
    assert cfg.healthchecks["ping"].type is CheckType.ICMP
    assert cfg.backends["web2"].enabled is False
    assert cfg.frontends["ssh"].protocol is Protocol.ANY and cfg.frontends["ssh"].port == 0
    http = cfg.healthchecks["http"].params
    assert isinstance(http, HttpParams) and http.headers == (("X-Health-Check", "maglev"),)


def test_defaults_applied() -> None:
    cfg = load_config(MINIMAL)
    hc = cfg.healthchecks["http"]
    assert (hc.interval, hc.fast_interval, hc.down_interval, hc.timeout) == (2.0, 1.0, 5.0, 1.0)
    assert (hc.rise, hc.fall) == (2, 3)
    assert hc.params == HttpParams(path="/healthz")
    assert hc.params.expect_status == (StatusRange(200, 399),)
    fe = cfg.frontends["web"]
    assert (fe.src_ip_sticky, fe.flush_on_down, fe.new_flows_table_length, fe.encap) == (False, True, 1024, None)
    assert fe.pools[1].members[0].weight == 100
    assert cfg.healthchecker.transition_history == 5 and cfg.healthchecker.netns is None
    lb = cfg.lb
    assert (lb.sync_interval, lb.sticky_buckets_per_core, lb.flow_timeout) == (30.0, 65536, 40.0)
    assert (lb.startup_min_delay, lb.startup_max_delay) == (5.0, 30.0)
    assert cfg.backends["web0"].enabled is True


def test_config_is_immutable() -> None:
    cfg = load_config(MINIMAL)
    with pytest.raises(AttributeError):
        cfg.frontends["web"].port = 81  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.backends["x"] = cfg.backends["web0"]  # type: ignore[index]


@pytest.mark.parametrize(
    "changes, check",
    [
        ((("maglev.healthchecks.http.interval", "1m30s"),), lambda c: c.healthchecks["http"].interval == 90.0),
        ((("maglev.healthchecks.http.timeout", "500ms"),), lambda c: c.healthchecks["http"].timeout == 0.5),
        (
            (("maglev.healthchecks.http.params.expect-status", "200,204,300-302"),),
            lambda c: (
                c.healthchecks["http"].params.expect_status
                == (StatusRange(200, 200), StatusRange(204, 204), StatusRange(300, 302))
            ),
        ),
        (
            (("maglev.healthchecks.http.params.expect-status", [200, "301-302"]),),
            lambda c: c.healthchecks["http"].params.status_ok(302) and not c.healthchecks["http"].params.status_ok(204),
        ),
        (
            (("maglev.healthchecks.http.params.method", "head"),),
            lambda c: c.healthchecks["http"].params.method == "HEAD",
        ),
        (
            (("maglev.healthchecks.tcp", {"type": "tcp", "port": 22, "params": {"expect": "^SSH"}}),),
            lambda c: c.healthchecks["tcp"].params == TcpParams(expect="^SSH"),
        ),
        (
            (("maglev.frontends.web.protocol", "any"), ("maglev.frontends.web.port", DELETE)),
            lambda c: c.frontends["web"].port == 0 and c.frontends["web"].protocol is Protocol.ANY,
        ),
        (
            (("maglev.frontends.web.encap", "l3dsr"), ("maglev.frontends.web.dscp", 10)),
            lambda c: c.frontends["web"].encap is Encap.L3DSR,
        ),
        ((("maglev.healthchecker.netns", "dataplane"),), lambda c: c.healthchecker.netns == "dataplane"),
        (
            (("maglev.vpp.lb.startup-min-delay", 0), ("maglev.vpp.lb.startup-max-delay", 0)),
            lambda c: c.lb.startup_max_delay == 0,
        ),
    ],
)
def test_valid_variations(changes: tuple[tuple[str, Any], ...], check: Any) -> None:
    assert check(load_config(with_changes(*changes)))


# (changes, kind, expected problem text: "path: message" prefix)
INVALID = [
    # structural: types, unknown keys, required keys
    ((("maglev.frontends.web.colour", "red"),), ErrorKind.STRUCTURAL, "maglev.frontends.web.colour: unknown key"),
    (
        (("maglev.healthchecks.http.rise", "two"),),
        ErrorKind.STRUCTURAL,
        "maglev.healthchecks.http.rise: expected an integer",
    ),
    (
        (("maglev.healthchecks.http.interval", 5),),
        ErrorKind.STRUCTURAL,
        "maglev.healthchecks.http.interval: expected a duration",
    ),
    (
        (("maglev.healthchecks.http.interval", "5"),),
        ErrorKind.STRUCTURAL,
        "maglev.healthchecks.http.interval: invalid duration",
    ),
    (
        (("maglev.healthchecks.http.type", "htp"),),
        ErrorKind.STRUCTURAL,
        "maglev.healthchecks.http.type: must be one of",
    ),
    (
        (("maglev.healthchecks.http.type", DELETE),),
        ErrorKind.STRUCTURAL,
        "maglev.healthchecks.http.type: required key is missing",
    ),
    (
        (("maglev.backends.web0.address", "192.0.2.300"),),
        ErrorKind.STRUCTURAL,
        "maglev.backends.web0.address: '192.0.2.300' is not an IP address",
    ),
    (
        (("maglev.backends.web0.enabled", "maybe"),),
        ErrorKind.STRUCTURAL,
        "maglev.backends.web0.enabled: expected true or false",
    ),
    (
        (("maglev.frontends.web.pools", {"name": "x"}),),
        ErrorKind.STRUCTURAL,
        "maglev.frontends.web.pools: expected a list of pools",
    ),
    (
        (("maglev.frontends.web.port", DELETE),),
        ErrorKind.STRUCTURAL,
        "maglev.frontends.web.port: required key is missing",
    ),
    (
        (("maglev.frontends.web.protocol", "sctp"),),
        ErrorKind.STRUCTURAL,
        "maglev.frontends.web.protocol: must be one of tcp, udp, any",
    ),
    (
        (("maglev.frontends.web.pools.0.backends.web0.weight", 1.5),),
        ErrorKind.STRUCTURAL,
        "maglev.frontends.web.pools[0].backends.web0.weight: expected an integer",
    ),
    (
        (("maglev.healthchecks.http.params.expect-status", "2xx"),),
        ErrorKind.STRUCTURAL,
        "maglev.healthchecks.http.params.expect-status: expected status codes",
    ),
    (
        (("maglev.healthchecks.http.params.send", "x"),),
        ErrorKind.STRUCTURAL,
        "maglev.healthchecks.http.params.send: unknown key",
    ),
    (
        (("maglev.vpp.lb.ipv4-src-address", "nope"),),
        ErrorKind.STRUCTURAL,
        "maglev.vpp.lb.ipv4-src-address: 'nope' is not an IP address",
    ),
    ((("maglev", ["a"]),), ErrorKind.STRUCTURAL, "maglev: expected a mapping, got a list"),
    # semantic: references
    (
        (("maglev.frontends.web.pools.0.backends.web9", {}),),
        ErrorKind.SEMANTIC,
        "maglev.frontends.web.pools[0].backends.web9: no such backend",
    ),
    (
        (("maglev.backends.web0.healthcheck", "nope"),),
        ErrorKind.SEMANTIC,
        "maglev.backends.web0.healthcheck: no such health check 'nope'",
    ),
    # semantic: ranges and sizes
    (
        (("maglev.frontends.web.pools.0.backends.web0.weight", 101),),
        ErrorKind.SEMANTIC,
        "maglev.frontends.web.pools[0].backends.web0.weight: must be 0..100",
    ),
    (
        (("maglev.frontends.web.new-flows-table-length", 1000),),
        ErrorKind.SEMANTIC,
        "maglev.frontends.web.new-flows-table-length: must be a power of two",
    ),
    (
        (("maglev.vpp.lb.sticky-buckets-per-core", 3000),),
        ErrorKind.SEMANTIC,
        "maglev.vpp.lb.sticky-buckets-per-core: must be a power of two",
    ),
    (
        (("maglev.vpp.lb.flow-timeout", "121s"),),
        ErrorKind.SEMANTIC,
        "maglev.vpp.lb.flow-timeout: must be between 1s and 120s",
    ),
    (
        (("maglev.vpp.lb.flow-timeout", "500ms"),),
        ErrorKind.SEMANTIC,
        "maglev.vpp.lb.flow-timeout: must be between 1s and 120s",
    ),
    (
        (("maglev.vpp.lb.flow-timeout", "1500ms"),),
        ErrorKind.SEMANTIC,
        "maglev.vpp.lb.flow-timeout: must be whole seconds",
    ),
    (
        (("maglev.vpp.lb.startup-min-delay", "40s"),),
        ErrorKind.SEMANTIC,
        "maglev.vpp.lb.startup-max-delay: must not be shorter",
    ),
    (
        (("maglev.healthchecks.http.port", 70000),),
        ErrorKind.SEMANTIC,
        "maglev.healthchecks.http.port: must be 1..65535",
    ),
    (
        (("maglev.healthchecks.http.port", DELETE),),
        ErrorKind.SEMANTIC,
        "maglev.healthchecks.http.port: required for http checks",
    ),
    ((("maglev.healthchecks.http.rise", 0),), ErrorKind.SEMANTIC, "maglev.healthchecks.http.rise: must be 1..100"),
    (
        (("maglev.healthchecks.http.timeout", "1ms"),),
        ErrorKind.SEMANTIC,
        "maglev.healthchecks.http.timeout: must be at least 10ms",
    ),
    (
        (("maglev.healthchecker.transition-history", 0),),
        ErrorKind.SEMANTIC,
        "maglev.healthchecker.transition-history: must be 1..1000",
    ),
    (
        (("maglev.healthchecker.netns", "../etc"),),
        ErrorKind.SEMANTIC,
        "maglev.healthchecker.netns: '../etc' is not a valid",
    ),
    (
        (("maglev.frontends.web.port", 0),),
        ErrorKind.SEMANTIC,
        "maglev.frontends.web.port: must be 1..65535 with protocol tcp",
    ),
    (
        (("maglev.frontends.web.protocol", "any"),),
        ErrorKind.SEMANTIC,
        "maglev.frontends.web.port: must be 0 (all ports) with protocol any",
    ),
    # semantic: pools
    ((("maglev.frontends.web.pools", []),), ErrorKind.SEMANTIC, "maglev.frontends.web.pools: needs at least one pool"),
    (
        (("maglev.frontends.web.pools.1.name", "primary"),),
        ErrorKind.SEMANTIC,
        "maglev.frontends.web.pools[1].name: pool 'primary' is listed twice",
    ),
    (
        (("maglev.frontends.web.pools.1.name", ""),),
        ErrorKind.SEMANTIC,
        "maglev.frontends.web.pools[1].name: must not be empty",
    ),
    (
        (("maglev.frontends.web.pools.1.backends", {}),),
        ErrorKind.SEMANTIC,
        "maglev.frontends.web.pools[1].backends: needs at least one backend",
    ),
    (
        (("maglev.frontends.web.pools.1.backends", {"web0": {}}),),
        ErrorKind.SEMANTIC,
        "maglev.frontends.web.pools[1].backends.web0: already in pool 'primary'",
    ),
    # semantic: families and encap
    (
        (("maglev.backends.web1.address", "2001:db8::11"),),
        ErrorKind.SEMANTIC,
        "maglev.frontends.web.pools: mixes IPv4 and IPv6 backends",
    ),
    (
        (("maglev.frontends.web.encap", "gre6"),),
        ErrorKind.SEMANTIC,
        "maglev.frontends.web.encap: gre6 needs IPv6 backends",
    ),
    (
        (("maglev.frontends.web.encap", "nat6"),),
        ErrorKind.SEMANTIC,
        "maglev.frontends.web.encap: nat6 is not possible for an IPv4 VIP",
    ),
    (
        (
            ("maglev.frontends.web.protocol", "any"),
            ("maglev.frontends.web.port", 0),
            ("maglev.frontends.web.encap", "nat4"),
        ),
        ErrorKind.SEMANTIC,
        "maglev.frontends.web.encap: nat4 needs a port",
    ),
    (
        (("maglev.vpp.lb.ipv4-src-address", DELETE),),
        ErrorKind.SEMANTIC,
        "maglev.vpp.lb.ipv4-src-address: required: frontend 'web'",
    ),
    (
        (("maglev.vpp.lb.ipv4-src-address", "2001:db8::1"),),
        ErrorKind.SEMANTIC,
        "maglev.vpp.lb.ipv4-src-address: 2001:db8::1 is not an IPv4 address",
    ),
    (
        (("maglev.healthchecks.http.probe-ipv4-src", "::1"),),
        ErrorKind.SEMANTIC,
        "maglev.healthchecks.http.probe-ipv4-src: ::1 is not an IPv4 address",
    ),
    # semantic: http params
    (
        (("maglev.healthchecks.http.params.path", "healthz"),),
        ErrorKind.SEMANTIC,
        "maglev.healthchecks.http.params.path: must start with '/'",
    ),
    (
        (("maglev.healthchecks.http.params.method", "POST"),),
        ErrorKind.SEMANTIC,
        "maglev.healthchecks.http.params.method: must be GET or HEAD",
    ),
    (
        (("maglev.healthchecks.http.params.expect-body", "(["),),
        ErrorKind.SEMANTIC,
        "maglev.healthchecks.http.params.expect-body: invalid regular expression",
    ),
    (
        (("maglev.healthchecks.http.params.expect-status", "600"),),
        ErrorKind.SEMANTIC,
        "maglev.healthchecks.http.params.expect-status: status codes are 100..599",
    ),
    (
        (("maglev.healthchecks.http.params.expect-status", "399-200"),),
        ErrorKind.SEMANTIC,
        "maglev.healthchecks.http.params.expect-status: range 399-200 is backwards",
    ),
    (
        (("maglev.healthchecks.http.params.insecure", False),),
        ErrorKind.SEMANTIC,
        "maglev.healthchecks.http.params.insecure: only applies to https",
    ),
    (
        (("maglev.healthchecks.http.params.headers", {"Host": "x"}),),
        ErrorKind.SEMANTIC,
        "maglev.healthchecks.http.params.headers.Host: is set by the checker",
    ),
    (
        (("maglev.healthchecks.ping", {"type": "icmp", "port": 1}),),
        ErrorKind.SEMANTIC,
        "maglev.healthchecks.ping.port: icmp checks have no port",
    ),
    (
        (("maglev.healthchecks.t", {"type": "tcp", "port": 1, "params": {"expect": "("}}),),
        ErrorKind.SEMANTIC,
        "maglev.healthchecks.t.params.expect: invalid regular expression",
    ),
    # semantic: names
    (
        (("maglev.backends.web 0", {"address": "192.0.2.9", "healthcheck": "http"}),),
        ErrorKind.STRUCTURAL,
        'maglev.backends."web 0": names must start',
    ),
]


@pytest.mark.parametrize(
    "changes, kind, expected", INVALID, ids=[c[2].split(":")[0] + ":" + c[2].split(":")[1][:30] for c in INVALID]
)
def test_invalid(changes: tuple[tuple[str, Any], ...], kind: ErrorKind, expected: str) -> None:
    got_kind, problems = problems_of(with_changes(*changes))
    assert got_kind is kind, problems
    assert any(p.startswith(expected) for p in problems), problems


def two_frontends(second: dict[str, Any], backend_addr: str = "192.0.2.12") -> str:
    return with_changes(
        ("maglev.backends.web2", {"address": backend_addr, "healthcheck": "http"}),
        (
            "maglev.frontends.web2",
            {"address": "198.51.100.1", "pools": [{"name": "p", "backends": {"web2": {}}}], **second},
        ),
        ("maglev.vpp.lb.ipv6-src-address", "2001:db8::fe"),
    )


@pytest.mark.parametrize(
    "second, backend_addr, expected",
    [
        (
            {"protocol": "tcp", "port": 80},
            "192.0.2.12",
            "maglev.frontends.web2: same VIP (198.51.100.1 tcp port 80) as frontend 'web'",
        ),
        ({"protocol": "any"}, "192.0.2.12", "maglev.frontends.web2.port: all-port and per-port VIPs cannot share"),
        (
            {"protocol": "tcp", "port": 443},
            "2001:db8::12",
            "maglev.frontends.web2.pools: backends are IPv6 but frontend 'web'",
        ),
        (
            {"protocol": "tcp", "port": 443, "encap": "l3dsr"},
            "192.0.2.12",
            "maglev.frontends.web2.encap: l3dsr differs from gre4",
        ),
    ],
)
def test_frontends_sharing_a_vip(second: dict[str, Any], backend_addr: str, expected: str) -> None:
    kind, problems = problems_of(two_frontends(second, backend_addr))
    assert kind is ErrorKind.SEMANTIC
    assert any(p.startswith(expected) for p in problems), problems


def test_same_family_frontends_may_share_a_vip() -> None:
    cfg = load_config(two_frontends({"protocol": "tcp", "port": 443}))
    assert set(cfg.frontends) == {"web", "web2"}


def test_error_names_path_and_line() -> None:
    text = MINIMAL.replace("web0: {weight: 100}", "web9: {weight: 100}")
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "web9" in ln)
    kind, problems = problems_of(text)
    assert kind is ErrorKind.SEMANTIC
    assert problems == [f"maglev.frontends.web.pools[0].backends.web9: no such backend (line {line})"]


def test_all_errors_of_a_stage_are_reported_at_once() -> None:
    text = with_changes(
        ("maglev.healthchecks.http.rise", "x"),
        ("maglev.backends.web0.address", "nope"),
        ("maglev.frontends.web.typo", 1),
    )
    kind, problems = problems_of(text)
    assert kind is ErrorKind.STRUCTURAL
    assert len(problems) == 3, problems
    text = with_changes(
        ("maglev.healthchecks.http.rise", 0),
        ("maglev.backends.web0.healthcheck", "nope"),
        ("maglev.frontends.web.new-flows-table-length", 3),
    )
    kind, problems = problems_of(text)
    assert kind is ErrorKind.SEMANTIC
    assert len(problems) == 3, problems


@pytest.mark.parametrize(
    "text, expected",
    [
        ("maglev: [", "<yaml>: YAML syntax error"),
        ("", "<yaml>: the file is empty"),
        ("maglev:\n  backends: {}\n  backends: {}\n", "maglev.backends: duplicate key (first at line 2) (line 3)"),
        ("other: 1\n", "maglev: required key is missing"),
        ("other: 1\n", "other: unknown key"),
        ("maglev:\n  ? [a, b]\n  : 1\n", "maglev: keys must be plain strings"),
        ("a: &a [*a]\nmaglev: {}\n", "nested too deeply"),
        ("maglev:\n  healthchecks: {h: {type: tcp, port: 1, interval: 2020-13-45}}\n", "cannot read value"),
    ],
)
def test_yaml_level_errors(text: str, expected: str) -> None:
    kind, problems = problems_of(text)
    assert kind is ErrorKind.STRUCTURAL
    assert any(expected in p for p in problems), problems


def test_alias_bomb_is_bounded() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    kind, problems = problems_of("\n".join(levels) + "\nmaglev: {}\n")
    assert kind is ErrorKind.STRUCTURAL
    assert any("alias expansion" in p for p in problems), problems


def test_empty_sections_are_fine() -> None:
    cfg = load_config("maglev:\n  healthchecks:\n  backends:\n  frontends:\n")
    assert (len(cfg.healthchecks), len(cfg.backends), len(cfg.frontends)) == (0, 0, 0)


def test_unreadable_file_is_structural(tmp_path: Any) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_file(str(tmp_path / "missing.yaml"))
    assert info.value.kind is ErrorKind.STRUCTURAL
    assert "cannot read" in str(info.value)
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"maglev: {}\n# \xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config_file(str(bad))


def test_effective_encap_follows_backend_family_unless_overridden() -> None:
    cfg = load_config(MINIMAL)
    fe = cfg.frontends["web"]
    assert effective_encap(fe, 4) is Encap.GRE4
    assert effective_encap(fe, 6) is Encap.GRE6
    cfg = load_config(with_changes(("maglev.frontends.web.encap", "l3dsr"), ("maglev.frontends.web.dscp", 10)))
    assert effective_encap(cfg.frontends["web"], 4) is Encap.L3DSR


def test_diff_names() -> None:
    old = load_config(MINIMAL)
    new = load_config(
        with_changes(
            ("maglev.backends.web1.address", "192.0.2.99"),
            ("maglev.backends.web2", {"address": "192.0.2.12", "healthcheck": "http"}),
            ("maglev.frontends.web.pools.1.backends", {"web2": {}}),
        )
    )
    d = diff_names(old.backends, new.backends)
    assert (d.added, d.removed, d.changed, d.unchanged) == (("web2",), (), ("web1",), ("web0",))
    assert diff_names(new.backends, old.backends).removed == ("web2",)
    first, second = (diff_names(new.backends, old.backends, slice(i, i + 1)) for i in (0, 1))  # a part each
    assert (first.removed, first.unchanged, first.changed) == (("web2",), ("web0",), ())  # removed: with the first
    assert (second.removed, second.unchanged, second.changed) == ((), (), ("web1",))
    assert old.frontends_using("web1") == ("web",) and new.frontends_using("web1") == ()
    assert new.healthcheck_of("web2").name == "http"


WEB = "maglev.frontends.web"


@pytest.mark.parametrize(
    "changes, expected",
    [
        (((f"{WEB}.encap", "l3dsr"),), f"{WEB}.encap: l3dsr needs dscp (0..63)"),
        (((f"{WEB}.encap", "l3dsr"), (f"{WEB}.dscp", 64)), f"{WEB}.dscp: must be 0..63, got 64"),
        (((f"{WEB}.encap", "l3dsr"), (f"{WEB}.dscp", -1)), f"{WEB}.dscp: must be 0..63, got -1"),
        (((f"{WEB}.dscp", 10),), f"{WEB}.dscp: only for encap l3dsr (this frontend's is gre)"),
        (((f"{WEB}.encap", "nat4"),), f"{WEB}.encap: nat4 needs target-port (1..65535)"),
        (((f"{WEB}.encap", "nat4"), (f"{WEB}.target-port", 0)), f"{WEB}.target-port: must be 1..65535, got 0"),
        (((f"{WEB}.encap", "gre4"), (f"{WEB}.target-port", 81)), f"{WEB}.target-port: only for encap nat4 or nat6"),
        (((f"{WEB}.nat-service", "nodeport"),), f"{WEB}.nat-service: only for encap nat4 or nat6"),
    ],
)
def test_encap_arguments(changes: tuple[tuple[str, Any], ...], expected: str) -> None:
    kind, problems = problems_of(with_changes(*changes))
    assert kind is ErrorKind.SEMANTIC
    assert any(p.startswith(expected) for p in problems), problems
    assert all("(line " in p for p in problems), "each names its line"


def test_encap_arguments_are_read() -> None:
    dsr = load_config(with_changes((f"{WEB}.encap", "l3dsr"), (f"{WEB}.dscp", 46))).frontends["web"]
    assert (dsr.encap, dsr.dscp, dsr.target_port) == (Encap.L3DSR, 46, None)
    nat = load_config(
        with_changes((f"{WEB}.encap", "nat4"), (f"{WEB}.target-port", 8080), (f"{WEB}.nat-service", "nodeport"))
    ).frontends["web"]
    assert (nat.target_port, nat.nat_service) == (8080, NatService.NODEPORT)
    kind, problems = problems_of(with_changes((f"{WEB}.nat-service", "nope")))
    assert kind is ErrorKind.STRUCTURAL and any("nat-service" in p for p in problems), problems


def test_one_vip_per_node_port() -> None:
    nodeport = {"encap": "nat4", "target-port": 8080, "nat-service": "nodeport", "port": 30080}
    text = with_changes(
        *[(f"{WEB}.{k}", v) for k, v in nodeport.items()],
        ("maglev.frontends.web2", {"address": "198.51.100.2", "pools": [{"name": "p", "backends": {"web1": {}}}],
                                   **nodeport}),
    )  # fmt: skip
    kind, problems = problems_of(text)
    assert kind is ErrorKind.SEMANTIC
    assert any(p.startswith("maglev.frontends.web2.port: node port 30080 is already frontend 'web'") for p in problems)


def test_the_yaml_is_scanned_by_libyaml_where_pyyaml_has_it() -> None:
    # PyYAML's Python scanner took 5.8 s for 10,000 backends, holding the GIL from the reactor.
    import yaml

    from maglev.config.yamltree import _BoundedLoader

    if not yaml.__with_libyaml__:
        pytest.skip("this PyYAML was built without LibYAML: the Python scanner is used")
    assert yaml.CSafeLoader in _BoundedLoader.__mro__
    assert _BoundedLoader.get_single_node is yaml.composer.Composer.get_single_node  # our bounded composer
