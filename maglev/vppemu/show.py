"""The emulator's CLI (``cli_inband``): ``show version``, ``show lb``, ``show lb vips
[verbose]`` and the emulator's own ``test lb traffic``. Emulator thread, under its lock.

The lb commands print what real VPP prints, per generation, to the byte but for the dpo
numbers (``../shared/spec/vpp-cli/`` holds real VPP's output; the tests compare them).
"""

from __future__ import annotations

import ipaddress
import re

from .lb import LbPlugin, Vip, VipType, ip46, show_address

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
            if not words[3:] and not self.lb.weights:
                return ""  # 26.06 prints nothing without an argument (it wants a line of input)
            return self.show_vips(verbose=words[3:4] == ["verbose"])
        if words[:2] == ["show", "lb"]:
            return self.show_lb()
        if words[:3] == ["test", "lb", "traffic"]:
            return self.traffic(words[3:])
        return f"unknown input `{cmd}'\n"

    def show_lb(self) -> str:
        """format_lb_main: the pools count their placeholder VIP but not their placeholder AS."""
        lb, c = self.lb, self.lb.conf
        out = (
            f"lb_main ip4-src-address: {show_address(ip46(c.ip4_src))} \n"
            f" ip6-src-address: {show_address(c.ip6_src)} \n"
            f" #vips: {sum(1 for v in lb.vips if v is not None)}\n"
            f" #ass: {sum(1 for a in lb.ases if a is not None) - 1}\n"
        )
        for thread, usage in lb.flows.usage():
            out += f"core {thread}\n  timeout: {c.flow_timeout}s\n  usage: {usage} / {c.sticky_buckets_per_core}\n"
        return out

    def show_vips(self, verbose: bool) -> str:
        """Every VIP but the placeholder, deleted ones too until freed, as the real CLI prints them."""
        blocks = []
        for vip in self.lb.listed_vips():
            blocks.append((self._detailed(vip) if verbose else self._line(vip)) + "\n")
        return "".join(blocks)

    def _prefix(self, vip: Vip) -> str:
        plen = vip.plen - 96 if vip.is_ip4 else vip.plen
        return f"{show_address(vip.prefix)}/{plen}"

    def _nat(self, vip: Vip) -> str:
        service = "clusterip" if vip.srv_type == 0 else "nodeport"
        swapped = int.from_bytes(vip.port.to_bytes(2, "big"), "little")  # VPP prints ntohs() of a host-order port
        return f"type:{service} port:{swapped} target_port:{vip.target_port}"

    def _line(self, vip: Vip) -> str:
        out = f"{vip.type.label} {self._prefix(vip)} new_size:{vip.new_flows_table_length} #as:{len(vip.ases)}"
        out += " removed" if vip.deleted else ""
        if vip.port != 0:
            out += f"  protocol:{vip.protocol} port:{vip.port} "
        if vip.type is VipType.IP4_L3DSR:
            out += f"  dscp:{vip.dscp}"
        elif vip.type.is_nat:
            out += " " + self._nat(vip)
        return out

    def _detailed(self, vip: Vip) -> str:
        lines = [f" {vip.type.label} [{vip.index}] {self._prefix(vip)}"
                 + (" src_ip_sticky" if vip.src_ip_sticky else "") + (" removed" if vip.deleted else ""),
                 f"  new_size:{vip.new_flows_table_length}"]  # fmt: skip
        if vip.port != 0:
            lines.append(f"  protocol:{vip.protocol} port:{vip.port}")
        counters = "  counters:"
        if vip.type is VipType.IP4_L3DSR:
            lines.append(f"  dscp:{vip.dscp}")
        elif vip.type.is_nat:
            counters = "  " + self._nat(vip) + counters  # VPP prints no newline after it
        lines.append(counters)
        lines.extend(f"    {name}: {value}" for name, value in self.lb.vip_counters(vip.index).items())
        ases = self.lb.ases_of(vip)
        lines.append(f"  #as:{len(vip.ases)}")
        for a in ases:
            state = "used" if a.used else " removed"
            dpo = self.lb.dpo_of(a.address)
            if self.lb.weights:
                lines.append(f"    {show_address(a.address)} weight:{a.weight} buckets:{a.buckets} "
                             f"flows:{a.flows} dpo:{dpo} {state}")  # fmt: skip
            else:
                lines.append(f"    {show_address(a.address)} {a.buckets} buckets   {a.flows} flows  dpo:{dpo} {state}")
        return "\n".join(lines) + "\n"

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
