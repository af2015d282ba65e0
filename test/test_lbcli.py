"""The ``show lb vips verbose`` parser, on real VPP's output of both generations, verbatim."""

from __future__ import annotations

import ipaddress

import pytest

from maglev.dataplane.lbcli import CliFormatError, NatArgs, parse_vips_verbose
from test.vppcli import shown

ip = ipaddress.ip_address


def test_master_every_vip_kind() -> None:
    first, after_delete = shown("master", "show lb vips verbose")
    vips = {v.index: v for v in parse_vips_verbose(first)}
    assert sorted(vips) == [1, 2, 3, 4, 5, 6, 7]
    assert vips[1].key == (ip("192.0.2.10"), 6, 80) and vips[1].type == "ip4-gre4" and vips[1].new_size == 1024
    assert vips[2].key == (ip("192.0.2.10"), 17, 53), "UDP beside TCP on one address, by VPP's own key"
    assert vips[3].key == (ip("192.0.2.11"), 255, 0), "an all-port VIP has no protocol line"
    assert vips[4].type == "ip4-l3dsr" and vips[4].dscp == 10 and vips[4].nat is None
    assert vips[5].type == "ip4-nat4" and vips[5].nat == NatArgs("clusterip", 8081)
    assert vips[5].counters["first session packet"] == 0 and len(vips[5].counters) == 4, "after the NAT line"
    assert vips[6].key == (ip("2001:db8::10"), 6, 80) and vips[6].type == "ip6-gre6"
    assert vips[7].src_ip_sticky and vips[7].type == "ip6-gre4" and not vips[1].src_ip_sticky
    web = vips[1]
    assert web.as_count == 3 and len(web.ases) == 3, "#as counts the removed AS too"
    assert [(str(a.address), a.weight, a.buckets, a.used) for a in web.ases] == [
        ("127.0.0.11", 100, 674, True),
        ("127.0.0.12", 50, 350, True),
        ("127.0.0.13", 100, 0, False),
    ]
    assert not any(v.removed for v in vips.values())
    later = {v.index: v for v in parse_vips_verbose(after_delete)}
    assert later[4].removed and not later[4].ases[0].used, "a deleted VIP is listed as removed until GC"
    assert [v.index for v in later.values() if not v.removed] == [1, 2, 3, 5, 6, 7]


def test_v2606_no_weights_and_removed_vips() -> None:
    first, after_delete = shown("v26.06", "show lb vips verbose")
    vips = {v.index: v for v in parse_vips_verbose(first)}
    assert sorted(vips) == [1, 2, 3, 4, 5]
    assert vips[2].key == (ip("192.0.2.10"), 17, 53)
    assert vips[3].key == (ip("192.0.2.11"), 255, 0)
    assert [(str(a.address), a.weight, a.buckets, a.used) for a in vips[1].ases] == [
        ("127.0.0.11", None, 512, True),
        ("127.0.0.12", None, 512, True),
        ("127.0.0.13", None, 0, False),
    ]
    later = {v.index: v for v in parse_vips_verbose(after_delete)}
    assert later[3].removed and later[3].key == (ip("192.0.2.11"), 255, 0)
    assert [a.used for a in later[3].ases] == [False]


def test_nothing_listed_is_no_vip() -> None:
    assert parse_vips_verbose("") == []
    assert parse_vips_verbose("\n\n") == []


@pytest.mark.parametrize(
    "text, says",
    [
        ("  new_size:1024\n", "line 1 is outside a VIP block"),
        (" ip4-gre4 [1] 192.0.2.10/32\n  new_size:big\n", "line 2 of VIP [1] is not a known field"),
        (" ip4-gre4 [1] 192.0.2.10/32\n    not-an-ip weight:1 buckets:1 flows:0 dpo:1 used\n", "'not-an-ip'"),
        (" ip4-gre4 [1] 999.0.2.10/32\n", "line 1: '999.0.2.10' is not an address"),
    ],
)
def test_what_vpp_never_prints_is_an_error_naming_the_line(text: str, says: str) -> None:
    with pytest.raises(CliFormatError) as e:
        parse_vips_verbose(text)
    assert says in str(e.value)
