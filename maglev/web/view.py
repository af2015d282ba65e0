"""What the web UI shows, as plain JSON-able dicts built from the API's messages.

No Twisted, no grpc: both data sources (in-process and over a channel) hand
over the same protobuf messages, and everything the page and /view/api/ show
is computed here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..api.gen.maglev.v1 import maglev_pb2 as pb
from .consistency import VipConsistency, vip_of


@dataclass
class DaemonState:
    """One read of a maglevd, as the API answered it."""

    version: pb.VersionInfo
    frontends: list[pb.FrontendInfo]
    backends: dict[str, pb.BackendInfo]
    vpp: pb.VPPInfo | None
    vpp_error: str
    counters: dict[str, pb.VipCounters] = field(default_factory=dict)
    fetched: float = 0.0


@dataclass(frozen=True)
class DaemonStatus:
    name: str
    address: str
    connected: bool
    error: str = ""


# icon, label: how a frontend is doing, worst first
HEALTH = {
    "unsupported": ("⛔", "not programmed: the connected VPP cannot hold this VIP"),
    "unknown": ("❓", "unknown: no state from VPP yet"),
    "none": ("‼️", "no backend serving"),
    "fallback": ("❗", "serving from a fallback pool"),
    "degraded": ("⚠️", "some backends of the active pool are not serving"),
    "healthy": ("✅", "every backend of the active pool is serving"),
}


def frontend_health(fe: pb.FrontendInfo) -> str:
    """One of HEALTH's keys, from the effective weights (what VPP is told), not the probes alone."""
    if fe.state == "unsupported":
        return "unsupported"
    if fe.state == "unknown" or not fe.pools:
        return "unknown"
    serving = [b for p in fe.pools for b in p.backends if b.effective_weight > 0]
    if not serving:
        return "none"
    active = next((i for i, p in enumerate(fe.pools) if p.active), 0)
    if active > 0:
        return "fallback"
    pool = fe.pools[active]
    if any(b.effective_weight == 0 and b.weight > 0 for b in pool.backends):
        return "degraded"
    return "healthy"


def _member_note(b: pb.PoolBackendInfo) -> str:
    notes = []
    if b.slow_start_duration:
        notes.append(
            f"slow start {b.slow_start_elapsed}/{b.slow_start_duration:g} s, weight {b.effective_weight}/{b.weight}"
        )
    if b.weight_override:
        left = f", {round(b.weight_override_seconds_left)} s left" if b.weight_override_seconds_left else ""
        notes.append(f"operator weight{left}")
    return "; ".join(notes)


def backend_view(fe: str, pool: pb.PoolInfo, b: pb.PoolBackendInfo, info: pb.BackendInfo | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": f"{fe}/{pool.name}/{b.name}",
        "name": b.name,
        "address": b.address,
        "state": b.state,
        "weight": b.weight,
        "effective_weight": b.effective_weight,
        "flush": b.flush,
        "buckets": b.buckets if b.buckets >= 0 else None,
        "since": 0.0,
        "enabled": True,
        "in_flight": False,
        "last_probe": None,
        "checks": 0,
        "failed_checks": 0,
        "downs": 0,
        "downtime": 0.0,
        # shown beside the state: "slow start 12/30 s", "operator weight, 9m 59s left"
        "note": _member_note(b),
    }
    if info is not None and info.reported:
        said = f"{'/'.join(info.reported_by)} says {info.reported}"
        out["note"] = "; ".join(filter(None, (said, out["note"])))
    if info is not None and info.suppressed:
        flap = f"suppressed (penalty {info.flap_penalty:.0f}, reuse in {round(info.reuse_in_seconds)} s)"
        out["note"] = "; ".join(filter(None, (flap, out["note"])))
    if info is not None:
        out["since"] = info.state_since
        out["checks"] = info.checks
        out["failed_checks"] = info.failed_checks
        out["downs"] = info.downs
        out["downtime"] = info.downtime_seconds
        out["enabled"] = info.enabled
        out["in_flight"] = info.probe_in_flight
        out["healthcheck"] = info.healthcheck
        if info.HasField("last_probe"):
            lp = info.last_probe
            out["last_probe"] = {
                "ok": lp.ok,
                "code": lp.code,
                "detail": lp.detail,
                "duration": lp.duration,
                "time": lp.time,
            }
    return out


