"""The API's messages, built from the services' read-only views. Reactor thread.

Plain functions from values (a BackendStatus, the config, the dataplane view, what was
read from VPP) to protobuf messages; the servicer only finds the values and answers.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from ..config import Config, DnsParams, ExecParams, Frontend, GrpcParams, HttpParams, IcmpParams, TcpParams
from ..config.model import IPAddress
from ..dataplane.desired import PROTOCOL_NAMES, DesiredVip, VipKey
from ..dataplane.plan import LbConf, ObservedVip
from ..dataplane.tables import VipTable
from ..dataplane.view import DataplaneView
from ..health.view import BackendCounts, BackendReading, BackendStatus
from ..lbtable import ip46
from ..overrideservice import OverrideService
from .gen.maglev.v1 import maglev_pb2 as pb
from .wire import varint

if TYPE_CHECKING:
    from google.protobuf.internal.containers import RepeatedCompositeFieldContainer


def _d(seconds: float | None) -> float:
    return float(seconds or 0.0)


def fill_backend(info: pb.BackendInfo, h: BackendStatus, cfg: Config) -> None:
    """Fill ``info`` in place (GetBackend and the operator actions; ListBackends keeps the
    steady part serialized: ``BackendWire``)."""
    _fill_steady(info, h, cfg)
    _fill_counts(info, h)
    info.downtime_seconds = h.downtime


def _fill_steady(info: pb.BackendInfo, h: BackendStatus, cfg: Config) -> None:
    """What changes only with a transition, an operator's action or a reload."""
    info.name = h.name
    info.address = h.address
    info.healthcheck = h.healthcheck
    info.enabled = h.enabled
    info.state = h.state.value
    info.rise = h.rise
    info.fall = h.fall
    info.state_since = h.since
    info.frontends.extend(cfg.frontends_using(h.name))
    for t in h.history:
        info.transitions.add(**{"from": t.old.value}, to=t.new.value, time=t.time, code=t.code, detail=t.detail)


def _fill_counts(info: pb.BackendInfo, h: BackendStatus | BackendCounts) -> None:
    """What every probe changes (but the downtime, which the clock does)."""
    info.counter = h.counter
    info.probe_in_flight = h.in_flight
    if h.last_result is not None:
        r, lp = h.last_result, info.last_probe
        lp.ok, lp.code, lp.detail, lp.duration, lp.time = r.ok, r.code, r.detail, r.duration, _d(h.last_result_time)
    info.checks, info.failed_checks, info.downs = h.checks, h.failed_checks, h.downs


# A repeated message field is on the wire one (tag, length, bytes) per element, and a
# message's fields may come in any order (of a scalar, the last one wins): a cached
# message with a field appended parses as that message with the field set. The tags are
# the library's, read off its own serialization.
_BACKENDS_TAG = pb.ListBackendsResponse(backends=[pb.BackendInfo()]).SerializeToString()[:-1]
_DOWNTIME_TAG = pb.BackendInfo(downtime_seconds=1.0).SerializeToString()[:-8]
_DOWNTIME = struct.Struct(f"<{len(_DOWNTIME_TAG)}sd").pack  # the tag and the double, one field
_DOWNTIME_SIZE = len(_DOWNTIME(_DOWNTIME_TAG, 0.0))


class _Kept(NamedTuple):
    """A backend's message as ``part`` last built it, framed as an element of the list: the
    tag, the length, the body, with room in the length for a downtime after it or not."""

    name: str  # the prober's own string: checked by identity
    mark: object
    framed: bytes
    head: int  # the framing's length: the body follows it
    timed: bool  # the length counts a downtime field, sent after ``framed``

    @classmethod
    def of(cls, name: str, mark: object, body: bytes, timed: bool) -> _Kept:
        head = _BACKENDS_TAG + varint(len(body) + (_DOWNTIME_SIZE if timed else 0))
        return tuple.__new__(cls, (name, mark, head + body, len(head), timed))

    @property
    def body(self) -> bytes:
        return self.framed[self.head :]


