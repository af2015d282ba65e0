"""The emulator's message handlers: memclnt, vpe and the lb plugin's API. Emulator thread.

Each handler takes the connection and the decoded request and returns its replies as
(name, fields); dumps queue their details on the connection themselves, before the
control_ping reply the client sends after them. Encodings follow each VPP generation
as real VPP answers (see docs/vppemu.md): the model is ``lb.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..vppapi.codec import FastEncoder
from ..vppapi.messages import ApiDefinitions
from .lb import NO_SUCH_ENTRY, OK, LbPlugin, Vip, ip46, is_ip4
from .show import VERSIONS, LbCli
from .transport import Connection

NO_SUCH_FIB = -3  # src/vnet/error.h: an ip_route_lookup in a table that does not exist

Reply = tuple[str, dict[str, Any]]


class ApiHandlers:
    def __init__(
        self, api: ApiDefinitions, lb: LbPlugin, cli: LbCli, flavour: str, encoders: dict[str, FastEncoder]
    ) -> None:
        self.api = api
        self.lb = lb
        self.cli = cli
        self.flavour = flavour
        self.encoders = encoders
        self.table: dict[str, Callable[[Connection, Any], list[Reply]]] = {
            "sockclnt_create": self._sockclnt_create,
            "sockclnt_delete": self._sockclnt_delete,
            "control_ping": self._control_ping,
            "memclnt_keepalive": lambda c, r: [("memclnt_keepalive_reply", {"retval": OK})],
            "show_version": self._show_version,
            "show_threads": self._show_threads,
            "cli_inband": self._cli_inband,
            "lb_conf": self._lb_conf,
            "lb_conf_get": self._lb_conf_get,
            "lb_add_del_vip": self._lb_add_del_vip,
            "lb_add_del_vip_v2": self._lb_add_del_vip,
            "lb_add_del_as": self._lb_add_del_as,
            "lb_add_del_as_v2": self._lb_add_del_as,
            "lb_as_set_weight": self._lb_as_set_weight,
            "lb_flush_vip": self._lb_flush_vip,
            "lb_vip_dump": self._lb_vip_dump,
            "lb_as_dump": self._lb_as_dump,
            "lb_as_v2_dump": self._lb_as_dump,
            "lb_add_del_intf_nat4": self._lb_intf_nat,
            "lb_add_del_intf_nat6": self._lb_intf_nat,
            "ip_route_lookup": self._ip_route_lookup,
        }

    # --- memclnt / vpe / vlib ---------------------------------------------------------
    def _sockclnt_create(self, conn: Connection, req: Any) -> list[Reply]:
        conn.name = req.name
        table = self.api.table()
        return [
            (
                "sockclnt_create_reply",
                {"response": 0, "index": 0x80000000 | conn.number, "count": len(table), "message_table": table},
            )
        ]

    def _sockclnt_delete(self, conn: Connection, req: Any) -> list[Reply]:
        conn.closing = True
        return [("sockclnt_delete_reply", {"response": 1})]

    def _control_ping(self, conn: Connection, req: Any) -> list[Reply]:
        return [
            ("control_ping_reply", {"retval": OK, "client_index": 0x80000000 | conn.number, "vpe_pid": os.getpid()})
        ]

    def _show_version(self, conn: Connection, req: Any) -> list[Reply]:
        version, _ = VERSIONS[self.flavour]
        return [
            (
                "show_version_reply",
                {
                    "retval": OK,
                    "program": "vpe",
                    "version": version,
                    "build_date": "2026-08-22T00:00:00",
                    "build_directory": "/vpp-maglev/emulator",
                },
            )
        ]

    def _show_threads(self, conn: Connection, req: Any) -> list[Reply]:
        threads = [
            {"id": 0, "name": "vpp_main", "type": "", "pid": os.getpid(), "cpu_id": 0, "core": 0, "cpu_socket": 0}
        ]
        for w in range(self.lb.workers):
            threads.append(
                {
                    "id": w + 1,
                    "name": f"vpp_wk_{w}",
                    "type": "workers",
                    "pid": os.getpid(),
                    "cpu_id": w + 1,
                    "core": w + 1,
                    "cpu_socket": 0,
                }
            )
        return [("show_threads_reply", {"retval": OK, "count": len(threads), "thread_data": threads})]

    def _cli_inband(self, conn: Connection, req: Any) -> list[Reply]:
        return [("cli_inband_reply", {"retval": OK, "reply": self.cli.run(req.cmd)})]

    # --- lb ---------------------------------------------------------------------------------
    def _prefix(self, pfx: Any) -> tuple[bytes, int]:
        af = int(pfx.address.af)
        raw = bytes(pfx.address.un.ip6) if af == 1 else bytes(pfx.address.un.ip4) + bytes(12)
        return self.lb.vip_key(af, raw, int(pfx.len))

    def _vip(self, req: Any) -> Vip | None:
        prefix, plen = self._prefix(req.pfx)
        return self.lb.find_vip(prefix, plen, int(req.protocol), int(req.port))

    @staticmethod
    def _address(addr: Any) -> bytes:
        return bytes(addr.un.ip6) if int(addr.af) == 1 else ip46(bytes(addr.un.ip4))

    def _lb_conf(self, conn: Connection, req: Any) -> list[Reply]:
        rv = self.lb.lb_conf(
            bytes(req.ip4_src_address),
            bytes(req.ip6_src_address),
            int(req.sticky_buckets_per_core),
            int(req.flow_timeout),
        )
        return [("lb_conf_reply", {"retval": rv})]

    def _lb_conf_get(self, conn: Connection, req: Any) -> list[Reply]:
        c = self.lb.conf
        return [
            (
                "lb_conf_get_reply",
                {
                    "retval": OK,
                    "ip4_src_address": c.ip4_src,
                    "ip6_src_address": c.ip6_src,
                    "sticky_buckets_per_core": c.sticky_buckets_per_core,
                    "flow_timeout": c.flow_timeout,
                },
            )
        ]

    def _lb_add_del_vip(self, conn: Connection, req: Any) -> list[Reply]:
        reply = self.api.reply_of(type(req).__name__) or "lb_add_del_vip_reply"
        prefix, plen = self._prefix(req.pfx)
        if req.is_del:
            rv = self.lb.del_vip(prefix, plen, int(req.protocol), int(req.port))
        else:
            rv = self.lb.add_vip(
                prefix, plen, int(req.protocol), int(req.port), int(req.encap), int(req.new_flows_table_length),
                src_ip_sticky=bool(getattr(req, "src_ip_sticky", False)), dscp=int(req.dscp), srv_type=int(req.type),
                target_port=int(req.target_port),
            )  # fmt: skip
        return [(reply, {"retval": rv})]

    def _lb_add_del_as(self, conn: Connection, req: Any) -> list[Reply]:
        reply = f"{type(req).__name__}_reply"
        vip = self._vip(req)
        if vip is None:
            return [(reply, {"retval": NO_SUCH_ENTRY})]
        addr = self._address(req.as_address)
        if req.is_del:
            rv = self.lb.del_as(vip, addr, bool(req.is_flush))
        else:
            weight = int(getattr(req, "weight", 100))
            rv = self.lb.add_as(vip, addr, weight, bool(req.is_flush) and hasattr(req, "weight"))
        return [(reply, {"retval": rv})]

    def _lb_as_set_weight(self, conn: Connection, req: Any) -> list[Reply]:
        vip = self._vip(req)
        rv = (
            NO_SUCH_ENTRY
            if vip is None
            else self.lb.set_weight(vip, self._address(req.as_address), int(req.weight), bool(req.is_flush))
        )
        return [("lb_as_set_weight_reply", {"retval": rv})]

    def _lb_flush_vip(self, conn: Connection, req: Any) -> list[Reply]:
        return [("lb_flush_vip_reply", {"retval": self.lb.flush_vip(self._vip(req))})]

    def _lb_intf_nat(self, conn: Connection, req: Any) -> list[Reply]:
        rv = OK if int(req.sw_if_index) == 0 else -2  # only local0 exists here
        return [(f"{type(req).__name__}_reply", {"retval": rv})]

    def _ip_route_lookup(self, conn: Connection, req: Any) -> list[Reply]:
        """The FIB entry of a VIP prefix (fib.py); table 0 is the only one here."""
        p = req.prefix
        v4 = int(p.address.af) == 0
        raw = ip46(bytes(p.address.un.ip4)) if v4 else bytes(p.address.un.ip6)
        hit = self.lb.fib.lookup(raw, int(p.len) + (96 if v4 else 0), bool(req.exact))
        if int(req.table_id) != 0 or hit is None:
            return [("ip_route_lookup_reply", {"retval": NO_SUCH_FIB if int(req.table_id) else NO_SUCH_ENTRY})]
        index, prefix, plen = hit
        un = {"ip4": prefix[12:]} if v4 else {"ip6": prefix}
        pfx = {"address": {"af": 0 if v4 else 1, "un": un}, "len": plen - 96 if v4 else plen}
        route = {"table_id": 0, "stats_index": index, "prefix": pfx, "n_paths": 0, "paths": []}
        return [("ip_route_lookup_reply", {"retval": OK, "route": route})]

    def _raw_prefix(self, vip: Vip) -> dict[str, Any]:
        """The dump's prefix as raw union bytes (what the wire carries)."""
        v4 = is_ip4(vip.prefix)
        if self.lb.weights:
            length = vip.plen - 96 if vip.is_ip4 else vip.plen
        else:
            length = vip.plen  # 26.06 returns the internal ip46 length (96 + len for IPv4)
        un = vip.prefix[12:] + bytes(12) if v4 else vip.prefix
        return {"address": {"af": 0 if v4 else 1, "un": un}, "len": length}

    def _raw_vip(self, vip: Vip) -> dict[str, Any]:
        protocol = vip.protocol if self.lb.weights else 0  # 26.06: htonl(proto) into a u8
        return {"pfx": self._raw_prefix(vip), "protocol": protocol, "port": vip.port}

    @staticmethod
    def _raw_address(addr16: bytes) -> dict[str, Any]:
        return {"af": 0, "un": addr16[12:] + bytes(12)} if is_ip4(addr16) else {"af": 1, "un": addr16}

    def _details(self, conn: Connection, name: str, context: int, fields: dict[str, Any]) -> None:
        conn.queue(self.encoders[name].pack({"_vl_msg_id": self.api.ids[name], "context": context, **fields}))

    def _lb_vip_dump(self, conn: Connection, req: Any) -> list[Reply]:
        for vip in self.lb.live_vips():
            encap = int(vip.type.api_encap) if self.lb.weights else int(vip.type)
            # dscp and srv_type share one byte; srv_type is copied without a byte swap;
            # target_port is swapped twice; flow_table_length is a u16 (26.06: always 0).
            shared = vip.dscp if vip.type.name.endswith("L3DSR") else vip.srv_type
            fields = {
                "vip": self._raw_vip(vip),
                "encap": encap,
                "dscp": shared,
                "srv_type": shared << 24,
                "target_port": int.from_bytes(vip.target_port.to_bytes(2, "big"), "little"),
                "flow_table_length": vip.new_flows_table_length & 0xFFFF if self.lb.weights else 0,
            }
            self._details(conn, "lb_vip_details", req.context, fields)
        return []

    def _lb_as_dump(self, conn: Connection, req: Any) -> list[Reply]:
        v2 = type(req).__name__ == "lb_as_v2_dump"
        name = "lb_as_v2_details" if v2 else "lb_as_details"
        raw = bytes(req.pfx.address.un.ip6)
        everything = raw == bytes(16)
        for vip in [v for v in self.lb.vips[1:] if v is not None]:
            if not everything:
                # The handler compares the raw union (IPv4 in bytes 0-3) with the stored
                # IPv4-mapped form (bytes 12-15): an IPv4 filter never matches.
                if raw != vip.prefix or int(req.protocol) != vip.protocol or int(req.port) != vip.port:
                    continue
            raw_vip = self._raw_vip(vip)
            for a in self.lb.ases_of(vip):
                fields: dict[str, Any] = {
                    "vip": raw_vip,
                    "app_srv": self._raw_address(a.address),
                    "flags": 1 if a.used else 0,
                    "in_use_since": int(a.last_used),
                }
                if v2:
                    fields.update(weight=a.weight, num_buckets=a.buckets)
                self._details(conn, name, req.context, fields)
        return []


__all__ = ["ApiHandlers", "Reply"]
