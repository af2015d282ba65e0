"""The emulator's CLI (``cli_inband``): ``show version``, ``show lb``, ``show lb vips
[verbose]`` and the emulator's own ``test lb traffic``. Emulator thread, under its lock.
"""

from __future__ import annotations

import ipaddress
import re

from .lb import LbPlugin, ip46, show_address

VERSIONS = {
    "master": ("26.10-rc0~374-gb575ec2c56d", "lb 1.2.0"),
    "v26.06": ("26.06-release", "lb 1.1.0"),
}


class LbCli:
    def __init__(self, lb: LbPlugin, flavour: str) -> None:
        self.lb = lb
        self.flavour = flavour

    def run(self, cmd: str) -> str:
        words = cmd.split()
        if words[:2] == ["show", "version"]:
            version, _ = VERSIONS[self.flavour]
            return f"vpp v{version} built by vpp-maglev on emulator at 2026-08-22T00:00:00\n"
        if words[:3] == ["show", "lb", "vips"]:
            return self._show_vips(verbose="verbose" in words[3:])
        if words[:2] == ["show", "lb"]:
            c = self.lb.conf
            return (
                f" Load-Balancer: ip4-src-address {show_address(ip46(c.ip4_src))} "
                f"ip6-src-address {show_address(c.ip6_src)}\n"
                f"  sticky-buckets-per-core {c.sticky_buckets_per_core} flow-timeout {c.flow_timeout}\n"
                f"  #vips: {len(self.lb.live_vips())} "
                f"#ass: {sum(1 for a in self.lb.ases[1:] if a is not None and a.used)}\n"
            )
        if words[:3] == ["test", "lb", "traffic"]:
            return self.traffic(words[3:])
        return f"unknown input `{cmd}'\n"

    def _show_vips(self, verbose: bool) -> str:
        out = []
        for vip in self.lb.live_vips():
            plen = vip.plen - 96 if vip.is_ip4 else vip.plen
            head = f" {vip.type.label} [{vip.index}] {show_address(vip.prefix)}/{plen}"
            if vip.src_ip_sticky:
                head += " src_ip_sticky"
            if vip.deleted:
                head += " deleted"
            out.append(head)
            if not verbose:
                continue
            out.append(f"  new_size:{vip.new_flows_table_length}")
            out.append(f"  protocol:{vip.protocol} port:{vip.port}")
            out.append("  counters:")
            for name, value in self.lb.vip_counters(vip.index).items():
                out.append(f"    {name}: {value}")
            ases = self.lb.ases_of(vip)
            out.append(f"  #as:{sum(1 for a in ases if a.used)}")
            for a in ases:
                out.append(
                    f"    {show_address(a.address)} used:{int(a.used)} flow:{a.flows} "
                    f"weight:{a.weight} buckets:{a.buckets}"
                )
        return "\n".join(out) + ("\n" if out else "")

    _TRAFFIC = re.compile(r"^(\S+)(?: protocol (tcp|udp))?(?: port (\d+))? flows (\d+) packets (\d+)(?: seed (\d+))?$")

    def traffic(self, words: list[str]) -> str:
        m = self._TRAFFIC.match(" ".join(words))
        if m is None:
            return "usage: test lb traffic <vip-prefix> [protocol tcp|udp port N] flows N packets M [seed S]\n"
        try:
            net = ipaddress.ip_network(m.group(1), strict=False)
        except ValueError:
            return f"invalid prefix {m.group(1)!r}\n"
        protocol = {"tcp": 6, "udp": 17, None: 255}[m.group(2)]
        port = int(m.group(3) or 0)
        # The CLI parses prefixes correctly on every release (only the API handlers were wrong).
        addr16 = ip46(net.network_address.packed)
        plen = net.prefixlen + (96 if net.version == 4 else 0)
        vip = self.lb.find_vip(addr16, plen, protocol, port)
        if vip is None:
            return f"no such VIP {m.group(1)} protocol {protocol} port {port}\n"
        delivered = self.lb.traffic(vip, int(m.group(4)), int(m.group(5)), int(m.group(6) or 0))
        lines = [f"{addr} {n}" for addr, n in sorted(delivered.items())]
        counters = self.lb.vip_counters(vip.index)
        lines.append(" ".join(f"{k.replace(' ', '-')}={v}" for k, v in counters.items()))
        return "\n".join(lines) + "\n"


__all__ = ["LbCli", "VERSIONS"]