_NOTHING = _Kept("", object(), b"", 0, False)  # kept for no backend: its mark equals none


class BackendWire:
    """ListBackends' cache of each backend's message, serialized, in two layers.

    - **The whole message** but its downtime and what overrides and flap dampening say, by
      the backend's reading's mark: a backend that was not probed, did not move and was not
      acted on since the last read costs its cached bytes, kept framed, and no message object.
      For the whole list they are kept by position in the checker's order, each checked by
      its name (a list has no hash to compute and look up, and at 10,000 backends that
      lookup was a tenth of a read); for a page, by name.
    - **The steady part** (name, address, check, state, transitions, frontends), for a
      backend whose counts changed: building the transitions and frontends was three
      quarters of a backend's cost, and a backend on autopilot changes its counts with
      every probe.

    Dropped whole on a new configuration generation (frontends and backends change only
    then); refreshed for one backend when its fields differ."""

    def __init__(self) -> None:
        self._generation = -1
        self._steady: dict[str, tuple[tuple[object, ...], bytes]] = {}
        self._paged: dict[str, _Kept] = {}
        self._listed: list[_Kept] = []

    def _at(self, generation: int) -> None:
        if generation != self._generation:
            self._steady, self._paged, self._listed, self._generation = {}, {}, [], generation

    def part(
        self,
        readings: Sequence[BackendReading],
        cfg: Config,
        generation: int,
        lifetimes: Callable[[str], bytes] | None,
        at: int | None = None,
    ) -> bytes:
        """These backends as the ``backends`` of a serialized ListBackendsResponse (parts
        concatenate into one message), each the same as ``fill_backend`` of its reading's
        status with ``fill_lifetimes`` (``lifetimes``: that, as serialized fields).

        ``at``: where the readings start in the checker's order, when they are part of the
        whole list (None: a page)."""
        self._at(generation)
        if at is None:
            paged = self._paged
            found = [paged.get(r[0], _NOTHING) for r in readings]
        else:
            listed, end = self._listed, at + len(readings)
            if len(listed) < end:
                listed.extend([_NOTHING] * (end - len(listed)))
            found = listed[at:end]
        tag, downtime_tag, down = _BACKENDS_TAG, _DOWNTIME_TAG, _DOWNTIME
        out: list[bytes] = []
        add, add_one = out.extend, out.append
        for i, (r, kept) in enumerate(zip(readings, found, strict=True)):
            name, mark, downtime, _ = r
            timed = downtime != 0.0
            kept_name, kept_mark, framed, _, kept_timed = kept  # a tuple's, unpacked: the cheapest read
            if kept_name is not name or kept_mark != mark:
                kept = self._keep(at, i, _Kept.of(name, mark, self._built(r, cfg), timed))
                framed, kept_timed = kept.framed, timed
            if lifetimes is not None:  # framed anew, with what they say
                body = kept.body
                tail = (down(downtime_tag, downtime) if timed else b"") + lifetimes(name)
                add((tag, varint(len(body) + len(tail)), body, tail))
                continue
            if kept_timed is not timed:  # framed again, the first time it is down
                framed = self._keep(at, i, _Kept.of(name, mark, kept.body, timed)).framed
            if timed:
                add((framed, down(downtime_tag, downtime)))
            else:
                add_one(framed)
        return b"".join(out)

    def _keep(self, at: int | None, i: int, kept: _Kept) -> _Kept:
        if at is None:
            self._paged[kept.name] = kept
        else:
            self._listed[at + i] = kept
        return kept

    def _built(self, r: BackendReading, cfg: Config) -> bytes:
        """The backend's message but its downtime, serialized: the steady part's bytes, kept,
        and the counts' (the two have no field in common, so they concatenate). The full
        status is built only for a new steady part: a backend on autopilot changes its
        counts with every probe, and nothing else."""
        key = r.steady()  # the history is the health's own tuple: an identity check
        held = self._steady.get(r.name)
        if held is None or held[0] != key:
            steady = pb.BackendInfo()
            _fill_steady(steady, r.status(), cfg)
            held = self._steady[r.name] = (key, steady.SerializeToString())
        counts = pb.BackendInfo()
        _fill_counts(counts, r.counts())
        body: bytes = held[1] + counts.SerializeToString()
        return body

    def __len__(self) -> int:
        return len(self._steady)