K = TypeVar("K")
V = TypeVar("V")


class LastUse(Generic[K, V]):
    """Values by key, kept from one pass (a read, a render) to the next: what the last pass
    used and what this one has used so far. ``rotate`` ends a pass and drops what it did not use."""

    def __init__(self) -> None:
        self._kept: dict[K, V] = {}
        self._used: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        value = self._used.get(key)
        return value if value is not None else self._kept.get(key)

    def use(self, key: K, value: V) -> None:
        self._used[key] = value

    def rotate(self) -> None:
        self._kept, self._used = self._used, {}

    def __len__(self) -> int:
        return len(self._kept)


KeptView = tuple[bytes, bytes | None, dict[str, Any]]  # the member's and the BackendInfo's bytes, the view


class ViewMemo(LastUse[tuple[str, str], dict[str, KeptView]]):
    """Each backend's view, kept from one read of a daemon to the next while its two messages
    are the same byte for byte, but for the downtime.

    A backend's view is a function of its pool member and its BackendInfo alone, and a read a
    second after the last finds most of 2,000 backends unchanged: a backend changes when it is
    probed, when its state moves and when an operator acts. Only its downtime moves with the
    clock while it is down: that is set afresh in the kept view, which is the latest read's.
    An unchanged backend keeps the same dict, by which the page's RowMemo keeps its row. Kept
    a pool at a time (by frontend and pool, then by name), with the messages' bytes compared:
    a key of the bytes themselves cost a hash of both on every read. Each read keeps only the
    pools it used (``rotate``, by ``daemon_view``).
    """

    def pool(self, fe: str, pool: pb.PoolInfo, infos: Mapping[str, pb.BackendInfo]) -> list[dict[str, Any]]:
        key = (fe, pool.name)
        last = self.get(key) or {}
        now: dict[str, KeptView] = {}
        views = []
        for b in pool.backends:
            name = b.name
            info = infos.get(name)
            member = b.SerializeToString()
            body: bytes | None = None
            if info is not None:
                downtime = info.downtime_seconds
                info.downtime_seconds = 0.0  # out of the comparison, and back at once
                body = info.SerializeToString()
                info.downtime_seconds = downtime
            kept = last.get(name)
            if kept is not None and kept[0] == member and kept[1] == body:
                view = kept[2]
                if info is not None:
                    view["downtime"] = info.downtime_seconds
            else:
                view = backend_view(fe, pool, b, info)
                kept = (member, body, view)
            now[name] = kept
            views.append(view)
        self.use(key, now)
        return views

    def __len__(self) -> int:
        """The backends kept (of every pool)."""
        return sum(len(pool) for pool in self._kept.values())


def table_view(fe: pb.FrontendInfo) -> dict[str, Any] | None:
    """The VIP's new-flow table as VPP holds it: the bars of bucket shares and weight shares."""
    t = fe.table
    if not fe.HasField("table") or not t.known:
        return None
    return {
        "digest": t.digest,
        "length": t.length,
        "weights": t.weights,
        "weight_scale": t.weight_scale,
        "weight_error": t.weight_error,
        "shares": [
            {
                "address": s.address,
                "backend": s.backend,
                "buckets": s.buckets,
                "bucket_share": s.bucket_share,
                "weight_share": s.weight_share,
                "vpp_weight": s.vpp_weight,
            }
            for s in t.shares
        ],
    }


LB_KINDS = ("next", "first", "untracked", "no_server")
ROUTE_KINDS = ("route_packets", "route_bytes")  # None where this VPP's definitions cannot look them up


def counters_view(c: pb.VipCounters | None) -> dict[str, Any] | None:
    """The VIP's lb counters and its address's route counters, each with its rate per second."""
    if c is None:
        return None
    kinds = [(k, True) for k in LB_KINDS] + [(k, c.has_route) for k in ROUTE_KINDS]
    out: dict[str, Any] = {k: getattr(c, k) if known else None for k, known in kinds}
    out["rates"] = {k: getattr(c, f"{k}_rate") if known else None for k, known in kinds}
    return out


