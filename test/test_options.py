"""maglevd's options: environment variables, flag precedence, validation, --check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from twisted.logger import LogLevel
from twisted.python.usage import UsageError

from maglev.addresses import AddressError, TcpAddress, UnixAddress, parse_listen, parse_tcp
from maglev.options import MaglevOptions, run_check

from .helpers import EXAMPLE, MINIMAL


@pytest.fixture
def cfg(tmp_path: Path) -> str:
    p = tmp_path / "maglev.yaml"
    p.write_text(MINIMAL)
    return str(p)


def parse(args: list[str], environ: dict[str, str] | None = None) -> MaglevOptions:
    o = MaglevOptions(environ=environ or {})
    o.parseOptions(args)
    return o


def test_defaults(cfg: str) -> None:
    o = parse(["--config", cfg])
    assert o.settings.grpc_addr == TcpAddress("", 9090)
    assert o.settings.metrics_addr == TcpAddress("", 9091)
    assert o.settings.web_addr == TcpAddress("127.0.0.1", 8080)
    assert o.settings.vpp_api_addr == "/run/vpp/api.sock"
    assert o.settings.log_level is LogLevel.info
    assert o.settings.manhole_addr is None
    assert o.settings.reflection is True
    assert set(o.settings.config.frontends) == {"web"}


def test_environment_then_flag_wins(cfg: str) -> None:
    env = {
        "MAGLEV_CONFIG": cfg,
        "MAGLEV_METRICS_ADDR": "127.0.0.1:1234",
        "MAGLEV_LOG_LEVEL": "debug",
        "MAGLEV_REFLECTION": "false",
        "MAGLEV_VPP_API_ADDR": "",
    }
    o = parse([], env)
    assert o.settings.metrics_addr == TcpAddress("127.0.0.1", 1234)
    assert o.settings.log_level is LogLevel.debug
    assert o.settings.reflection is False
    assert o.settings.vpp_api_addr == ""
    o = parse(["--metrics-addr", "", "--log-level", "warn", "--reflection", "true"], env)
    assert o.settings.metrics_addr is None, "an empty flag disables, and beats the environment"
    assert o.settings.log_level is LogLevel.warn
    assert o.settings.reflection is True


@pytest.mark.parametrize(
    "args, message",
    [
        (["--log-level", "loud"], "--log-level: unknown log level 'loud'"),
        (["--metrics-addr", "9091"], "--metrics-addr: '9091': expected HOST:PORT"),
        (["--grpc-addr", "::1:9090"], "write IPv6 addresses in brackets"),
        (["--web-addr", "example.com:80"], "is not an IP address (or localhost)"),
        (["--vpp-api-addr", "run/vpp.sock"], "must be an absolute unix socket path"),
        (["--reflection", "perhaps"], "--reflection: expected true or false"),
        (["--manhole-addr", "0.0.0.0:2222", "--manhole-authorized-keys", "/etc/hostname"], "is not a loopback address"),
        (["--manhole-addr", ":2222"], "is not a loopback address"),
        (["--manhole-addr", "127.0.0.1:2222"], "needs --manhole-authorized-keys"),
        (["--manhole-addr", "unix:relative.sock"], "must be absolute"),
        (["stray"], "unexpected argument 'stray'"),
        (["--against-running"], "--against-running goes with --check"),
    ],
)
def test_bad_flags_are_usage_errors(cfg: str, args: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=None) as info:
        parse(["--config", cfg, *args])
    assert message in str(info.value)


def test_manhole_addresses(cfg: str, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("")
    o = parse(["--config", cfg, "--manhole-addr", str(tmp_path / "m.sock")])
    assert o.settings.manhole_addr == UnixAddress(str(tmp_path / "m.sock"))
    o = parse(["--config", cfg, "--manhole-addr", "[::1]:2222", "--manhole-authorized-keys", str(keys)])
    assert o.settings.manhole_addr == TcpAddress("::1", 2222)


def test_bad_config_stops_the_start_with_check_codes(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("maglev: [\n")
    with pytest.raises(SystemExit) as info:
        parse(["--config", str(broken)])
    assert info.value.code == 1


def test_check_exit_codes(tmp_path: Path, capsys: Any) -> None:
    assert run_check(str(EXAMPLE)) == 0
    assert "ok (3 frontends" in capsys.readouterr().out
    structural = tmp_path / "s.yaml"
    structural.write_text("maglev:\n  frontends: {web: {address: 1.2.3.4, port: 80, pools: [}\n")
    assert run_check(str(structural)) == 1
    semantic = tmp_path / "m.yaml"
    semantic.write_text(MINIMAL.replace("web0: {weight: 100}", "web9: {weight: 100}"))
    assert run_check(str(semantic)) == 2
    assert "maglev.frontends.web.pools[0].backends.web9: no such backend (line" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        parse(["--check", str(semantic)])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:  # options may follow FILE; a bad file never reaches the daemon
        parse(["--check", str(semantic), "--against-running", "--grpc-addr", "127.0.0.1:1"])
    assert info.value.code == 2


def test_check_warns_of_weights_vpp_cannot_honour(tmp_path: Path, capsys: Any) -> None:
    from .test_tables import SKEWED, config_text

    skewed = tmp_path / "skewed.yaml"
    skewed.write_text(config_text(False, SKEWED))
    assert run_check(str(skewed)) == 0
    out = capsys.readouterr().out
    assert f"{skewed}: warning: frontend big pool p: VPP cannot honour the weights within 1 percentage point" in out
    assert "new-flows-table-length 2048 would" in out
    skewed.write_text(config_text(True, SKEWED))
    assert run_check(str(skewed)) == 0
    assert "warning" not in capsys.readouterr().out


def test_version(capsys: Any) -> None:
    with pytest.raises(SystemExit) as info:
        parse(["--version"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("maglevd 0.1.0 (commit ")


@pytest.mark.parametrize(
    "text, expected",
    [
        (":9091", TcpAddress("", 9091)),
        ("127.0.0.1:0", TcpAddress("127.0.0.1", 0)),
        ("localhost:80", TcpAddress("localhost", 80)),
        ("[::1]:9090", TcpAddress("::1", 9090)),
        ("/run/m.sock", UnixAddress("/run/m.sock")),
        ("unix:/run/m.sock", UnixAddress("/run/m.sock")),
    ],
)
def test_listen_addresses(text: str, expected: object) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["", "80", ":", ":99999", "[::1]9090", "[x]:1", "1.2.3:4", "a:b:c"])
def test_bad_tcp_addresses(text: str) -> None:
    with pytest.raises(AddressError):
        parse_tcp(text)


def test_endpoint_strings() -> None:
    assert TcpAddress("", 9091).endpoint() == "tcp:9091"
    assert TcpAddress("127.0.0.1", 80).endpoint() == "tcp:80:interface=127.0.0.1"
    assert TcpAddress("::1", 80).endpoint() == "tcp6:80:interface=\\:\\:1"
    assert TcpAddress("localhost", 80).is_loopback and not TcpAddress("192.0.2.1", 80).is_loopback