def lifetimes_of(overrides: OverrideService, dataplane: DataplaneView) -> Callable[[str], bytes] | None:
    """``fill_lifetimes`` of one backend as its serialized fields, for ``BackendWire.part``;
    None when nothing says anything of any backend (the common case, then free)."""
    if not (overrides.any_backend or dataplane.reports.effective or dataplane.flapping):
        return None

    def of(name: str) -> bytes:
        info = pb.BackendInfo(name=name)
        fill_lifetimes([info], overrides, dataplane)
        info.ClearField("name")  # the cached part has it
        fields: bytes = info.SerializeToString()
        return fields

    return of


def fill_lifetimes(infos: Iterable[pb.BackendInfo], overrides: OverrideService, dataplane: DataplaneView) -> None:
    """What an operator's override and flap dampening say of each backend (cheap when nothing does)."""
    if overrides.any_backend:
        for info in infos:
            info.override, info.override_seconds_left = overrides.of_backend(info.name)
    reports = dataplane.reports
    if reports.effective:
        for info in infos:
            said, by = reports.of(info.name)
            if said is not None:
                info.reported = str(said)
                info.reported_by.extend(by)
    if dataplane.flapping:
        for info in infos:
            flap = dataplane.flap(info.name)
            if flap is not None:
                info.suppressed, info.flap_penalty, info.reuse_in_seconds = flap


@functools.lru_cache(maxsize=1 << 16)
def address_text(address: IPAddress) -> str:
    """``str(address)``, remembered: ListFrontends writes every member's address, and an
    address object formats itself in Python."""
    return str(address)


WeightLeft = Callable[[tuple[str, str, str]], float | None]


def frontend_info(
    fe: Frontend,
    desired: DesiredVip,
    dataplane: DataplaneView,
    states: Mapping[str, str],
    weight_left: WeightLeft = lambda key: None,
) -> pb.FrontendInfo:
    info = pb.FrontendInfo()
    fill_frontend(info, fe, desired, dataplane, states, weight_left)
    return info


def fill_frontend(
    info: pb.FrontendInfo,
    fe: Frontend,
    desired: DesiredVip,
    dataplane: DataplaneView,
    states: Mapping[str, str],
    weight_left: WeightLeft,
) -> None:
    effective = {(a.pool, a.backend): a for a in desired.ases}
    table = dataplane.table(fe.name, desired)
    buckets = _buckets(dataplane.observed(desired.key), table)
    overrides = dataplane.overrides
    info.name, info.address, info.protocol, info.port = fe.name, str(fe.address), fe.protocol.value, fe.port
    info.encap, info.src_ip_sticky, info.flush_on_down = desired.encap.value, fe.src_ip_sticky, fe.flush_on_down
    info.new_flows_table_length, info.description = fe.new_flows_table_length, fe.description
    info.state, info.state_detail = dataplane.frontend_state(fe.name).value, dataplane.frontend_detail(fe.name)
    active = dataplane.active_pool(fe.name)
    ramping = dataplane.ramping()
    scaled = table is None or table.weights
    for i, pool in enumerate(fe.pools):
        pi = info.pools.add(name=pool.name, active=i == active)  # filled in place: no copies
        add = pi.backends.add
        for m in pool.members:
            a = effective[(pool.name, m.backend)]
            key = (fe.name, pool.name, m.backend)
            address = address_text(a.address)
            mi = add(
                name=m.backend,
                weight=overrides.get(key, m.weight),
                effective_weight=a.weight,
                flush=a.flush,
                state=states.get(m.backend, "unknown"),
                address=address,
                buckets=buckets.get(address, -1),
                vpp_weight=desired.vpp_weight(a.weight) if scaled else -1,
            )
            # Set only where they apply: the fewer fields a member is built with, the faster.
            if key in overrides:
                mi.weight_override = True
                mi.weight_override_seconds_left = weight_left(key) or 0.0
            if m.backend in ramping:
                ramp = dataplane.slow_start(fe, pool, m.backend)
                if ramp:
                    mi.slow_start_elapsed, mi.slow_start_duration = ramp
    if table is not None:
        info.table.CopyFrom(table_info(table, desired.weight_scale))
    now = dataplane.seconds()
    for d in dataplane.draining(fe.name):
        info.draining.append(
            pb.DrainingAs(address=str(d.address), backend=d.backend, pool=d.pool, seconds_left=d.left(now), why=d.why)
        )


