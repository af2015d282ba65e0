"""Drain before remove (maglev.dataplane.drain, through DataplaneModel): explicit times, no reactor."""

from __future__ import annotations

import ipaddress

from maglev.config import load_config
from maglev.dataplane.drain import DrainingAS, DrainingVip
from maglev.dataplane.model import DataplaneModel
from maglev.dataplane.plan import ObservedAS, ObservedVip

CONFIG = """\
maglev:
  vpp: {lb: {ipv4-src-address: 192.0.2.254, flow-timeout: 30s, startup-min-delay: 0s, startup-max-delay: 0s}}
  healthchecks: {h: {type: tcp, port: 80}}
  backends:
    a: {address: 192.0.2.1, healthcheck: h}
    b: {address: 192.0.2.2, healthcheck: h}
  frontends:
    web:
      address: 198.51.100.1
      port: 80
      pools: [{name: p, backends: {a: {}, b: {}}}]
    ftp:
      address: 198.51.100.2
      port: 21
      drain-timeout: 0s
      pools: [{name: p, backends: {a: {}, b: {}}}]
"""
WITHOUT_B = CONFIG.replace("backends: {a: {}, b: {}}}]\n    ftp", "backends: {a: {}}}]\n    ftp")
B = ipaddress.ip_address("192.0.2.2")


def model() -> DataplaneModel:
    m = DataplaneModel(load_config(CONFIG), {"a": "up", "b": "up"})
    m.start_warmup(0.0)
    return m


def test_a_backend_leaving_a_pool_drains_for_the_flow_timeout_then_goes() -> None:
    m = model()
    m.reconfigure(load_config(WITHOUT_B), 100.0)
    started, ended = m.reload_drains
    assert started == [DrainingAS("web", B, "b", "p", 130.0, "backend b left pool p")] and ended == []
    assert m.drains.draining_of("ftp") == [], "drain-timeout 0: removed at once, as before"
    assert m.drains.next_deadline() == 130.0
    assert m.desired(["web"])["web"].remove == frozenset()
    assert m.drains.expire(129.9) == []
    assert [d.address for d in m.drains.expire(130.0)] == [B]  # type: ignore[union-attr]
    assert m.desired(["web"])["web"].remove == {B}, "now the plan deletes it"
    m.drains.removed("web", [ipaddress.ip_address("192.0.2.1")])
    assert m.desired(["web"])["web"].remove == frozenset(), "forgotten once VPP no longer has it"


def test_a_reload_that_brings_it_back_cancels_the_drain() -> None:
    m = model()
    m.reconfigure(load_config(WITHOUT_B), 100.0)
    m.reconfigure(load_config(CONFIG), 110.0)
    assert m.reload_drains == ([], ["web 192.0.2.2"])
    assert m.drains.next_deadline() is None


def test_a_moved_address_drains_the_old_one() -> None:
    m = model()
    m.reconfigure(load_config(CONFIG.replace("address: 192.0.2.2,", "address: 192.0.2.22,")), 5.0)
    started, _ = m.reload_drains
    assert started == [DrainingAS("web", B, "b", "p", 35.0, "backend b moved to another address")]


def test_a_removed_frontend_drains_its_whole_vip() -> None:
    m = model()
    without_web = CONFIG.replace(
        "    web:\n      address: 198.51.100.1\n      port: 80\n      pools: [{name: p, backends: {a: {}, b: {}}}]\n",
        "",
    )
    m.reconfigure(load_config(without_web), 10.0)
    (vip,) = m.reload_drains[0]
    assert isinstance(vip, DrainingVip) and vip.deadline == 40.0
    assert [(a.weight, a.flush) for a in vip.vip.ases] == [(0, False), (0, False)]
    job = m.job(True, (), {}, {})
    assert [v.frontend for v in job.desired] == ["ftp", "web (draining)"], "still wanted while it drains"
    m.drains.expire(40.0)
    assert [v.frontend for v in m.job(True, (), {}, {}).desired] == ["ftp"], "then the full sync removes it"
    m.reconfigure(load_config(CONFIG), 41.0)
    assert m.drains.vips == {}


def test_ases_found_in_vpp_that_we_do_not_want_are_drained_not_flushed() -> None:
    m = model()
    key = m.desired(["web"])["web"].key
    stranger = ipaddress.ip_address("192.0.2.99")
    seen = ObservedVip(key, None, None, None)
    for address in (ipaddress.ip_address("192.0.2.1"), B, stranger):
        seen.ases[address] = ObservedAS(address, 100, True)
    started = m.note_observed({key: seen}, 7.0)
    assert started == [DrainingAS("web", stranger, "", "", 37.0, "in VPP but not in the configuration")]
    assert m.note_observed({key: seen}, 8.0) == [], "once"
    ftp = m.desired(["ftp"])["ftp"].key
    assert (
        m.note_observed({ftp: ObservedVip(ftp, None, None, None, {stranger: ObservedAS(stranger, 1, True)})}, 9) == []
    )