def frontend_view(
    fe: pb.FrontendInfo,
    state: DaemonState,
    consistency: Mapping[str, VipConsistency] | None = None,
    memo: ViewMemo | None = None,
) -> dict[str, Any]:
    health = frontend_health(fe)
    c = state.counters.get(fe.name)
    agreement = (consistency or {}).get(vip_of(fe))
    return {
        "name": fe.name,
        "vip": vip_of(fe),
        "table": table_view(fe),
        "consistency": agreement.as_dict() if agreement is not None else None,
        "address": fe.address,
        "protocol": fe.protocol,
        "port": fe.port,
        "encap": fe.encap,
        "description": fe.description,
        "state": fe.state,
        "health": health,
        "health_icon": HEALTH[health][0],
        "health_label": fe.state_detail or HEALTH[health][1],
        "state_detail": fe.state_detail,
        "counters": counters_view(c),
        "pools": [
            {
                "name": pool.name,
                "active": pool.active,
                "backends": memo.pool(fe.name, pool, state.backends)
                if memo is not None
                else [backend_view(fe.name, pool, b, state.backends.get(b.name)) for b in pool.backends],
            }
            for pool in fe.pools
        ],
        "draining": [
            {
                "address": d.address,
                "backend": d.backend,
                "pool": d.pool,
                "seconds_left": round(d.seconds_left),
                "why": d.why,
            }
            for d in fe.draining
        ],
    }


def vpp_view(state: DaemonState) -> dict[str, Any]:
    v = state.vpp
    if v is None:
        return vpp_unknown(state.vpp_error)
    return {
        "connected": True,
        "error": "",
        "version": v.version,
        "build_date": v.build_date,
        "pid": v.pid,
        "boottime": v.boottime_ns / 1e9,
        "connecttime": v.connecttime_ns / 1e9,
        "api_mode": v.api_mode,
        "weights": v.weights,
        "api_sent": v.api_sent,
        "api_received": v.api_received,
    }


def vpp_unknown(error: str) -> dict[str, Any]:
    return {
        "connected": False,
        "error": error,
        "version": "",
        "build_date": "",
        "pid": 0,
        "boottime": 0.0,
        "connecttime": 0.0,
        "api_mode": "",
        "weights": False,
        "api_sent": 0,
        "api_received": 0,
    }


def status_view(status: DaemonStatus) -> dict[str, Any]:
    return {"name": status.name, "address": status.address, "connected": status.connected, "error": status.error}


def daemon_view(
    status: DaemonStatus,
    state: DaemonState | None,
    consistency: Mapping[str, VipConsistency] | None = None,
    memo: ViewMemo | None = None,
) -> dict[str, Any]:
    """``consistency``: the VIPs several maglevds serve, compared (consistency.py); ``memo``:
    the backends of this daemon's last view (kept for the next one)."""
    out = status_view(status)
    if state is None:
        out.update(version=None, vpp=vpp_unknown(status.error), frontends=[], fetched=0.0, divergent=[])
        return out
    frontends = [frontend_view(fe, state, consistency, memo) for fe in state.frontends]
    if memo is not None:
        memo.rotate()
    out.update(
        version={
            "version": state.version.version,
            "commit": state.version.commit,
            "config_generation": state.version.config_generation,
            "started": state.version.started,
            "api_security": state.version.api_security,
            "warnings": list(state.version.warnings),
        },
        vpp=vpp_view(state),
        frontends=frontends,
        fetched=state.fetched,
        divergent=[f["consistency"] for f in frontends if f["consistency"] and not f["consistency"]["consistent"]],
    )
    return out


def event_view(daemon: str, e: pb.Event) -> tuple[str, dict[str, Any]]:
    """An API event as (SSE event name, data)."""
    kind = e.WhichOneof("kind") or "unknown"
    data: dict[str, Any] = {"maglevd": daemon, "time": e.time}
    if kind == "backend":
        t = e.backend.transition
        data.update(
            backend=e.backend.backend,
            old=getattr(t, "from"),
            new=t.to,
            code=t.code,
            detail=t.detail,
            enabled=e.backend.enabled,
        )
    elif kind == "frontend":
        data.update(frontend=e.frontend.frontend, old=getattr(e.frontend, "from"), new=e.frontend.to)
    elif kind == "vpp":
        data.update(connected=e.vpp.connected, version=e.vpp.version, reason=e.vpp.reason)
    elif kind == "log":
        data.update(level=e.log.level, event=e.log.event, message=e.log.message, logger=e.log.logger)
    return kind, data
