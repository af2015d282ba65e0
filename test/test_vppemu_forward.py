"""The emulator's forwarding mode: real TCP clients through a VIP on loopback to real servers.

Each connection must land on the AS VPP would pick (the lbtable flow hash of the client's
own address and port, the VIP's new-flow table), keep it while its sticky entry lives, and
be reset when its packets would go elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maglev import lbtable
from maglev.vppemu.server import Emulator

from .emu import API_DIR, FakeClock, client

pytestmark = pytest.mark.slow

VIP_ADDRESS = "127.0.2.1"
BACKENDS = ("127.0.3.1", "127.0.3.2", "127.0.3.3")
WAIT = 5.0  # bound on every socket wait


class NameServer:
    """Says its name on each connection, then echoes what it is sent (a real TCP server)."""

    def __init__(self, host: str, port: int) -> None:
        self.name = host
        self.sock = socket.create_server((host, port), reuse_port=False)
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        try:
            conn.sendall(f"{self.name}\n".encode())
            while data := conn.recv(65536):
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port() -> int:
    return free_port(BACKENDS[0])


@pytest.fixture
def servers(port: int) -> Iterator[dict[str, NameServer]]:
    out = {h: NameServer(h, port) for h in BACKENDS}
    yield out
    for s in out.values():
        s.close()


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[tuple[Emulator, FakeClock]]:
    clock = FakeClock()
    e = Emulator(str(tmp_path / "api.sock"), str(tmp_path / "stats.sock"), str(API_DIR), clock=clock, forward=True)
    e.start()
    yield e, clock
    e.stop()
    assert e.forwarder is not None
    e.forwarder.stop()


@pytest.fixture
def c(emu: tuple[Emulator, FakeClock]) -> Iterator[Any]:
    with client(emu[0]) as cl:
        yield cl


def vip(port: int, address: str = VIP_ADDRESS) -> dict[str, Any]:
    return {"pfx": f"{address}/32", "protocol": 6, "port": port}


def add_vip(c: Any, port: int, ases: dict[str, int], sticky: bool = False, address: str = VIP_ADDRESS) -> None:
    v = vip(port, address)
    r = c.api.lb_add_del_vip_v2(
        pfx=v["pfx"], protocol=6, port=port, encap=0, new_flows_table_length=1024, src_ip_sticky=sticky
    )
    assert r.retval == 0
    for a, w in ases.items():
        assert c.api.lb_add_del_as_v2(pfx=v["pfx"], protocol=6, port=port, as_address=a, weight=w).retval == 0


def served(emu: Emulator) -> list[str]:
    assert emu.forwarder is not None
    emu.forwarder.sync()
    return emu.forwarder.listening()


def connect(port: int, address: str = VIP_ADDRESS) -> tuple[socket.socket, str]:
    """A client connection and the name of the server that greeted it ("" if reset)."""
    s = socket.create_connection((address, port), timeout=WAIT)
    try:
        greeting = s.recv(64)
    except ConnectionResetError:
        return s, ""
    return s, greeting.decode().strip()


def assert_reset(s: socket.socket) -> None:
    """The connection was reset: the next read fails (or, had a FIN come first, the next write)."""
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        if s.recv(64) == b"":
            s.sendall(b"again")


def predicted(emu: Emulator, port: int, s: socket.socket, sticky: bool = False) -> str | None:
    """The AS VPP's lb node would send this connection's first packet to."""
    src, sport = s.getsockname()[:2]
    h = lbtable.flow_hash(
        lbtable.ip46(ipaddress.ip_address(src)), lbtable.ip46(ipaddress.ip_address(VIP_ADDRESS)), sport, port, sticky
    )
    table = emu.new_flow_table(f"{VIP_ADDRESS}/32", 6, port)
    return table[h & (len(table) - 1)]


def test_each_connection_lands_on_the_as_vpp_picks_and_bytes_flow_both_ways(
    emu: tuple[Emulator, FakeClock], c: Any, servers: dict[str, NameServer], port: int
) -> None:
    e, _ = emu
    add_vip(c, port, {BACKENDS[0]: 100, BACKENDS[1]: 100, BACKENDS[2]: 50})
    assert served(e) == [f"{VIP_ADDRESS}:{port}"]
    seen: dict[str, int] = {}
    for _ in range(60):
        s, name = connect(port)
        with s:
            assert name == predicted(e, port, s), "the AS of the flow hash's bucket"
            seen[name] = seen.get(name, 0) + 1
            s.sendall(b"ping " * 1000)
            echoed = b""
            while len(echoed) < 5000:
                echoed += s.recv(65536)
            assert echoed == b"ping " * 1000
    assert set(seen) == set(BACKENDS), seen  # 60 flows reach all three
    index = e.lb.find_vip(lbtable.ip46(ipaddress.ip_address(VIP_ADDRESS)), 128, 6, port)
    assert index is not None
    counters = e.lb.vip_counters(index.index)
    assert counters["first session packet"] == 60 and counters["packet from existing sessions"] >= 60
    # and the VIP's route counters: every packet to it, its IP and TCP headers (40 bytes) and its data
    with e.lock:
        stats_index = e.lb.fib.lookup(index.prefix, index.plen, True)
        assert stats_index is not None
        packets = sum(row[2 * stats_index[0]] for row in e.lb.fib.to)
        octets = sum(row[2 * stats_index[0] + 1] for row in e.lb.fib.to)
    assert packets == sum(counters.values()) and octets == 40 * packets + 60 * 5000


def test_no_server_resets_the_connection(emu: tuple[Emulator, FakeClock], c: Any, port: int) -> None:
    e, _ = emu
    add_vip(c, port, {})
    assert served(e) == [f"{VIP_ADDRESS}:{port}"]
    try:
        s, name = connect(port)
    except ConnectionResetError:
        # The reset came before connect() had looked at the finished handshake (a connect
        # with a timeout reads SO_ERROR after polling): reset all the same.
        return
    with s:
        assert name == ""


def test_a_src_ip_sticky_vip_keeps_one_client_on_one_as(
    emu: tuple[Emulator, FakeClock], c: Any, servers: dict[str, NameServer], port: int
) -> None:
    e, _ = emu
    add_vip(c, port, dict.fromkeys(BACKENDS, 100), sticky=True)
    served(e)
    names = set()
    for _ in range(10):
        s, name = connect(port)
        with s:
            assert name == predicted(e, port, s, sticky=True)
            names.add(name)
    assert len(names) == 1


def test_a_drained_as_keeps_its_flows_and_a_flushed_one_loses_them(
    emu: tuple[Emulator, FakeClock], c: Any, servers: dict[str, NameServer], port: int
) -> None:
    e, _ = emu
    add_vip(c, port, {BACKENDS[0]: 100, BACKENDS[1]: 100})
    served(e)
    live: dict[str, socket.socket] = {}
    while len(live) < 2:  # one connection on each AS
        s, name = connect(port)
        if name in live:
            s.close()
        else:
            live[name] = s
    v = vip(port)
    # weight 0 without flush: the drained AS's open flow goes on, new flows avoid it
    assert c.api.lb_as_set_weight(pfx=v["pfx"], protocol=6, port=port, as_address=BACKENDS[0], weight=0).retval == 0
    live[BACKENDS[0]].sendall(b"still here")
    assert live[BACKENDS[0]].recv(64) == b"still here"
    for _ in range(10):
        s, name = connect(port)
        with s:
            assert name == BACKENDS[1]
    # the AS removed with a flush: its flow is gone, the next packet lands on the other AS: reset
    r = c.api.lb_add_del_as_v2(pfx=v["pfx"], protocol=6, port=port, as_address=BACKENDS[0], is_del=True, is_flush=True)
    assert r.retval == 0
    live[BACKENDS[0]].sendall(b"hello?")
    assert_reset(live[BACKENDS[0]])
    live[BACKENDS[1]].sendall(b"fine")
    assert live[BACKENDS[1]].recv(64) == b"fine"
    for s in live.values():
        s.close()


def test_a_drained_flow_idle_past_the_flow_timeout_is_reset(
    emu: tuple[Emulator, FakeClock], c: Any, servers: dict[str, NameServer], port: int
) -> None:
    e, clock = emu
    add_vip(c, port, {BACKENDS[0]: 100, BACKENDS[1]: 100})
    served(e)
    while True:
        s, name = connect(port)
        if name == BACKENDS[0]:
            break
        s.close()
    v = vip(port)
    assert c.api.lb_as_set_weight(pfx=v["pfx"], protocol=6, port=port, as_address=BACKENDS[0], weight=0).retval == 0
    clock.now += 41  # past lb's default 40 s flow timeout, with no packet
    served(e)
    s.sendall(b"after a long pause")
    assert_reset(s)
    s.close()


def test_a_removed_vip_stops_listening_and_resets_its_connections(
    emu: tuple[Emulator, FakeClock], c: Any, servers: dict[str, NameServer], port: int
) -> None:
    e, _ = emu
    add_vip(c, port, {BACKENDS[0]: 100})
    served(e)
    s, name = connect(port)
    assert name == BACKENDS[0]
    v = vip(port)
    assert c.api.lb_add_del_as_v2(pfx=v["pfx"], protocol=6, port=port, as_address=BACKENDS[0], is_del=True).retval == 0
    r = c.api.lb_add_del_vip_v2(pfx=v["pfx"], protocol=6, port=port, is_del=True)
    assert r.retval == 0
    assert served(e) == []
    assert_reset(s)
    s.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((VIP_ADDRESS, port), timeout=WAIT)


def test_a_vip_on_an_address_this_machine_lacks_is_skipped_and_the_others_served(
    emu: tuple[Emulator, FakeClock], c: Any, servers: dict[str, NameServer], port: int
) -> None:
    e, _ = emu
    add_vip(c, port, {BACKENDS[0]: 100}, address="192.0.2.1")
    add_vip(c, port, {BACKENDS[1]: 100})
    assert served(e) == [f"{VIP_ADDRESS}:{port}"]
    s, name = connect(port)
    with s:
        assert name == BACKENDS[1]
