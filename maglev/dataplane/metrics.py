"""VPP metrics: connection, version, lb sync mutations, per-VIP packets, effective weights.

Collected on the reactor thread (at scrape time), from the DataplaneView; the per-member
families are written as text, a frontend at a time (``FrontendMetrics``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..exposition import Family, label_value, number, pieces
from ..states import FrontendState
from .view import DataplaneView


class VppMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.api = Counter(
            "maglev_vpp_api", "VPP API messages by name, direction and result", ["msg", "direction", "result"],
            registry=registry,
        )  # fmt: skip
        self.lbsync = Counter(
            "maglev_vpp_lbsync",
            "lb sync mutations (and errors) by scope and kind",
            ["scope", "kind"],
            registry=registry,
        )


# What VppCollector can yield (some only while connected, or when there is something to
# say): describe() names them all, so /metrics?name[]= finds them.
_FAMILIES = {
    CounterMetricFamily: ("maglev_vip_packets", "maglev_vip_route_packets", "maglev_vip_route_bytes"),
    GaugeMetricFamily: (
        "maglev_vpp_connected", "maglev_vpp_uptime_seconds", "maglev_vpp_connected_seconds", "maglev_vpp_info",
        "maglev_frontend_state", "maglev_as_draining_seconds", "maglev_backend_suppressed",
        "maglev_backend_flap_penalty", "maglev_checker_isolation", "maglev_checker_isolation_held",
    ),
}  # fmt: skip


WEIGHT = Family(
    "maglev_frontend_pool_backend_weight", "gauge", "effective weight of each pool member (what VPP is given)"
)
ERROR = Family(
    "maglev_frontend_weight_error_ratio",
    "gauge",
    "the worst AS's |bucket share - weight share| in the VIP's new-flow table as VPP holds it",
)
DIGEST = Family(
    "maglev_frontend_table_info", "gauge", "1, labelled with the digest of the VIP's new-flow table as VPP holds it"
)


class FrontendMetrics:
    """The per-member weights and each VIP's table as VPP holds it, written a frontend at a
    time: each frontend's desired state is computed as it comes, and /metrics lets the reactor
    run between frontends (maglev/metrics.py)."""

    names: tuple[str, ...] = (WEIGHT.name, ERROR.name, DIGEST.name)

    def __init__(self, view: DataplaneView) -> None:
        self.view = view

    def scrape(self, wanted: Callable[[str], bool], openmetrics: bool) -> Iterator[str | None]:
        s = self.view
        families = [f for f in (WEIGHT, ERROR, DIGEST) if wanted(f.name)]
        lines: dict[str, list[str]] = {f.name: [] for f in families}
        weights, errors, digests = (lines.get(f.name) for f in (WEIGHT, ERROR, DIGEST))
        for name in s.frontend_names():
            vip = s.desired([name]).get(name)
            if vip is None:
                continue  # gone with a reload since the scrape began
            frontend = label_value(name)
            if weights is not None:
                weights.extend(
                    f'{WEIGHT.name}{{frontend="{frontend}",pool="{label_value(a.pool)}",'
                    f'backend="{label_value(a.backend)}"}} {a.weight}\n'
                    for a in vip.ases
                )
            if errors is not None or digests is not None:
                table = s.table(name, vip)
                if table is not None and errors is not None:
                    errors.append(f'{ERROR.name}{{frontend="{frontend}"}} {number(table.error)}\n')
                if table is not None and digests is not None:
                    digests.append(
                        f'{DIGEST.name}{{frontend="{frontend}",digest="{label_value(table.digest)}",'
                        f'length="{table.length}"}} 1\n'
                    )
            yield None
        yield from pieces(((f, lines[f.name]) for f in families), openmetrics)


class VppCollector(Collector):
    def __init__(self, view: DataplaneView) -> None:
        self.view = view

    def describe(self) -> Iterator[Metric]:
        for family, names in _FAMILIES.items():
            for name in names:
                yield family(name, "", labels=[])

    def collect(self) -> Iterator[Metric]:
        s = self.view
        yield GaugeMetricFamily("maglev_vpp_connected", "1 while connected to VPP", value=1.0 if s.connected else 0.0)
        info = s.info
        if info is not None:
            now = time.time()
            if info.boottime:
                yield GaugeMetricFamily("maglev_vpp_uptime_seconds", "VPP uptime", value=now - info.boottime)
            yield GaugeMetricFamily(
                "maglev_vpp_connected_seconds", "time since maglevd connected", value=now - info.connected_at
            )
            vi = GaugeMetricFamily(
                "maglev_vpp_info", "the connected VPP", labels=["version", "build_date", "pid", "api_mode"]
            )
            vi.add_metric(
                [info.version, info.build_date, str(info.pid), "weights" if info.weights else "no-weights"], 1.0
            )
            yield vi
            packets = CounterMetricFamily(
                "maglev_vip_packets", "lb plugin packets per VIP", labels=["frontend", "kind"]
            )
            route_packets = CounterMetricFamily(
                "maglev_vip_route_packets", "packets VPP's FIB sent to the VIP's prefix", labels=["frontend"]
            )
            route_bytes = CounterMetricFamily(
                "maglev_vip_route_bytes", "bytes VPP's FIB sent to the VIP's prefix", labels=["frontend"]
            )
            for frontend, kinds in sorted(s.counters.items()):
                for kind, value in kinds.items():
                    if kind == "route-packets":
                        route_packets.add_metric([frontend], value)
                    elif kind == "route-bytes":
                        route_bytes.add_metric([frontend], value)
                    else:
                        packets.add_metric([frontend, kind], value)
            yield packets
            yield route_packets
            yield route_bytes
        state = GaugeMetricFamily(
            "maglev_frontend_state", "1 for the frontend's current state", labels=["frontend", "state"]
        )
        for name, current in s.frontend_states.items():
            for label in FrontendState:
                state.add_metric([name, label.value], 1.0 if current is label else 0.0)
        yield state
        draining = GaugeMetricFamily(
            "maglev_as_draining_seconds",
            "seconds left in the drain of an AS a frontend no longer wants (weight 0, no flush)",
            labels=["frontend", "address"],
        )
        now = s.seconds()
        for name in s.frontend_states:
            for d in s.draining(name):
                draining.add_metric([name, str(d.address)], d.left(now))
        for dv in s.draining_vips():
            for a in dv.vip.ases:
                draining.add_metric([dv.frontend, str(a.address)], dv.left(now))
        yield draining
        penalty = GaugeMetricFamily(
            "maglev_backend_flap_penalty", "flap dampening figure of merit of each dampened backend", labels=["backend"]
        )
        suppressed = GaugeMetricFamily(
            "maglev_backend_suppressed", "1 while flap dampening keeps the backend out of its pools", labels=["backend"]
        )
        for name in s.backends_dampened():
            flap = s.flap(name)
            penalty.add_metric([name], flap[1] if flap else 0.0)
            suppressed.add_metric([name], 1.0 if flap and flap[0] else 0.0)
        yield penalty
        yield suppressed
        holding, _, held = s.isolation()
        yield GaugeMetricFamily(
            "maglev_checker_isolation",
            "1 while the checker-isolation guard holds backends",
            value=1.0 if holding else 0.0,
        )
        yield GaugeMetricFamily("maglev_checker_isolation_held", "backends the guard holds", value=float(len(held)))