def frontend_mark(
    fe: Frontend, desired: DesiredVip, dataplane: DataplaneView, states: Mapping[str, str]
) -> tuple[object, ...] | None:
    """Everything ``fill_frontend`` reads, compared by value or identity (what VPP said is
    replaced, never changed, after a sync); None where what it writes moves with the clock:
    a member's operator weight (its time left), a slow start, a drain."""
    members = [m.backend for pool in fe.pools for m in pool.members]
    overrides, ramping = dataplane.overrides, dataplane.ramping()
    if overrides and any(k[0] == fe.name for k in overrides):
        return None
    if ramping and any(b in ramping for b in members):
        return None
    if dataplane.draining(fe.name):
        return None
    return (
        desired, dataplane.observed(desired.key), dataplane.info, tuple(states.get(b) for b in members),
        dataplane.active_pool(fe.name), dataplane.frontend_state(fe.name), dataplane.frontend_detail(fe.name),
    )  # fmt: skip


class FrontendWire:
    """ListFrontends' cache of each frontend's message, serialized, by its ``frontend_mark``:
    a frontend none of whose inputs changed since the last read costs a merge of bytes (a
    read of 100 frontends of 20 built them in 8 ms). Dropped whole on a new configuration
    generation."""

    def __init__(self) -> None:
        self._generation = -1
        self._held: dict[str, tuple[tuple[object, ...], bytes]] = {}

    def add(
        self,
        infos: RepeatedCompositeFieldContainer[pb.FrontendInfo],
        fe: Frontend,
        desired: DesiredVip,
        dataplane: DataplaneView,
        states: Mapping[str, str],
        weight_left: WeightLeft,
        generation: int,
    ) -> None:
        """A new message in ``infos``, the same as ``frontend_info``."""
        if generation != self._generation:
            self._held, self._generation = {}, generation
        mark = frontend_mark(fe, desired, dataplane, states)
        held = self._held.get(fe.name)
        info = infos.add()
        if mark is not None and held is not None and held[0] == mark:
            info.MergeFromString(held[1])
            return
        fill_frontend(info, fe, desired, dataplane, states, weight_left)
        if mark is None:
            self._held.pop(fe.name, None)
        else:
            self._held[fe.name] = (mark, info.SerializeToString())

    def __len__(self) -> int:
        return len(self._held)


def draining_vips(dataplane: DataplaneView) -> list[pb.DrainingVip]:
    now = dataplane.seconds()
    out = []
    for d in dataplane.draining_vips():
        key = d.vip.key
        proto = PROTOCOL_NAMES.get(key.protocol, str(key.protocol))
        out.append(
            pb.DrainingVip(
                frontend=d.frontend, address=str(key.address), protocol=proto, port=key.port, seconds_left=d.left(now)
            )
        )
    return out


def table_info(t: VipTable, scale: int) -> pb.VipTableInfo:
    info = pb.VipTableInfo(
        known=True, digest=t.digest, length=t.length, weights=t.weights, weight_scale=scale if t.weights else 100,
        weight_error=t.error,
    )  # fmt: skip
    for s in t.shares:
        info.shares.add(
            address=str(s.address), backend=s.backend, buckets=s.buckets, bucket_share=s.bucket_share,
            weight_share=s.weight_share, vpp_weight=-1 if s.vpp_weight is None else s.vpp_weight,
        )  # fmt: skip
    return info


