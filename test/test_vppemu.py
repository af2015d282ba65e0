"""The VPP emulator driven by the real, unmodified vpp_papi client and VPPStats."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vpp_papi.vpp_stats import VPPStats

from maglev.vppemu.lb import COUNTER_NAMES, LbPlugin, ip46, maglev_table
from maglev.vppemu.process import start_emulator

from .emu import API_DIR, FakeClock, client, emulator

VIP = {"pfx": "192.0.2.1/32", "protocol": 6, "port": 80}
VIP6 = {"pfx": "2001:db8::1/128", "protocol": 6, "port": 443}


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[tuple[Any, FakeClock]]:
    with emulator(tmp_path) as e:
        yield e


@pytest.fixture
def c(emu: tuple[Any, FakeClock]) -> Iterator[Any]:
    with client(emu[0]) as cl:
        yield cl


def ases(c: Any, vip: dict[str, Any] | None = None) -> list[tuple[str, int, int, int]]:
    rows = c.api.lb_as_v2_dump()
    return [
        (str(d.app_srv), d.weight, d.num_buckets, d.flags)
        for d in rows
        if vip is None or (str(d.vip.pfx) == vip["pfx"] and d.vip.port == vip["port"])
    ]


# --- wire protocol -------------------------------------------------------------------------


def test_handshake_table_ping_keepalive_version_threads(emu: Any, c: Any) -> None:
    e, _ = emu
    table = c.transport.message_table
    names = {n.rsplit("_", 1)[0]: i for n, i in table.items()}
    assert names["sockclnt_create"] == 15 and names["sockclnt_create_reply"] == 16
    assert names["control_ping"] == 23 and names["memclnt_keepalive"] == 21
    assert "lb_add_del_vip_v2_7c520e0f" in table and "lb_as_set_weight_2d89bdbd" in table
    assert c.api.control_ping().vpe_pid == os.getpid()
    assert c.api.memclnt_keepalive().retval == 0
    v = c.api.show_version()
    assert (v.retval, v.program, v.version) == (0, "vpe", "26.10-rc0~374-gb575ec2c56d")
    t = c.api.show_threads()
    assert [d.name for d in t.thread_data] == ["vpp_main", "vpp_wk_0", "vpp_wk_1"]
    assert "vpp v26.10" in c.api.cli_inband(cmd="show version").reply


def test_unimplemented_request_gets_minus_9(c: Any) -> None:
    assert c.api.get_first_msg_id(name="lb").retval == -9


def test_flavours_have_different_message_tables(tmp_path: Path) -> None:
    with emulator(tmp_path / "m") as (e, _), client(e) as cm:
        assert all(hasattr(cm.api, n) for n in ("lb_conf_get", "lb_add_del_as_v2", "lb_as_set_weight", "lb_as_v2_dump"))
    with emulator(tmp_path / "o", "v26.06") as (e, _), client(e) as co:
        assert not any(
            hasattr(co.api, n) for n in ("lb_conf_get", "lb_add_del_as_v2", "lb_as_set_weight", "lb_as_v2_dump")
        )
        assert hasattr(co.api, "lb_add_del_as") and co.api.show_version().version == "26.06-release"


# --- lb_conf -----------------------------------------------------------------------------


def test_lb_conf(c: Any) -> None:
    r = c.api.lb_conf_get()
    assert (str(r.ip4_src_address), r.sticky_buckets_per_core, r.flow_timeout) == ("255.255.255.255", 1024, 40)
    assert (
        c.api.lb_conf(
            ip4_src_address="192.0.2.254", ip6_src_address="2001:db8::fe", sticky_buckets_per_core=3000
        ).retval
        == -70
    )
    assert (
        c.api.lb_conf(
            ip4_src_address="192.0.2.254",
            ip6_src_address="2001:db8::fe",
            sticky_buckets_per_core=65536,
            flow_timeout=30,
        ).retval
        == 0
    )
    r = c.api.lb_conf_get()
    assert (str(r.ip4_src_address), str(r.ip6_src_address), r.sticky_buckets_per_core, r.flow_timeout) == (
        "192.0.2.254", "2001:db8::fe", 65536, 30,
    )  # fmt: skip
    assert c.api.lb_conf(ip6_src_address="2001:db8::fe").retval == 0  # ip4 omitted: overwritten with 0.0.0.0
    r = c.api.lb_conf_get()
    assert (str(r.ip4_src_address), r.sticky_buckets_per_core, r.flow_timeout) == ("0.0.0.0", 65536, 30)


# --- VIPs --------------------------------------------------------------------------------


def test_vip_errors_and_normalisation(c: Any) -> None:
    add = c.api.lb_add_del_vip_v2
    assert add(**VIP, encap=0).retval == 0
    assert add(**VIP, encap=1).retval == -81, "same key, any encap"
    assert add(pfx="192.0.2.1/32", port=0, encap=0).retval == -81, "all-port beside a per-port VIP"
    assert add(pfx="192.0.2.1/32", protocol=6, port=443, encap=1).retval == -73, (
        "per-port VIPs of a prefix share one encap"
    )
    assert add(pfx="192.0.2.1/32", protocol=17, port=53, encap=0).retval == 0
    assert add(pfx="192.0.2.2/32", protocol=6, port=80, encap=4).retval == -97, "nat6 on an IPv4 VIP"
    assert add(pfx="192.0.2.3/32", protocol=6, port=80, encap=0, new_flows_table_length=1000).retval == -70
    assert add(pfx="2001:db8::5/128", protocol=6, port=80, encap=2).retval == 0, "l3dsr on IPv6 silently becomes gre6"
    assert add(pfx="203.0.113.7/24", port=0, encap=0, protocol=6).retval == 0
    assert add(pfx="198.51.100.9/32", port=8080, protocol=6, encap=0, new_flows_table_length=65536).retval == 0
    dump = {(str(d.vip.pfx), d.vip.port): d for d in c.api.lb_vip_dump()}
    assert int(dump[("2001:db8::5/128", 80)].encap) == 1
    assert int(dump[("203.0.113.0/24", 0)].vip.protocol) == 255, "host bits cleared, protocol forced to any"
    assert dump[("198.51.100.9/32", 8080)].flow_table_length == 0, "65536 does not fit the u16 field"
    assert dump[("192.0.2.1/32", 80)].flow_table_length == 1024
    assert c.api.lb_add_del_vip_v2(pfx="192.0.2.99/32", protocol=6, port=80, is_del=True).retval == -6


def test_ipv4_prefix_longer_than_32_is_refused_on_master(emu: Any, c: Any) -> None:
    e, _ = emu
    r = c.api.lb_add_del_vip_v2(pfx={"address": "192.0.2.30", "len": 128}, protocol=6, port=80)
    assert r.retval == -7
    with e.lock:
        assert not e.lb.live_vips(), "nothing was created"


def test_encap_is_immutable_and_delete_then_readd(c: Any) -> None:
    assert c.api.lb_add_del_vip_v2(**VIP, encap=0).retval == 0
    assert c.api.lb_add_del_as_v2(**VIP, as_address="192.0.2.10").retval == 0
    assert c.api.lb_add_del_vip_v2(**VIP, is_del=True).retval == 0
    assert c.api.lb_vip_dump() == [], "a deleted VIP leaves the dump at once"
    assert ases(c) == [("192.0.2.10", 100, 0, 0)], "its ASes stay, flags 0, until collected"
    assert c.api.lb_add_del_vip_v2(**VIP6, encap=1).retval == 0
    assert c.api.lb_add_del_vip_v2(**VIP, encap=1).retval == 0, "re-added with another encap"
    assert c.api.lb_add_del_as_v2(**VIP, as_address="192.0.2.10").retval == -97, "gre6 needs IPv6 ASes"


# --- ASes and weights --------------------------------------------------------------------------


def test_as_errors_revival_and_dumps(c: Any) -> None:
    a = c.api.lb_add_del_as_v2
    assert a(**VIP, as_address="192.0.2.10").retval == -6, "no such VIP"
    c.api.lb_add_del_vip_v2(**VIP, encap=0)
    c.api.lb_add_del_vip_v2(**VIP6, encap=1)
    assert a(**VIP, as_address="2001:db8::10").retval == -97
    assert a(**VIP, as_address="192.0.2.10").retval == 0
    assert a(**VIP, as_address="192.0.2.10").retval == -81
    assert a(**VIP, as_address="192.0.2.11", is_del=True).retval == -6
    assert a(**VIP, as_address="192.0.2.10", is_del=True).retval == 0
    assert a(**VIP, as_address="192.0.2.10", is_del=True).retval == 0, "deleting a removed AS"
    assert ases(c, VIP) == [("192.0.2.10", 100, 0, 0)]
    assert c.api.lb_as_set_weight(**VIP, as_address="192.0.2.10", weight=10).retval == -6, "not in use"
    assert a(**VIP, as_address="192.0.2.10", weight=30).retval == 0, "revived with the new weight"
    assert ases(c, VIP) == [("192.0.2.10", 30, 1024, 1)]
    assert a(**VIP6, as_address="2001:db8::10").retval == 0
    # The dump filter: IPv4 never matches (raw union vs mapped form), IPv6 does.
    assert c.api.lb_as_v2_dump(pfx="192.0.2.1/32", protocol=6, port=80) == []
    six = c.api.lb_as_v2_dump(pfx="2001:db8::1/128", protocol=6, port=443)
    assert [str(d.app_srv) for d in six] == ["2001:db8::10"]
    assert len(c.api.lb_as_dump()) == 2
    assert not hasattr(c.api.lb_as_dump()[0], "weight")


def test_weight_vectors_through_the_api(c: Any) -> None:
    c.api.lb_add_del_vip_v2(**VIP, encap=0)
    for i in range(1, 5):
        c.api.lb_add_del_as_v2(**VIP, as_address=f"192.0.2.{10 + i}")
    assert [b for _, _, b, _ in ases(c, VIP)] == [256, 256, 256, 256]
    c.api.lb_as_set_weight(**VIP, as_address="192.0.2.11", weight=50)
    assert [b for _, _, b, _ in ases(c, VIP)] == [150, 292, 291, 291]
    c.api.lb_as_set_weight(**VIP, as_address="192.0.2.12", weight=0)
    assert [b for _, _, b, _ in ases(c, VIP)] == [208, 0, 408, 408]
    v2 = {"pfx": "192.0.2.2/32", "protocol": 6, "port": 80}
    c.api.lb_add_del_vip_v2(**v2, encap=0)
    for i, w in ((1, 100), (2, 100), (3, 50)):
        c.api.lb_add_del_as_v2(**v2, as_address=f"198.51.100.{i}", weight=w)
    assert [b for _, _, b, _ in ases(c, v2)] == [408, 408, 208]
    c.api.lb_as_set_weight(**v2, as_address="198.51.100.1", weight=0)
    assert [b for _, _, b, _ in ases(c, v2)] == [0, 674, 350]


def test_table_ignores_insertion_order() -> None:
    a = [(1, ip46(bytes([192, 0, 2, 1])), 100), (2, ip46(bytes([192, 0, 2, 2])), 60)]
    b = list(reversed(a))
    assert maglev_table(a, 1024) == maglev_table(b, 1024)
    assert set(maglev_table([], 16)) == {0}


def test_all_port_nat_vip_with_an_as_is_refused(emu: Any, c: Any) -> None:
    assert c.api.lb_add_del_vip_v2(pfx="192.0.2.5/32", port=0, encap=3).retval == 0  # accepted, as VPP does
    assert c.api.lb_add_del_as_v2(pfx="192.0.2.5/32", port=0, protocol=255, as_address="192.0.2.50").retval == -7


# --- garbage collection ------------------------------------------------------------------------


def test_removed_ases_and_deleted_vips_are_collected(tmp_path: Path) -> None:
    with emulator(tmp_path, gc_interval=5.0) as (e, clock), client(e) as c:
        c.api.lb_add_del_vip_v2(**VIP, encap=0)
        c.api.lb_add_del_as_v2(**VIP, as_address="192.0.2.10")
        c.api.lb_add_del_as_v2(**VIP, as_address="192.0.2.11")
        c.api.lb_add_del_as_v2(**VIP, as_address="192.0.2.10", is_del=True)
        clock.now += 2
        with e.lock:
            e.lb.gc()
        assert ("192.0.2.10", 100, 0, 0) in ases(c, VIP), "within the grace period"
        clock.now += 10
        with e.lock:
            e.lb.gc()
        assert [r[0] for r in ases(c, VIP)] == ["192.0.2.11"]
        c.api.lb_add_del_vip_v2(**VIP, is_del=True)
        clock.now += 10
        with e.lock:
            e.lb.gc()
            assert e.lb.vips[1] is None, "the pool slot is free again"
        assert ases(c) == []


# --- v26.06 quirks ------------------------------------------------------------------------------


def test_v2606_quirks(tmp_path: Path) -> None:
    with emulator(tmp_path, "v26.06") as (e, _), client(e) as c:
        add = c.api.lb_add_del_vip
        assert add(pfx="192.0.2.1/32", protocol=6, port=80, encap=0).retval == 0
        assert add(pfx="192.0.2.2/32", protocol=6, port=80, encap=0).retval == -81, "both are ::/32"
        d = c.api.lb_vip_dump()
        assert [(str(x.vip.pfx), int(x.vip.protocol), x.flow_table_length) for x in d] == [("0.0.0.0/32", 0, 0)]
        v4 = {"pfx": {"address": "192.0.2.9", "len": 128}, "protocol": 6, "port": 80}
        assert add(**v4, encap=1).retval == -97, "only encap 0 is understood: gre6 falls back to ip6-gre6"
        assert add(**v4, encap=0).retval == 0
        raw = c.api.lb_vip_dump(_no_type_conversion=True)
        lens = sorted(x.vip.pfx.len for x in raw)
        assert lens == [32, 128], "dumps return the internal length (96 + len for IPv4)"
        assert sorted(int(x.encap) for x in raw) == [1, 3], "internal types: ip6-gre4 and ip4-gre4"
        assert c.api.lb_add_del_as(**v4, as_address="192.0.2.20").retval == 0
        assert add(**v4, is_del=True).retval == 0
        assert len(c.api.lb_vip_dump(_no_type_conversion=True)) == 2, "deleted VIPs stay listed on 26.06"


# --- stats and traffic ---------------------------------------------------------------------------


def test_stats_counters_and_traffic(emu: Any, c: Any) -> None:
    e, _ = emu
    s = VPPStats(e.stats_socket)
    s.connect()
    try:
        assert s.ls(["^first"]) == [], "counters appear with the first VIP"
        assert s["/sys/boottime"] > 1_700_000_000
        c.api.lb_add_del_vip_v2(**VIP, encap=0)
        c.api.lb_add_del_vip_v2(pfx="192.0.2.7/32", protocol=6, port=80, encap=0)
        c.api.lb_add_del_as_v2(**VIP, as_address="192.0.2.10")
        assert sorted(s.ls(list(COUNTER_NAMES))) == sorted(COUNTER_NAMES)
        out = c.api.cli_inband(cmd="test lb traffic 192.0.2.1/32 protocol tcp port 80 flows 1 packets 10").reply
        assert "192.0.2.10 10" in out
        index = int(
            next(
                line
                for line in c.api.cli_inband(cmd="show lb vips verbose").reply.splitlines()
                if "192.0.2.1/32" in line
            )
            .split("[")[1]
            .split("]")[0]
        )
        assert s["first session packet"][:, index].sum() == 1
        assert s["packet from existing sessions"][:, index].sum() == 9
        e.traffic("192.0.2.7/32", flows=1, packets=5, protocol="tcp", port=80)
        index7 = index + 1
        assert s["no server configured"][:, index7].sum() == 4
        assert s["untracked packet"][:, index7].sum() == 1
    finally:
        s.disconnect()


def test_drain_keeps_established_flows_and_flush_moves_them(emu: Any, c: Any) -> None:
    e, _ = emu
    c.api.lb_add_del_vip_v2(**VIP, encap=0)
    for a in ("192.0.2.10", "192.0.2.11"):
        c.api.lb_add_del_as_v2(**VIP, as_address=a)

    def run(seed: int) -> dict[str, int]:
        out = e.traffic("192.0.2.1/32", flows=200, packets=3, protocol="tcp", port=80, seed=seed)
        return {
            line.split()[0]: int(line.split()[1])
            for line in out.splitlines()
            if line[0].isdigit() and " " in line and "=" not in line
        }

    first = run(1)
    assert first["192.0.2.10"] > 0 and first["192.0.2.11"] > 0
    c.api.lb_as_set_weight(**VIP, as_address="192.0.2.10", weight=0)  # graceful drain
    again = run(1)  # the same flows: sticky, still on .10
    assert again.get("192.0.2.10") == first["192.0.2.10"]
    new = run(2)  # new flows avoid the drained AS
    assert "192.0.2.10" not in new
    c.api.lb_as_set_weight(**VIP, as_address="192.0.2.10", weight=0, is_flush=True)
    flushed = run(1)
    assert "192.0.2.10" not in flushed, "flushed flows re-hash to the remaining AS"


# --- robustness ------------------------------------------------------------------------------------


def test_many_clients_at_once(emu: Any) -> None:
    e, _ = emu
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with client(e, f"c{n}") as cl:
                vip = {"pfx": f"192.0.2.{100 + n}/32", "protocol": 6, "port": 80}
                assert cl.api.lb_add_del_vip_v2(**vip, encap=0).retval == 0
                for i in range(20):
                    assert cl.api.lb_add_del_as_v2(**vip, as_address=f"198.51.{n}.{i + 1}").retval == 0
                assert len(cl.api.lb_as_v2_dump()) >= 20
        except BaseException as ex:
            errors.append(ex)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    with e.lock:
        assert len(e.lb.live_vips()) == 6


def raw_connection(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s


def test_malformed_frames_close_only_that_connection(emu: Any, c: Any) -> None:
    e, _ = emu
    for frame in (
        struct.pack(">QII", 0, 1 << 30, 0),  # absurd length
        struct.pack(">QII", 0, 4, 0) + struct.pack(">HH", 60000, 0),  # unknown message id
        struct.pack(">QII", 0, 3, 0) + struct.pack(">H", 23) + b"x",  # truncated control_ping
    ):
        s = raw_connection(e.api_socket)
        s.sendall(frame)
        assert s.recv(100) == b"", "the emulator closed this connection"
        s.close()
    assert c.api.control_ping().retval == 0, "others are still served"


def test_client_vanishing_mid_dump(emu: Any, c: Any) -> None:
    e, _ = emu
    c.api.lb_add_del_vip_v2(**VIP, encap=0)
    for i in range(200):
        c.api.lb_add_del_as_v2(**VIP, as_address=str(ipaddress.IPv4Address("198.51.100.0") + i))
    dump = e.api.messages["lb_as_v2_dump"]
    msg = dump.pack({"_vl_msg_id": e.api.ids["lb_as_v2_dump"], "client_index": 0, "context": 7})
    s = raw_connection(e.api_socket)
    s.sendall(struct.pack(">QII", 0, len(msg), 0) + msg)
    s.close()  # gone before reading a byte
    assert len(c.api.lb_as_v2_dump()) == 200


def test_command_line_runs_until_sigterm_and_state_is_lost_on_restart(tmp_path: Path) -> None:
    api, stats = str(tmp_path / "api.sock"), str(tmp_path / "stats.sock")

    def start() -> subprocess.Popen[str]:
        return start_emulator(api, stats, str(API_DIR), "--gc-interval", "1")

    from vpp_papi import VPPApiClient

    p = start()
    cl = VPPApiClient(apidir=str(API_DIR), server_address=api)
    cl.connect("t")
    assert cl.api.lb_add_del_vip_v2(**VIP, encap=0).retval == 0
    cl.disconnect()
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    p = start()
    try:
        cl = VPPApiClient(apidir=str(API_DIR), server_address=api)
        cl.connect("t")
        assert cl.api.lb_vip_dump() == [], "a restarted VPP has lost its state"
        cl.disconnect()
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
    assert not os.path.exists(api)


def test_model_rejects_unknown_flavour() -> None:
    with pytest.raises(ValueError, match="unknown flavour"):
        LbPlugin("v1")


def test_flush_vip_and_nat_interfaces(emu: Any, c: Any) -> None:
    e, _ = emu
    assert c.api.lb_flush_vip(**VIP).retval == 0, "always 0, even for an unknown VIP"
    c.api.lb_add_del_vip_v2(**VIP, encap=0)
    c.api.lb_add_del_as_v2(**VIP, as_address="192.0.2.10")
    e.traffic("192.0.2.1/32", flows=50, packets=1, protocol="tcp", port=80)
    with e.lock:
        assert e.lb.ases_of(e.lb.live_vips()[0])[0].flows == 50
    assert c.api.lb_flush_vip(**VIP).retval == 0
    with e.lock:
        assert e.lb.ases_of(e.lb.live_vips()[0])[0].flows == 0
    assert c.api.lb_add_del_intf_nat4(is_add=True, sw_if_index=0).retval == 0
    assert c.api.lb_add_del_intf_nat6(is_add=True, sw_if_index=7).retval == -2


def test_refused_crash_inputs_are_logged_loudly(emu: Any, c: Any) -> None:
    from maglev.log import gate

    seen: list[dict[str, Any]] = []
    remove = gate.add_tap(seen.append)
    try:
        c.api.lb_add_del_vip_v2(pfx={"address": "192.0.2.30", "len": 33}, protocol=6, port=80)
    finally:
        remove()
    refused = [ev for ev in seen if ev.get("event") == "vppemu-crash-refused"]
    assert refused and "ip4_mtrie" in refused[0]["why"]


def test_random_frames_never_crash_the_emulator(emu: Any, c: Any) -> None:
    import random

    e, _ = emu
    rnd = random.Random(4)
    ids = list(e.api.names)
    for _ in range(300):
        body = struct.pack(">H", rnd.choice(ids)) + rnd.randbytes(rnd.randrange(0, 120))
        s = raw_connection(e.api_socket)
        s.sendall(struct.pack(">QII", 0, len(body), 0) + body)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
        s.close()
    assert c.api.control_ping().retval == 0


def test_fast_decoders_agree_with_vpp_papi(emu: Any) -> None:
    import random

    e, _ = emu
    rnd = random.Random(7)
    checked = 0
    for name, decoder in e.decoders.items():
        msg = e.api.messages[name]
        size = decoder.struct.size
        for _ in range(5):
            body = struct.pack(">H", e.api.ids[name]) + rnd.randbytes(size - 2)
            try:
                ref = msg.unpack(body, ntc=True)[0]
            except Exception:
                continue  # vpp_papi itself cannot read these bytes (e.g. an invalid enum)
            assert repr(_plain(decoder.unpack(body))) == repr(_plain(ref)), name
            checked += 1
    assert checked > 200


def _plain(x: Any) -> Any:
    if isinstance(x, (bytes, str, bool)):
        return x
    if isinstance(x, int):
        return int(x)
    if isinstance(x, (tuple, list)):
        return [_plain(y) for y in x]
    return x


# --- the VIPs' FIB entries: ip_route_lookup and /net/route/to ------------------------------------


@pytest.fixture
def packaged(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """The emulator and a client on the packaged definitions: ../shared has no ip.api.json."""
    from vpp_papi import VPPApiClient

    from maglev.vppapi import packaged_api_dir
    from maglev.vppemu.server import Emulator

    api = str(packaged_api_dir())
    e = Emulator(str(tmp_path / "api.sock"), str(tmp_path / "stats.sock"), api, clock=FakeClock()).start()
    cl = VPPApiClient(apidir=api, server_address=e.api_socket, read_timeout=5)
    cl.connect("routes")
    yield e, cl
    cl.disconnect()
    e.stop()


def test_each_vip_prefix_has_one_fib_entry_with_its_route_counters(packaged: tuple[Any, Any]) -> None:
    e, c = packaged
    for port in (80, 443):  # two per-port VIPs on one prefix share its FIB entry
        assert c.api.lb_add_del_vip_v2(pfx="192.0.2.1/32", protocol=6, port=port, encap=0).retval == 0
        assert c.api.lb_add_del_as_v2(pfx="192.0.2.1/32", protocol=6, port=port, as_address="192.0.2.10").retval == 0
    assert c.api.lb_add_del_vip_v2(**VIP6, encap=1).retval == 0

    def lookup(prefix: str, exact: int = 1, table_id: int = 0) -> Any:
        return c.api.ip_route_lookup(table_id=table_id, exact=exact, prefix=prefix)

    r = lookup("192.0.2.1/32")
    assert r.retval == 0 and str(r.route.prefix) == "192.0.2.1/32" and r.route.stats_index >= 16
    v6 = lookup("2001:db8::1/128")
    assert v6.retval == 0 and v6.route.stats_index not in (r.route.stats_index, 0)
    assert lookup("198.51.100.9/32").retval == -6, "exact: no such entry"
    assert lookup("198.51.100.9/32", exact=0).route.stats_index == 0, "longest match: the default route"
    assert lookup("192.0.2.1/32", exact=0).route.stats_index == r.route.stats_index
    assert lookup("192.0.2.1/32", table_id=7).retval == -3, "no such FIB"
    e.traffic("192.0.2.1/32", flows=10, packets=3, protocol="tcp", port=80)
    e.traffic("192.0.2.1/32", flows=2, packets=1, protocol="tcp", port=443)
    s = VPPStats(e.stats_socket)
    s.connect()
    try:
        to = s["/net/route/to"][:, r.route.stats_index]
        assert (to.sum_packets(), to.sum_octets()) == (32, 32 * 40), "every packet to the prefix, 40-byte headers"
        assert s["/net/route/to"][:, v6.route.stats_index].sum_packets() == 0
    finally:
        s.disconnect()
    # the entry goes with the prefix's last VIP; its slot comes back zeroed
    for port in (80, 443):
        c.api.lb_add_del_as_v2(pfx="192.0.2.1/32", protocol=6, port=port, as_address="192.0.2.10", is_del=True)
        assert c.api.lb_add_del_vip_v2(pfx="192.0.2.1/32", protocol=6, port=port, is_del=True).retval == 0
        gone = lookup("192.0.2.1/32").retval
        assert gone == (0 if port == 80 else -6)
    assert c.api.lb_add_del_vip_v2(pfx="192.0.2.5/32", protocol=6, port=80, encap=0).retval == 0
    again = lookup("192.0.2.5/32").route.stats_index
    assert again == r.route.stats_index
    s = VPPStats(e.stats_socket)
    s.connect()
    try:
        assert s["/net/route/to"][:, again].sum_packets() == 0
    finally:
        s.disconnect()