def _buckets(observed: ObservedVip | None, table: VipTable | None) -> dict[str, int]:
    """Buckets per AS in VPP: as VPP last said, else as the ASes VPP holds give them (a sync
    that changed them did not read them back; the fill is VPP's own, so they are equal)."""
    if observed is None:
        return {}
    modelled = {str(a): n for a, n in table.buckets().items()} if table is not None else {}
    out = {}
    for a in observed.ases.values():
        if a.used:
            n = a.buckets if a.buckets is not None else modelled.get(str(a.address))
            if n is not None:
                out[str(a.address)] = n
    return out


def healthcheck_info(cfg: Config, name: str) -> pb.HealthCheckInfo:
    hc = cfg.healthchecks[name]
    params: dict[str, str] = {}
    p = hc.params
    if isinstance(p, HttpParams):
        params = {"path": p.path, "method": p.method, "expect-status": ",".join(str(r) for r in p.expect_status)}
        if p.host:
            params["host"] = p.host
        if p.expect_body:
            params["expect-body"] = p.expect_body
        if hc.type.value == "https":
            params["insecure"] = str(p.insecure).lower()
        params.update({f"header {k}": v for k, v in p.headers})
    elif isinstance(p, TcpParams):
        params = {k: v for k, v in (("send", p.send), ("expect", p.expect)) if v is not None}
    elif isinstance(p, IcmpParams):
        params = {"payload-size": str(p.payload_size)}
    elif isinstance(p, DnsParams):
        params = {"query": p.query, "qtype": p.qtype, "rcode": p.rcode, "transport": p.transport}
        if p.expect is not None:
            params["expect"] = p.expect
    elif isinstance(p, GrpcParams):
        params = {"service": p.service, "tls": str(p.tls).lower()}
        if p.tls:
            params["insecure"] = str(p.insecure).lower()
        if p.host:
            params["host"] = p.host
    elif isinstance(p, ExecParams):
        params = {"command": " ".join(p.command), "shell": str(p.shell).lower()}
        if p.dynamic_weight:
            params["dynamic-weight"] = "true"
    return pb.HealthCheckInfo(
        name=name, type=hc.type.value, port=hc.port or 0, interval=hc.interval, fast_interval=hc.fast_interval,
        down_interval=hc.down_interval, timeout=hc.timeout, rise=hc.rise, fall=hc.fall,
        probe_ipv4_src=str(hc.probe_ipv4_src or ""), probe_ipv6_src=str(hc.probe_ipv6_src or ""), params=params,
        backends=[b for b, be in cfg.backends.items() if be.healthcheck == name],
    )  # fmt: skip


def vpp_lb_state(
    conf: LbConf | None, observed: Mapping[VipKey, ObservedVip], names: Mapping[VipKey, str]
) -> pb.VPPLBState:
    """What was read from VPP, with the frontend each VIP belongs to (empty: not ours)."""
    state = pb.VPPLBState()
    if conf is not None:
        state.conf.CopyFrom(
            pb.VPPLBConf(
                ip4_src_address=conf.ip4,
                ip6_src_address=conf.ip6,
                sticky_buckets_per_core=conf.buckets,
                flow_timeout=conf.timeout,
            )  # fmt: skip
        )
    for key, vip in observed.items():
        held = vip.new_flow_table()
        v = pb.VPPLBVip(
            frontend=names.get(key, ""), prefix=f"{key.address}/{key.address.max_prefixlen}", protocol=key.protocol,
            port=key.port, encap=vip.encap.value if vip.encap else "", src_ip_sticky=bool(vip.src_ip_sticky),
            new_flows_table_length=vip.table_length or 0, table_digest=held.digest() if held else "",
        )  # fmt: skip
        modelled = held.counts() if held is not None else {}
        for a in vip.used():
            n = a.buckets if a.buckets is not None else modelled.get(ip46(a.address))
            v.ases.append(
                pb.VPPLBAs(
                    address=str(a.address), weight=-1 if a.weight is None else a.weight, buckets=-1 if n is None else n
                )
            )
        state.vips.append(v)
    return state


__all__ = ["fill_backend", "frontend_info", "healthcheck_info", "vpp_lb_state"]
